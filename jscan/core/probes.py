"""Focused probes from a pupil: a lens with Zernike aberrations, and a zone plate's first order.

The field in the sample plane is the inverse FFT of the pupil on the window's frequency
grid (f = fftfreq(N, dx)): the lens maps pupil radius rho (0 at the axis, 1 at the rim) to
spatial frequency |f| = rho D / (2 lambda f_l), the paraxial cut-off NA / lambda with
NA = D / (2 f_l). Defocus is an exact angular-spectrum propagation of the focal field
(`jscan.core.fresnel.angular_spectrum_transfer`). The probe is centred (pixel N//2 on the
axis) and scaled to sum |probe|^2 = 1, like `jscan.inputs.samples.make_probe`.
Pure and differentiable in the aberrations and the defocus.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jscan.core.fresnel import angular_spectrum_transfer
from jscan.core.propagation import _floats
from jscan.core.types import check_positive, concrete


class Aberrations(NamedTuple):
    """Zernike coefficients, metres of wavefront rms (Noll's normalisation)."""

    defocus: float = 0.0  # Z4 = sqrt3 (2 rho^2 - 1)
    astigmatism_0: float = 0.0  # Z6 = sqrt6 rho^2 cos 2 theta
    astigmatism_45: float = 0.0  # Z5 = sqrt6 rho^2 sin 2 theta
    coma_x: float = 0.0  # Z8 = sqrt8 (3 rho^3 - 2 rho) cos theta
    coma_y: float = 0.0  # Z7 = sqrt8 (3 rho^3 - 2 rho) sin theta
    spherical: float = 0.0  # Z11 = sqrt5 (6 rho^4 - 6 rho^2 + 1)


def wavefront_error(rho, theta, aberrations: Aberrations):
    """Wavefront error [m] of the Zernike sum on pupil coordinates (rho, theta)."""
    a = aberrations
    r2 = rho**2
    return (
        a.defocus * np.sqrt(3) * (2 * r2 - 1)
        + a.astigmatism_0 * np.sqrt(6) * r2 * jnp.cos(2 * theta)
        + a.astigmatism_45 * np.sqrt(6) * r2 * jnp.sin(2 * theta)
        + (3 * r2 - 2) * rho * np.sqrt(8) * (a.coma_x * jnp.cos(theta) + a.coma_y * jnp.sin(theta))
        + a.spherical * np.sqrt(5) * (6 * r2**2 - 6 * r2 + 1)
    )


def _check_resolved(dx, wavelength, na, what: str):
    vals = _floats(dx, wavelength, na)
    if vals is not None:
        dx_, lam, na_ = vals
        if na_ / lam >= 0.5 / dx_:
            raise ValueError(
                f"{what}: the pupil's cut-off NA/lambda = {na_ / lam:.4g} /m is beyond the "
                f"window's Nyquist frequency 1/(2 dx) = {0.5 / dx_:.4g} /m; use "
                f"dx <= lambda/(2 NA) = {lam / (2 * na_):.4g} m"
            )


def lens_probe(
    shape,
    dx,
    wavelength,
    focal_length,
    diameter,
    defocus=0.0,
    aberrations: Aberrations | None = None,
    central_stop=0.0,
):
    """Probe (H, W) complex in a plane ``defocus`` [m] beyond the focus of a lens.

    focal_length, diameter: m (NA = diameter / (2 focal_length)); central_stop: diameter
    [m] of an opaque disc on the pupil (0: none); aberrations: `Aberrations` (None: none).
    In focus and without aberrations, `|probe|^2` is the Airy pattern with its first zero at
    1.22 lambda focal_length / diameter.
    """
    check_positive(dx=dx, wavelength=wavelength, focal_length=focal_length, diameter=diameter)
    na = diameter / (2 * focal_length)
    _check_resolved(dx, wavelength, na, "lens_probe")
    h, w = shape
    rdt = jnp.float64 if jnp.asarray(dx).dtype == jnp.float64 else jnp.float32
    fy = jnp.fft.fftfreq(h, dx).astype(rdt)[:, None]
    fx = jnp.fft.fftfreq(w, dx).astype(rdt)[None, :]
    rho = jnp.hypot(fy, fx) * (wavelength / na)
    theta = jnp.arctan2(fy, fx)
    stop = central_stop / diameter
    inside = (rho <= 1) & (rho >= stop)
    error = wavefront_error(rho, theta, aberrations or Aberrations())
    phase = 2 * np.pi / wavelength * error
    pupil = jnp.where(inside, jnp.exp(1j * phase), 0)
    pupil = pupil * angular_spectrum_transfer(shape, dx, wavelength, defocus, rdt)
    field = jnp.fft.fftshift(jnp.fft.ifft2(pupil))
    return field / jnp.sqrt(jnp.sum(jnp.abs(field) ** 2))


def zone_plate_focus(diameter, outer_zone_width, wavelength):
    """First-order focal length f = D dr / lambda [m] of a Fresnel zone plate."""
    return diameter * outer_zone_width / wavelength


def zone_plate_probe(
    shape,
    dx,
    wavelength,
    diameter,
    outer_zone_width,
    central_stop=0.0,
    osa_diameter=None,
    osa_distance=None,
    defocus=0.0,
):
    """Probe (H, W) of a zone plate's first order, ``defocus`` [m] beyond its focus.

    The first order is a lens of focal length `zone_plate_focus` and NA = lambda/(2 dr) with
    the central stop on its pupil. An order-sorting aperture of diameter ``osa_diameter``
    [m] at ``osa_distance`` [m] upstream of the focus passes the converging cone inside the
    pupil diameter osa_diameter f / osa_distance; it must be smaller than the central
    stop, or the zero order (the plane wave around the stop) passes it. The grid must
    resolve the outermost zone: dx <= dr.
    """
    check_positive(diameter=diameter, outer_zone_width=outer_zone_width, wavelength=wavelength)
    f = zone_plate_focus(diameter, outer_zone_width, wavelength)
    d, cs = concrete(dx), concrete(central_stop)
    dr = concrete(outer_zone_width)
    if d is not None and dr is not None and float(d) > float(dr):
        raise ValueError(
            f"zone_plate_probe: dx = {float(d):.4g} m cannot resolve the outermost zone "
            f"dr = {float(dr):.4g} m (NA = lambda/(2 dr)); use dx <= dr"
        )
    if (osa_diameter is None) != (osa_distance is None):
        raise ValueError("zone_plate_probe: give osa_diameter and osa_distance together")
    rim = diameter
    if osa_diameter is not None:
        check_positive(osa_diameter=osa_diameter, osa_distance=osa_distance)
        if cs is not None and float(osa_diameter) >= float(cs):
            raise ValueError(
                f"zone_plate_probe: the OSA ({float(osa_diameter):.4g} m) is not smaller than "
                f"the central stop ({float(cs):.4g} m), so the zero order passes it; use a "
                "smaller osa_diameter or a larger central_stop"
            )
        # the cone converging on the focus passes the OSA inside this pupil diameter
        cone = osa_diameter * f / osa_distance
        rim = min(diameter, cone) if concrete(cone) is not None else jnp.minimum(diameter, cone)
    return lens_probe(shape, dx, wavelength, f, rim, defocus, central_stop=central_stop)


__all__ = [
    "Aberrations",
    "lens_probe",
    "wavefront_error",
    "zone_plate_focus",
    "zone_plate_probe",
]
