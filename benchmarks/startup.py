"""What a new user waits for: `jscan --help` and `jscan demo`, wall-clock, in fresh processes.

Run it:

    python benchmarks/startup.py            # 7 --help runs, 3 demo runs; medians

The demo is timed whole (cluster start, simulation, store), as a user sees it; the README and
`jscan demo --help` quote its median (`jscan.cliargs.DEMO_TIME`).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(argv, cwd=None) -> float:
    """Seconds a fresh `python -m jscan.cli ARGV` takes (it must exit 0)."""
    start = time.perf_counter()
    # In the temporary folder: `-m` puts the working folder first on sys.path, and the
    # jscan measured is the one PYTHONPATH (or the install) names.
    subprocess.run(
        [sys.executable, "-m", "jscan.cli", *argv],
        cwd=cwd or tempfile.gettempdir(),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--help-runs", type=int, default=7)
    parser.add_argument("--demo-runs", type=int, default=3)
    args = parser.parse_args(argv)
    helps = [wall(["--help"]) for _ in range(args.help_runs)]
    print(f"jscan --help: median {statistics.median(helps):.3f} s, max {max(helps):.3f} s")
    demos = []
    for _ in range(args.demo_runs):
        with tempfile.TemporaryDirectory() as folder:
            demos.append(wall(["demo", "--out", str(Path(folder) / "d.zarr")]))
    print(
        f"jscan demo: median {statistics.median(demos):.1f} s, runs {[round(d, 1) for d in demos]}"
    )


if __name__ == "__main__":
    main()
