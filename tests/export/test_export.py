"""jscan export: CXI, ptychodus and PtyLab files read back with h5py equal the store value for
value; numpy's FFT given the exported probe, positions and true object gives the stored
patterns back. (The engines' own readers: test_readers.py.)"""

import json

import numpy as np
import pytest

from jscan.errors import StoreError
from jscan.export import ScanSource, export
from jscan.pipeline.store import open_scan

h5py = pytest.importorskip("h5py")


@pytest.mark.reference
def test_cxi_equals_the_store(partial_store, tmp_path):
    store = partial_store(range(9), dose=1e5)
    out = str(tmp_path / "scan.cxi")
    report = export(store, "cxi", out, stream=None)
    ds = open_scan(store)
    assert report.positions == 144 and report.blocks == 9
    with h5py.File(out, "r") as f:
        assert f["cxi_version"][()] == 160
        det = f["entry_1/instrument_1/detector_1"]
        np.testing.assert_array_equal(det["data"][:], ds.diffraction.values)
        assert det["data"].dtype == np.uint32
        assert det["distance"][()] == ds.attrs["travel_distance_m"]
        assert det["x_pixel_size"][()] == det["y_pixel_size"][()] == ds.attrs["camera_pixel_size_m"]
        np.testing.assert_array_equal(det["mask"][:], np.zeros((32, 32)))
        energy = f["entry_1/instrument_1/source_1/energy"][()]
        assert energy == pytest.approx(6.62607015e-34 * 299792458.0 / ds.attrs["wavelength_m"])
        tr = f["entry_1/sample_1/geometry_1/translation"][:]
        np.testing.assert_array_equal(tr, np.stack([ds.x, ds.y, 0 * ds.x], axis=1))
        # the soft links of /entry_1/data_1 lead to the same arrays
        assert isinstance(f["entry_1/data_1"].get("data", getlink=True), h5py.SoftLink)
        np.testing.assert_array_equal(f["entry_1/data_1/data"][:], det["data"][:])
        np.testing.assert_array_equal(f["entry_1/data_1/translation"][:], tr)


@pytest.mark.reference
def test_ptychodus_equals_the_store(partial_store, tmp_path):
    store = partial_store(range(9))
    out = tmp_path / "ptychodus"
    export(store, "ptychodus", str(out), stream=None)
    ds = open_scan(store)
    src = ScanSource(store)
    with h5py.File(out / "diffraction.h5", "r") as f:
        np.testing.assert_array_equal(f["patterns"][:], ds.diffraction.values)
        np.testing.assert_array_equal(f["indexes"][:], np.arange(144))
        assert f["bad_pixels"].dtype == bool and not f["bad_pixels"][:].any()
    assert sorted(p.name for p in out.iterdir()) == ["diffraction.h5", "product.h5", "truth.h5"]
    with h5py.File(out / "diffraction.h5", "r") as f:
        assert f["patterns"].attrs["detector_pixel_width_m"] == ds.attrs["camera_pixel_size_m"]
        assert f["patterns"].attrs["detector_pixel_height_m"] == ds.attrs["camera_pixel_size_m"]
    for name in ("product.h5", "truth.h5"):
        with h5py.File(out / name, "r") as f:
            assert_product(f, ds, src, truth=name == "truth.h5")


def assert_product(f, ds, src, truth):
    """A ptychodus product file of the small scan (32x32 windows: centre half a pixel past the
    region's middle, see `ptychodus_centre`)."""
    np.testing.assert_array_equal(f["probe_position_x_m"][:], ds.x.values)
    np.testing.assert_array_equal(f["probe_position_y_m"][:], ds.y.values)
    np.testing.assert_array_equal(f["probe_position_indexes"][:], np.arange(144))
    np.testing.assert_array_equal(f["probe"][:], src.engine_probe())
    assert f["probe"].attrs["pixel_width_m"] == pytest.approx(1e-6)
    obj = f["object"][0, 2:-2, 2:-2]  # a margin of 2 pixels of ones around the region
    np.testing.assert_array_equal(obj, ds.sample_truth.values if truth else 1)
    assert f["object"].attrs["center_x_m"] == pytest.approx(float(ds.sample_x.mean()) + 0.5e-6)
    assert f["object"].attrs["center_y_m"] == pytest.approx(float(ds.sample_y.mean()) + 0.5e-6)
    for key in ("name", "comments", "detector_object_distance_m", "photon_energy_eV"):
        assert key in f.attrs
    assert f.attrs["exposure_time_s"] == f.attrs["mass_attenuation_m2_per_kg"] == 0.0


