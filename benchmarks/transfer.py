"""Device->host copy paths and one block's device memory.

    python benchmarks/transfer.py [--size 256] [--block-size 2048] [--repeats 5]

(f) device memory of one block (run first, in a fresh process, so the peak is the block's):
    JAX's peak_bytes_in_use after simulating and copying a few blocks, next to one block's
    working set (one complex64 field and one float32 intensity per pattern pixel, plus the
    sample region); with XLA_PYTHON_CLIENT_PREALLOCATE=false also the process's total use;
(b) device->host copies of one block: the pipeline's `jscan.core.sharding.to_host`, plain
    np.asarray, the pieces of the pinned-host path, and the best copy found (a copy into a
    reused page-locked buffer through PyTorch or CuPy, when either is installed).
The noise stages, host and device, are measured by benchmarks/noise.py.
Every copy starts from a fresh device buffer: a jax.Array caches its host value, so copying
the same array twice would time a host memcpy the second time.
"""

import argparse
import os
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np

from jscan.core.sharding import to_host
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fresh(x):
    """A new device buffer with x's values and no cached host copy."""
    return jnp.array(x, copy=True).block_until_ready()


def _rates(fn, x, repeats, prepare=_fresh):
    """(best, median) GB/s of fn(prepare(x)); prepare is not timed."""
    nbytes = x.size * x.dtype.itemsize
    fn(prepare(x))  # warm up: allocators, compiled copies, pinned pools
    times = []
    for _ in range(repeats):
        y = prepare(x)
        times.append(_timed(lambda y=y: fn(y)))
        del y
    return nbytes / min(times) / 1e9, nbytes / statistics.median(times) / 1e9


def _on_gpu(x):
    return all(d.platform == "gpu" for d in x.devices())


def _pinned(y):
    return jax.device_put(y, y.sharding.with_memory_kind("pinned_host"))


def _torch_copy():
    """Copy into one reused page-locked torch buffer (the bound of a device->host copy)."""
    import torch

    state = {}

    def copy(y):
        src = torch.from_dlpack(y)
        if "dst" not in state:
            state["dst"] = torch.empty(src.shape, dtype=src.dtype, pin_memory=True)
        state["dst"].copy_(src)  # blocking: returns once the bytes are on the host
        return state["dst"]

    return copy


def _cupy_copy(reuse: bool):
    """Copy through CuPy into page-locked memory: one reused buffer, or a fresh buffer from
    CuPy's pinned pool for every copy (freed buffers return to the pool)."""
    import cupy

    state = {}

    def copy(y):
        src = cupy.from_dlpack(y)
        if not reuse or "dst" not in state:
            mem = cupy.cuda.alloc_pinned_memory(src.nbytes)
            state["dst"] = np.frombuffer(mem, src.dtype, src.size).reshape(src.shape)
        src.get(out=state["dst"])
        cupy.cuda.get_current_stream().synchronize()
        return state["dst"]

    return copy


