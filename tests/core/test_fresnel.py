"""Angular spectrum, multislice and the near field against float64 references: a direct
Rayleigh-Sommerfeld integral, the Gaussian beam's closed form, a numpy angular spectrum
written here (`angular_spectrum_np`), the projection approximation and direct propagation
of the divergent beam."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jscan.core.fresnel import (
    angular_spectrum_prop,
    fresnel_scaling,
    make_thick_sample,
    multislice_interaction,
    near_field_prop_scaled,
)
from jscan.core.scopes import linear_interaction
from jscan.core.types import make_optical_wavefront, make_sample_function


def grid(n, dx):
    x = (np.arange(n) - n // 2) * dx
    return x[:, None], x[None, :]


def gaussian(n, dx, waist, tilt=0.0):
    y, x = grid(n, dx)
    return np.exp(-(x**2 + y**2) / waist**2 + 1j * tilt * x)


def rayleigh_sommerfeld(field, dx, lam, z, points):
    """First Rayleigh-Sommerfeld integral, float64, by direct sum over the source pixels:
    U(P) = (1/2 pi) sum U0 (z/r^2)(1/r - ik) exp(ikr) dx^2 at points (n, 2) y, x [m]."""
    n = field.shape[0]
    y, x = grid(n, dx)
    k = 2 * np.pi / lam
    out = []
    for py, px in points:
        r = np.sqrt((px - x) ** 2 + (py - y) ** 2 + z**2)
        out.append(np.sum(field * z / r**2 * (1 / r - 1j * k) * np.exp(1j * k * r)) * dx**2)
    return np.array(out) / (2 * np.pi)


def transfer_np(n, dx, lam, z):
    """The band-limited angular spectrum's transfer function in float64 numpy, written apart
    from jscan's: exp(i k z sqrt(1 - u)), u = lambda^2 |f|^2, 0 for u >= 1 (evanescent).
    Split as exp(2 pi i (z/lambda mod 1)) exp(2 pi i (z/lambda) (sqrt(1 - u) - 1)), with
    sqrt(1 - u) - 1 = expm1(log1p(-u) / 2), so that z/lambda ~ 1e7 whole waves cost no
    digits (a plain exp(i k z sqrt(1 - u)) loses ~1e-8 rad to rounding)."""
    f = np.fft.fftfreq(n, dx)
    u = lam**2 * (f[:, None] ** 2 + f[None, :] ** 2)
    bend = np.expm1(0.5 * np.log1p(-np.where(u < 1, u, 0.0)))
    phase = 2 * np.pi * (z / lam % 1) + 2 * np.pi * (z / lam) * bend
    return np.where(u < 1, np.exp(1j * phase), 0)


def angular_spectrum_np(field, dx, lam, z):
    """ifft2(fft2(U) H) of a square field in float64 numpy (`transfer_np`)."""
    return np.fft.ifft2(np.fft.fft2(field) * transfer_np(field.shape[0], dx, lam, z))


@pytest.mark.reference
def test_angular_spectrum_equals_rayleigh_sommerfeld():
    """Visible light, a 2 um Gaussian (8 px, tilted by 0.1 rad) over 6 um, pixel lambda/2:
    non-paraxial. Tolerance 1e-6 of the peak: the discrete sum and the band-limited angular
    spectrum agree to the Gaussian's share beyond the window (< 1e-12) and its evanescent
    content (< 1e-9); float64 rounding is far below."""
    n, lam = 64, 0.5e-6
    dx, z = lam / 2, 6e-6
    field = gaussian(n, dx, 2e-6, tilt=0.1 * 2 * np.pi / lam)
    with jax.enable_x64(True):
        wave = make_optical_wavefront(field, lam, dx)
        out = np.asarray(angular_spectrum_prop(wave, z).field)
    rows = [(n // 2, c) for c in range(8, 56, 3)] + [(r, n // 2 + 5) for r in range(10, 50, 7)]
    points = [((r - n // 2) * dx, (c - n // 2) * dx) for r, c in rows]
    direct = rayleigh_sommerfeld(field, dx, lam, z, points)
    got = np.array([out[r, c] for r, c in rows])
    assert np.abs(got - direct).max() <= 1e-6 * np.abs(direct).max()


def gaussian_beam(r2, z, waist, lam):
    """The paraxial Gaussian beam of waist w0 at z: (w0/w) exp(-r^2/w^2) exp(i(kz + k r^2 /
    2R - gouy)), without exp(ikz)."""
    zr = np.pi * waist**2 / lam
    w = waist * np.sqrt(1 + (z / zr) ** 2)
    inv_r = z / (z**2 + zr**2)
    gouy = np.arctan(z / zr)
    k = 2 * np.pi / lam
    return waist / w * np.exp(-r2 / w**2 + 1j * (k * r2 * inv_r / 2 - gouy))


@pytest.mark.parametrize("z_over_zr", [0.3, 1.0, 2.5])
@pytest.mark.reference
def test_gaussian_beam_closed_form(z_over_zr):
    """X-rays (0.1 nm, 50 nm waist): the paraxial error k z theta^4 / 8 is below 1e-7 rad
    (theta = lambda / (pi w0)), so the angular spectrum meets the closed form (waist,
    curvature, Gouy phase) to 1e-5 of the peak, the issue's bound; the global exp(ikz) is
    the transfer function's own and is divided out exactly (z mod lambda)."""
    n, lam, dx, w0 = 256, 1e-10, 5e-9, 50e-9
    z = z_over_zr * np.pi * w0**2 / lam
    y, x = grid(n, dx)
    with jax.enable_x64(True):
        wave = make_optical_wavefront(gaussian(n, dx, w0), lam, dx)
        out = np.asarray(angular_spectrum_prop(wave, z).field)
    expected = gaussian_beam(x**2 + y**2, z, w0, lam) * np.exp(2j * np.pi * (z / lam % 1))
    assert np.abs(out - expected).max() <= 1e-5