@pytest.mark.reference
def test_ptylab_equals_the_store(partial_store, tmp_path):
    store = partial_store(range(9))
    out = str(tmp_path / "scan.h5")
    export(store, "ptylab", out, stream=None)
    ds = open_scan(store)
    rows, cols = ds.sample_truth.shape  # encoder from the region's pixel (R//2, C//2)
    cx, cy = float(ds.sample_x[cols // 2]), float(ds.sample_y[rows // 2])
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["ptychogram"][:], ds.diffraction.values)
        np.testing.assert_array_equal(f["encoder"][:], np.stack([ds.y - cy, ds.x - cx], axis=1))
        assert f["wavelength"][()] == ds.attrs["wavelength_m"]
        assert f["dxd"][()] == ds.attrs["camera_pixel_size_m"]
        assert f["zo"][()] == ds.attrs["travel_distance_m"]


@pytest.mark.reference
def test_an_unfinished_store_is_refused_unless_partial(partial_store, tmp_path, tree):
    store = partial_store([0, 2])
    with pytest.raises(StoreError, match=r"7 of 9 blocks not done.*--partial"):
        export(store, "cxi", str(tmp_path / "a.cxi"), stream=None)
    assert "a.cxi" not in tree(tmp_path)
    report = export(store, "cxi", str(tmp_path / "b.cxi"), partial=True, stream=None)
    assert report.skipped_blocks == 7 and report.positions == 32
    ds = open_scan(store)
    rows = np.r_[0:16, 32:48]
    with h5py.File(tmp_path / "b.cxi", "r") as f:
        np.testing.assert_array_equal(f["entry_1/data_1/data"][:], ds.diffraction.values[rows])
        np.testing.assert_array_equal(f["entry_1/jscan_index"][:], rows)


def test_cli_export_shows_progress(partial_store, tmp_path, run_cli):
    store = partial_store(range(9))
    code, out, err = run_cli("export", store, "--format", "cxi", "--out", tmp_path / "s.cxi")
    assert code == 0, err
    assert "144 patterns" in out and "9/9 blocks" in err
    # not a terminal (a log file): the last line only, no carriage returns
    assert "\r" not in err and err.count(" blocks") == 1, err
    code, _, err = run_cli("export", store, "--format", "ptylab", "--out", tmp_path / "s.cxi")
    assert code == 2 and "PtyLab reads .h5" in err


@pytest.mark.reference
def test_fft_model_of_the_export_gives_the_patterns(natural_store, tmp_path):
    """numpy's FFT with the exported probe, positions and object: the stored expected counts,
    with no scale at all (the probe carries the photon scale)."""
    store = natural_store()
    out = str(tmp_path / "s.cxi")
    warnings = export(store, "cxi", out, stream=None).warnings
    assert len(warnings) == 1 and "even window" in warnings[0]
    ds = open_scan(store)
    obj, dx = ds.sample_truth.values, 1e-6
    with h5py.File(out, "r") as f:
        data = f["entry_1/data_1/data"][:]
        tr = f["entry_1/data_1/translation"][:]
        probe = f["entry_1/instrument_1/source_1/illumination"][0]
    for i in range(len(data)):
        r0 = round(tr[i, 1] / dx - float(ds.sample_y[0]) / dx) - 16
        c0 = round(tr[i, 0] / dx - float(ds.sample_x[0]) / dx) - 16
        far = np.abs(np.fft.fft2(probe * obj[r0 : r0 + 32, c0 : c0 + 32])) ** 2
        np.testing.assert_allclose(np.fft.fftshift(far), data[i], atol=1e-5 * data.max())


def test_a_sample_past_the_limit_exports_a_flat_object_over_its_region(
    natural_store, tmp_path, monkeypatch
):
    from jscan.pipeline.store import truth

    monkeypatch.setattr(truth, "SAMPLE_TRUTH_LIMIT", 1000)
    store = natural_store()
    ds = open_scan(store)
    assert "sample_truth" not in ds
    report = export(store, "ptychodus", str(tmp_path / "p"), stream=None)
    assert any("holds no sample_truth" in w for w in report.warnings)
    _, c0, rows, cols = json.loads(ds.attrs["sample_truth_ref"])["region"]
    with h5py.File(tmp_path / "p" / "truth.h5", "r") as f:
        assert f["object"].shape == (1, rows + 4, cols + 4)
        assert np.all(f["object"][:] == 1)
        assert f["object"].attrs["center_x_m"] == pytest.approx((c0 + cols / 2) * 1e-6)


def test_detector_effects_are_named_in_a_warning(simulated_store, small_scan, tmp_path):
    d = small_scan(dose=1e6, shape=(4, 4))
    d["optics"]["travel_distance"] = 0.0128
    d["detector"].update(background=2.0, gain=3.0)
    store = simulated_store(d, "adu.zarr")
    report = export(store, "cxi", str(tmp_path / "a.cxi"), stream=None)
    assert any("background, gain" in w for w in report.warnings)


def test_ptylab_refuses_what_its_reader_cannot_take(simulated_store, small_scan, tmp_path, tree):
    """A non-square window and a single position, refused in one line before writing."""
    from jscan.errors import UsageError

    y, x = np.mgrid[-16:16, -12:12]
    np.save(tmp_path / "probe.npy", np.exp(-(x**2 + y**2) / 40.0).astype(np.complex64))
    d = small_scan(shape=(2, 2))
    d["probe"] = {"kind": "file", "path": str(tmp_path / "probe.npy"), "dx": 1e-6}
    d["probe"]["wavelength"] = 500e-9
    wide = simulated_store(d, "wide.zarr")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError, match=r"^--format ptylab: PtyLab takes square patterns"):
        export(wide, "ptylab", str(out / "w.h5"), stream=None)
    one = simulated_store(small_scan(shape=(1, 1)), "one.zarr")
    with pytest.raises(UsageError, match=r"needs at least 2 positions"):
        export(one, "ptylab", str(out / "o.h5"), stream=None)
    assert tree(out) == []


def test_the_command_line_offers_every_format():
    from jscan.cliargs import build_parser
    from jscan.export import FORMATS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    choices = next(a for a in sub.choices["export"]._actions if a.dest == "format").choices
    assert tuple(choices) == FORMATS
