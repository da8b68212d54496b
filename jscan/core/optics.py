"""Apertures, zoom and intensity on an OpticalWavefront."""

import jax.numpy as jnp
import numpy as np

from jscan.core.types import OpticalWavefront, check_positive


def centred_coords(n: int, dx):
    """Pixel centres (i - n//2) dx in metres, i = 0..n-1 (pixel n//2 on the optical axis)."""
    return (jnp.arange(n) - n // 2) * dx


def optical_zoom(wavefront: OpticalWavefront, zoom_factor) -> OpticalWavefront:
    """Change the calibration only: dx -> dx * zoom_factor; the field is unchanged."""
    check_positive(zoom_factor=zoom_factor)
    return wavefront._replace(dx=wavefront.dx * jnp.asarray(zoom_factor, wavefront.dx.dtype))


def aperture_mask(shape, dx, diameter, center=None):
    """Mask (H, W) of a circular aperture: 1 where r <= diameter/2, else 0.

    dx, diameter: m; center: (x, y) in m from the optical axis, default (0, 0).
    """
    check_positive(diameter=diameter)
    # np.shape accepts tuples and lists (jnp.shape warns on them) as well as arrays and tracers.
    if center is not None and np.shape(center) != (2,):
        raise ValueError(f"`center` must be (x, y) in metres, got shape {np.shape(center)}")
    cx, cy = (0.0, 0.0) if center is None else (center[0], center[1])
    h, w = shape
    ys = centred_coords(h, dx) - cy
    xs = centred_coords(w, dx) - cx
    r2 = ys[:, None] ** 2 + xs[None, :] ** 2
    return (r2 <= (diameter / 2) ** 2).astype(jnp.finfo(jnp.asarray(dx).dtype).dtype)


def circular_aperture(
    wavefront: OpticalWavefront, diameter, center=None, transmittivity=1.0
) -> OpticalWavefront:
    """Transmit the field inside r <= diameter/2 around center (x, y) [m], times transmittivity."""
    mask = aperture_mask(wavefront.field.shape, wavefront.dx, diameter, center)
    return wavefront._replace(field=wavefront.field * (mask * transmittivity))


def field_intensity(field):
    """`|field|^2`, real, same precision."""
    return jnp.real(field) ** 2 + jnp.imag(field) ** 2
