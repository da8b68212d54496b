"""The coordinates and the pattern variable's dtype and attributes of a planned scan.

What a store's layout (`jscan.pipeline.store.create`) and the lazy dataset
(`jscan.pipeline.lazy.simulate_lazy`) describe alike: the positions simulated (and those
requested, with snap placement), the camera pixel centres and the raster indices.
"""

import numpy as np

from jscan.inputs.config import Config
from jscan.inputs.farfield import camera_axes


def pattern_dtype(config: Config) -> np.dtype:
    """uint32 photon counts when detector.dose > 0, else float32 intensities."""
    return np.dtype("uint32") if config.detector.dose > 0 else np.dtype("float32")


def diffraction_attrs(config: Config) -> dict:
    """units and long_name of the ``diffraction`` variable."""
    if pattern_dtype(config).kind == "u":
        units = "photons"
    else:
        units = "|U'|^2, far-field intensity in units of |probe|^2"
    return {"units": units, "long_name": "far-field diffraction pattern"}


def scan_coords(config: Config, plan) -> dict:
    """xarray coordinates {name: (dim, values, attrs)} of a `ScanPlan`.

    x, y (position) [m]: the probe centres simulated; x_nominal, y_nominal [m]: those
    requested, only with snap placement (where they differ); det_y, det_x [m]: camera pixel
    centres, (i - N//2) * camera_pixel_size; scan_row, scan_col (int32): raster scans only.
    """
    positions = plan.positions
    det_y, det_x = camera_axes(plan.window, config.optics.camera_pixel_size)
    coords = {
        "x": ("position", positions[:, 0], {"units": "m", "long_name": "simulated probe centre x"}),
        "y": ("position", positions[:, 1], {"units": "m", "long_name": "simulated probe centre y"}),
        "det_y": ("det_y", det_y, {"units": "m"}),
        "det_x": ("det_x", det_x, {"units": "m"}),
    }
    if plan.nominal is not None:
        for k, axis in enumerate("xy"):
            coords[f"{axis}_nominal"] = (
                "position",
                plan.nominal[:, k],
                {"units": "m", "long_name": f"requested probe centre {axis} (simulated at {axis})"},
            )
    if plan.raster is not None:
        coords["scan_row"] = ("position", plan.raster[0].astype(np.int32), {})
        coords["scan_col"] = ("position", plan.raster[1].astype(np.int32), {})
    return coords
