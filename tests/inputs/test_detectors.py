"""The virtual detectors the worker stores with each block: equal to those of the stored
patterns, NaN where not simulated, and part of each done block's integrity (`jscan verify`).

Real stores written by `BlockRunner` in this process (`partial_store`) and by a real
LocalCluster (`client`); the damage is done to the files.
"""

import os
import shutil

import numpy as np
import pytest
import zarr

from jscan.inputs.config import parse_config
from jscan.inputs.detectors import DETECTORS
from jscan.pipeline import simulate_scan
from jscan.pipeline.store import open_scan
from jscan.pipeline.store.integrity import repair, verify


def from_patterns(ds):
    """The detectors of every pattern, in float64 from the stored patterns themselves."""
    patterns = ds.diffraction.values.astype(np.float64)
    det_y, det_x = ds.det_y.values, ds.det_x.values
    r = np.hypot(det_y[:, None], det_x[None, :])
    total = patterns.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "bright_field": (patterns * (r <= ds.attrs["bright_field_radius_m"])).sum((1, 2)),
            "total": total,
            "com_x": (patterns * det_x[None, None, :]).sum((1, 2)) / total,
            "com_y": (patterns * det_y[None, :, None]).sum((1, 2)) / total,
        }


@pytest.mark.parametrize("dose", [0.0, 1e4])
def test_stored_detectors_equal_those_of_the_patterns(partial_store, dose):
    ds = open_scan(partial_store([0, 3, 8], dose=dose))
    done = ds.done.values
    assert done.sum() == 48
    expected = from_patterns(ds)
    for name in DETECTORS:
        stored = ds[name]
        assert stored.dtype == np.float64 and stored.dims == ("position",)
        assert stored.attrs["long_name"] and stored.attrs["units"]
        values = stored.values
        # Float: the same float64 sums in another order; counts: integers, exact.
        np.testing.assert_allclose(values[done], expected[name][done], rtol=1e-12, atol=0)
        assert np.isnan(values[~done]).all()  # never written: the fill value, not 0
    assert ds.com_x.attrs["units"] == "m"
    assert ds.total.attrs["units"] == ds.diffraction.attrs["units"]
    if dose:
        assert (ds.total.values[done] == np.round(ds.total.values[done])).all()
    # The centre of mass sits near the optical axis, within the camera.
    assert np.abs(ds.com_x.values[done]).max() < ds.det_x.values.max() / 2


def test_cluster_run_stores_detectors_of_a_short_last_block(tmp_path, client, scan_config):
    text = scan_config(dose=3e4, block_size=20)  # 144 positions: 7 blocks of 20, one of 4
    ds = simulate_scan(parse_config(text), tmp_path / "s.zarr", client=client, progress=False)
    assert ds.done.values.all()
    expected = from_patterns(ds)
    for name in DETECTORS:
        arr = zarr.open_array(str(tmp_path / "s.zarr"), path=name, mode="r")
        assert arr.chunks == (20,)  # one chunk per block, aligned with the shards
        np.testing.assert_allclose(ds[name].values, expected[name], rtol=1e-12, atol=0)


@pytest.fixture
def sound(partial_store):
    store = partial_store(range(9), dose=1e4)
    assert verify(store).ok
    return store


@pytest.mark.parametrize("name", DETECTORS)
def test_verify_flags_a_missing_detector_chunk(sound, name, run_cli):
    os.remove(f"{sound}/{name}/c/4")
    for full in (False, True):
        report = verify(sound, full=full)
        assert report.bad_blocks == [4]
        assert report.faults[0].reason == f"{name} chunk missing"
    code, _, err = run_cli("verify", sound, "--quick")
    assert code == 1 and f"4 ({name} chunk missing)" in err
    # Resume re-runs what repair un-marks.
    repair(sound)
    assert not zarr.open_array(sound, path="block_done", mode="r")[4]


def test_full_verify_flags_a_detector_that_differs_from_the_patterns(sound, tmp_path):
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(sound, copy)
    total = zarr.open_array(copy, path="total", mode="r+")
    total[100] = total[100] + 1  # a sound chunk (CRC32C rewritten), a wrong value
    assert verify(copy, full=False).ok  # presence only
    report = verify(copy)
    assert report.bad_blocks == [100 // 16]
    assert report.faults[0].reason == "total differs from the patterns"
    # Damaged bytes in a chunk: the CRC32C finds them.
    path = tmp_path / "copy.zarr" / "com_y" / "c" / "2"
    data = bytearray(path.read_bytes())
    data[8] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verify(copy)
    assert report.bad_blocks == [2, 6]
    assert report.faults[0].reason == "com_y chunk unreadable"
