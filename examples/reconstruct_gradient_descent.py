"""Ptychographic reconstruction by gradient descent through `jscan.simple_microscope`.

Shows that the forward model is differentiable end to end: noiseless diffraction patterns of
a small random-phase object are simulated with `simple_microscope`, then the object is
recovered from a flat start (transmission 1 everywhere) by minimising the amplitude loss

    L(O) = sum over positions and pixels of (sqrt(I_model(O)) - sqrt(I_data))^2

with `jax.value_and_grad` (jitted) and a few lines of Adam on the real and imaginary parts of
O. The probe and the positions are known. It prints the loss decrease and the error of the
recovered object against the truth over the scanned region, up to a global phase.

Run it:

    python examples/reconstruct_gradient_descent.py --out recon-out            # 1000 steps
    python examples/reconstruct_gradient_descent.py --out recon-out --small    # seconds

It writes DIR/reconstruction.png when matplotlib is installed.
"""

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jscan
from jscan.core.placement import window_origins

DX, WAVELENGTH, DISTANCE = 1e-6, 500e-9, 0.05  # m
SAMPLE, WINDOW, STEP = 64, 16, 5  # pixels: sample side, probe side, raster step


def make_problem(seed=0):
    """(true object, probe, positions): a smooth random phase object of +-1 rad, a Gaussian
    probe with a little defocus, a 10x10 raster scan with a 5-pixel step (70 % overlap)."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(SAMPLE)
    low_pass = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.08**2))
    phase = np.fft.ifft2(np.fft.fft2(rng.normal(size=(SAMPLE, SAMPLE))) * low_pass).real
    obj = np.exp(1j * phase / np.abs(phase).max()).astype(np.complex64)

    r = np.arange(WINDOW) - WINDOW // 2
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    probe = np.exp(-r2 / 5.0**2 + 1j * 0.05 * r2).astype(np.complex64)

    # Window top-left = floor(y/dx - H//2 + 1e-3) (jscan.core.placement.placement): a centre at
    # c + 0.5 pixels puts it at c - 8 (snap, simple_microscope's default).
    centres = (np.arange(10) * STEP + WINDOW // 2 + 2 + 0.5) * DX
    positions = np.stack(np.meshgrid(centres, centres, indexing="xy"), -1).reshape(-1, 2)
    return obj, probe, positions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="recon-out", help="output directory for the figure")
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam step size")
    parser.add_argument("--small", action="store_true", help="300 steps (seconds)")
    args = parser.parse_args(argv)
    steps = 300 if args.small else args.steps

    truth, probe, positions = make_problem()
    light = jscan.make_optical_wavefront(probe, WAVELENGTH, DX)
    # Camera pixel = natural pixel lambda z / (W dx): the exact FFT; the aperture passes all.
    optics = dict(
        zoom_factor=1.0,
        aperture_diameter=4 * WINDOW * DX,
        travel_distance=DISTANCE,
        camera_pixel_size=WAVELENGTH * DISTANCE / (WINDOW * DX),
    )

    def intensities(obj):
        sample = jscan.make_sample_function(obj, DX)
        return jscan.simple_microscope(sample, positions, light, **optics).image_data

    data = intensities(truth)
    eps = 1e-6 * float(data.max())  # keeps the gradient of sqrt finite where I_model = 0
    amp_data = jnp.sqrt(data + eps)
    print(f"{len(positions)} positions, patterns {data.shape[1:]}, sample {truth.shape}")

    def loss(params):  # params: (2, R, C) real and imaginary parts (positions are constants)
        model = intensities(params[0] + 1j * params[1])
        return jnp.sum((jnp.sqrt(model + eps) - amp_data) ** 2)

    loss_and_grad = jax.jit(jax.value_and_grad(loss))

    @jax.jit
    def adam(params, m, v, grad, t, lr, b1=0.9, b2=0.999, eps=1e-8):
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        step = lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps)
        return params - step, m, v

    params = jnp.stack([jnp.ones(truth.shape), jnp.zeros(truth.shape)]).astype(jnp.float32)
    m = v = jnp.zeros_like(params)
    t0 = time.perf_counter()
    first = None
    for t in range(1, steps + 1):
        value, grad = loss_and_grad(params)
        first = float(value) if first is None else first
        if t == 1 or t % 100 == 0:
            print(f"step {t:5d}  loss {float(value):.4e}", flush=True)
        params, m, v = adam(params, m, v, grad, t, args.lr)
    final = float(loss_and_grad(params)[0])
    seconds = time.perf_counter() - t0

    # Error over the pixels the probe lit, up to the global phase no measurement can see.
    lit = np.zeros(truth.shape)
    for r, c in window_origins(positions, (WINDOW, WINDOW), DX):
        lit[r : r + WINDOW, c : c + WINDOW] += np.abs(probe) ** 2
    region = lit > 0.1 * lit.max()
    recon = np.asarray(params[0] + 1j * params[1])
    a, b = recon[region], truth[region]
    phase = np.vdot(a, b) / abs(np.vdot(a, b))  # the global phase that best aligns them
    err0 = np.linalg.norm(1.0 - b) / np.linalg.norm(b)  # the flat start's error
    err = np.linalg.norm(phase * a - b) / np.linalg.norm(b)
    print(f"loss: initial {first:.4e}  final {final:.4e}  ratio {final / first:.3e}")
    print(f"object error over the scanned region: initial {err0:.4f}  final {err:.4f}")
    print(f"{steps} steps in {seconds:.1f} s")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
    shown = np.where(region, phase * recon, np.nan)
    for ax, img, title in zip(
        axes,
        [np.angle(truth), np.angle(shown), np.abs(shown)],
        ["true phase", "recovered phase", "recovered amplitude"],
        strict=True,
    ):
        fig.colorbar(ax.imshow(img), ax=ax, shrink=0.8)
        ax.set_title(title)
    fig.savefig(out / "reconstruction.png", dpi=100)
    print(f"wrote {out / 'reconstruction.png'}")


if __name__ == "__main__":
    main()
