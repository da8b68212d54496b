"""The batched intensity kernel behind `simple_microscope` and the pipeline.

`microscope_plan` computes once per scan what every position shares; `intensities`
maps windows of a sample to camera patterns; `checked_origins` turns positions in
metres into window origins and refuses windows that leave the sample.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jscan.optics import aperture_mask, field_intensity, optical_zoom
from jscan.propagation import AxisPlan, apply_axis, far_field_axes
from jscan.scan import window_origins
from jscan.types import OpticalWavefront, check_positive


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

    specs: static (AxisSpec y, AxisSpec x); plan: (illumination (H, W) complex, AxisPlan y,
    AxisPlan x). The illumination is probe x aperture x input phases x dx^2/(lambda z), so
    each position costs one multiply, the two axis transforms and |.|^2.
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
    # The intensity needs neither the output phases nor the input phases again.
    unit = jnp.ones((0,), field.dtype)
    py, px = (AxisPlan(unit, p.kernel, unit) for p in (py, px))
    return specs, (illumination, py, px)


def intensities(sample, origins, plan, specs):
    """Patterns (n, H, W) for windows of ``sample`` (R, C) at integer ``origins`` (n, 2) row, col.

    Pure and unjitted: `sharding.compiled_microscope` applies jit and sharding.
    """
    illumination, py, px = plan
    spec_y, spec_x = specs
    shape = illumination.shape

    def one(origin):
        cut = jax.lax.dynamic_slice(sample, (origin[0], origin[1]), shape)
        f = apply_axis(cut * illumination, -1, spec_x, px, phases=False)
        f = apply_axis(f, -2, spec_y, py, phases=False)
        return field_intensity(f)

    return jax.vmap(one)(origins)


def checked_origins(positions, sample_shape, window_shape, dx):
    """Window origins (n, 2) int32 from positions (n, 2) x, y [m]; ValueError if any leaves."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2 or not np.all(np.isfinite(pos)):
        raise ValueError(f"`positions` must be finite (n, 2) x, y in metres, got shape {pos.shape}")
    origins = window_origins(pos, window_shape, dx)
    rows, cols = sample_shape
    h, w = window_shape
    bad = np.flatnonzero(
        (origins[:, 0] < 0)
        | (origins[:, 1] < 0)
        | (origins[:, 0] + h > rows)
        | (origins[:, 1] + w > cols)
    )
    if bad.size:
        shown = ", ".join(str(i) for i in bad[:20]) + (" ..." if bad.size > 20 else "")
        raise ValueError(
            f"{bad.size} probe windows leave the sample ({rows}x{cols} px at dx={dx:.6g} m): "
            f"position indices [{shown}]; move these positions inward or pad the sample"
        )
    return origins.astype(np.int32)
