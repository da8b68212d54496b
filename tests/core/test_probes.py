"""Focused probes against closed forms and an independent propagation: the Airy pattern of
a lens, the first-order focus of a binary zone plate, and the on-axis intensity against defocus."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import j1

from jscan.core.probes import Aberrations, lens_probe, zone_plate_focus, zone_plate_probe

LAM = 1e-9


@pytest.mark.reference
def test_in_focus_lens_is_the_airy_pattern():
    """NA = 0.01 at 1 nm on a 512 px window. Its intensity along x is [2 J1(v)/v]^2
    (v = 2 pi NA r / lambda) to 1e-3 of the peak (measured 4.6e-4): the pupil's rim is a
    staircase of frequency samples, 25.6 of them in radius. The first zero, found by a
    parabola through the three pixels around it, sits at 1.22 lambda f / D = 12.2 px to
    1 % (measured 0.08 px)."""
    n, focal, diameter = 512, 1e-3, 20e-6
    na = diameter / (2 * focal)
    dx = 0.05 * LAM / na  # the first zero 12.2 px out, the pupil 25.6 frequency samples wide
    with jax.enable_x64(True):
        probe = np.asarray(lens_probe((n, n), dx, LAM, focal, diameter))
    line = np.abs(probe[n // 2, n // 2 :]) ** 2
    line /= line[0]
    r = np.arange(line.size) * dx
    v = 2 * np.pi * na * r / LAM
    airy = np.where(v == 0, 1.0, (2 * j1(np.where(v == 0, 1, v)) / np.where(v == 0, 1, v)) ** 2)
    assert np.abs(line[:60] - airy[:60]).max() < 1e-3
    zero = 1.22 * LAM * focal / diameter / dx  # pixels
    k = round(zero)
    a, b, c = line[k - 1 : k + 2]
    found = k + 0.5 * (a - c) / (a - 2 * b + c)
    assert found == pytest.approx(zero, rel=0.01)


@pytest.mark.reference
def test_defocus_is_symmetric_without_aberrations():
    """NA = 0.01 at 1 nm on a 256 px window (the pupil 32 frequency samples in radius). The
    on-axis intensity against defocus d is the closed form of a uniform circular pupil,
    I(d) / I(0) = [sin(a) / a]^2, a = pi NA^2 d / (2 lambda) (the paraxial integral of
    exp(-i k d NA^2 rho^2 / 2) over the pupil), at +-0.5, 1, 1.5 depths of focus lambda /
    NA^2, to 5e-3 (measured 1.9e-3): the pupil is a staircase of frequency samples, whose
    sum departs from the integral by ~1/R^2 of R = 32 samples (7e-3 at R = 16); the closed
    form's paraxial error, k d NA^4 / 8 < 1e-4 rad, is below that. The whole intensity is
    even in d, |P(+d)|^2 = |P(-d)|^2 for a real, even pupil (P(-d) is the conjugate of
    P(+d)), to float32 rounding (1e-6 of the peak); spherical aberration breaks the
    symmetry."""
    n, focal, diameter, dx = 256, 1e-3, 20e-6, 12.5e-9
    na = diameter / (2 * focal)
    dof = LAM / na**2
    centre = float(np.abs(lens_probe((n, n), dx, LAM, focal, diameter))[n // 2, n // 2]) ** 2
    ds = np.array([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5]) * dof
    axis = [
        float(np.abs(lens_probe((n, n), dx, LAM, focal, diameter, d))[n // 2, n // 2]) ** 2
        for d in ds
    ]
    a = np.pi * na**2 * ds / (2 * LAM)
    assert np.abs(np.array(axis) / centre - (np.sin(a) / a) ** 2).max() <= 5e-3
    plus, minus = (
        np.abs(lens_probe((n, n), dx, LAM, focal, diameter, s * dof)) ** 2 for s in (1, -1)
    )
    assert np.abs(plus - minus).max() <= 1e-6 * plus.max()
    aberrated = Aberrations(spherical=0.1 * LAM)
    plus, minus = (
        np.abs(lens_probe((n, n), dx, LAM, focal, diameter, s * dof, aberrated)) ** 2
        for s in (1, -1)
    )
    assert np.abs(plus - minus).max() > 0.05 * plus.max()


def angular_spectrum_np(field, dx, lam, z):
    """A float64 numpy angular spectrum, written apart from jscan's."""
    n = field.shape[0]
    f = np.fft.fftfreq(n, dx)
    u = 1 - lam**2 * (f[:, None] ** 2 + f[None, :] ** 2)
    h = np.where(u > 0, np.exp(2j * np.pi * z / lam * np.sqrt(np.clip(u, 0, None))), 0)
    return np.fft.ifft2(np.fft.fft2(field) * h)


