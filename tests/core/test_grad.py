"""jax.grad through the four forward models against central finite differences, in float64.

Each loss sum(weights * intensity) is a quadratic form in the (real, imaginary) parts of the
sample or of the probe, so the central difference is exact up to rounding: float64 checks
the gradient to ~1e-10, and the tolerance 1e-6 leaves room only for rounding.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jscan import (
    diffractogram_noscale,
    field_intensity,
    linear_interaction,
    make_optical_wavefront,
    make_sample_function,
    simple_diffractogram,
    simple_microscope,
)

LAM, DX, Z = 633e-9, 2e-6, 0.1
H, W = 12, 16
SAMPLE_SHAPE = (30, 36)
ZOOM = 1.3
DIAMETER, CENTER = 9.3 * DX * ZOOM, (1.3 * DX * ZOOM, -0.7 * DX * ZOOM)
ODX = 0.7 * LAM * Z / (W * DX * ZOOM)


def forward(name, sample, probe, positions):
    """Intensity of model ``name`` for sample (R, C) or (H, W) and probe (H, W), complex128."""
    light = make_optical_wavefront(probe, LAM, DX)
    if name == "simple_microscope":
        s = make_sample_function(sample, DX)
        return simple_microscope(s, positions, light, ZOOM, DIAMETER, Z, ODX, CENTER).image_data
    cut = make_sample_function(sample, DX)
    if name == "linear_interaction":
        return field_intensity(linear_interaction(cut, light).field)
    if name == "diffractogram_noscale":
        return field_intensity(diffractogram_noscale(cut, light, ZOOM, DIAMETER, Z, CENTER).field)
    return simple_diffractogram(cut, light, ZOOM, DIAMETER, Z, ODX, CENTER).image


@pytest.mark.parametrize("wrt", ["sample", "probe"])
@pytest.mark.parametrize(
    "name",
    ["linear_interaction", "diffractogram_noscale", "simple_diffractogram", "simple_microscope"],
)
def test_grad_matches_finite_differences(rng, name, wrt):
    micro = name == "simple_microscope"
    sample_shape = SAMPLE_SHAPE if micro else (H, W)
    n = 3
    r = rng.integers(0, SAMPLE_SHAPE[0] - H + 1, n)
    c = rng.integers(0, SAMPLE_SHAPE[1] - W + 1, n)
    positions = np.stack([(c + W / 2 + 0.5) * DX, (r + H / 2 + 0.5) * DX], axis=1)
    sample = rng.normal(size=(2, *sample_shape))
    probe = rng.normal(size=(2, H, W))
    out_shape = (n, H, W) if micro else (H, W)
    weights = rng.uniform(0.5, 1.5, size=out_shape)

    def loss(x):
        s, p = (x, probe) if wrt == "sample" else (sample, x)
        with jax.enable_x64(True):
            intensity = forward(name, s[0] + 1j * s[1], p[0] + 1j * p[1], positions)
            assert intensity.dtype == jnp.float64
            return jnp.sum(weights * intensity)

    x = sample if wrt == "sample" else probe
    with jax.enable_x64(True):
        x = jnp.asarray(x)
        value, grad = jax.value_and_grad(loss)(x)
        assert grad.dtype == jnp.float64 and grad.shape == x.shape
        assert float(value) > 0
        for _ in range(2):
            v = jnp.asarray(rng.normal(size=x.shape))
            h = 1e-3
            fd = (float(loss(x + h * v)) - float(loss(x - h * v))) / (2 * h)
            directional = float(jnp.vdot(grad, v))
            assert directional == pytest.approx(fd, rel=1e-6, abs=1e-12 * float(value))
    # The gradient is not trivially zero: the directional derivative is a sizable fraction.
    assert abs(directional) > 1e-3 * float(value)
