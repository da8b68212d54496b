"""The coordinates, the pattern variable's dtype and attributes, and the root attributes of
a planned scan.

What a store's layout (`jscan.pipeline.store.create`) and the lazy dataset
(`jscan.pipeline.run.lazy.simulate_lazy`) describe alike: the positions simulated (and those
requested, with snap placement), the camera pixel centres and the raster indices. The
per-position coordinates are made block by block (`block_coords`), where the block runs.
"""

import numpy as np

from jscan.inputs.config import Config
from jscan.inputs.detector_model import detector_mask, stored_dtype
from jscan.inputs.farfield import camera_axes


def pattern_dtype(config: Config) -> np.dtype:
    """float32 intensities (dose 0) or expected photon counts (noise false), else integer
    counts: uint16 when detector.saturation <= 65535, else uint32
    (`detector_model.stored_dtype`)."""
    return stored_dtype(config)


def mask_variable(config: Config, window) -> tuple:
    """The ``mask`` variable (det_y, det_x): True at bad pixels and module gaps (stored 0)."""
    attrs = {
        "units": "1",
        "long_name": "bad pixel or module gap (its pattern value is written as 0)",
        "flag_meanings": "True = masked",
    }
    return ("det_y", "det_x"), detector_mask(config, window), attrs


def diffraction_attrs(config: Config) -> dict:
    """units (pint-readable: "count" for photons, "1" for ADU and for |U'|^2) and long_name
    of the ``diffraction`` variable."""
    det = config.detector
    if det.dose > 0 and not det.noise:
        return {"units": "count", "long_name": "expected photon counts (no noise drawn)"}
    if det.dose > 0 and det.gain == 1 and det.readout_noise == 0:
        return {"units": "count", "long_name": "photon counts (Poisson draws)"}
    if det.dose > 0:
        return {"units": "1", "long_name": "detector counts in ADU (gain x photons, readout)"}
    return {
        "units": "1",
        "long_name": "far-field intensity |U'|^2 of a probe with sum |probe|^2 = 1",
    }


# Per-position coordinates: (dtype, fill value for positions not written, attributes).
POSITION_COORDS = {
    "x": ("float64", np.nan, {"units": "m", "long_name": "simulated probe centre x"}),
    "y": ("float64", np.nan, {"units": "m", "long_name": "simulated probe centre y"}),
    "x_nominal": (
        "float64",
        np.nan,
        {"units": "m", "long_name": "commanded probe centre x (simulated at x)"},
    ),
    "y_nominal": (
        "float64",
        np.nan,
        {"units": "m", "long_name": "commanded probe centre y (simulated at y)"},
    ),
    "scan_row": ("int32", -1, {"units": "1", "long_name": "raster row of the position"}),
    "scan_col": ("int32", -1, {"units": "1", "long_name": "raster column of the position"}),
}


def position_coords(plan) -> tuple[str, ...]:
    """Names of a plan's per-position coordinates: x, y [m] (the positions simulated);
    x_nominal, y_nominal [m] (those commanded, where they differ: snap placement or position
    errors); scan_row, scan_col (raster scans only)."""
    names = ("x", "y")
    if not plan.exact or plan.errors:
        names += ("x_nominal", "y_nominal")
    if plan.raster_shape is not None:
        names += ("scan_row", "scan_col")
    return names


def block_coords(geometry) -> dict[str, np.ndarray]:
    """The per-position coordinates of one block's `BlockGeometry`, by name."""
    g = geometry
    out = {"x": g.positions[:, 0], "y": g.positions[:, 1]}
    if g.nominal is not None:
        out |= {"x_nominal": g.nominal[:, 0], "y_nominal": g.nominal[:, 1]}
    if g.raster is not None:
        out |= {"scan_row": g.raster[0].astype(np.int32), "scan_col": g.raster[1].astype(np.int32)}
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def camera_coords(config: Config, plan) -> dict:
    """det_y, det_x [m]: camera pixel centres, (i - N//2) * camera_pixel_size."""
    det_y, det_x = camera_axes(plan.window, config.optics.camera_pixel_size)
    return {
        "det_y": ("det_y", det_y, {"units": "m", "long_name": "camera pixel centre y"}),
        "det_x": ("det_x", det_x, {"units": "m", "long_name": "camera pixel centre x"}),
    }


OPTICS_KEYS = (
    "wavelength_m",
    "probe_dx_m",
    "sample_dx_m",
    "zoom_factor",
    "aperture_diameter_m",
    "aperture_center_m",
    "travel_distance_m",
    "camera_pixel_size_m",
    "dose_photons",
    "noise_seed",
)


def optics_attrs(config: Config) -> dict:
    """Every optical parameter, the unit in the key."""
    p, o, d = config.probe, config.optics, config.detector
    return {
        "wavelength_m": p.wavelength,
        "probe_dx_m": p.dx,
        "sample_dx_m": config.sample.dx,
        "zoom_factor": o.zoom_factor,
        "aperture_diameter_m": o.aperture_diameter,
        "aperture_center_m": list(o.aperture_center) if o.aperture_center else [0.0, 0.0],
        "travel_distance_m": o.travel_distance,
        "camera_pixel_size_m": o.camera_pixel_size,
        "dose_photons": d.dose,
        "noise_seed": d.seed,
    }


def scan_attrs(config: Config, plan, inputs: str, bright_field_radius: float) -> dict:
    """The attributes a store and the lazy dataset share: the jscan version, the config
    (text and hash), the input fingerprint, the blocks, the scan's extent ((x0, x1), (y0,
    y1)) of the positions simulated [m] and a raster's (rows, cols), every optical parameter
    (unit in the key) and the bright-field radius (m on the camera)."""
    from jscan import __version__

    return {
        "jscan_version": __version__,
        "config": config.text,
        "config_hash": config.hash,
        "inputs_hash": inputs,
        "block_size": plan.block_size,
        "n_positions": plan.n_positions,
        "n_blocks": plan.n_blocks,
        "scan_extent_m": [list(plan.extent_m[0]), list(plan.extent_m[1])],
        **({"scan_shape": list(plan.raster_shape)} if plan.raster_shape else {}),
        **optics_attrs(config),
        "bright_field_radius_m": bright_field_radius,
    }
