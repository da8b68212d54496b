"""Crash and resume: a scan killed half-way is finished later, bit for bit.

Shows how jscan survives a crash:

1. `jscan simulate CFG --out STORE --workers N` runs in a subprocess; once `--kill-after`
   blocks are marked in the store's `block_done` array, the whole process group (client,
   LocalCluster, workers) is killed with SIGKILL, as a crash would;
2. `block_done` shows what survived; the run's lock (`flock`) died with its process;
3. `simulate_scan(..., resume=True)` on an explicit `distributed.LocalCluster` of N worker
   processes simulates only the missing blocks;
4. the resumed store is compared with an uninterrupted run on the same cluster: the
   patterns, Poisson noise included, are identical.

Run it:

    python examples/local_cluster_resume.py --out resume-out --workers 2
    python examples/local_cluster_resume.py --out resume-out --small    # seconds

DIR must not hold the stores already (DIR/scan.zarr, DIR/reference.zarr).
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from distributed import Client, LocalCluster

from jscan import simulate_scan
from jscan.pipeline.store import blocks_done

CONFIG = """\
[probe]
kind = "gaussian"
size = 32
dx = 1.0e-6
wavelength = 500.0e-9
waist = 6.0e-6

[optics]
zoom_factor = 1.0
aperture_diameter = 24.0e-6
travel_distance = 0.02
camera_pixel_size = 200.0e-6

[sample]
kind = "phantom"
phantom = "cells"
shape = [{side}, {side}]
dx = 1.0e-6
seed = 1

[scan]
kind = "raster"
shape = [{n}, {n}]
step = 7.3e-6

[detector]
dose = 1.0e4
seed = 7

[run]
block_size = {block}
"""


def show(store, label):
    done = blocks_done(str(store))
    marks = "".join("#" if d else "." for d in done)
    rows = "\n    ".join(marks[i : i + 64] for i in range(0, len(marks), 64))
    print(f"block_done {label}: {int(done.sum())}/{done.size}\n    {rows}", flush=True)
    return done


def run_and_kill(config_path, store, workers, kill_after, timeout=300):
    """Run `jscan simulate` in its own process group; SIGKILL it all once `kill_after`
    blocks are done (unless it finished first)."""
    cmd = [sys.executable, "-m", "jscan.cli", "simulate", str(config_path), "--out", str(store)]
    cmd += ["--workers", str(workers), "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.monotonic() + timeout
    done = 0
    while proc.poll() is None and done < kill_after and time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            done = int(blocks_done(str(store)).sum())
        except Exception:  # the store is still being created
            done = 0
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # client, LocalCluster and workers at once
    elif proc.returncode != 0:
        sys.exit(f"jscan simulate failed with exit status {proc.returncode}")
    proc.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="resume-out", help="output directory")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--kill-after", type=int, default=5, help="blocks done before the kill")
    parser.add_argument("--small", action="store_true", help="16x16 positions (seconds)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, block = (16, 4) if args.small else (64, 16)  # 64 or 256 blocks
    side = 32 + int(np.ceil((n - 1) * 7.3)) + 8  # the scan's extent, the window and a margin
    config_path = out / "scan.toml"
    config_path.write_text(CONFIG.format(n=n, side=side, block=block))
    store, reference = out / "scan.zarr", out / "reference.zarr"

    if args.kill_after < 1:
        parser.error("--kill-after must be at least 1")
    print(
        f"1. jscan simulate, {args.workers} workers, killed after {args.kill_after} blocks",
        flush=True,
    )
    run_and_kill(config_path, store, args.workers, args.kill_after)
    if blocks_done(str(store)).all():
        # Rare on a fast machine: the run beat the kill. Un-mark the second half of the
        # blocks, which is what a crash before they were written would have left.
        print("   every block was written before the kill; un-marking the last half of them")
        marks = zarr.open_array(str(store), path="block_done", mode="r+")
        marks[marks.shape[0] // 2 :] = 0
    before = show(store, "after the crash")

    print(f"2. resume on an explicit LocalCluster of {args.workers} workers", flush=True)
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=2,
            processes=True,
            dashboard_address=":0",
            env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},  # for GPU workers
        ) as cluster,
        Client(cluster) as client,
    ):
        print(f"   dashboard: {client.dashboard_link}", flush=True)
        simulate_scan(config_path, store, client=client, resume=True, progress=False).close()
        after = show(store, "after the resume ")
        print("3. an uninterrupted run on the same cluster, for comparison", flush=True)
        simulate_scan(config_path, reference, client=client, progress=False).close()

    resumed, full = xr.open_zarr(store), xr.open_zarr(reference)
    history = resumed.attrs["run_history"]
    print("run history:", [(h["event"], h.get("blocks_todo", h.get("blocks"))) for h in history])
    identical = bool((resumed.diffraction == full.diffraction).all())
    print(f"resumed blocks: {int((~before).sum())}; complete: {bool(after.all())}")
    print(f"resumed store identical to the uninterrupted run: {identical}")
    if not (after.all() and identical):
        sys.exit("the resumed store is incomplete or differs")


if __name__ == "__main__":
    main()
