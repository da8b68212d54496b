"""Codec and noise-sampler choices, measured on demo-like patterns in one run.

    python benchmarks/codecs.py

For float32 intensities and uint32 photon counts (64x64 demo patterns, and 256x256):
compression ratio and encode/decode MB/s of Blosc codecs; then Poisson sampling with numpy
(Philox per position, what the pipeline uses) against jax.random.poisson; then the whole
[detector] model (background, PSF, Poisson, gain, readout noise, rounding, saturation, mask)
against Poisson alone, per block of 64 patterns.
"""

import time

import jax
import numpy as np
from numcodecs import Blosc

from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.inputs.farfield import noise_factor
from jscan.inputs.samples import make_probe
from jscan.pipeline.detector_model import detector_model, detector_values, photon_counts
from jscan.pipeline.plan import plan_scan
from jscan.pipeline.runner import BlockRunner
from jscan.pipeline.worker import ScanJob

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
    detector_rows(intensity, factor, size)


DETECTOR = """
background = 0.5
psf_sigma = 0.8
gain = 2.0
readout_noise = 1.5
saturation = 60000
gaps = {rows = [100, 101], cols = [128]}
"""


def detector_rows(intensity, factor, size):
    """ms per block of 64 patterns: Poisson alone, each effect added, the full model."""
    text = DEMO_CONFIG.replace("seed = 0\n", "seed = 0\n" + DETECTOR)
    cfg = parse_config(text)
    full = detector_model(cfg, intensity.shape[-2:], factor)
    cases = {
        "Poisson only (uint32)": full._replace(
            background=0.0,
            psf_sigma=0.0,
            gain=1.0,
            readout_noise=0.0,
            saturation=None,
            mask=full.mask & False,
            dtype=np.dtype("uint32"),
        ),
        "+ readout noise, gain, rounding": full._replace(
            background=0.0,
            psf_sigma=0.0,
            saturation=None,
            mask=full.mask & False,
            dtype=np.dtype("uint32"),
        ),
        "+ PSF blur (sigma 0.8 px)": full._replace(
            background=0.0, saturation=None, mask=full.mask & False, dtype=np.dtype("uint32")
        ),
        "full model (uint16)": full,
    }
    index = np.arange(len(intensity))
    base = None
    print(f"\n| detector model, 64 patterns of {size}x{size} | ms per block | x Poisson only |")
    print("|---|---|---|")
    for label, model in cases.items():
        t, _ = timed(lambda model=model: detector_values(intensity, index, model), 3)
        base = base or t
        print(f"| {label} | {t * 1e3:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
