"""The pipeline against its limits, side by side in one run on one machine.

    python benchmarks/pipeline.py [--quick] [--size 64] [--positions 14400] [--workers N]

(a) forward model only: in-process `simple_microscope` over all positions (positions/s);
(b) device -> host copy of a block by the pipeline's path, next to the best copy found;
(c) raw Zarr write of the same bytes, same layout, codec and parallelism, no simulation;
(d) `jscan simulate` end to end on the embedded LocalCluster, cluster start included;
(e) peak memory (RSS summed over the whole process tree) for 10^4 and 10^5 positions;
(f) with --gpu-memory: device memory of one block (benchmarks/transfer.py), measured first.
Ratios: (d) over min(a, b, c), and over (c) alone. --steady N adds a second end-to-end run of
N positions: the difference of the two runs is the steady state, without the cluster start.
--quick finishes in about two minutes on 2 cores.
"""

import argparse
import concurrent.futures
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import jax
import numpy as np
import psutil
import transfer
from noise import config

import jscan
from jscan.core.sharding import to_host
from jscan.inputs.config import parse_config
from jscan.inputs.samples import make_probe, sample_region
from jscan.pipeline import store as zstore
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe


def bench_config(n_positions, size=64, dose=0.0, block=1024):
    """The demo geometry scaled to size^2 (`noise.config`), a square raster of about
    n_positions and a sample to fit it."""
    return config(size, block, dose, n_positions)


def forward_only(cfg, repeats=2, chunk=0):
    """(a) seconds of in-process simple_microscope over all positions (compiled, best of).

    chunk > 0: in calls of that many positions (the last call's shape differs and compiles
    once more), as a device whose memory cannot hold every pattern at once needs."""
    plan = plan_scan(cfg)
    sample = jscan.make_sample_function(
        sample_region(cfg.sample, 0, 0, *plan.sample_shape), cfg.sample.dx
    )
    light = jscan.make_optical_wavefront(make_probe(cfg.probe), cfg.probe.wavelength, cfg.probe.dx)
    o = cfg.optics

    positions = plan.positions()
    n = len(positions)
    step = chunk or n

    def run():
        for i in range(0, n, step):
            out = jscan.simple_microscope(
                sample,
                positions[i : i + step],
                light,
                o.zoom_factor,
                o.aperture_diameter,
                o.travel_distance,
                o.camera_pixel_size,
            )
            out.image_data.block_until_ready()

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    best = min(_timed(run) for _ in range(repeats))
    return first, best


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def copies(cfg, repeats=5):
    """(b) GB/s of device -> host of one block: the pipeline's `to_host`, plain np.asarray
    and the other paths of benchmarks/transfer.py (best of `repeats`, fresh buffers)."""
    plan = plan_scan(cfg)
    job = ScanJob(describe(cfg, plan), "")
    x = BlockRunner(job).simulate(plan.block(0).origins).block_until_ready()
    rates = {label: best for label, (best, _) in transfer.d2h_rates(x, repeats).items()}
    return rates, to_host(x)


def raw_write(cfg, block_data, workers, tmp):
    """(c) seconds to write every block of the scan from memory, same layout and threads."""
    plan = plan_scan(cfg)
    path = os.path.join(tmp, "raw.zarr")
    zstore.create(path, describe(cfg, plan))
    import zarr

    arr = zarr.open_array(path, path="diffraction", mode="r+")

    def write(b):
        start, stop = plan.block_range(b)
        arr[start:stop] = block_data[: stop - start]

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(write, range(plan.n_blocks)))
    seconds = time.perf_counter() - t0
    shutil.rmtree(path)
    return seconds


def block_stages(cfg, tmp, blocks=4):
    """(h) seconds per block of the workers' BlockRunner.run, in-process on a real store: simulate
    and copy, write, and the rest (bright-field sums and the preview for the live page)."""
    plan = plan_scan(cfg)
    path = os.path.join(tmp, "stages.zarr")
    spec = describe(cfg, plan)
    runner = BlockRunner(ScanJob(spec, path, store_id=zstore.create(path, spec)))
    sums, n = np.zeros(3), 0
    for b in range(min(blocks + 1, plan.n_blocks)):  # block 0 compiles and opens the arrays
        t0 = time.perf_counter()
        r = runner.run(b)
        wall = time.perf_counter() - t0
        if b:
            sums += (r.compute_s, r.write_s, wall - r.seconds)
            n += 1
    shutil.rmtree(path)
    return sums / max(n, 1)


