"""Multislice and near-field throughput against the bare FFT ceiling, side by side in one run.

    python benchmarks/multislice.py [--size 256] [--positions 64] [--slices 1,2,4,8]

Multislice with K slices: per position, windows cut from a (K, 2N, 2N) sample, K - 1
angular-spectrum steps and the far-field FFT, |.|^2 (`multislice_interaction`, then a
plain FFT at the natural camera pixel), against the ceiling of the same K - 1 batched FFT
pairs and one FFT on windows already cut. Near field: `near_field_prop_scaled` at the
natural camera pixel against one batched FFT pair. Prints one JSON line per row.
"""

import argparse
import json
import platform
import time

import numpy as np

WAVELENGTH, DX = 1e-10, 10e-9


def best_rate(fn, n, repeats=5):
    fn().block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn().block_until_ready()
        times.append(time.perf_counter() - t0)
    return n / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--positions", type=int, default=64)
    parser.add_argument("--slices", default="1,2,4,8")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    from jscan.core.fresnel import make_thick_sample, multislice_interaction, near_field_prop_scaled
    from jscan.core.types import make_optical_wavefront

    n, size = args.positions, args.size
    rng = np.random.default_rng(0)
    probe = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))).astype(
        np.complex64
    )
    origins = jnp.asarray(rng.integers(0, size, (n, 2)), jnp.int32)
    wave = make_optical_wavefront(probe, WAVELENGTH, DX)
    machine = f"{platform.processor() or platform.machine()}, {jax.devices()[0].platform}"
    for k in (int(v) for v in args.slices.split(",")):
        sample = jnp.asarray(np.exp(0.3j * rng.normal(size=(k, 2 * size, 2 * size))), jnp.complex64)

        @jax.jit
        def jscan_ms(sample, origins, k=k):
            def one(origin):
                cut = jax.lax.dynamic_slice(sample, (0, origin[0], origin[1]), (k, size, size))
                exit_wave = multislice_interaction(make_thick_sample(cut, DX, 1e-6), wave)
                f = jnp.fft.fft2(exit_wave.field)
                return jnp.real(f) ** 2 + jnp.imag(f) ** 2

            return jax.vmap(one)(origins)

        cut = jnp.asarray(rng.normal(size=(n, size, size)), jnp.complex64)

        @jax.jit
        def ceiling(cut, k=k):
            x = cut
            for _ in range(k - 1):
                x = jnp.fft.ifft2(jnp.fft.fft2(x))
            f = jnp.fft.fft2(x)
            return jnp.real(f) ** 2 + jnp.imag(f) ** 2

        # arrays are arguments, not constants: XLA would fold a constant's windows at compile
        ours = best_rate(lambda s=sample: jscan_ms(s, origins), n)
        bare = best_rate(lambda c=cut: ceiling(c), n)
        row = {"row": "multislice", "slices": k, "size": size, "jscan_per_s": round(ours, 1)}
        print(
            json.dumps(
                {
                    **row,
                    "ceiling_per_s": round(bare, 1),
                    "ratio": round(ours / bare, 3),
                    "machine": machine,
                }
            )
        )

    fields = jnp.asarray(rng.normal(size=(n, size, size)), jnp.complex64)

    @jax.jit
    def jscan_near(fields):
        def one(field):
            out = near_field_prop_scaled(wave._replace(field=field), 1e-4, DX).field
            return jnp.real(out) ** 2 + jnp.imag(out) ** 2

        return jax.vmap(one)(fields)

    @jax.jit
    def near_ceiling(fields):
        out = jnp.fft.ifft2(jnp.fft.fft2(fields))
        return jnp.real(out) ** 2 + jnp.imag(out) ** 2

    ours = best_rate(lambda: jscan_near(fields), n)
    bare = best_rate(lambda: near_ceiling(fields), n)
    print(
        json.dumps(
            {
                "row": "near field",
                "size": size,
                "jscan_per_s": round(ours, 1),
                "ceiling_per_s": round(bare, 1),
                "ratio": round(ours / bare, 3),
                "machine": machine,
            }
        )
    )


if __name__ == "__main__":
    main()
