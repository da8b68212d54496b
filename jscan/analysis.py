"""Lazy analysis of a scan dataset: virtual detectors and the 4-D raster view.

Everything here takes the dataset of `jscan.pipeline.open_scan` (or ``xarray.open_zarr``)
and returns dask-backed DataArrays: nothing is read until ``.compute()`` or ``.values``.
The detector helpers compute from the patterns (any radius, any store); `stored_detectors`
reads the few bytes per position that the workers stored with each block instead.
"""

import dask.array as da
import numpy as np
import xarray as xr

from jscan.inputs.detectors import DETECTORS
from jscan.pipeline.store import per_position


def _camera_radius(ds):
    return np.hypot(ds.det_y.values[:, None], ds.det_x.values[None, :])


def position_done(ds) -> xr.DataArray:
    """True (position) where the position's block is simulated: the ``done`` coordinate of
    `jscan.pipeline.store.open_scan`, else from ``block_done`` and the ``block_size`` attribute.

    A dataset without either (e.g. a copy of the patterns alone) counts as all done.
    """
    if "done" in ds.coords:
        return ds.done
    if "block_done" not in ds or "block_size" not in ds.attrs:
        return xr.DataArray(np.ones(ds.sizes["position"], bool), dims="position")
    done = per_position(
        ds.block_done.values.astype(bool), ds.attrs["block_size"], ds.sizes["position"]
    )
    return xr.DataArray(done, dims="position")


def _weighted_sum(ds, weights, name, long_name):
    w = xr.DataArray(weights.astype(np.float32), dims=("det_y", "det_x"))
    out = (ds.diffraction.astype(np.float32) * w).sum(("det_y", "det_x"))
    # Patterns of blocks not simulated read as zeros: NaN says "no data", 0 would be a value.
    out = out.where(position_done(ds))
    out.name = name
    out.attrs = {"long_name": long_name, "units": ds.diffraction.attrs.get("units", "")}
    return out


def virtual_bright_field(ds, radius=None):
    """Sum of each pattern inside the central disc of ``radius`` [m] (default: the store's
    ``bright_field_radius_m``). Returns a lazy DataArray over ``position``, NaN where the
    position is not simulated yet."""
    radius = ds.attrs["bright_field_radius_m"] if radius is None else radius
    mask = _camera_radius(ds) <= radius
    return _weighted_sum(ds, mask, "bright_field", f"counts inside r <= {radius:.3g} m")


def virtual_dark_field(ds, inner=None, outer=np.inf):
    """Sum of each pattern in the annulus inner < r <= outer [m] (default inner: the
    bright-field radius). Returns a lazy DataArray over ``position``, NaN where the position
    is not simulated yet."""
    inner = ds.attrs["bright_field_radius_m"] if inner is None else inner
    r = _camera_radius(ds)
    return _weighted_sum(
        ds, (r > inner) & (r <= outer), "dark_field", f"counts in {inner:.3g} < r <= {outer:.3g} m"
    )


def center_of_mass(ds):
    """Intensity-weighted centre (x, y) [m] of each pattern on the camera, lazily.

    Returns a Dataset with ``com_x`` and ``com_y`` over ``position``, NaN where the position
    is not simulated yet.
    """
    total = ds.diffraction.astype(np.float32).sum(("det_y", "det_x")).where(position_done(ds))
    com = {}
    for name, coord in (("com_x", ds.det_x), ("com_y", ds.det_y)):
        moment = (ds.diffraction.astype(np.float32) * coord.astype(np.float32)).sum(
            ("det_y", "det_x")
        )
        com[name] = (moment / total).assign_attrs(units="m")
    return xr.Dataset(com)


def stored_detectors(ds) -> xr.Dataset:
    """The virtual detectors the workers stored with each block, without reading a pattern.

    Returns a lazy Dataset of ``bright_field`` (the disc r <= ``bright_field_radius_m``, as
    `virtual_bright_field(ds)`), ``total`` (sum of each pattern), ``com_x`` and ``com_y``
    (as `center_of_mass(ds)`, m), float64 over ``position``, NaN where the position is not
    simulated yet. These equal the helpers above to float32 rounding (the helpers sum in
    float32, the worker in float64); for another radius or detector use the helpers, which
    read the patterns. Raises ValueError for a dataset without them (a copy of the
    patterns alone, a store of an older format).
    """
    missing = [name for name in DETECTORS if name not in ds]
    if missing:
        raise ValueError(
            f"this dataset has no stored {', '.join(missing)}; compute them from the patterns "
            "with virtual_bright_field(ds) / center_of_mass(ds)"
        )
    done = position_done(ds)
    return xr.Dataset({name: ds[name].where(done) for name in DETECTORS})


def as_4d(ds):
    """The raster scan as a lazy (scan_row, scan_col, det_y, det_x) DataArray.

    Its ``done`` coordinate (scan_row, scan_col) is False where the pattern is not simulated
    yet (such patterns read as zeros, the counts keeping their integer type, and x, y as NaN).
    """
    if "scan_shape" in ds.attrs:  # a jscan store or lazy scan: its raster's (rows, cols)
        rows, cols = (int(v) for v in ds.attrs["scan_shape"])
    elif "scan_row" in ds.coords:
        rows, cols = int(ds.scan_row.max()) + 1, int(ds.scan_col.max()) + 1
    else:
        raise ValueError("as_4d needs a raster scan (scan_row, scan_col); this one has none")
    data = ds.diffraction.data
    h, w = data.shape[1:]
    if not isinstance(data, da.Array):
        data = da.from_array(data)
    grid = data.reshape((rows, cols, h, w), merge_chunks=True)
    return xr.DataArray(
        grid,
        dims=("scan_row", "scan_col", "det_y", "det_x"),
        coords={
            "det_y": ds.det_y,
            "det_x": ds.det_x,
            "x": (("scan_row", "scan_col"), ds.x.values.reshape(rows, cols)),
            "y": (("scan_row", "scan_col"), ds.y.values.reshape(rows, cols)),
            "done": (("scan_row", "scan_col"), position_done(ds).values.reshape(rows, cols)),
        },
        attrs=ds.diffraction.attrs,
        name="diffraction",
    )
