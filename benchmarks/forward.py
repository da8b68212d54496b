"""Forward-model throughput, side by side in one run: jscan vs a bare FFT ceiling vs janssen.

    python benchmarks/forward.py [--size 256] [--positions 256] [--repeats 5] [--placement]
                                 [--modes 1,2,4]

Prints positions/s for: the bare batched multiply-FFT-|.|^2 ceiling (windows already cut),
jscan `simple_microscope` at the natural camera pixel and at 0.5x and 0.7x of it (each
scaled-DFT method), and janssen 2025.11.1's `simple_microscope` (jit and as documented)
when janssen is installed. janssen turns on float64 at import, so it runs in a subprocess.
--placement prints instead the cost of placement="exact" against "snap" (natural pixel).
--modes prints instead the cost of M incoherent probe modes against one (natural pixel, snap
and exact placement on a spiral).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

WAVELENGTH, DX, Z = 500e-9, 1e-6, 0.05


def best_rate(fn, n, repeats):
    fn()  # compile and warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / min(times)


def inputs(size, n, seed=0):
    rng = np.random.default_rng(seed)
    probe = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))).astype(
        np.complex64
    )
    side = 2 * size
    sample = np.exp(1j * rng.uniform(0, 2, (side, side))).astype(np.complex64)
    lo, hi = (size / 2 + 1) * DX, (side - size / 2 - 1) * DX
    positions = rng.uniform(lo, hi, (n, 2))
    return probe, sample, positions


def jscan_rows(size, n, repeats):
    import jax
    import jax.numpy as jnp

    import jscan

    probe, sample, positions = inputs(size, n)
    natural = WAVELENGTH * Z / (size * DX)
    lw = jscan.make_optical_wavefront(probe, WAVELENGTH, DX)
    sm = jscan.make_sample_function(sample, DX)
    rows = {}

    # built on the device: a host array of n windows would be gigabytes at GPU sizes
    windows = jnp.array(jnp.broadcast_to(jnp.asarray(sample[:size, :size]), (n, size, size)))
    p = jnp.asarray(probe)
    ceiling = jax.jit(lambda w, p: jnp.abs(jnp.fft.fft2(w * p)) ** 2)
    rows["ceiling: bare multiply-FFT-|.|^2"] = best_rate(
        lambda: ceiling(windows, p).block_until_ready(), n, repeats
    )
    for ratio, methods in (
        (1.0, ("auto",)),
        (0.5, ("auto", "czt", "matrix")),
        (0.7, ("czt", "matrix")),
    ):
        for method in methods:

            def run(ratio=ratio, method=method):
                out = jscan.simple_microscope(
                    sm, positions, lw, 1.0, 1.0, Z, ratio * natural, method=method
                )
                out.image_data.block_until_ready()

            label = f"jscan simple_microscope, camera {ratio}x natural, method={method}"
            rows[label] = best_rate(run, n, repeats)
    return rows


def janssen_rows(size, n, repeats):
    import jax
    import jax.numpy as jnp
    from janssen import scopes
    from janssen.types import make_optical_wavefront, make_sample_function

    probe, sample, positions = (jnp.asarray(a) for a in inputs(size, n))
    natural = WAVELENGTH * Z / (size * DX)
    lw = make_optical_wavefront(probe, WAVELENGTH, DX, 0.0)
    sm = make_sample_function(sample, DX)
    rows = {}
    for ratio in (1.0, 0.5):
        args = (1.0, 1.0, Z, ratio * natural)

        def jitted_fn(s, p, args=args):
            return scopes.simple_microscope(s, p, lw, *args).image_data

        jitted = jax.jit(jitted_fn)
        rows[f"janssen jit, camera {ratio}x natural"] = best_rate(
            lambda jitted=jitted: jitted(sm, positions).block_until_ready(), n, repeats
        )

        def plain(args=args):
            scopes.simple_microscope(sm, positions, lw, *args).image_data.block_until_ready()

        rows[f"janssen no jit (as documented), camera {ratio}x natural"] = best_rate(
            plain, n, max(1, repeats // 2)
        )
    return rows


def placement_rows(size, n, repeats):
    """positions/s of placement="snap" and "exact" on rasters and a spiral (natural pixel)."""
    from types import SimpleNamespace

    import jscan
    from jscan.inputs.scan import GOLDEN_ANGLE, position_errors

    rng = np.random.default_rng(0)
    probe = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))).astype(
        np.complex64
    )
    side_n = int(np.ceil(np.sqrt(n)))
    span = int(np.ceil(20 * (side_n - 1))) + 2
    side = size + span
    sample = np.exp(1j * rng.uniform(0, 2, (side, side))).astype(np.complex64)
    lw = jscan.make_optical_wavefront(probe, WAVELENGTH, DX)
    sm = jscan.make_sample_function(sample, DX)
    natural = WAVELENGTH * Z / (size * DX)
    first = size // 2 + 1  # pixel of the first position, window inside the sample

    def raster(step):
        k = np.arange(n)
        return (first + np.stack([k % side_n, k // side_n], axis=1) * step) * DX

    k = np.arange(n)
    radius = (span / 2 - 1) * np.sqrt(k / n)
    centre = first + span / 2 - 1
    spiral = (
        np.stack(
            [
                centre + radius * np.cos(k * GOLDEN_ANGLE),
                centre + radius * np.sin(k * GOLDEN_ANGLE),
            ],
            axis=1,
        )
        * DX
    )
    # [scan] jitter: each position off its grid point by a Gaussian error (scan.position_errors)
    errors = position_errors(SimpleNamespace(jitter=0.3 * DX, drift=(0.0, 0.0), seed=0), 0, n)
    jittered = raster(20.0) + errors
    cases = (
        ("snap, raster 20 px steps", raster(20.0), "snap"),
        ("exact, raster 20 px steps (whole pixels: no shift)", raster(20.0), "exact"),
        ("snap, raster 19.5 px steps", raster(19.5), "snap"),
        ("exact, raster 19.5 px steps (4 distinct shifts)", raster(19.5), "exact"),
        ("snap, spiral", spiral, "snap"),
        ("exact, spiral (every shift distinct)", spiral, "exact"),
        ("exact, raster 20 px steps + 0.3 px jitter", jittered, "exact"),
    )
    rows = {}
    for label, positions, mode in cases:

        def run(positions=positions, mode=mode):
            out = jscan.simple_microscope(sm, positions, lw, 1.0, 1.0, Z, natural, placement=mode)
            out.image_data.block_until_ready()

        rows[label] = best_rate(run, n, repeats)
    return rows


def mode_rows(size, n, repeats, counts):
    """positions/s with M incoherent probe modes (one window, one batched transform)."""
    import jscan

    rng = np.random.default_rng(0)
    _, sample, positions = inputs(size, n)
    sm = jscan.make_sample_function(sample, DX)
    natural = WAVELENGTH * Z / (size * DX)
    rows = {}
    for placement in ("snap", "exact"):
        for m in counts:
            shape = (m, size, size)
            modes = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
            lw = jscan.make_optical_wavefront(modes if m > 1 else modes[0], WAVELENGTH, DX)

            def run(lw=lw, placement=placement):
                out = jscan.simple_microscope(
                    sm, positions, lw, 1.0, 1.0, Z, natural, placement=placement
                )
                out.image_data.block_until_ready()

            rows[(placement, m)] = best_rate(run, n, repeats)
    return rows


def print_modes(rows):
    print(
        f"| {'placement (random positions)':<30} | {'modes':>5} | {'positions/s':>11} | "
        f"{'x 1 mode':>8} | {'time per mode, x 1 mode':>23} |"
    )
    print(f"|{'-' * 32}|{'-' * 7}|{'-' * 13}|{'-' * 10}|{'-' * 25}|")
    for (placement, m), rate in rows.items():
        one = rows[(placement, 1)]
        print(
            f"| {placement:<30} | {m:5d} | {rate:11.0f} | {rate / one:8.2f} | "
            f"{one / (rate * m):23.2f} |"
        )


def print_placement(rows):
    snap = rows["snap, raster 20 px steps"]
    print(f"| {'placement, camera 1.0x natural':<52} | {'positions/s':>11} | {'x snap':>6} |")
    print(f"|{'-' * 54}|{'-' * 13}|{'-' * 8}|")
    for label, rate in rows.items():
        print(f"| {label:<52} | {rate:11.0f} | {rate / snap:6.2f} |")


def machine():
    import jax

    dev = jax.devices()[0]
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}) x{jax.device_count()}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--positions", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--janssen-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--placement", action="store_true", help="exact vs snap placement only")
    ap.add_argument("--modes", help="comma-separated probe mode counts, e.g. 1,2,4, only")
    a = ap.parse_args()
    if a.janssen_only:
        print(json.dumps(janssen_rows(a.size, a.positions, a.repeats)))
        return
    print(f"machine: {machine()}")
    print(f"size {a.size}x{a.size}, {a.positions} positions, best of {a.repeats}\n")
    if a.placement:
        print_placement(placement_rows(a.size, a.positions, a.repeats))
        return
    if a.modes:
        counts = sorted({1, *(int(m) for m in a.modes.split(","))})
        print_modes(mode_rows(a.size, a.positions, a.repeats, counts))
        return
    rows = jscan_rows(a.size, a.positions, a.repeats)
    try:
        import janssen  # noqa: F401

        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--janssen-only",
                "--size",
                str(a.size),
                "--positions",
                str(a.positions),
                "--repeats",
                str(a.repeats),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except ImportError:
        print("(janssen not installed: pip install janssen==2025.11.1 to compare)")
    ceiling = rows["ceiling: bare multiply-FFT-|.|^2"]
    jit_ref = rows.get("janssen jit, camera 1.0x natural")
    print(f"| {'model':<62} | {'positions/s':>11} | {'x ceiling':>9} | {'x janssen-jit':>13} |")
    print(f"|{'-' * 64}|{'-' * 13}|{'-' * 11}|{'-' * 15}|")
    for label, rate in rows.items():
        vs_j = f"{rate / jit_ref:13.2f}" if jit_ref else f"{'-':>13}"
        print(f"| {label:<62} | {rate:11.0f} | {rate / ceiling:9.2f} | {vs_j} |")


if __name__ == "__main__":
    main()
