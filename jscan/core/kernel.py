"""The batched intensity kernel behind `simple_microscope` and the pipeline.

`microscope_plan` computes once per scan what every position shares; `intensities`
maps windows of a sample to camera patterns; `checked_placement` turns positions in
metres into window origins and sub-pixel shifts and refuses windows that leave the sample;
`shift_table` groups the shifts of a block into the distinct ones.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jscan.core.optics import aperture_mask, field_intensity, optical_zoom
from jscan.core.placement import Placement, placement, windows_leaving
from jscan.core.propagation import AxisPlan, apply_axis, far_field_axes
from jscan.core.types import OpticalWavefront, check_positive

SHIFT_DECIMALS = 6  # shifts equal to 1e-6 px are one shift (float noise must not split them)


class MicroscopePlan(NamedTuple):
    """Arrays shared by every position (a PyTree)."""

    illumination: jax.Array  # (H, W) probe x aperture x input phases x scale
    py: AxisPlan  # y axis transform (input/output phases dropped)
    px: AxisPlan  # x axis transform
    spectrum: jax.Array  # (H, W) FFT of probe x aperture, for sub-pixel shifts
    frame: jax.Array  # (H, W) input phases x scale, fixed to the window


def microscope_plan(
    lightwave: OpticalWavefront,
    zoom_factor,
    aperture_diameter,
    travel_distance,
    camera_pixel_size,
    aperture_center=None,
    method: str = "auto",
):
    """What is constant over a scan: returns (specs, plan).

    specs: static (AxisSpec y, AxisSpec x); plan: a `MicroscopePlan`. The illumination is
    probe x aperture x input phases x dx^2/(lambda z), so each position costs one multiply,
    the two axis transforms and |.|^2. ``spectrum`` and ``frame`` (= illumination /
    (probe x aperture)) let `intensities` move probe x aperture by a sub-pixel shift.
    """
    check_positive(travel_distance=travel_distance, camera_pixel_size=camera_pixel_size)
    wave = optical_zoom(lightwave, zoom_factor)
    field = wave.field * aperture_mask(
        wave.field.shape, wave.dx, aperture_diameter, aperture_center
    )
    rdt = jnp.finfo(field.dtype).dtype
    specs, (py, px) = far_field_axes(
        field.shape,
        wave.dx,
        lightwave.wavelength,
        travel_distance,
        camera_pixel_size,
        method,
        rdt,
    )
    scale = (wave.dx**2 / (lightwave.wavelength * travel_distance)).astype(rdt)
    illumination = field * py.in_phase[:, None] * px.in_phase[None, :] * scale
    frame = py.in_phase[:, None] * px.in_phase[None, :] * scale
    # The intensity needs neither the output phases nor the input phases again.
    unit = jnp.ones((0,), field.dtype)
    py, px = (AxisPlan(unit, p.kernel, unit) for p in (py, px))
    return specs, MicroscopePlan(illumination, py, px, jnp.fft.fft2(field), frame)


def shifted_illumination(plan: MicroscopePlan, shift):
    """The illumination with probe x aperture moved by ``shift`` (2,) row, col pixels.

    A Fourier phase ramp: a circular shift of the band-limited probe x aperture, exact
    when that product is ~0 at the window edge (it wraps around) and band-limited (a hard
    aperture edge rings). The input phases and the scale stay in the window frame.
    """
    h, w = plan.spectrum.shape
    rdt = jnp.finfo(plan.spectrum.dtype).dtype
    shift = jnp.asarray(shift).astype(rdt)
    ramp_y = jnp.exp(-2j * jnp.pi * jnp.fft.fftfreq(h).astype(rdt) * shift[0])
    ramp_x = jnp.exp(-2j * jnp.pi * jnp.fft.fftfreq(w).astype(rdt) * shift[1])
    ramp = (ramp_y[:, None] * ramp_x[None, :]).astype(plan.spectrum.dtype)
    return jnp.fft.ifft2(plan.spectrum * ramp) * plan.frame


def intensities(sample, origins, plan, specs, shifts=None, index=None):
    """Patterns (n, H, W) for windows of ``sample`` (R, C) at integer ``origins`` (n, 2) row, col.

    shifts: None (probe on the window's axis pixel: the fast path); with ``index`` None,
    the sub-pixel shift (n, 2) row, col in pixels of each position; with ``index`` (n,)
    int, a table (K, 2) of distinct shifts, built once per call and gathered per position.
    Pure and unjitted: `sharding.compiled_microscope` applies jit and sharding.
    """
    spec_y, spec_x = specs
    shape = plan.illumination.shape

    def pattern(origin, illumination):
        cut = jax.lax.dynamic_slice(sample, (origin[0], origin[1]), shape)
        f = apply_axis(cut * illumination, -1, spec_x, plan.px, phases=False)
        f = apply_axis(f, -2, spec_y, plan.py, phases=False)
        return field_intensity(f)

    if shifts is None:
        return jax.vmap(lambda o: pattern(o, plan.illumination))(origins)
    if index is None:
        return jax.vmap(lambda o, s: pattern(o, shifted_illumination(plan, s)))(origins, shifts)
    table = jax.vmap(lambda s: shifted_illumination(plan, s))(shifts)
    return jax.vmap(lambda o, k: pattern(o, table[k]))(origins, index)


def shift_table(shifts, n_devices: int = 1):
    """Group per-position shifts (n, 2) [px] for `intensities`: (shifts, index) or None.

    None when every shift is 0 (the fast path costs nothing extra). Else the distinct
    shifts (rounded to 1e-`SHIFT_DECIMALS` px), zero-padded to a power of two K (a new K
    compiles once) with index (n,) int32, when K devices-worth of shifted illuminations
    cost less than one per position; otherwise (shifts, None), one per position.
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    if not shifts.any():
        return None
    distinct, index = np.unique(np.round(shifts, SHIFT_DECIMALS), axis=0, return_inverse=True)
    k = 1 << (len(distinct) - 1).bit_length()
    if k * n_devices >= len(shifts):
        return shifts, None
    table = np.zeros((k, 2))
    table[: len(distinct)] = distinct
    return table, index.reshape(-1).astype(np.int32)


def checked_placement(positions, sample_shape, window_shape, dx) -> Placement:
    """`scan.placement` of positions (n, 2) x, y [m], origins int32; ValueError if any leaves."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2 or not np.all(np.isfinite(pos)):
        raise ValueError(f"`positions` must be finite (n, 2) x, y in metres, got shape {pos.shape}")
    where = placement(pos, window_shape, dx)
    leaving = windows_leaving(where.origins, window_shape, sample_shape)
    if leaving:
        raise ValueError(f"{leaving}; move these positions inward or pad the sample")
    return Placement(where.origins.astype(np.int32), where.shifts)


def checked_origins(positions, sample_shape, window_shape, dx):
    """Window origins (n, 2) int32 of `checked_placement`."""
    return checked_placement(positions, sample_shape, window_shape, dx).origins
