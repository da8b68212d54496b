"""A thick sample's exports: ptychodus keeps the slices and their spacing (read back with
ptychodus's own `load_product`); the formats of one object layer hold the projection and say so."""

import numpy as np
import pytest

from jscan.export import export
from jscan.pipeline.store import open_scan

pytest.importorskip("h5py")
pytestmark = pytest.mark.reference
MARGIN = 2  # object pixels around the scanned region in ptychodus's and CXI's files


@pytest.fixture
def thick_store(simulated_store, small_scan):
    d = small_scan(shape=(4, 4))
    d["sample"].update(slices=3, spacing=5e-6)
    d["optics"]["travel_distance"] = 0.0128  # natural sampling: lambda z / (N dx)
    return simulated_store(d, "thick.zarr")


def test_ptychodus_product_holds_the_slices(thick_store, tmp_path):
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import load_product

    report = export(thick_store, "ptychodus", str(tmp_path / "p"), stream=None)
    assert not any("slices" in line for line in report.warnings)
    ds = open_scan(thick_store)
    truth = load_product(tmp_path / "p" / "truth.h5")
    obj = truth.object_
    assert obj.get_array().shape == (3, *(n + 2 * MARGIN for n in ds.sample_truth.shape[1:]))
    np.testing.assert_array_equal(
        obj.get_array()[:, MARGIN:-MARGIN, MARGIN:-MARGIN], ds.sample_truth.values
    )
    np.testing.assert_allclose(obj.layer_spacing_m, [5e-6, 5e-6])
    start = load_product(tmp_path / "p" / "product.h5").object_
    assert start.get_array().shape[0] == 3 and np.all(start.get_array() == 1)


@pytest.mark.parametrize("fmt", ["cxi", "nexus", "ptylab"])
def test_one_layer_formats_hold_the_projection_and_say_so(thick_store, tmp_path, fmt):
    import h5py

    out = tmp_path / {"cxi": "out.cxi", "nexus": "out.nxs", "ptylab": "out.hdf5"}[fmt]
    report = export(thick_store, fmt, str(out), stream=None)
    assert any("3 slices" in line and "projection" in line for line in report.warnings)
    projection = np.prod(open_scan(thick_store).sample_truth.values, axis=0)
    path = {"cxi": "entry_1/image_2/data", "nexus": "entry_1/jscan_truth/object"}.get(fmt, "object")
    with h5py.File(out, "r") as f:
        obj = np.asarray(f[path]).reshape((-1, *f[path].shape[-2:]))[0]
    rows, cols = projection.shape
    values = obj[MARGIN : MARGIN + rows, MARGIN : MARGIN + cols] if fmt == "cxi" else obj
    if fmt == "ptylab":  # the truth sits at PtyLab's centre; find it by its values
        top = obj.shape[0] // 2 - rows // 2
        left = obj.shape[1] // 2 - cols // 2
        values = obj[top : top + rows, left : left + cols]
    np.testing.assert_allclose(values, projection, rtol=0, atol=1e-6)
