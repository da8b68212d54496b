"""Client memory and start-up at scale: `jscan simulate` of 10^5 .. 10^8-position rasters.

For each scan length the run is started in a fresh process (`jscan simulate`, embedded
LocalCluster: the client and the scheduler share that process) and stopped (SIGINT) once
``--blocks`` blocks are done, or left to finish with ``--finish``. Reported per row:

- plan: seconds of `plan_scan` and peak RSS of a process that only plans (the dry run);
- first block: seconds from the start of the process to the first block marked done;
- client RSS: peak RSS of the client process (client + scheduler), sampled every 50 ms;
- tree RSS: peak RSS summed over the client and its worker processes.

    python benchmarks/scale.py --positions 1e5 1e6 1e7 1e8 --blocks 10
    python benchmarks/scale.py --positions 1e5 1e6 --finish
    python benchmarks/scale.py --jscan-path /other/checkout   # the same rows for another tree
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil

CONFIG = """
[probe]
kind = "gaussian"
size = {size}
dx = 1e-6
wavelength = 1e-6
waist = 4e-6

[optics]
zoom_factor = 1.0
aperture_diameter = 12e-6
travel_distance = 0.05
camera_pixel_size = {pixel}

[sample]
kind = "phantom"
phantom = "siemens_star"
shape = [{sample}, {sample}]
dx = 1e-6

[scan]
kind = "raster"
shape = [{rows}, {cols}]
step = {step}e-6

[detector]
dose = 1e4

[run]
block_size = {block}
"""

PLAN_ONLY = """
import resource, sys, time
from jscan.inputs.config import load_config
from jscan.pipeline.run.plan import plan_scan
t0 = time.perf_counter()
plan = plan_scan(load_config(sys.argv[1]))
t = time.perf_counter() - t0
print(t, plan.n_blocks, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


class PeakRSS:
    """Peak RSS of a process (and, summed, of its descendants), sampled every 50 ms."""

    def __init__(self, pid):
        self.root, self.client, self.tree = psutil.Process(pid), 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self.stop.is_set():
            try:
                own = self.root.memory_info().rss
                rest = 0
                for p in self.root.children(recursive=True):
                    try:
                        rest += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.client, self.tree = max(self.client, own), max(self.tree, own + rest)
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.thread.join()
        return self.client, self.tree


def config_text(n, size, block, step=1, sample=None):
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)  # near-square raster
    cols = n // rows
    # steps of `step` px: the smallest sample is the raster plus one window
    sample = max(sample or 0, (max(rows, cols) - 1) * step + 2 * size)
    pixel = 1e-6 * 0.05 / (size * 1e-6)  # the natural camera pixel, lambda z / (N dx)
    text = CONFIG.format(
        size=size, sample=sample, rows=rows, cols=cols, pixel=pixel, block=block, step=step
    )
    return text, (rows, cols), sample


def done_blocks(store):
    """Blocks marked done so far: chunk files of block_done (one per block)."""
    folder = os.path.join(store, "block_done", "c")
    return len(os.listdir(folder)) if os.path.isdir(folder) else 0


def run_one(n, a, tmp, env):
    text, shape, sample = config_text(n, a.size, a.block_size, a.step, a.sample)
    cfg = os.path.join(tmp, f"scan{n}.toml")
    with open(cfg, "w") as f:
        f.write(text)
    plan = subprocess.run(
        [sys.executable, "-c", PLAN_ONLY, cfg],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp,  # not this checkout's folder: "-c" and "-m" put the working folder first
    )
    plan_s, n_blocks, plan_mib = plan.stdout.split()
    out = os.path.join(tmp, f"scan{n}.zarr")
    cmd = [sys.executable, "-m", "jscan.cli", "simulate", cfg, "--out", out, "--no-progress"]
    cmd += ["--workers", str(a.workers), "--threads", str(a.threads), "--force"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
    mem = PeakRSS(proc.pid)
    first = None
    while proc.poll() is None:
        k = done_blocks(out)
        if k and first is None:
            first = time.perf_counter() - t0
        if not a.finish and k >= a.blocks:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    try:
        _, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    wall = time.perf_counter() - t0
    client, tree = mem.close()
    if a.finish and proc.returncode:
        raise RuntimeError(err)
    blocks = done_blocks(out)
    shutil.rmtree(out, ignore_errors=True)
    return {
        "positions": n,
        "raster": list(shape),
        "step_px": a.step,
        "sample_px": sample**2,
        "blocks": int(n_blocks),
        "plan_s": float(plan_s),
        "plan_rss_mib": float(plan_mib),
        "first_block_s": first,
        "blocks_done": blocks,
        "wall_s": wall,
        "client_rss_mib": client / 2**20,
        "tree_rss_mib": tree / 2**20,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=float, nargs="+", default=[1e5, 1e6, 1e7, 1e8])
    ap.add_argument("--size", type=int, default=16, help="pattern side (px)")
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--step", type=int, default=1, help="raster step (sample pixels)")
    ap.add_argument("--sample", type=int, help="sample side (px); at least the scanned region")
    ap.add_argument("--blocks", type=int, default=10, help="stop each run after this many")
    ap.add_argument("--finish", action="store_true", help="let every run finish")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jscan-path", help="measure the jscan of another checkout")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.jscan_path:
        env["PYTHONPATH"] = os.path.abspath(a.jscan_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.positions:
            rows.append(run_one(int(n), a, tmp, env))
            r = rows[-1]
            if not a.json:
                first = f"{r['first_block_s']:.1f}" if r["first_block_s"] else "-"
                print(
                    f"{r['positions']:>11,} positions {r['blocks']:>7,} blocks, step "
                    f"{r['step_px']} px, sample {r['sample_px']:.2g} px: plan "
                    f"{r['plan_s']:.2f} s / {r['plan_rss_mib']:.0f} MiB, first block {first} s, "
                    f"client {r['client_rss_mib']:.0f} MiB, tree {r['tree_rss_mib']:.0f} MiB, "
                    f"{r['blocks_done']} blocks in {r['wall_s']:.1f} s",
                    flush=True,
                )
    if a.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
