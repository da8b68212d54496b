"""jscan export: CXI, ptychodus and PtyLab files read back with h5py equal the store value for
value; an engine's forward model given the exported probe, positions and true object gives
the stored patterns back."""

import json

import numpy as np
import pytest

from jscan.errors import StoreError
from jscan.export import ScanSource, export
from jscan.pipeline.store import open_scan

h5py = pytest.importorskip("h5py")


@pytest.fixture
def natural_store(simulated_store, small_scan):
    """natural_store(dose=1e6, noise=False) -> path: the small scan (6x6 positions on whole
    sample pixels, 3 blocks of 16, camera at the natural sampling lambda z / (N dx)),
    simulated in this process."""

    def make(dose=1e6, noise=False):
        d = small_scan(dose=dose, shape=(6, 6))
        d["optics"]["travel_distance"] = 0.0128
        d["scan"].update(step=7e-6, start=[40e-6, 41e-6])
        d["detector"]["noise"] = noise
        return simulated_store(d, "natural.zarr")

    return make


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
    with h5py.File(out / "product-in.h5", "r") as f:
        np.testing.assert_array_equal(f["probe_position_x_m"][:], ds.x.values)
        np.testing.assert_array_equal(f["probe_position_y_m"][:], ds.y.values)
        np.testing.assert_array_equal(f["probe_position_indexes"][:], np.arange(144))
        np.testing.assert_array_equal(f["probe"][:], src.engine_probe())
        assert f["probe"].attrs["pixel_width_m"] == pytest.approx(1e-6)
        np.testing.assert_array_equal(f["object"][0], ds.sample_truth.values)
        assert f["object"].attrs["center_x_m"] == pytest.approx(float(ds.sample_x.mean()))
        assert f["object"].attrs["center_y_m"] == pytest.approx(float(ds.sample_y.mean()))
        for key in ("name", "comments", "detector_object_distance_m", "probe_energy_eV"):
            assert key in f.attrs
        assert f.attrs["exposure_time_s"] == 0.0


def test_ptylab_equals_the_store(partial_store, tmp_path):
    store = partial_store(range(9))
    out = str(tmp_path / "scan.h5")
    export(store, "ptylab", out, stream=None)
    ds = open_scan(store)
    cx, cy = float(ds.sample_x.mean()), float(ds.sample_y.mean())
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["ptychogram"][:], ds.diffraction.values)
        np.testing.assert_array_equal(f["encoder"][:], np.stack([ds.y - cy, ds.x - cx], axis=1))
        assert f["wavelength"][()] == ds.attrs["wavelength_m"]
        assert f["dxd"][()] == ds.attrs["camera_pixel_size_m"]
        assert f["zo"][()] == ds.attrs["travel_distance_m"]


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
    code, _, err = run_cli("export", store, "--format", "ptylab", "--out", tmp_path / "s.cxi")
    assert code == 2 and "PtyLab reads .h5" in err


def test_fft_model_of_the_export_gives_the_patterns(natural_store, tmp_path):
    """numpy's FFT with the exported probe, positions and object: the stored expected counts,
    with no scale at all (the probe carries the photon scale)."""
    store = natural_store()
    out = str(tmp_path / "s.cxi")
    assert export(store, "cxi", out, stream=None).warnings == ()
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


# pty-chi's own patch extractor converts a tensor that requires grad (its warning, not ours)
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad:UserWarning")
def test_ptychi_forward_model_gives_the_patterns(natural_store, tmp_path):
    """pty-chi's own forward model (patch extraction, FFT, |.|^2), given the exported probe,
    positions and the true object, reproduces the stored patterns to 1e-4 after one scale."""
    pytest.importorskip("ptychi")
    torch = pytest.importorskip("torch")
    import ptychi.api as api
    from ptychi.api.task import PtychographyTask

    store = natural_store()
    out = tmp_path / "ptychodus"
    export(store, "ptychodus", str(out), stream=None)
    with h5py.File(out / "diffraction.h5", "r") as f:
        data = f["patterns"][:]
    with h5py.File(out / "product-in.h5", "r") as f:
        x, y = f["probe_position_x_m"][:], f["probe_position_y_m"][:]
        probe = f["probe"][:]
        obj = f["object"][:]
        dx = f["object"].attrs["pixel_width_m"]
        cx, cy = f["object"].attrs["center_x_m"], f["object"].attrs["center_y_m"]
    # Pad the object by a margin (pty-chi crops one pixel more for its sub-pixel shift).
    obj = np.pad(obj, ((0, 0), (2, 2), (2, 2)), constant_values=1)
    rows, cols = obj.shape[1:]
    origin = np.round(np.array([rows, cols]) / 2) - 0.5  # pty-chi's pos_origin_coords
    h = probe.shape[-2]
    # pty-chi's patch starts at pos + origin - (H-1)/2; the probe's axis pixel is H//2
    py = (y - cy) / dx + (rows - 1) / 2 - origin[0] - h // 2 + (h - 1) / 2
    px = (x - cx) / dx + (cols - 1) / 2 - origin[1] - h // 2 + (h - 1) / 2
    options = api.LSQMLOptions()
    options.data_options.fft_shift = True  # the export's zero frequency is at pixel H//2
    options.data_options.wavelength_m = 500e-9
    options.object_options.pixel_size_m = float(dx)
    task = PtychographyTask(
        options,
        diffraction_data=data,
        object_data=obj.astype(np.complex64),
        probe_data=probe[None],
        probe_position_x_px=px,
        probe_position_y_px=py,
    )
    with torch.no_grad():
        model = task.reconstructor.forward_model(torch.arange(len(data)))
    model = np.fft.fftshift(model.cpu().numpy(), axes=(-2, -1))
    scale = float((model * data).sum() / (model * model).sum())
    assert scale == pytest.approx(1.0, rel=1e-4)  # the exported probe carries the photons
    assert np.abs(scale * model - data).max() <= 1e-4 * data.max()


def test_a_sample_past_the_limit_exports_a_flat_object_over_its_region(
    natural_store, tmp_path, monkeypatch
):
    from jscan.pipeline import truth

    monkeypatch.setattr(truth, "SAMPLE_TRUTH_LIMIT", 1000)
    store = natural_store()
    ds = open_scan(store)
    assert "sample_truth" not in ds
    export(store, "ptychodus", str(tmp_path / "p"), stream=None)
    _, c0, rows, cols = json.loads(ds.attrs["sample_truth_ref"])["region"]
    with h5py.File(tmp_path / "p" / "product-in.h5", "r") as f:
        assert f["object"].shape == (1, rows, cols)
        assert np.all(f["object"][:] == 1)
        assert f["object"].attrs["center_x_m"] == pytest.approx((c0 + (cols - 1) / 2) * 1e-6)


def test_detector_effects_are_named_in_a_warning(simulated_store, small_scan, tmp_path):
    d = small_scan(dose=1e6, shape=(4, 4))
    d["optics"]["travel_distance"] = 0.0128
    d["detector"].update(background=2.0, gain=3.0)
    store = simulated_store(d, "adu.zarr")
    report = export(store, "cxi", str(tmp_path / "a.cxi"), stream=None)
    assert any("background, gain" in w for w in report.warnings)
