"""The coordinates, the pattern variable's attributes, and the root attributes of a
scan's `jscan.pipeline.run.spec.ScanSpec`.

What a store's layout (`jscan.pipeline.store.create`) and the lazy dataset
(`jscan.pipeline.run.lazy.simulate_lazy`) describe alike: the positions simulated (and those
requested, with snap placement), the camera pixel centres and the raster indices. The
per-position coordinates are made block by block (`block_coords`), where the block runs.
"""

import numpy as np

from jscan.inputs.config import Config
from jscan.pipeline.store.facts import ScanFacts


def mask_variable(spec: ScanFacts) -> tuple:
    """The ``mask`` variable (det_y, det_x): True at bad pixels and module gaps (stored 0)."""
    attrs = {
        "units": "1",
        "long_name": "bad pixel or module gap (its pattern value is written as 0)",
        "flag_meanings": "True = masked",
    }
    return ("det_y", "det_x"), spec.detector.mask.copy(), attrs  # the user's to change


def diffraction_attrs(spec: ScanFacts) -> dict:
    """units (pint-readable) and long_name of the ``diffraction`` variable (`VALUES`)."""
    return {"units": spec.values.units, "long_name": spec.values.long_name}


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


def camera_coords(spec: ScanFacts) -> dict:
    """det_y, det_x [m]: camera pixel centres, (i - N//2) * camera_pixel_size."""
    det_y, det_x = (axis.centres.copy() for axis in spec.camera)  # the user's to change
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


def scan_attrs(spec: ScanFacts) -> dict:
    """The attributes a store and the lazy dataset share, of a `ScanSpec`: the jscan
    version, the config (text and hash), the input fingerprint, the blocks, the scan's extent
    ((x0, x1), (y0, y1)) of the positions simulated [m] and a raster's (rows, cols), every
    optical parameter (unit in the key) and the bright-field radius (m on the camera)."""
    from jscan import __version__

    config, plan = spec.config, spec.plan

    return {
        "jscan_version": __version__,
        "config": config.text,
        "config_hash": config.hash,
        "inputs_hash": spec.inputs,
        "block_size": plan.block_size,
        "n_positions": plan.n_positions,
        "n_blocks": plan.n_blocks,
        "scan_extent_m": [list(plan.extent_m[0]), list(plan.extent_m[1])],
        **({"scan_shape": list(plan.raster_shape)} if plan.raster_shape else {}),
        **optics_attrs(config),
        "bright_field_radius_m": spec.bright_field_radius,
    }