@pytest.mark.reference
def test_binary_zone_plate_focuses_at_d_dr_over_lambda():
    """A binary Fresnel zone plate (25 zones, D = 10 um, dr = 100 nm, 1 nm X-rays) drawn zone
    by zone on a 512 px grid (dx = dr/2, so the transfer function is sampled: N dx^2 >=
    lambda f) and propagated by an independent numpy angular spectrum: its on-axis
    intensity peaks at f = D dr / lambda = 1 mm to 1 % (the depth of focus, 4 dr^2 /
    lambda, is 4 %). jscan's zone_plate_probe (the first order alone) has the same focal
    spot: the normalised central line of the two agrees to 1e-2 over 8 px (measured 3e-3;
    the binary plate adds its zero and higher orders)."""
    n, diameter, dr = 512, 10e-6, 100e-9
    dx = dr / 2
    f = zone_plate_focus(diameter, dr, LAM)
    assert f == pytest.approx(1e-3)
    x = (np.arange(n) - n // 2) * dx
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    zones = np.floor(r2 / (LAM * f)).astype(int)  # zone n between r_n = sqrt(n lambda f)
    plate = ((zones % 2 == 0) & (r2 <= (diameter / 2) ** 2)).astype(complex)
    zs = np.linspace(0.9, 1.1, 21) * f
    axis = [abs(angular_spectrum_np(plate, dx, LAM, z)[n // 2, n // 2]) ** 2 for z in zs]
    k = int(np.argmax(axis))
    a, b, c = axis[k - 1 : k + 2]
    peak = zs[k] + 0.5 * (a - c) / (a - 2 * b + c) * (zs[1] - zs[0])
    assert peak == pytest.approx(f, rel=0.01)
    focus = np.abs(angular_spectrum_np(plate, dx, LAM, f)) ** 2
    with jax.enable_x64(True):
        probe = np.abs(np.asarray(zone_plate_probe((n, n), dx, LAM, diameter, dr))) ** 2

    a, b = focus[n // 2, n // 2 : n // 2 + 8], probe[n // 2, n // 2 : n // 2 + 8]
    assert np.abs(a / a[0] - b / b[0]).max() < 1e-2


def test_central_stop_and_osa():
    n, dx = 128, 50e-9
    args = ((n, n), dx, LAM, 10e-6, 100e-9)
    plain = np.asarray(zone_plate_probe(*args))
    stopped = np.asarray(zone_plate_probe(*args, central_stop=4e-6))
    assert np.abs(plain - stopped).max() > 1e-3  # the stop changes the probe
    # an OSA at 100 um that passes the whole cone (its cone diameter there is 1 um)
    osa = np.asarray(
        zone_plate_probe(*args, central_stop=4e-6, osa_diameter=2e-6, osa_distance=1e-4)
    )
    np.testing.assert_allclose(osa, stopped, atol=1e-7)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: zone_plate_probe((64, 64), 200e-9, LAM, 10e-6, 100e-9), "outermost zone"),
        (lambda: lens_probe((64, 64), 1e-6, LAM, 1e-3, 20e-6), "Nyquist"),
        (
            lambda: zone_plate_probe(
                (64, 64),
                50e-9,
                LAM,
                10e-6,
                100e-9,
                central_stop=1e-6,
                osa_diameter=2e-6,
                osa_distance=1e-4,
            ),
            "zero order",
        ),
        (
            lambda: zone_plate_probe((64, 64), 50e-9, LAM, 10e-6, 100e-9, osa_diameter=2e-6),
            "together",
        ),
    ],
)
def test_bad_focused_probe(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_grad_reaches_the_aberrations():
    def loss(c):
        probe = lens_probe((32, 32), 12.5e-9, LAM, 1e-3, 20e-6, 0.0, Aberrations(coma_x=c))
        return jnp.sum(jnp.abs(probe[16, 16:]) ** 2)

    with jax.enable_x64(True):
        g = jax.grad(loss)(jnp.asarray(0.05 * LAM))
        h = 1e-5 * LAM
        fd = (loss(0.05 * LAM + h) - loss(0.05 * LAM - h)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=1e-5)
