"""`jscan preview` of a 10^7-position store, next to the old path that read every pattern.

    python benchmarks/preview.py [--positions 10000000] [--small 100000] [--repeat 3]

Stores (a 16x16 probe raster-scanned in quarter-pixel steps, dose 1e4):

- large (--positions, one per --block-sizes): created by `jscan.pipeline.store.create`
  with the real plan of the real config (every coordinate written); the virtual detectors
  of every block are written with synthetic values and every block marked done, as workers
  would, but only the blocks whose patterns `preview` draws are simulated
  (`BlockRunner.run`): simulating all 10^7 patterns takes hours on 2 cores.
- small (--small, block_size 1024): every block simulated (`BlockRunner.run`, in process).

Times are the wall time of a `jscan preview` process (interpreter start and imports
included), best of --repeat. The old path is the preview module of --old-rev (the commit
before the stored detectors), run unchanged on the same small store: it computes the
bright field from every pattern.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import zarr

from jscan.inputs.config import parse_config
from jscan.inputs.detectors import DETECTORS
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import create
from jscan.preview import pattern_picks

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def config_text(n_positions: int, block: int = 1024) -> str:
    """A square raster of about n_positions, 16x16 probe, quarter-pixel steps."""
    side = int(np.ceil(np.sqrt(n_positions)))
    sample = int(np.ceil(side * 0.25 + 16 + 8))
    return f"""
[probe]
kind = "gaussian"
size = 16
dx = 1.0e-6
wavelength = 500.0e-9
waist = 3.0e-6
[optics]
zoom_factor = 1.0
aperture_diameter = 12.0e-6
travel_distance = 0.05
camera_pixel_size = 781.25e-6
[sample]
kind = "phantom"
phantom = "siemens_star"
dx = 1.0e-6
shape = [{sample}, {sample}]
[scan]
kind = "raster"
shape = [{side}, {side}]
step = 0.25e-6
[detector]
dose = 1.0e4
seed = 0
[run]
block_size = {block}
"""


def make_store(path: str, n_positions: int, real_blocks=None, block: int = 1024):
    """Create the store; simulate real_blocks (None: all); synthetic detectors elsewhere.

    Returns (seconds to plan and create, seconds to fill, blocks simulated).
    """
    cfg = parse_config(config_text(n_positions, block))
    t0 = time.perf_counter()
    plan = plan_scan(cfg)
    spec = describe(cfg, plan)
    store_id = create(path, spec)
    t1 = time.perf_counter()
    n, block = plan.n_positions, plan.block_size
    job = ScanJob(spec, path, store_id=store_id)
    runner = BlockRunner(job)
    if real_blocks is None:
        real = range(plan.n_blocks)
    else:  # the blocks whose patterns preview draws
        real = sorted({int(i) // block for i in pattern_picks(np.ones(n, bool), 4)})
    for b in real:
        runner.run(b)
    if real_blocks is not None:
        # What a worker writes for every other block, with synthetic values around the real
        # blocks' level: detector chunks, then done marks (whole-array writes: the same
        # chunks, in one batched request each; the real blocks' values are put back).
        arrays = {name: zarr.open_array(path, path=name, mode="r+") for name in DETECTORS}
        kept = {
            name: {b: arr[b * block : (b + 1) * block] for b in real}
            for name, arr in arrays.items()
        }
        level = float(np.median(np.concatenate(list(kept["bright_field"].values()))))
        positions = plan.positions()
        x, y = positions[:, 0], positions[:, 1]
        span = np.ptp(x) or 1.0
        values = {
            "bright_field": level * (1 + 0.1 * np.cos(2 * np.pi * (x - y) / (span / 3))),
            "total": np.full(n, 1e4),
            "com_x": 1e-5 * np.sin(2 * np.pi * x / span),
            "com_y": 1e-5 * np.cos(2 * np.pi * y / span),
        }
        for name, arr in arrays.items():
            arr[:] = values[name]
            for b, saved in kept[name].items():
                arr[b * block : b * block + len(saved)] = saved
        rows, cols = np.divmod(np.arange(n), plan.raster_shape[1])
        coords = {"x": x, "y": y, "scan_row": rows, "scan_col": cols}  # as the workers write
        for name, value in coords.items():
            zarr.open_array(path, path=name, mode="r+")[:] = value
        zarr.open_array(path, path="block_done", mode="r+")[:] = 1
    del plan
    return t1 - t0, time.perf_counter() - t1, len(real)


def timed(argv, repeat: int, env=None) -> float:
    """Best wall time [s] of a process over repeat runs."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - t0)
    return best


def old_preview_source(rev: str) -> str:
    return subprocess.run(
        ["git", "-C", ROOT, "show", f"{rev}:jscan/preview.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--block-sizes", type=int, nargs="+", default=[1024, 4096], help="of the large store"
    )
    parser.add_argument("--old-rev", default="82279ab", help="commit of the old preview.py")
    parser.add_argument("--keep", metavar="DIR", help="build the stores here and keep them")
    args = parser.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix="jscan-preview-")
    os.makedirs(root, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    old = os.path.join(root, "old_preview.py")
    with open(old, "w") as f:
        f.write(old_preview_source(args.old_rev))
        f.write("\nimport sys\npreview(sys.argv[1], sys.argv[2])\n")
    rows = []
    try:
        runs = [("small", args.small, None, 1024)]
        runs += [(f"large{b}", args.positions, "picks", b) for b in args.block_sizes]
        for label, n, real, block in runs:
            path = os.path.join(root, f"{label}.zarr")
            shutil.rmtree(path, ignore_errors=True)
            made, filled, simulated = make_store(path, n, real, block)
            png = os.path.join(root, f"{label}.png")
            cmd = [sys.executable, "-m", "jscan.cli", "preview", path, "--out", png]
            new = timed(cmd, args.repeat, env)
            what = f"{n:,} positions, block {block}, stored bright field (jscan preview)"
            rows.append((what, new, simulated))
            print(f"{label}: plan+create {made:.1f} s, fill {filled:.1f} s", file=sys.stderr)
            if real is None:
                old_s = timed([sys.executable, old, path, png + ".old.png"], args.repeat, env)
                what = f"{n:,} positions, block {block}, every pattern read (old preview)"
                rows.append((what, old_s, simulated))
            if real is not None and not args.keep:  # disk: one large store at a time
                shutil.rmtree(path, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs; zarr {zarr.__version__}; "
        f"best of {args.repeat}; 16x16 uint32 patterns\n"
    )
    print(f"| {'preview of':<72} | wall s | blocks simulated |")
    print(f"|{'-' * 74}|--------|------------------|")
    for label, seconds, simulated in rows:
        print(f"| {label:<72} | {seconds:6.2f} | {simulated:>16,} |")
    print(f"\nold / new at {args.small:,} positions: {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