def d2h_rates(x, repeats=5) -> dict:
    """label -> (best, median) GB/s for copying the device array x to host memory."""
    rows = {}
    host = np.asarray(_fresh(x))
    dst = np.empty_like(host)
    rows["host memcpy into a reused buffer (np.copyto)"] = _rates(
        lambda h: np.copyto(dst, h), host, repeats, prepare=lambda h: h
    )
    rows["host memcpy into a fresh buffer (first touch)"] = _rates(
        lambda h: np.copyto(np.empty_like(h), h), host, repeats, prepare=lambda h: h
    )
    rows["pipeline path (jscan.core.sharding.to_host)"] = _rates(to_host, x, repeats)
    rows["np.asarray (JAX default)"] = _rates(np.asarray, x, repeats)
    if not _on_gpu(x):
        return rows
    rows["pinned_host memory kind + np.asarray (JAX only)"] = _rates(
        lambda y: np.asarray(_pinned(y)), x, repeats
    )
    rows["device_put to pinned_host only"] = _rates(
        lambda y: _pinned(y).block_until_ready(), x, repeats
    )
    rows["np.asarray of a ready pinned_host array"] = _rates(
        np.asarray, x, repeats, prepare=lambda y: _pinned(_fresh(y)).block_until_ready()
    )

    def sliced(y, k=4):
        m = -(-y.shape[0] // k)
        parts = [_pinned(y[i * m : (i + 1) * m]) for i in range(k)]
        return [np.asarray(p) for p in parts]

    rows["pinned_host in 4 slices, np.asarray each"] = _rates(sliced, x, repeats)

    def early(y):
        y.copy_to_host_async()
        return np.asarray(y)

    rows["copy_to_host_async + np.asarray"] = _rates(early, x, repeats)
    for label, make in (
        ("torch: into one reused pinned buffer (best copy)", _torch_copy),
        ("cupy: into one reused pinned buffer", lambda: _cupy_copy(True)),
        ("cupy: into a fresh buffer from its pinned pool", lambda: _cupy_copy(False)),
    ):
        try:
            fn = make()
            rows[label] = _rates(fn, x, repeats)
            got = fn(_fresh(x))
            if not np.array_equal(np.asarray(got), host):
                rows[label] = (float("nan"), float("nan"))
                print(f"{label}: copy differs from np.asarray")
        except Exception as err:  # report and go on: these rows are comparisons only
            print(f"{label}: not measured ({type(err).__name__}: {err})")
    return rows


def block_memory(cfg, blocks=3) -> dict:
    """Peak device bytes of simulating and copying `blocks` blocks, and one block's
    working set. Call first in a process: the peak covers everything run before."""
    plan = plan_scan(cfg)
    runner = BlockRunner(ScanJob(describe(cfg, plan), ""))
    for b in range(min(blocks, plan.n_blocks)):
        g = plan.block(b)
        to_host(runner.simulate(g.origins, g.shifts))
    h, w = plan.window
    rows, cols = plan.region_shape
    working = plan.block_size * h * w * (8 + 4) + rows * cols * 8
    dev = jax.devices()[0]
    stats = dev.memory_stats() or {}
    out = {"working_set": working, **stats}
    if dev.platform == "gpu":
        try:
            q = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout
            out["nvidia_smi_this_process"] = [
                line for line in q.splitlines() if line.split(",")[0].strip() == str(os.getpid())
            ]
        except (OSError, subprocess.SubprocessError) as err:
            out["nvidia_smi_this_process"] = str(err)
    return out


def main():
    from pipeline import bench_config

    from jscan.inputs.config import parse_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--natural", action="store_true", help="camera at the natural pixel")
    ap.add_argument(
        "--chunk",
        type=int,
        default=0,
        help="(f) only, with the kernel mapped over chunks of N positions (an experiment)",
    )
    ap.add_argument("--memory-only", action="store_true", help="(f) only")
    a = ap.parse_args()
    text = bench_config(4 * a.block_size, a.size, block=a.block_size)
    if a.natural:  # bench_config's camera pixel is half the natural one
        old = f"camera_pixel_size = {195.3125e-6 * 64 / a.size}"
        assert old in text, old
        text = text.replace(old, f"camera_pixel_size = {390.625e-6 * 64 / a.size}")
    cfg = parse_config(text)
    dev = jax.devices()[0]
    print(f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}), {os.cpu_count()} CPUs")
    if a.chunk:
        _chunked_kernel(a.chunk)
    mem = block_memory(cfg)
    ws, peak = mem.pop("working_set"), mem.get("peak_bytes_in_use")
    pixel = "natural" if a.natural else "0.5x natural"
    how = f", kernel in chunks of {a.chunk}" if a.chunk else ""
    print(f"\n(f) one block of {a.block_size} patterns {a.size}x{a.size}, {pixel} pixel{how}:")
    print(f"    working set {ws / 2**20:,.0f} MiB (complex64 field + float32 intensity + region)")
    if peak is not None:
        print(f"    peak_bytes_in_use {peak / 2**20:,.0f} MiB = {peak / ws:.2f}x the working set")
    for k in ("bytes_in_use", "bytes_limit", "bytes_reserved", "pool_bytes", "peak_pool_bytes"):
        if k in mem:
            print(f"    {k} {mem[k] / 2**20:,.0f} MiB")
    if "nvidia_smi_this_process" in mem:
        print(f"    nvidia-smi, this process (pid, used): {mem['nvidia_smi_this_process']}")
    runner = BlockRunner(ScanJob(describe(cfg, plan_scan(cfg)), ""))
    origins = plan_scan(cfg).block(0).origins
    x = runner.simulate(origins).block_until_ready()
    t = min(_timed(lambda: runner.simulate(origins).block_until_ready()) for _ in range(a.repeats))
    print(f"    BlockRunner.simulate {t * 1e3:.1f} ms per block, {a.block_size / t:,.0f} pos/s")
    if a.chunk or a.memory_only:
        return
    nbytes = x.size * x.dtype.itemsize
    print(f"\n(b) device->host of one block, {nbytes / 1e9:.3f} GB, {a.repeats} copies each")
    print(f"| {'copy':<52} | {'best GB/s':>9} | {'median GB/s':>11} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 13}|")
    for label, (best, med) in d2h_rates(x, a.repeats).items():
        print(f"| {label:<52} | {best:9.2f} | {med:11.2f} |")
    del x


def _chunked_kernel(chunk):
    """Make the workers' kernel map `intensities` over chunks of positions (lax.map with
    batch_size): intermediates of `chunk` patterns at a time instead of a whole block."""
    import jscan.core.sharding as sharding
    from jscan.core.kernel import intensities

    def chunked(sample, origins, plan, specs, *shifts):  # shifts: the benchmark has none
        def one(origin):
            return intensities(sample, origin[None], plan, specs)[0]

        return jax.lax.map(one, origins, batch_size=chunk)

    sharding.intensities = chunked
    sharding._compiled.cache_clear()


if __name__ == "__main__":
    main()
