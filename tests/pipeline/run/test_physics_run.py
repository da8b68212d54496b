"""Whole runs with probe modes and the detector model: real LocalCluster, real Zarr stores."""

import dask
import numpy as np
import pytest

from jscan.errors import StoreError
from jscan.inputs.config import parse_config
from jscan.inputs.detector_model import detector_mask
from jscan.pipeline.run.lazy import simulate_lazy
from jscan.pipeline.run.prepare import prepare
from jscan.pipeline.run.simulate import simulate_scan
from jscan.pipeline.store import open_scan


@pytest.fixture
def physics_config(small_scan, to_toml, tmp_path):
    """The small scan with 3 probe modes and every detector effect, written to tmp_path."""
    bad = np.zeros((32, 32), bool)
    bad[4, 9] = bad[20, 30] = True
    np.save(tmp_path / "bad.npy", bad)
    data = small_scan(dose=2e5, block_size=16)
    data["probe"].update(modes=3, mode_power_ratio=0.6)
    data["detector"].update(
        background=0.3,
        psf_sigma=0.7,
        gain=2.0,
        readout_noise=1.5,
        saturation=4000,
        bad_pixels="bad.npy",
        gaps={"rows": [15], "cols": [7, 8]},
    )
    (tmp_path / "scan.toml").write_text(to_toml(data))
    return tmp_path / "scan.toml"


def test_modes_and_detector_are_bit_identical_whatever_the_block_size(
    physics_config, tmp_path, client
):
    runs = [
        simulate_scan(
            physics_config,
            tmp_path / f"b{size}.zarr",
            client=client,
            block_size=size,
            progress=False,
        )
        for size in (16, 7)
    ]
    a, b = (ds.diffraction.values for ds in runs)
    assert a.dtype == np.uint16 and a.shape == (144, 32, 32)  # saturation 4000 fits uint16
    np.testing.assert_array_equal(a, b)
    assert a.max() <= 4000 and a.max() > 100
    cfg = parse_config(physics_config.read_text(), base_dir=tmp_path)
    mask = detector_mask(cfg, (32, 32))
    assert mask.sum() == 32 + 2 * 32 - 2 + 2  # one gap row, two gap columns, two bad pixels
    for ds in (runs[0], open_scan(tmp_path / "b7.zarr")):
        np.testing.assert_array_equal(ds.mask.values, mask)
        assert ds.mask.dims == ("det_y", "det_x")
    assert np.all(a[:, mask] == 0) and np.all(a[:, ~mask].mean(axis=0) > 0)
    # ADU: a pint-readable "1", named in the long_name
    assert runs[0].diffraction.attrs["units"] == "1"
    assert "ADU" in runs[0].diffraction.attrs["long_name"]
    lazy = simulate_lazy(physics_config, block_size=25)
    np.testing.assert_array_equal(lazy.mask.values, mask)
    np.testing.assert_array_equal(lazy.diffraction.values, a)


def test_modes_run_is_the_power_weighted_sum_of_single_mode_runs(
    small_scan, to_toml, tmp_path, random_field
):
    n = 32
    r2 = ((np.arange(n) - n // 2)[:, None] ** 2 + (np.arange(n) - n // 2)[None, :] ** 2) * 1.0
    modes = random_field((2, n, n)) * np.exp(-r2 / 6.0**2)
    modes[1] *= 0.6
    patterns, powers = [], []
    for name, probe in (("both", modes), ("a", modes[0]), ("b", modes[1])):
        folder = tmp_path / name
        folder.mkdir()
        np.save(folder / "probe.npy", probe)
        data = small_scan(block_size=48)
        data["probe"] = {"kind": "file", "path": "probe.npy", "dx": 1e-6, "wavelength": 500e-9}
        (folder / "scan.toml").write_text(to_toml(data))
        with dask.config.set(scheduler="sync"):
            patterns.append(simulate_lazy(folder / "scan.toml").diffraction.values)
        powers.append(float(np.sum(np.abs(probe.astype(np.complex128)) ** 2)))
    both, a, b = patterns
    expected = (powers[1] * a + powers[2] * b) / powers[0]  # each run has unit total power
    assert both.shape == (144, 32, 32)
    np.testing.assert_allclose(both, expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_resume_refuses_a_changed_bad_pixel_file(physics_config, tmp_path, client):
    store = tmp_path / "s.zarr"
    simulate_scan(physics_config, store, client=client, progress=False)
    prepare(physics_config, store, resume=True)  # unchanged: accepted
    bad = np.load(tmp_path / "bad.npy")
    bad[0, 0] = True
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(StoreError, match=r"bad-pixel file of .* changed since it was made"):
        prepare(physics_config, store, resume=True)