@pytest.mark.reference
def test_free_space_multislice_is_one_propagation():
    """All slices 1: K = 5 slices spaced dz = 2 um equal one free-space propagation over
    (K - 1) dz = 8 um, the float64 numpy angular spectrum written here, to 1e-5 of the peak
    (measured 4e-7): jscan runs in float32, K - 1 FFT pairs of 64 x 64 at ~1e-7 each."""
    n, lam, dx = 64, 0.5e-6, 0.25e-6
    field = gaussian(n, dx, 2e-6)
    wave = make_optical_wavefront(field.astype(np.complex64), lam, dx)
    sample = make_thick_sample(np.ones((5, n, n), np.complex64), dx, 2e-6)
    exit_wave = multislice_interaction(sample, wave)
    one = angular_spectrum_np(field, dx, lam, 8e-6)
    assert float(exit_wave.z_position) == pytest.approx(8e-6)
    assert np.abs(np.asarray(exit_wave.field) - one).max() <= 1e-5 * np.abs(one).max()


@pytest.mark.reference
def test_thin_limit_is_the_projection():
    """K slices of phase phi/K each: as the spacing goes to 0 the exit wave approaches the
    projection approximation, the closed form U exp(i phi) (float64 numpy). The error falls
    in proportion to the spacing (first order in dz) and is below 1e-4 of the peak at
    0.1 nm. The phase holds no frequency near the evanescent cut-off, which the transfer
    function drops at any spacing."""
    n, lam, dx = 64, 0.5e-6, 0.25e-6
    rng = np.random.default_rng(0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    # band-limited well inside |f| < 1/lambda: the evanescent band is dropped at any spacing
    phase = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * (f < 0.1)).real
    phase = 0.5 * phase / np.abs(phase).max()
    field = gaussian(n, dx, 3e-6)
    with jax.enable_x64(True):
        wave = make_optical_wavefront(field, lam, dx)
        thin = field * np.exp(1j * phase)  # the projection, peak 1
        errors = []
        for dz in (1e-8, 1e-9, 1e-10):
            slices = np.broadcast_to(np.exp(1j * phase / 4), (4, n, n))
            out = multislice_interaction(make_thick_sample(slices, dx, dz), wave).field
            vacuum = np.exp(2j * np.pi * 3 * dz / lam)  # the free-space phase over 3 dz
            errors.append(float(np.abs(np.asarray(out) - thin * vacuum).max()))
    assert errors[2] < 1e-4
    assert errors[0] / errors[1] == pytest.approx(10, rel=0.1)  # second order shows at 10 nm
    # at 0.1 nm the floor shows: the harmonics of exp(i phi/4) beyond 1/lambda, dropped
    assert errors[1] / errors[2] > 5


def test_one_slice_is_the_thin_sample():
    n, dx = 32, 1e-6
    rng = np.random.default_rng(1)
    s = np.exp(1j * rng.normal(size=(n, n))).astype(np.complex64)
    wave = make_optical_wavefront(gaussian(n, dx, 5e-6).astype(np.complex64), 5e-7, dx)
    one = multislice_interaction(make_thick_sample(s[None], dx, 1e-6), wave)
    thin = linear_interaction(make_sample_function(s, dx), wave)
    np.testing.assert_array_equal(np.asarray(one.field), np.asarray(thin.field))