class TreeMemory:
    """Peak RSS summed over a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid):
        self.root, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def end_to_end(cfg_text, tmp, name, workers, threads=2):
    """(d), (e): wall seconds and peak tree RSS of `jscan simulate` in a fresh process."""
    cfg_path = os.path.join(tmp, f"{name}.toml")
    with open(cfg_path, "w") as f:
        f.write(cfg_text)
    out = os.path.join(tmp, f"{name}.zarr")
    cmd = [sys.executable, "-m", "jscan.cli", "simulate", cfg_path, "--out", out, "--no-progress"]
    cmd += ["--threads", str(threads)] + (["--workers", str(workers)] if workers else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    peak = mem.close()
    if proc.returncode:
        raise RuntimeError(err)
    stored = sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(os.path.join(out, "diffraction"))
        for f in files
    )
    shutil.rmtree(out)
    return wall, peak, stored


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--positions", type=int, default=14400)
    ap.add_argument("--workers", type=int, default=None, help="as jscan simulate --workers")
    ap.add_argument("--threads", type=int, default=2, help="as jscan simulate --threads")
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--forward-chunk", type=int, default=0, help="(a) in calls of N positions")
    ap.add_argument("--steady", type=int, default=0, help="second end-to-end run of N positions")
    ap.add_argument("--no-rss", action="store_true", help="skip (e)")
    ap.add_argument("--gpu-memory", action="store_true", help="(f): one block's device memory")
    a = ap.parse_args()
    n = 3600 if a.quick else a.positions
    dev = jax.devices()[0]
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; jax {jax.__version__} on "
        f"{dev.platform} ({dev.device_kind}) x{jax.device_count()}"
    )
    text = bench_config(n, a.size, block=a.block_size)
    cfg = parse_config(text)
    plan = plan_scan(cfg)
    n = plan.n_positions
    pattern_bytes = a.size * a.size * 4
    print(
        f"{n} positions, {a.size}x{a.size} float32, block {a.block_size}, "
        f"{n * pattern_bytes / 1e9:.2f} GB of patterns\n"
    )
    if a.gpu_memory:  # first: the peak must be the block's alone
        mem = transfer.block_memory(cfg)
        ws, peak = mem["working_set"], mem.get("peak_bytes_in_use")
        ratio = f"{peak / ws:.2f}x" if peak else "n/a"
        print(
            f"(f) device memory: peak_bytes_in_use {(peak or 0) / 2**20:,.0f} MiB after 3 blocks"
            f" = {ratio} one block's working set ({ws / 2**20:,.0f} MiB; target <= 2x); "
            f"bytes_limit {mem.get('bytes_limit', 0) / 2**20:,.0f} MiB; nvidia-smi (pid, used) "
            f"{mem.get('nvidia_smi_this_process', 'n/a')}\n"
        )
    rows = []
    first, fwd = forward_only(cfg, chunk=a.forward_chunk)
    rows.append(
        (
            "(a) forward only, in-process simple_microscope",
            n / fwd,
            n * pattern_bytes / fwd / 1e9,
            f"{fwd:.2f} s (first call {first:.2f} s)",
        )
    )
    copy_rates, block = copies(cfg)
    d2h = copy_rates["pipeline path (jscan.core.sharding.to_host)"]
    best = max(  # copies into host memory (not host memcpy, not the zero-copy view)
        v for k, v in copy_rates.items() if not k.startswith("host") and "ready" not in k
    )
    for label, gbs in copy_rates.items():
        rows.append((f"(b) d->h, {label}"[:58], gbs * 1e9 / pattern_bytes, gbs, ""))
    workers = (a.workers or 1) * a.threads
    with tempfile.TemporaryDirectory() as tmp:
        os.sync()  # each write phase starts with no dirty pages of the last
        raw = raw_write(cfg, block, workers, tmp)
        rows.append(
            (
                f"(c) raw Zarr write, {workers} thread(s) as the workers",
                n / raw,
                n * pattern_bytes / raw / 1e9,
                f"{raw:.2f} s",
            )
        )
        os.sync()  # each write phase starts with no dirty pages of the last
        compute, write, rest = block_stages(cfg, tmp)
        rows.append(
            (
                "(h) BlockRunner.run in-process, 1 thread, per block",
                a.block_size / (compute + write + rest),
                a.block_size * pattern_bytes / (compute + write + rest) / 1e9,
                f"simulate+copy {compute:.3f} s, write {write:.3f} s, "
                f"bright field + preview {rest:.3f} s",
            )
        )
        os.sync()  # each write phase starts with no dirty pages of the last
        wall, _, stored = end_to_end(text, tmp, "e2e", a.workers, a.threads)
        rows.append(
            (
                "(d) jscan simulate end to end (cluster start included)",
                n / wall,
                n * pattern_bytes / wall / 1e9,
                f"{wall:.2f} s, stored {stored / 1e9:.3f} GB",
            )
        )
        limit = min(n / fwd, d2h * 1e9 / pattern_bytes, n / raw)
        print(f"| {'stage':<58} | {'positions/s':>11} | {'GB/s':>6} | note")
        print(f"|{'-' * 60}|{'-' * 13}|{'-' * 8}|------")
        for label, rate, gbs, note in rows:
            print(f"| {label:<58} | {rate:11,.0f} | {gbs:6.2f} | {note}")
        print(f"\nend to end / min(a, b, c) = {n / wall / limit:.2f}")
        print(
            f"device->host: pipeline path {d2h:.2f} GB/s = {d2h / best:.2f}x the best device "
            f"copy ({best:.2f} GB/s); target >= 25 GB/s -> {'met' if d2h >= 25 else 'NOT met'}"
        )
        print(
            f"end to end / raw Zarr write = {raw / wall:.2f} (cluster start included); "
            "target >= 0.7"
        )
        if a.steady:
            t = bench_config(a.steady, a.size, block=a.block_size)
            m = plan_scan(parse_config(t)).n_positions
            os.sync()  # each write phase starts with no dirty pages of the last
            wall_m, _, _ = end_to_end(t, tmp, "steady", a.workers, a.threads)
            rate = (n - m) / (wall - wall_m)
            print(
                f"steady state ({n:,} - {m:,} positions in {wall - wall_m:.2f} s): "
                f"{rate:,.0f} positions/s, {rate * pattern_bytes / 1e9:.2f} GB/s = "
                f"{rate / (n / raw):.2f}x the raw Zarr write; target >= 0.7"
            )
        if a.steady:  # the disk and page cache drift: the same raw write once more, last
            os.sync()
            again = raw_write(cfg, block, workers, tmp)
            print(
                f"raw Zarr write again after the end-to-end runs: {n / again:,.0f} positions/s "
                f"({again:.2f} s); end to end / this = {again / wall:.2f}, "
                f"steady state / this = {rate / (n / again):.2f}"
            )
        if a.no_rss:
            return
        print(
            f"end to end / forward only (wall-time ratio) = {fwd / wall:.2f}; "
            f"target: wall <= forward / 0.6 + 10 s = {fwd / 0.6 + 10:.1f} s "
            f"-> {'met' if wall <= fwd / 0.6 + 10 else 'NOT met'}"
        )
        sizes = (10_000, 30_000) if a.quick else (10_000, 100_000)
        peaks = {}
        for m in sizes:
            t = bench_config(m, a.size, block=a.block_size)
            wall_m, peaks[m], _ = end_to_end(t, tmp, f"mem{m}", a.workers, a.threads)
            print(
                f"(e) {m:>7,} positions: peak RSS of the process tree "
                f"{peaks[m] / 2**20:,.0f} MiB, {wall_m:.1f} s"
            )
        ratio = peaks[sizes[1]] / peaks[sizes[0]]
        print(f"(e) peak memory ratio {sizes[1]:,} / {sizes[0]:,} = {ratio:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
