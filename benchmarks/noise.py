"""Noise, compression and the whole run against the forward model, side by side in one run.

Run it:

    python benchmarks/noise.py [--size 256] [--block 256] [--dose 1e5] [--steady 1024,4096]
                               [--clusters 1x2,4x2]

Per block of the demo geometry scaled to SIZE^2 (a far field at dose photons per position),
timed in alternation (best of rounds), in this process as a worker runs them:

- forward: `BlockRunner.simulate` and the copy to the host;
- host noise: `detector_values` (the [detector] model on the host), one core;
- device noise: `jscan.core.detector.camera_values` jitted on this process's JAX device;
- encode: the store's codec for counts (and the candidates of benchmarks/codecs.py), one core.

Then `jscan simulate` end to end (the embedded cluster, default or each --clusters shape) for
two scan lengths: the difference is the steady state, without the cluster start, compared
with the forward model's rate alone. Prints one line per row, and the machine first.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
from numcodecs import Blosc

from jscan.core.sharding import to_host
from jscan.inputs import detector_model
from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import codec_for


def config(size, block, dose, positions):
    """The demo scaled to size^2 patterns (the same far field, finer), a square raster of
    about ``positions`` over a Siemens star that holds it."""
    k = size / 64
    side = int(np.ceil(np.sqrt(positions)))
    sample = int(side * 7 * k + 2 * size)
    text = DEMO_CONFIG
    for old, new in (
        ("size = 64 ", f"size = {size} "),
        ("waist = 12.0e-6", f"waist = {12e-6 * k}"),
        ("aperture_diameter = 48.0e-6", f"aperture_diameter = {48e-6 * k}"),
        ("camera_pixel_size = 195.3125e-6", f"camera_pixel_size = {195.3125e-6 / k}"),
        ("shape = [512, 512]", f"shape = [{sample}, {sample}]"),
        ("step = 7.0e-6", f"step = {7e-6 * k}"),
        ("shape = [64, 64]", f"shape = [{side}, {side}]"),
        ("dose = 1.0e5", f"dose = {dose}"),
        ("block_size = 512", f"block_size = {block}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def best_of(fns, rounds):
    """Best seconds of each function, timed in alternation (a slow spell hits them all)."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, np.inf)
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def stages(text, rounds):
    cfg = parse_config(text)
    plan = plan_scan(cfg)
    runner = BlockRunner(ScanJob(describe(cfg, plan), "", generator="host"))
    g = plan.block(0)
    host = to_host(runner.simulate(g.origins, g.shifts))[: g.n_valid]
    index = np.arange(g.n_valid)
    counts = detector_model.detector_values(host, index, runner.camera)
    device = BlockRunner(ScanJob(describe(cfg, plan), "", generator="device"))

    def host_noise():
        detector_model.detector_values(host, index, runner.camera)

    def forward():
        to_host(runner.simulate(g.origins, g.shifts))

    def device_noise():
        device.patterns(g)  # forward too: subtract the forward row

    store = codec_for(counts.dtype)
    store_label = f"{store.cname.value}-{store.clevel} + {store.shuffle.value}"
    codecs = {
        "zstd-3 + bitshuffle": Blosc("zstd", 3, Blosc.BITSHUFFLE),
        "zstd-1 + bitshuffle": Blosc("zstd", 1, Blosc.BITSHUFFLE),
        "lz4-5 + bitshuffle": Blosc("lz4", 5, Blosc.BITSHUFFLE),
        "lz4-5 + shuffle": Blosc("lz4", 5, Blosc.SHUFFLE),
    }
    fns = {
        "forward": forward,
        "host noise": host_noise,
        "forward + device noise": device_noise,
    }
    sizes = {}
    for label, codec in codecs.items():
        mark = " (the store's)" if label == store_label else ""
        fns[f"encode {label}{mark}, 1 core"] = lambda c=codec: c.encode(counts)
        sizes[f"encode {label}{mark}, 1 core"] = len(codec.encode(counts))
    best = best_of(fns, rounds)
    return best, g.n_valid, counts, sizes


def end_to_end(text, tmp, name, cluster):
    """Seconds of `jscan simulate` (``cluster``: "" for the default, else "WxT": W workers of
    T threads)."""
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    out = os.path.join(tmp, f"{name}.zarr")
    shape = []
    if cluster:
        workers, threads = cluster.split("x")
        shape = ["--workers", workers, "--threads", threads]
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jscan.cli",
            "simulate",
            path,
            "--out",
            out,
            "--no-progress",
            *shape,
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - t0
    shutil.rmtree(out)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--dose", type=float, default=1e5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steady", default="1024,4096", help="two scan lengths, or 0")
    parser.add_argument(
        "--clusters",
        default="",
        help='embedded clusters end to end, comma-separated "WxT" (W workers of T threads); '
        "empty: the default one",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
        f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}"
    )
    text = config(args.size, args.block, args.dose, args.block)
    best, n, counts, sizes = stages(text, args.rounds)
    fwd = best["forward"]
    print(f"block: {n} patterns of {args.size}^2, dose {args.dose:g}, {counts.dtype}")
    print("| stage | ms per block | patterns/s | x forward time | compression |")
    print("|---|---|---|---|---|")
    for label, seconds in best.items():
        if label == "forward + device noise":
            label, seconds = "device noise (forward subtracted)", seconds - fwd
        packed = f"{counts.nbytes / sizes[label]:.0f}x" if label in sizes else ""
        print(
            f"| {label} | {seconds * 1e3:.1f} | {n / seconds:,.0f} | {seconds / fwd:.2f} "
            f"| {packed} |"
        )
    if args.steady == "0":
        return
    short, long = (int(v) for v in args.steady.split(","))
    sides = {v: int(np.ceil(np.sqrt(v))) ** 2 for v in (short, long)}
    for cluster in args.clusters.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            walls = {}
            for n_pos in (short, long):
                text = config(args.size, args.block, args.dose, n_pos)
                walls[n_pos] = end_to_end(text, tmp, str(n_pos), cluster)
        steady = (sides[long] - sides[short]) / (walls[long] - walls[short])
        print(
            f"jscan simulate ({cluster or 'default cluster'}): {sides[short]} positions "
            f"{walls[short]:.1f} s, {sides[long]} positions {walls[long]:.1f} s; steady state "
            f"{steady:,.0f} patterns/s = {steady / (n / fwd):.2f}x the forward model alone "
            f"({n / fwd:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
