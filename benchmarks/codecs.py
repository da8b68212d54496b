"""Codec choices and the detector model's cost, measured on simulated patterns in one run.

Run it:

    python benchmarks/codecs.py [--sizes 64,256,1024] [--doses 1e3,1e5,1e7]

For the demo's far field scaled to each size (benchmarks/noise.py's geometry) and each dose:
photon counts as the store holds them (uint32), in chunks of the store's inner chunk (up to
4 MiB); for dose 0 float32 intensities. Each Blosc codec on one core (Blosc's own threads
off, as zarr's codec threads call it): compression ratio, encode MB/s and patterns/s, decode
MB/s. Then the whole [detector] model against Poisson alone, per block of 64 patterns.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numcodecs
import numpy as np
from numcodecs import Blosc, blosc

from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.inputs.detector_model import detector_model, detector_values
from jscan.inputs.farfield import noise_factor
from jscan.inputs.samples import make_probe
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import inner_chunk

sys.path.insert(0, str(Path(__file__).parent))
from noise import config

CODECS = {
    "zstd-3 + bitshuffle": Blosc("zstd", 3, Blosc.BITSHUFFLE),
    "zstd-1 + bitshuffle": Blosc("zstd", 1, Blosc.BITSHUFFLE),
    "lz4-5 + bitshuffle": Blosc("lz4", 5, Blosc.BITSHUFFLE),
    "lz4-1 + bitshuffle": Blosc("lz4", 1, Blosc.BITSHUFFLE),
    "lz4-5 + shuffle": Blosc("lz4", 5, Blosc.SHUFFLE),
}


def patterns(size, dose, n=32):
    """n stored patterns of the scaled demo at ``size``^2 and ``dose`` (0: intensities)."""
    cfg = parse_config(config(size, n, dose, n))
    plan = plan_scan(cfg)
    runner = BlockRunner(ScanJob(describe(cfg, plan), "", generator="host"))
    return runner.patterns(plan.block(0))


def timed(fn, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--doses", default="0,1e3,1e5,1e7")
    args = parser.parse_args()
    blosc.use_threads = False  # one core per codec call, as under zarr's codec threads
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, numcodecs {numcodecs.__version__}")
    print(
        "| size | dose | dtype | codec | ratio | encode MB/s | patterns/s per core | decode MB/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in (int(v) for v in args.sizes.split(",")):
        for dose in (float(v) for v in args.doses.split(",")):
            data = patterns(size, dose)
            chunk = np.ascontiguousarray(data[: inner_chunk(len(data), data[0].nbytes)])
            mb = chunk.nbytes / 1e6
            for label, codec in CODECS.items():
                t_enc, enc = timed(lambda codec=codec, chunk=chunk: codec.encode(chunk))
                t_dec, _ = timed(lambda codec=codec, enc=enc: codec.decode(enc))
                print(
                    f"| {size} | {dose:g} | {data.dtype} | {label} | {chunk.nbytes / len(enc):.1f} "
                    f"| {mb / t_enc:,.0f} | {len(chunk) / t_enc:,.0f} | {mb / t_dec:,.0f} |"
                )
    intensity = patterns(256, 0.0, 64)
    factor = noise_factor(
        parse_config(config(256, 64, 1e5, 64)),
        make_probe(parse_config(config(256, 64, 1e5, 64)).probe),
    )
    detector_rows(intensity, factor, 256)


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
