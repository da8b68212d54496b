"""Fraunhofer propagation against a direct float64 DFT, Parseval and the Airy pattern."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jscan import fraunhofer_prop, fraunhofer_prop_scaled, make_optical_wavefront
from jscan.core.optics import field_intensity
from jscan.core.propagation import axis_spec

LAM, DX, Z = float(np.float32(633e-9)), float(np.float32(2e-6)), 0.1


def direct_far_field(field, dx, lam, z, odx):
    """U'(x') = exp(ikz)/(i lam z) exp(ik|x'|^2/2z) sum U exp(-2 pi i x.x'/(lam z)) dx^2 (f64)."""
    h, w = field.shape
    ys, xs = (np.arange(h) - h // 2), (np.arange(w) - w // 2)
    ay = np.exp(-2j * np.pi * np.outer(ys * odx, ys * dx) / (lam * z))
    ax = np.exp(-2j * np.pi * np.outer(xs * odx, xs * dx) / (lam * z))
    ft = ay @ field.astype(np.complex128) @ ax.T
    k = 2 * np.pi / lam
    r2 = (ys[:, None] * odx) ** 2 + (xs[None, :] * odx) ** 2
    return np.exp(1j * k * z) / (1j * lam * z) * np.exp(1j * k * r2 / (2 * z)) * ft * dx**2


def rel_l2(a, b):
    a = np.asarray(a).astype(np.result_type(np.asarray(a).dtype, np.float64))
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("ratio", [0.25, 0.37, 0.5, 0.8, 1.0, 1.37, 2.0])
@pytest.mark.parametrize("method", ["auto", "czt", "matrix"])
@pytest.mark.parametrize("shape", [(64, 64), (48, 40)])
@pytest.mark.reference
def test_scaled_matches_direct_dft(random_field, ratio, method, shape):
    field = random_field(shape)
    wf = make_optical_wavefront(field, LAM, DX)
    odx = float(np.float32(ratio * LAM * Z / (shape[1] * DX)))
    out = fraunhofer_prop_scaled(wf, Z, odx, method=method)
    ref = direct_far_field(field, DX, LAM, Z, odx)
    assert out.field.dtype == jnp.complex64 and out.field.shape == shape
    assert rel_l2(field_intensity(out.field), np.abs(ref) ** 2) < 1e-5
    assert rel_l2(out.field, ref) < 1e-5
    assert float(out.dx) == pytest.approx(odx, rel=1e-7)


def test_natural_pixel_is_the_plain_fft(random_field):
    field = random_field((64, 64))
    wf = make_optical_wavefront(field, LAM, DX)
    out = fraunhofer_prop(wf, Z)
    assert axis_spec(64, 1.0).method == "fft"
    ft = jnp.fft.fftshift(jnp.fft.fft2(jnp.fft.ifftshift(wf.field)))
    via_scaled = fraunhofer_prop_scaled(wf, Z, LAM * Z / (64 * DX))
    # |out| = |FFT| dx^2 / (lambda z), compared norm-wise: the FFTs of the CPU and the GPU
    # round differently, and an elementwise ratio magnifies that where |FFT| is small
    assert rel_l2(np.abs(out.field) * (LAM * Z), np.abs(ft) * DX**2) < 1e-6
    np.testing.assert_array_equal(np.asarray(out.field), np.asarray(via_scaled.field))
    assert float(out.dx) == pytest.approx(LAM * Z / (64 * DX), rel=1e-6)


@pytest.mark.reference
def test_parseval_at_natural_pixel(random_field):
    field = random_field((96, 96))
    wf = make_optical_wavefront(field, LAM, DX)
    out = fraunhofer_prop(wf, Z)
    before = np.sum(np.abs(field.astype(np.complex128)) ** 2) * DX**2
    after = float(jnp.sum(field_intensity(out.field))) * float(out.dx) ** 2
    assert after == pytest.approx(before, rel=1e-5)


@pytest.mark.reference
def test_airy_first_dark_ring():
    n, diameter = 256, 64 * DX
    yy, xx = np.mgrid[:n, :n] - n // 2
    field = (np.hypot(xx, yy) * DX <= diameter / 2).astype(np.complex64)
    natural = LAM * Z / (n * DX)
    odx = natural / 4  # fine camera pixels locate the ring to a fraction of a natural pixel
    out = fraunhofer_prop_scaled(make_optical_wavefront(field, LAM, DX), Z, odx)
    profile = np.asarray(field_intensity(out.field))[n // 2, n // 2 :]
    first_min = next(i for i in range(1, n // 2 - 1) if profile[i] < profile[i + 1])
    expected = 1.22 * LAM * Z / diameter / odx
    assert abs(first_min - expected) <= 1.0
    assert profile[first_min] < 1e-3 * profile[0]


def test_traced_pixel_size_uses_czt_inside_jit(random_field):
    field = random_field((32, 32))
    wf = make_optical_wavefront(field, LAM, DX)
    odx = 0.6 * LAM * Z / (32 * DX)
    jitted = jax.jit(lambda w, o: fraunhofer_prop_scaled(w, Z, o).field)(wf, odx)
    eager = np.asarray(fraunhofer_prop_scaled(wf, Z, odx).field, np.complex128)
    assert rel_l2(field_intensity(jitted), np.abs(eager) ** 2) < 1e-5
    # Traced, the phases are computed in float32 (z rounded before exp(ikz), the chirp's
    # argument reaches ~1e3 rad): equal up to a global phase, to ~1e-4 rad elsewhere.
    phase = np.vdot(np.asarray(jitted), eager) / abs(np.vdot(np.asarray(jitted), eager))
    assert rel_l2(np.asarray(jitted) * phase, eager) < 1e-3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"z_move": -1.0, "output_dx": 1e-6}, "z_move"),
        ({"z_move": 0.1, "output_dx": 0.0}, "output_dx"),
        ({"z_move": 0.1, "output_dx": float("nan")}, "output_dx"),
        ({"z_move": 0.1, "output_dx": 1e-6, "method": "bluestein"}, "method"),
        ({"z_move": 0.1, "output_dx": 1e-6, "method": "fft"}, "natural pixel"),
        ({"z_move": 0.1, "output_dx": 1e-6, "method": "pad"}, "1/k"),
    ],
)
def test_bad_arguments(random_field, kwargs, match):
    wf = make_optical_wavefront(random_field((16, 16)), LAM, DX)
    with pytest.raises(ValueError, match=match):
        fraunhofer_prop_scaled(wf, **kwargs)
