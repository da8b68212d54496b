"""The kernel's microscope of a config, shared by the store (its ground-truth probe) and the
workers (the block function): JAX, imported only where a process simulates."""

import jax
import numpy as np

from jscan.core.kernel import microscope_plan, window_probe
from jscan.core.types import make_optical_wavefront


def scan_microscope(config, probe, slices=1):
    """(specs, `MicroscopePlan`) of a scan's optics for ``probe`` (`make_probe`); a sample of
    ``slices`` > 1 (`ScanPlan.slices`) gets the multislice plan over sample.spacing."""
    light = make_optical_wavefront(probe, config.probe.wavelength, config.probe.dx)
    o = config.optics
    center = None if o.aperture_center is None else np.asarray(o.aperture_center)
    return microscope_plan(
        light,
        o.zoom_factor,
        o.aperture_diameter,
        o.travel_distance,
        o.camera_pixel_size,
        center,
        spacing=config.sample.spacing if slices > 1 else None,
        propagation=o.propagation,
        source_distance=o.source_distance,
    )


def ground_truth_probe(config, probe, slices=1) -> np.ndarray:
    """The store's ``probe`` (mode, probe_y, probe_x) complex64: the illumination exactly as
    the kernel multiplies the sample window (`jscan.core.kernel.window_probe`: probe x
    aperture after the zoom, sum |probe|^2 = 1 before the aperture), from the kernel's own
    `MicroscopePlan` on this process's default device, for ``probe`` (`make_probe`, the
    `ScanSpec`'s). A run computes it on a worker (`jscan.pipeline.run.worker.ground_truth_task`);
    (M, H, W) as the kernel gives it.
    """
    _, plan = scan_microscope(config, probe, slices)
    return probe_modes(plan)


def probe_modes(plan) -> np.ndarray:
    """`window_probe` of a `MicroscopePlan` on the host, as (M, H, W) complex64."""
    field = np.asarray(jax.device_get(window_probe(plan)), dtype=np.complex64)
    return field.reshape((-1, *field.shape[-2:]))
