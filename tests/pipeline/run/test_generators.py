"""Who draws the noise (`detector.generator`): runs on a real LocalCluster with either
generator, counts that depend on the position alone, the store's record, and a resume with
the other generator refused."""

import numpy as np
import pytest
import xarray as xr
import zarr

from jscan.errors import StoreError
from jscan.pipeline.run.simulate import simulate_scan


def _config(small_scan, to_toml, tmp_path, name, block_size=16, **detector):
    cfg = small_scan(dose=2e4, block_size=block_size)
    cfg["detector"].update(detector)
    path = tmp_path / f"{name}.toml"
    path.write_text(to_toml(cfg))
    return str(path)


def _counts(store):
    return xr.open_zarr(store)["diffraction"].values


@pytest.mark.parametrize("generator", ["host", "device"])
@pytest.mark.reference
def test_counts_are_poisson_about_the_expected_counts(
    generator, small_scan, to_toml, tmp_path, client
):
    """Against the store of noise = false (the means): (counts - lam) / sqrt(lam) over every
    bright pixel has mean 0 and variance 1 within 5 standard errors, and the store records
    its generator."""
    noisy = _config(small_scan, to_toml, tmp_path, "noisy", generator=generator)
    means = _config(small_scan, to_toml, tmp_path, "means", noise=False)
    simulate_scan(noisy, str(tmp_path / "n.zarr"), client=client, progress=False)
    simulate_scan(means, str(tmp_path / "m.zarr"), client=client, progress=False)
    counts = _counts(tmp_path / "n.zarr").astype(np.float64)
    lam = _counts(tmp_path / "m.zarr").astype(np.float64)
    bright = lam > 5  # the normal limit of a Poisson count is good to a few % there
    z = (counts[bright] - lam[bright]) / np.sqrt(lam[bright])
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 5 * se and abs(z.var() - 1) < 5 * np.sqrt(2) * se + 0.05
    assert counts[lam == 0].sum() == 0
    assert zarr.open_group(str(tmp_path / "n.zarr")).attrs["generator"] == generator
    assert zarr.open_group(str(tmp_path / "m.zarr")).attrs["generator"] == "none"


def test_device_counts_do_not_depend_on_the_block_size(small_scan, to_toml, tmp_path, client):
    a = _config(small_scan, to_toml, tmp_path, "a", block_size=16, generator="device")
    b = _config(small_scan, to_toml, tmp_path, "b", block_size=40, generator="device")
    simulate_scan(a, str(tmp_path / "a.zarr"), client=client, progress=False)
    simulate_scan(b, str(tmp_path / "b.zarr"), client=client, progress=False)
    np.testing.assert_array_equal(_counts(tmp_path / "a.zarr"), _counts(tmp_path / "b.zarr"))


def test_a_resume_with_the_other_generator_is_refused(small_scan, to_toml, tmp_path, client):
    """A store whose counts the host drew, resumed by a run that draws on the device, is
    refused in one line naming both generators, before anything is written."""
    made = _config(small_scan, to_toml, tmp_path, "made", generator="device")
    store = str(tmp_path / "s.zarr")
    simulate_scan(made, store, client=client, progress=False)
    root = zarr.open_group(store)
    root.attrs["generator"] = "host"  # as if made with generator = "host"
    zarr.open_array(store, path="block_done", mode="r+")[3] = 0  # a block left to resume
    before = _counts(store)
    with pytest.raises(StoreError) as err:
        simulate_scan(made, store, client=client, resume=True, progress=False)
    message = str(err.value)
    assert "\n" not in message and "host generator" in message and "device one" in message
    np.testing.assert_array_equal(_counts(store), before)
