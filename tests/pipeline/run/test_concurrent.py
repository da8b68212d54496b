"""Several scans submitted to one cluster at the same time, to different stores (a real
LocalCluster of worker processes, real stores)."""

import threading

import numpy as np
import xarray as xr

from jscan.pipeline.run.simulate import simulate_scan


def test_two_runs_at_once_equal_runs_made_alone(small_scan, to_toml, tmp_path, client):
    """Two configs (other seeds, doses, block sizes) run from two threads of one client:
    each store is bit for bit the store of the same config run alone, and each run's
    history is its own."""
    configs = {}
    for name, (dose, block, seed) in {"a": (2e4, 16, 1), "b": (0.0, 24, 2)}.items():
        cfg = small_scan(dose=dose, block_size=block, seed=seed)
        path = tmp_path / f"{name}.toml"
        path.write_text(to_toml(cfg))
        configs[name] = str(path)
    errors = []

    def run(name):
        try:
            simulate_scan(
                configs[name],
                str(tmp_path / f"{name}-together.zarr"),
                client=client,
                progress=False,
            )
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(name,)) for name in configs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    for name, cfg in configs.items():
        simulate_scan(cfg, str(tmp_path / f"{name}-alone.zarr"), client=client, progress=False)
        together = xr.open_zarr(tmp_path / f"{name}-together.zarr")
        alone = xr.open_zarr(tmp_path / f"{name}-alone.zarr")
        np.testing.assert_array_equal(together.diffraction.values, alone.diffraction.values)
        np.testing.assert_array_equal(together.x.values, alone.x.values)
        history = together.attrs["run_history"]
        assert [e["event"] for e in history] == ["start", "finish"]
        assert history[-1]["blocks"] == together.attrs["n_blocks"]
