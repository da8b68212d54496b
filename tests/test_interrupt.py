"""A SIGTERM or Ctrl-C during the checks ends the command at once, even inside one long
numpy call (a large probe or sample file), with nothing written."""

import os
import signal
import subprocess
import sys
import time

import pytest

# A long numpy call planted before the probe is made: np.unique of 10 million integers
# (about 10 s on the 2-core machine), where no Python signal handler runs. A marker file
# says that it has begun.
SCRIPT = """
import pathlib, sys
import numpy as np
import jscan.inputs.farfield as farfield
real = farfield.make_probe
def slow(cfg):
    pathlib.Path(sys.argv[1]).write_text("begun")
    np.unique(np.random.default_rng(0).integers(0, 2**40, 10_000_000))
    return real(cfg)
farfield.make_probe = slow
from jscan.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("command", ["check", "simulate"])
def test_a_signal_during_the_checks_ends_the_command_at_once(
    tmp_path, scan_config, tree, command, how
):
    (tmp_path / "scan.toml").write_text(scan_config())
    marker = tmp_path.parent / f"{tmp_path.name}.begun"
    argv = [command, str(tmp_path / "scan.toml")]
    if command == "simulate":
        argv += ["--out", str(tmp_path / "s.zarr"), "--no-progress"]
    before = tree(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marker), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JSCAN_COMPILE_CACHE": str(tmp_path.parent / "xla")},
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), proc.communicate()
        time.sleep(0.3)  # well inside the planted call
        sent = time.monotonic()
        proc.send_signal(how)
        out, err = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.startswith("jscan: interrupted") and "Traceback" not in err, err
    assert "nothing was written" not in out  # ended before the report
    # The planted call alone takes seconds; a handler that waits for it ends after it.
    assert waited < 2.0, f"the command ended {waited:.2f} s after the signal"
    assert tree(tmp_path) == before
