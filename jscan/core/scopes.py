"""The four forward models, with the public API of janssen's ``scopes`` module.

Chain: sample x probe -> zoom (dx -> dx * zoom_factor) -> circular aperture ->
Fraunhofer over travel_distance, exact at the camera pixel -> |.|^2.
"""

import jax.numpy as jnp

from jscan.core import sharding
from jscan.core.kernel import checked_placement, microscope_plan
from jscan.core.optics import circular_aperture, field_intensity, optical_zoom
from jscan.core.placement import placed_positions
from jscan.core.placement import placement as window_placement
from jscan.core.propagation import fraunhofer_prop, fraunhofer_prop_scaled
from jscan.core.types import (
    Diffractogram,
    MicroscopeData,
    OpticalWavefront,
    SampleFunction,
    check_positive,
    check_same_grid,
    concrete,
    make_diffractogram,
)


def linear_interaction(sample: SampleFunction, light: OpticalWavefront) -> OpticalWavefront:
    """Thin-sample interaction: field -> sample * field (same shape, same dx)."""
    if light.field.ndim == 3:
        raise ValueError(
            f"the probe has {light.field.shape[0]} incoherent modes, which only "
            "simple_microscope sums; pass one mode (field[m]) here"
        )
    if sample.sample.shape != light.field.shape:
        raise ValueError(
            f"sample shape {sample.sample.shape} differs from the probe shape "
            f"{light.field.shape}; cut the sample to the probe's window first"
        )
    check_same_grid(sample, light, "linear_interaction")
    return light._replace(field=sample.sample * light.field)


def _at_aperture(sample_cut, lightwave, zoom_factor, aperture_diameter, aperture_center):
    wave = optical_zoom(linear_interaction(sample_cut, lightwave), zoom_factor)
    return circular_aperture(wave, aperture_diameter, aperture_center)


def diffractogram_noscale(
    sample_cut: SampleFunction,
    lightwave: OpticalWavefront,
    zoom_factor,
    aperture_diameter,
    travel_distance,
    aperture_center=None,
) -> OpticalWavefront:
    """Far-field wavefront at the natural pixel lambda z / (W dx zoom_factor).

    zoom_factor: dimensionless; aperture_diameter, travel_distance: m;
    aperture_center: (x, y) m or None.
    """
    check_positive(
        zoom_factor=zoom_factor,
        aperture_diameter=aperture_diameter,
        travel_distance=travel_distance,
    )
    wave = _at_aperture(sample_cut, lightwave, zoom_factor, aperture_diameter, aperture_center)
    return fraunhofer_prop(wave, travel_distance)


def simple_diffractogram(
    sample_cut: SampleFunction,
    lightwave: OpticalWavefront,
    zoom_factor,
    aperture_diameter,
    travel_distance,
    camera_pixel_size,
    aperture_center=None,
) -> Diffractogram:
    """Camera intensity (H, W) at camera_pixel_size [m], exact at any pixel size.

    Other parameters as in `diffractogram_noscale`.
    """
    check_positive(
        zoom_factor=zoom_factor,
        aperture_diameter=aperture_diameter,
        travel_distance=travel_distance,
        camera_pixel_size=camera_pixel_size,
    )
    wave = _at_aperture(sample_cut, lightwave, zoom_factor, aperture_diameter, aperture_center)
    at_camera = fraunhofer_prop_scaled(wave, travel_distance, camera_pixel_size)
    return make_diffractogram(field_intensity(at_camera.field), lightwave.wavelength, at_camera.dx)


def simple_microscope(
    sample: SampleFunction,
    positions,
    lightwave: OpticalWavefront,
    zoom_factor,
    aperture_diameter,
    travel_distance,
    camera_pixel_size,
    aperture_center=None,
    *,
    method: str = "auto",
    mesh=None,
    placement: str = "snap",
) -> MicroscopeData:
    """Diffraction patterns at every scan position, sharded over all local devices.

    sample: the whole sample, dx equal to the probe's; positions: (n, 2) x, y [m] of the
    probe's axis pixel (H//2, W//2), placed by `jscan.core.placement.placement`: window top-left
    (row, col) = floor(y/dx - H//2 + tol), floor(x/dx - W//2 + tol), tol = 1e-3 px;
    other parameters as in `simple_diffractogram`; method: scaled-DFT method
    (see `jscan.core.propagation`); mesh: a 1-D "data" mesh (default: all local devices);
    placement: "snap" (janssen-compatible: the probe sits on the window's axis pixel) or
    "exact" (probe x aperture moved by the sub-pixel remainder, `jscan.core.kernel.intensities`).
    A lightwave with an (M, H, W) field holds M mutually incoherent probe modes: each
    pattern is `sum_m |F{P_m O}|^2` (the modes are used as given, not normalised).
    Returns MicroscopeData with image_data (n, H, W) and the positions simulated
    (snap: on the pixel; exact: as given, those within tol put on the pixel).
    """
    check_positive(
        zoom_factor=zoom_factor,
        aperture_diameter=aperture_diameter,
        travel_distance=travel_distance,
        camera_pixel_size=camera_pixel_size,
    )
    check_same_grid(sample, lightwave, "simple_microscope")
    if placement not in ("snap", "exact"):
        raise ValueError(f'`placement` must be "snap" or "exact", got {placement!r}')
    exact = placement == "exact"
    window = lightwave.field.shape[-2:]
    if concrete(positions) is not None and concrete(sample.dx) is not None:
        dx = float(concrete(sample.dx))
        where = checked_placement(positions, sample.sample.shape, window, dx)
        simulated = placed_positions(positions, where, window, dx, exact)
    else:  # traced positions or dx (inside a user's jit or grad): no bounds check possible
        where = window_placement(positions, window, sample.dx, xp=jnp)
        simulated = placed_positions(positions, where, window, sample.dx, exact, xp=jnp)
    specs, plan = microscope_plan(
        lightwave,
        zoom_factor,
        aperture_diameter,
        travel_distance,
        camera_pixel_size,
        aperture_center,
        method,
    )
    mesh = sharding.data_mesh() if mesh is None else mesh
    shifts = where.shifts if exact else None
    images = sharding.run_sharded(specs, mesh, sample.sample, where.origins, plan, shifts=shifts)
    rdt = images.dtype
    return MicroscopeData(
        image_data=images,
        positions=jnp.asarray(simulated, rdt),
        wavelength=jnp.asarray(lightwave.wavelength, rdt),
        dx=jnp.asarray(camera_pixel_size, rdt),
    )


__all__ = [
    "diffractogram_noscale",
    "linear_interaction",
    "simple_diffractogram",
    "simple_microscope",
]
