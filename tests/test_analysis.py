"""Lazy virtual detectors, the 4-D view, and `jscan preview` on a partly finished store."""

import dask.array as da
import numpy as np
import pytest
from conftest import small_config

from jscan import analysis
from jscan.analysis import as_4d, center_of_mass, virtual_bright_field, virtual_dark_field
from jscan.cli import main
from jscan.inputs import farfield
from jscan.inputs.config import parse_config
from jscan.pipeline.plan import plan_scan
from jscan.pipeline.store import create, open_scan
from jscan.pipeline.worker import BlockRunner, ScanJob


def partial_store(tmp_path, blocks, dose=0.0):
    """A real store with only ``blocks`` simulated (in-process, as a worker would)."""
    cfg = parse_config(small_config(dose=dose, block_size=16))
    plan = plan_scan(cfg)
    store = str(tmp_path / "partial.zarr")
    radius = farfield.bright_field_radius(cfg)
    store_id = create(store, cfg, plan, radius)
    job = ScanJob(
        cfg,
        store,
        plan.region_shape,
        plan.sample_shape,
        bright_field_radius=radius,
        store_id=store_id,
    )
    runner = BlockRunner(job)
    for b in blocks:
        start, stop = plan.block_range(b)
        runner.run(b, plan.block_origins(b), start, stop - start, plan.block_shifts(b))
    return store


def test_virtual_detectors_are_lazy_and_right(tmp_path):
    store = partial_store(tmp_path, range(9))
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


def test_positions_not_simulated_are_nan_not_zero(tmp_path):
    store = partial_store(tmp_path, [0, 2])  # blocks 1 and 3..8 not simulated
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


def test_as_4d_view(tmp_path):
    store = partial_store(tmp_path, range(9))
    ds = open_scan(store)
    four = as_4d(ds)
    assert four.dims == ("scan_row", "scan_col", "det_y", "det_x")
    assert four.shape == (12, 12, 32, 32) and isinstance(four.data, da.Array)
    np.testing.assert_array_equal(
        four.isel(scan_row=3, scan_col=5).values, ds.diffraction.isel(position=3 * 12 + 5).values
    )
    assert float(four.x[3, 5]) == float(ds.x[41])


def test_as_4d_needs_a_raster(tmp_path):
    store = partial_store(tmp_path, [0])
    ds = open_scan(store).drop_vars(["scan_row", "scan_col"])
    with pytest.raises(ValueError, match="raster"):
        as_4d(ds)


def test_preview_of_a_partly_finished_store(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    store = partial_store(tmp_path, [0, 1, 2, 5], dose=1e4)
    out = tmp_path / "preview.png"
    assert main(["preview", store, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    import matplotlib.image

    pixels = matplotlib.image.imread(out)[..., :3]
    grey = np.all(np.abs(pixels - 0.75) < 0.02, axis=-1)  # missing positions: grey 0.75
    assert 0.05 < grey.mean() < 0.6
    assert pixels.std() > 0.1  # not a blank figure


def test_preview_of_a_non_store_exits_2(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    assert main(["preview", str(tmp_path / "x"), "--out", str(tmp_path / "p.png")]) == 2
    assert "not a Zarr store" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()
