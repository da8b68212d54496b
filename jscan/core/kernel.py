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

from jscan.core.fresnel import (
    NearPlan,
    angular_spectrum_transfer,
    multislice_exit,
    near_field_apply,
    near_field_axes,
)
from jscan.core.optics import aperture_mask, field_intensity, optical_zoom
from jscan.core.placement import Placement, placement, windows_leaving
from jscan.core.propagation import AxisPlan, apply_axis, far_field_axes
from jscan.core.types import OpticalWavefront, check_positive

SHIFT_DECIMALS = 6  # shifts equal to 1e-6 px are one shift (float noise must not split them)


class ThickOptics(NamedTuple):
    """What a multislice scan adds to a `MicroscopePlan` (a PyTree): the aperture sits behind
    the sample, so probe and aperture are applied (and shifted) apart."""

    probe: jax.Array  # ([M,] H, W) probe incident on the first slice
    probe_spectrum: jax.Array  # ([M,] H, W) its FFT, for sub-pixel shifts
    exit_mask: jax.Array  # (H, W) aperture x frame, multiplying the exit wave
    aperture_spectrum: jax.Array  # (H, W) FFT of the aperture, for sub-pixel shifts
    transfer: jax.Array  # (H, W) angular spectrum over the slice spacing (sample pixel)


class MicroscopePlan(NamedTuple):
    """Arrays shared by every position (a PyTree).

    A coherent probe has (H, W) arrays; a partially coherent one has M mutually incoherent
    modes, (M, H, W), which share every position's sample window and transform.
    """

    illumination: jax.Array  # ([M,] H, W) probe x aperture x input phases x scale
    py: AxisPlan  # y axis transform (input/output phases dropped); near field: unused
    px: AxisPlan  # x axis transform
    spectrum: jax.Array  # ([M,] H, W) FFT of probe x aperture, for sub-pixel shifts
    frame: jax.Array  # (H, W) input phases x scale, fixed to the window
    thick: ThickOptics | None = None  # multislice (a (K, R, C) sample), else None
    near: NearPlan | None = None  # near field (specs a `NearSpecs`), else None


