"""Lazy virtual detectors and the 4-D view, on a partly finished store."""

import dask.array as da
import numpy as np
import pytest

from jscan import analysis
from jscan.analysis import (
    as_4d,
    center_of_mass,
    stored_detectors,
    virtual_bright_field,
    virtual_dark_field,
)
from jscan.pipeline.store import open_scan


def test_virtual_detectors_are_lazy_and_right(tmp_path, partial_store):
    store = partial_store(range(9))
    ds = open_scan(store)
    bf, df, com = virtual_bright_field(ds), virtual_dark_field(ds), center_of_mass(ds)
    assert isinstance(bf.data, da.Array) and isinstance(df.data, da.Array)
    assert isinstance(com.com_x.data, da.Array)
    patterns = ds.diffraction.values.astype(np.float64)
    r = np.hypot(ds.det_y.values[:, None], ds.det_x.values[None, :])
    radius = ds.attrs["bright_field_radius_m"]
    assert 0 < radius < r.max()
    np.testing.assert_allclose(bf.values, (patterns * (r <= radius)).sum((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(bf.values + df.values, patterns.sum((1, 2)), rtol=1e-5)
    total = patterns.sum((1, 2))
    np.testing.assert_allclose(
        com.com_x.values,
        (patterns * ds.det_x.values[None, None, :]).sum((1, 2)) / total,
        rtol=1e-4,
        atol=1e-9,
    )
    # The bright-field disc holds about 90 % of a transparent probe's pattern: here the
    # sample scatters, so less, but most of the light.
    assert 0.3 < np.median(bf.values / total) < 0.95


def test_positions_not_simulated_are_nan_not_zero(tmp_path, partial_store):
    store = partial_store([0, 2])  # blocks 1 and 3..8 not simulated
    ds = open_scan(store)
    done = np.zeros(144, bool)
    done[0:16] = done[32:48] = True
    np.testing.assert_array_equal(ds.done.values, done)
    np.testing.assert_array_equal(analysis.position_done(ds).values, done)
    for values in (
        virtual_bright_field(ds).values,
        virtual_dark_field(ds).values,
        center_of_mass(ds).com_x.values,
        center_of_mass(ds).com_y.values,
    ):
        assert np.isnan(values[~done]).all()
        assert np.isfinite(values[done]).all() and (values[done] != 0).any()
    # The same from plain xarray (no `done` coordinate): block_done and block_size.
    import xarray as xr

    plain = xr.open_zarr(store)
    assert "done" not in plain.coords
    np.testing.assert_array_equal(np.isnan(virtual_bright_field(plain).values), ~done)
    np.testing.assert_array_equal(as_4d(ds).done.values.ravel(), done)


def test_as_4d_view(tmp_path, partial_store):
    store = partial_store(range(9))
    ds = open_scan(store)
    four = as_4d(ds)
    assert four.dims == ("scan_row", "scan_col", "det_y", "det_x")
    assert four.shape == (12, 12, 32, 32) and isinstance(four.data, da.Array)
    np.testing.assert_array_equal(
        four.isel(scan_row=3, scan_col=5).values, ds.diffraction.isel(position=3 * 12 + 5).values
    )
    assert float(four.x[3, 5]) == float(ds.x[41])


def test_as_4d_needs_a_raster(tmp_path, partial_store):
    store = partial_store([0])
    ds = open_scan(store).drop_vars(["scan_row", "scan_col"])
    del ds.attrs["scan_shape"]  # what makes a scan a raster: gone too
    with pytest.raises(ValueError, match="raster"):
        as_4d(ds)


@pytest.mark.parametrize("dose", [0.0, 1e4])
def test_stored_detectors_equal_the_helpers(partial_store, dose):
    ds = open_scan(partial_store([1, 4, 5], dose=dose))
    stored = stored_detectors(ds)
    assert all(isinstance(stored[name].data, da.Array) for name in stored)  # lazy
    done = ds.done.values
    com = center_of_mass(ds)
    pairs = {
        "bright_field": virtual_bright_field(ds),
        "total": virtual_bright_field(ds, radius=np.inf),
        "com_x": com.com_x,
        "com_y": com.com_y,
    }
    for name, computed in pairs.items():
        values = stored[name].values
        # The helpers sum in float32, the worker in float64; a centre near the axis is a
        # difference of large moments, so compare it on the camera's scale too.
        atol = 1e-7 * float(ds.det_x.max()) if name.startswith("com") else 0
        np.testing.assert_allclose(values[done], computed.values[done], rtol=1e-5, atol=atol)
        assert np.isnan(values[~done]).all() and np.isnan(computed.values[~done]).all()


def test_stored_detectors_are_nan_where_not_done_even_when_written(partial_store):
    # A block whose detectors were written but whose done mark was not (a worker stopped
    # between the two writes) reads as not simulated.
    import zarr

    store = partial_store([0, 1])
    zarr.open_array(store, path="block_done", mode="r+")[1] = 0
    values = stored_detectors(open_scan(store)).bright_field.values
    assert np.isfinite(values[:16]).all() and np.isnan(values[16:]).all()


def test_stored_detectors_need_the_arrays(partial_store):
    ds = open_scan(partial_store([0])).drop_vars(["total", "com_x"])
    with pytest.raises(ValueError, match=r"no stored total, com_x.*virtual_bright_field"):
        stored_detectors(ds)
    assert np.isfinite(virtual_bright_field(ds).values[:16]).all()  # computed: still works
