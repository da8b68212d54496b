"""Codec and noise-sampler choices, measured on demo-like patterns in one run.

    python benchmarks/codecs.py

For float32 intensities and uint32 photon counts (64x64 demo patterns, and 256x256):
compression ratio and encode/decode MB/s of Blosc codecs; then Poisson sampling with numpy
(Philox per position, what the pipeline uses) against jax.random.poisson.
"""

import time

import jax
import numpy as np
from numcodecs import Blosc

from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.inputs.samples import make_probe
from jscan.pipeline.plan import plan_scan
from jscan.pipeline.runner import BlockRunner
from jscan.pipeline.worker import ScanJob, noise_factor, photon_counts

CODECS = {
    "lz4 + shuffle": Blosc("lz4", 5, Blosc.SHUFFLE),
    "lz4 + bitshuffle": Blosc("lz4", 5, Blosc.BITSHUFFLE),
    "zstd-1 + shuffle": Blosc("zstd", 1, Blosc.SHUFFLE),
    "zstd-3 + bitshuffle": Blosc("zstd", 3, Blosc.BITSHUFFLE),
    "zstd-3 + shuffle": Blosc("zstd", 3, Blosc.SHUFFLE),
}


def patterns(size):
    text = DEMO_CONFIG.replace("size = 64", f"size = {size}")
    text = text.replace("shape = [40, 40]", "shape = [8, 8]")
    cfg = parse_config(text)
    plan = plan_scan(cfg)
    job = ScanJob(cfg, "unused", plan)
    intensity = np.asarray(BlockRunner(job).simulate(plan.block(0).origins))[:64]
    factor = noise_factor(cfg, make_probe(cfg.probe))
    counts = photon_counts(intensity, np.arange(64), 0, factor)
    return {"float32 intensity": intensity, "uint32 counts (dose 1e5)": counts}, factor


def timed(fn, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}")
    print("| data | size | codec | ratio | encode MB/s | decode MB/s |")
    print("|---|---|---|---|---|---|")
    for size in (64, 256):
        data, factor = patterns(size)
        for name, arr in data.items():
            raw = np.ascontiguousarray(arr)
            for label, codec in CODECS.items():
                t_enc, enc = timed(lambda codec=codec, raw=raw: codec.encode(raw))
                t_dec, _ = timed(lambda codec=codec, enc=enc: codec.decode(enc))
                mb = raw.nbytes / 1e6
                print(
                    f"| {name} | {size} | {label} | {raw.nbytes / len(enc):.2f} | "
                    f"{mb / t_enc:,.0f} | {mb / t_dec:,.0f} |"
                )
    intensity = data["float32 intensity"]
    t_np, _ = timed(lambda: photon_counts(intensity, np.arange(64), 0, factor), 3)

    def jax_poisson():
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(np.arange(64))
        lam = intensity * np.float32(factor)
        return jax.vmap(jax.random.poisson)(keys, lam).block_until_ready()

    jax_poisson()
    t_jax, _ = timed(jax_poisson, 3)
    print(
        f"\nPoisson, 64 patterns of {size}x{size}: numpy Philox per position {t_np * 1e3:.0f} ms,"
        f" jax.random.poisson {t_jax * 1e3:.0f} ms ({t_jax / t_np:.1f}x slower)"
    )


if __name__ == "__main__":
    main()