def microscope_plan(
    lightwave: OpticalWavefront,
    zoom_factor,
    aperture_diameter,
    travel_distance,
    camera_pixel_size,
    aperture_center=None,
    method: str = "auto",
    spacing=None,
    propagation: str = "far",
    source_distance=None,
):
    """What is constant over a scan: returns (specs, plan).

    spacing: m between the slices of a thick sample (None: a thin one), for `intensities`
    of a (K, R, C) sample. propagation "near": the camera at travel_distance sees the
    Fresnel near field (`jscan.core.fresnel.near_field_axes`; ``source_distance``: a
    diverging beam's point source upstream of the sample), specs a `NearSpecs`.

    lightwave.field is (H, W), or (M, H, W) for M mutually incoherent probe modes (each
    position's pattern is then sum_m |F{P_m O}|^2; Thibault & Menzel, Nature 494, 68 (2013)).
    specs: static (AxisSpec y, AxisSpec x); plan: a `MicroscopePlan`. The illumination is
    probe x aperture x input phases x dx^2/(lambda z), so each position costs one multiply,
    the two axis transforms and |.|^2. ``spectrum`` and ``frame`` (= illumination /
    (probe x aperture)) let `intensities` move probe x aperture by a sub-pixel shift.
    """
    check_positive(travel_distance=travel_distance, camera_pixel_size=camera_pixel_size)
    wave = optical_zoom(lightwave, zoom_factor)
    window = wave.field.shape[-2:]
    mask = aperture_mask(window, wave.dx, aperture_diameter, aperture_center).astype(
        wave.field.dtype
    )
    field = wave.field * mask
    rdt = jnp.finfo(field.dtype).dtype
    unit = jnp.ones((0,), field.dtype)
    near = None
    if propagation == "near":
        specs, near, m = near_field_axes(
            window,
            wave.dx,
            lightwave.wavelength,
            travel_distance,
            camera_pixel_size,
            source_distance,
            rdt,
        )
        frame = jnp.full(window, 1 / m, field.dtype)  # |U| = |u(X/M)| / M
        illumination = field * frame
        py = px = AxisPlan(unit, unit, unit)
    elif propagation == "far":
        specs, (py, px) = far_field_axes(
            window,
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
        py, px = (AxisPlan(unit, p.kernel, unit) for p in (py, px))
    else:
        raise ValueError(f'`propagation` must be "far" or "near", got {propagation!r}')
    thick = None
    if spacing is not None:
        transfer = angular_spectrum_transfer(
            window, lightwave.dx, lightwave.wavelength, spacing, rdt
        )
        spectrum = jnp.fft.fft2(wave.field)
        thick = ThickOptics(wave.field, spectrum, mask * frame, jnp.fft.fft2(mask), transfer)
    return specs, MicroscopePlan(illumination, py, px, jnp.fft.fft2(field), frame, thick, near)


def window_probe(plan: MicroscopePlan):
    """The probe as it multiplies the sample window: probe x aperture after the zoom.

    ``plan.illumination / plan.frame`` (the illumination without the transform's input
    phases and the scale dx^2 / (lambda z)): (H, W), or (M, H, W) with probe modes, the
    unshifted probe with its axis on window pixel (H//2, W//2). A thick sample's plan gives
    the probe incident on its first slice (its aperture acts on the exit wave).
    """
    if plan.thick is not None:
        return plan.thick.probe
    return plan.illumination / plan.frame


def shift_ramps(shifts, shape: tuple[int, int], xp=np):
    """Fourier phase ramps (K, H), (K, W) that move an (H, W) array by ``shifts`` (K, 2) px.

    ramp(f) = exp(-2 pi i f s) per axis, f = fftfreq(N): multiplying the spectrum by
    ramp_y x ramp_x moves the array by +s (rows, cols), circularly. numpy evaluates them in
    float64 (the host path: the same shift always gives the same ramp, whatever else is in
    its block); jax.numpy in the shifts' dtype (traced shifts, differentiable).
    """
    shifts = xp.asarray(shifts)
    rdt = np.float64 if xp is np else jnp.finfo(shifts.dtype).dtype
    return tuple(
        xp.exp(-2j * np.pi * xp.fft.fftfreq(n).astype(rdt)[None, :] * shifts[:, k, None])
        for k, n in enumerate(shape)
    )


def shifted_illuminations(plan: MicroscopePlan, ramps):
    """Illuminations (K, [M,] H, W) with probe x aperture moved by the ramps of `shift_ramps`.

    A circular shift of the band-limited probe x aperture: exact when that product is ~0 at
    the window edge (it wraps around) and band-limited (a hard aperture edge rings). The
    input phases and the scale stay in the window frame.
    """
    return _moved(plan.spectrum, ramps) * plan.frame


def _moved(spectrum, ramps):
    """(K, [M,] H, W): the array of FFT ``spectrum`` ([M,] H, W) moved by each of K ramps."""
    ramp_y, ramp_x = (r.astype(spectrum.dtype) for r in ramps)
    modes = (None,) * (spectrum.ndim - 2)  # every mode moves by its position's shift
    ramp_y = ramp_y[(slice(None), *modes, slice(None), None)]
    ramp_x = ramp_x[(slice(None), *modes, None, slice(None))]
    return jnp.fft.ifft2(spectrum[None] * ramp_y * ramp_x)


def _thick_tables(plan: MicroscopePlan, ramps, unshifted: bool):
    """(probes (K', [M,] H, W), exit masks (K', H, W)) moved by the ramps, the unshifted
    pair first when ``unshifted`` (the table of `shift_table`'s index)."""
    t = plan.thick
    probes = _moved(t.probe_spectrum, ramps)
    masks = _moved(t.aperture_spectrum, ramps) * plan.frame
    if unshifted:
        probes = jnp.concatenate([t.probe[None], probes])
        masks = jnp.concatenate([t.exit_mask[None], masks])
    return probes, masks


def intensities(sample, origins, plan, specs, shifts=None, index=None):
    """Patterns (n, H, W) for windows of ``sample`` (R, C) at integer ``origins`` (n, 2) row, col.

    shifts: None (probe on the window's axis pixel: the fast path); with ``index`` None,
    the sub-pixel shift (n, 2) row, col in pixels of each position (traced shifts); with
    ``index`` (n,) int, the ramps (K, H), (K, W) of K distinct non-zero shifts
    (`shift_table`): the table [unshifted illumination, K shifted ones] is built once per
    call and gathered per position (index 0: no shift, the fast path's illumination).
    With M probe modes (illumination (M, H, W)) each window is cut once, multiplied by
    every mode, transformed as one batch and the M intensities summed: a position's
    pattern is sum_m |F{P_m O}|^2. A (K, R, C) sample of K slices (a plan with `spacing`)
    takes each window of every slice through `multislice_exit` before the aperture.
    Pure and unjitted: `sharding.compiled_microscope` applies jit and sharding.
    """
    shape = plan.illumination.shape[-2:]
    if sample.ndim == 3:
        return _thick_intensities(sample, origins, plan, specs, shifts, index)

    def pattern(origin, illumination):
        cut = jax.lax.dynamic_slice(sample, (origin[0], origin[1]), shape)
        return camera_intensity(cut * illumination, plan, specs)

    if shifts is None:
        return jax.vmap(lambda o: pattern(o, plan.illumination))(origins)
    if index is None:
        table = shifted_illuminations(plan, shift_ramps(shifts, shape, xp=jnp))
        return jax.vmap(pattern)(origins, table)
    table = jnp.concatenate([plan.illumination[None], shifted_illuminations(plan, shifts)])
    return jax.vmap(lambda o, k: pattern(o, table[k]))(origins, index)


def _thick_intensities(sample, origins, plan, specs, shifts, index):
    """`intensities` of a (K, R, C) thick sample: the probe through the K slices
    (`multislice_exit`), then the aperture and the transform; probe and aperture move
    by the same sub-pixel shift."""
    if plan.thick is None:
        raise ValueError("a (K, R, C) thick sample needs a plan made with `spacing`")
    shape = plan.illumination.shape[-2:]
    modes = (slice(None), *(None,) * (plan.illumination.ndim - 2))  # cuts broadcast over modes
    # The whole batch steps through the slices together: batched FFTs over every position
    # (a per-position vmap of the steps runs far slower on the CPU).
    cuts = [  # one slice's windows at a time: each is used once, by its step
        jax.vmap(lambda o, s=s: jax.lax.dynamic_slice(s, (o[0], o[1]), shape))(origins)[modes]
        for s in sample
    ]
    if shifts is None:
        probes, masks = plan.thick.probe[None], plan.thick.exit_mask[None]
    elif index is None:
        probes, masks = _thick_tables(plan, shift_ramps(shifts, shape, xp=jnp), False)
    else:
        probes, masks = _thick_tables(plan, shifts, True)
        probes, masks = probes[index], masks[index]
    exit_waves = multislice_exit(probes, cuts, plan.thick.transfer) * masks[modes]
    return jax.vmap(lambda f: camera_intensity(f, plan, specs))(exit_waves)


def camera_intensity(exit_field, plan: MicroscopePlan, specs):
    """(H, W) intensity on the camera of one position's field ([M,] H, W) at the transform's
    input (illumination, or exit wave x aperture x frame, applied); modes summed."""
    if plan.near is not None:
        f = near_field_apply(exit_field, specs, plan.near)
    else:
        spec_y, spec_x = specs
        f = apply_axis(exit_field, -1, spec_x, plan.px, phases=False)
        f = apply_axis(f, -2, spec_y, plan.py, phases=False)
    intensity = field_intensity(f)
    if intensity.ndim == 2:
        return intensity
    # Modes are mutually incoherent: their intensities add, one after the other. (XLA's
    # reduce over the mode axis rounds differently with the number of positions per
    # call, which would make a pattern depend on its block.)
    total = intensity[0]
    for m in range(1, intensity.shape[0]):
        total = total + intensity[m]
    return total


def shift_table(shifts, shape: tuple[int, int]):
    """Group host shifts (n, 2) [px] of windows ``shape`` for `intensities`: None or
    ((ramp_y, ramp_x), index).

    Shifts are rounded to 1e-`SHIFT_DECIMALS` px (float noise must not split a repeated
    remainder). None when every shift is 0: the fast path costs nothing extra. Else the
    float64 ramps of the K distinct non-zero shifts (K padded to a power of two, at most n;
    a new K compiles once) and each position's index (n,) int32 into the table
    [unshifted illumination, K shifted ones]. A position's pattern then depends on its own
    shift alone, not on its block's other positions, the block size or the devices.
    """
    shifts = np.round(np.asarray(shifts, dtype=np.float64), SHIFT_DECIMALS)
    if not shifts.any():
        return None
    distinct, index = np.unique(shifts, axis=0, return_inverse=True)
    index = index.reshape(-1).astype(np.int32)
    if not distinct[0].any():  # sorted: a zero shift (remainders >= 0) comes first
        distinct = distinct[1:]
    else:
        index += 1
    k = min(1 << (len(distinct) - 1).bit_length(), len(shifts))
    table = np.zeros((k, 2))
    table[: len(distinct)] = distinct
    return shift_ramps(table, shape), index


def checked_placement(positions, sample_shape, window_shape, dx) -> Placement:
    """`placement` of positions (n, 2) x, y [m], origins int32; ValueError if any leaves."""
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