@pytest.mark.reference
def test_fresnel_scaling_equals_direct_spherical_wave():
    """A beam diverging from z1 = 1 mm upstream, camera z = 1 mm downstream (M = 2): the
    scaling path on a 128 px window equals the direct propagation of the curved field on a
    256 px window by the float64 numpy angular spectrum written here, sampled every M
    pixels, to 2e-5 of the peak (measured 9e-6): the scaling theorem is paraxial, the
    angular spectrum is not, and they differ by about k z theta^4 / 8 = 2e-5 rad at the
    window's edge (theta = 1.3e-3 rad)."""
    lam, dx, z1, z = 1e-10, 10e-9, 1e-3, 1e-3
    m, z_eff = fresnel_scaling(z, z1)
    assert (m, z_eff) == (2.0, 5e-4)
    w0 = 100e-9
    with jax.enable_x64(True):
        small = make_optical_wavefront(gaussian(128, dx, w0), lam, dx)
        scaled = np.asarray(near_field_prop_scaled(small, z, m * dx, source_distance=z1).field)
    y, x = grid(256, dx)
    curved = gaussian(256, dx, w0) * np.exp(1j * np.pi * (x**2 + y**2) / (lam * z1))
    direct = angular_spectrum_np(curved, dx, lam, z)[::2, ::2]
    assert np.abs(scaled - direct).max() <= 2e-5 * np.abs(direct).max()


@pytest.mark.parametrize("ratio", [1.0, 0.5, 1 / 3, 0.7])
@pytest.mark.reference
def test_near_field_any_camera_pixel(ratio):
    """A plane wave's camera field at any pixel equals the float64 numpy angular spectrum
    (written here) of the window, evaluated there by a float64 direct trigonometric sum (the
    band-limited field between its samples), to 1e-10 of the peak (measured 1e-14): both
    run in float64, where 48-point transforms round at ~1e-15."""
    n, lam, dx, z = 48, 1e-10, 10e-9, 2e-4
    field = gaussian(n, dx, 60e-9, tilt=1e6)
    with jax.enable_x64(True):
        wave = make_optical_wavefront(field, lam, dx)
        out = np.asarray(near_field_prop_scaled(wave, z, ratio * dx).field)
    spec = np.fft.fft2(field) * transfer_np(n, dx, lam, z)
    q = np.fft.fftfreq(n) * n  # signed frequency index
    t = (np.arange(n) - n // 2) * ratio + n // 2  # window index of each camera pixel
    basis = np.exp(2j * np.pi * np.outer(t, q) / n) / n
    expected = basis @ spec @ basis.T
    assert np.abs(out - expected).max() <= 1e-10 * np.abs(expected).max()


def test_grad_reaches_every_slice_and_the_probe():
    n, dx = 16, 0.25e-6
    rng = np.random.default_rng(2)
    slices = np.exp(0.3j * rng.normal(size=(3, n, n)))
    probe = gaussian(n, dx, 1e-6)
    weights = rng.uniform(size=(n, n))

    def loss(s, p):
        sample = make_thick_sample(s, dx, 1e-6)
        wave = make_optical_wavefront(p, 0.5e-6, dx)
        exit_wave = multislice_interaction(sample, wave)
        cam = near_field_prop_scaled(exit_wave, 5e-6, dx)
        return jnp.sum(weights * jnp.abs(cam.field) ** 2)

    with jax.enable_x64(True):
        gs, gp = jax.grad(loss, argnums=(0, 1))(jnp.asarray(slices), jnp.asarray(probe))
        for k in range(3):
            assert float(jnp.abs(gs[k]).max()) > 0
        assert float(jnp.abs(gp).max()) > 0
        v = rng.normal(size=slices.shape) + 1j * rng.normal(size=slices.shape)
        h = 1e-6
        fd = (loss(slices + h * v, probe) - loss(slices - h * v, probe)) / (2 * h)
        # JAX's grad of a real loss in a complex input is dL/dx - i dL/dy: the directional
        # derivative along v is Re(sum g v)
        assert float(jnp.real(jnp.sum(gs * v))) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: make_thick_sample(np.ones((2, 4), np.complex64), 1e-6, 1e-6), "3-D"),
        (lambda: make_thick_sample(np.ones((2, 4, 4), np.complex64), 1e-6, -1e-6), "spacing"),
    ],
)
def test_bad_thick_sample(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_slices_must_match_the_window():
    wave = make_optical_wavefront(np.ones((8, 8), np.complex64), 5e-7, 1e-6)
    with pytest.raises(ValueError, match="cut every slice"):
        multislice_interaction(make_thick_sample(np.ones((2, 8, 9), np.complex64), 1e-6, 1), wave)


def test_slices_must_share_the_probe_grid():
    wave = make_optical_wavefront(np.ones((8, 8), np.complex64), 5e-7, 1e-6)
    with pytest.raises(ValueError, match="resample the sample"):
        multislice_interaction(make_thick_sample(np.ones((2, 8, 8), np.complex64), 2e-6, 1), wave)
