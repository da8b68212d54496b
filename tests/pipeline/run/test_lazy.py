"""simulate_lazy: the scan as a dask-backed Dataset, equal to the store bit for bit, computed
one block per task on the threaded scheduler and on a real LocalCluster.

Blocks and runner builds are counted by `BlockSimulator`'s per-process counters, inside the
block function: what ran, whether the scheduler fused the tasks or not.
"""

import pickle

import dask
import numpy as np
import pytest
import xarray as xr

from jscan.analysis import virtual_bright_field
from jscan.errors import ConfigError, StoreError
from jscan.inputs.config import parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.lazy import BlockSimulator, simulate_lazy
from jscan.pipeline.store import open_scan

BLOCK = 25  # 144 positions: 5 blocks of 25 and one of 19


def counters():
    return BlockSimulator.builds, BlockSimulator.blocks


def simulator_of(ds) -> BlockSimulator:
    graph = dict(ds.diffraction.data.__dask_graph__())
    (sim,) = [v for v in graph.values() if isinstance(v, BlockSimulator)]
    return sim


@pytest.mark.parametrize("dose", [0.0, 5e4], ids=["float", "poisson"])
@pytest.mark.parametrize("placement", ["exact", "snap"])
def test_lazy_equals_the_store_bit_for_bit(tmp_path, small_scan, to_toml, client, placement, dose):
    cfg = small_scan(dose=dose, block_size=BLOCK)
    cfg["scan"]["placement"] = placement
    config = parse_config(to_toml(cfg))
    store = simulate_scan(config, tmp_path / "s.zarr", client=client, progress=False)
    lazy = simulate_lazy(config)
    assert lazy.diffraction.data.chunks == ((25,) * 5 + (19,), (32,), (32,))
    with dask.config.set(scheduler="threads"):
        values = lazy.diffraction.values
    expected = store.diffraction.values
    assert values.dtype == expected.dtype == (np.uint32 if dose else np.float32)
    np.testing.assert_array_equal(values, expected)
    assert values.any() and (not dose or np.array_equal(values, values.astype(np.int64)))
    # the store's coordinates (all but its run state, `done`) with their attributes
    assert set(lazy.coords) == set(store.coords) - {"done"}
    assert ("x_nominal" in lazy.coords) == (placement == "snap")
    for name in lazy.coords:
        np.testing.assert_array_equal(lazy[name].values, store[name].values, err_msg=name)
        assert lazy[name].dtype == store[name].dtype, name
        assert lazy[name].attrs == store[name].attrs, name
    assert lazy.diffraction.attrs == store.diffraction.attrs
    for key, value in lazy.attrs.items():
        assert store.attrs[key] == value, key
    assert not {"format", "store_id", "complete", "run_history"} & set(lazy.attrs)
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(
            virtual_bright_field(lazy).values, virtual_bright_field(store).values
        )


def test_indexing_one_position_runs_one_block(small_scan, to_toml):
    ds = simulate_lazy(parse_config(to_toml(small_scan(dose=5e4, block_size=16))))
    with dask.config.set(scheduler="threads"):
        builds, blocks = counters()
        one = ds.diffraction.isel(position=37).values
        assert counters() == (builds + 1, blocks + 1)  # block 2, and the runner built once
        two = ds.diffraction.isel(position=[3, 140]).values  # blocks 0 and 8
        assert counters() == (builds + 1, blocks + 3)
        whole = ds.diffraction.values  # 9 blocks on several threads, one runner
        assert counters() == (builds + 1, blocks + 12)
    np.testing.assert_array_equal(one, whole[37])
    np.testing.assert_array_equal(two, whole[[3, 140]])
    assert simulator_of(ds).runner.arrays is None  # the runner never opened a store


def test_the_simulator_pickles_without_its_state(scan_config):
    sim = simulator_of(simulate_lazy(parse_config(scan_config())))
    built = sim.runner
    copy = pickle.loads(pickle.dumps(sim))
    assert copy._runner is None and copy.job.config == sim.job.config
    np.testing.assert_array_equal(copy.job.spec.probe, sim.job.spec.probe)
    extra = len(pickle.dumps(sim)) - sim.job.spec.probe.nbytes
    assert extra < 10_000  # the probe, the config and a few numbers: no device arrays
    builds = BlockSimulator.builds
    assert copy.runner is not built and copy.runner is copy.runner
    assert BlockSimulator.builds == builds + 1


def test_compute_on_a_distributed_client(client, scan_config):
    """The active Client computes it; each worker builds the state once per computation."""
    ds = simulate_lazy(parse_config(scan_config(dose=5e4, block_size=16)))
    with dask.config.set(scheduler="threads"):
        expected = ds.diffraction.values
    local = counters()
    for _ in range(2):
        before = client.run(counters)
        got = ds.compute()  # the module's Client is the default scheduler
        after = client.run(counters)
        np.testing.assert_array_equal(got.diffraction.values, expected)
        assert isinstance(got.diffraction.data, np.ndarray)
        builds = [after[w][0] - before[w][0] for w in after]
        blocks = [after[w][1] - before[w][1] for w in after]
        assert sum(blocks) == 9 and all(b <= 1 for b in builds), (builds, blocks)
        assert sum(builds) == sum(1 for b in blocks if b)
    before = client.run(counters)
    np.testing.assert_array_equal(ds.diffraction.isel(position=37).values, expected[37])
    after = client.run(counters)
    assert sum(after[w][1] - before[w][1] for w in after) == 1
    assert counters() == local  # nothing ran in this process


def test_to_zarr_writes_a_plain_store_xarray_reopens(tmp_path, scan_config, run_cli):
    ds = simulate_lazy(parse_config(scan_config(dose=5e4)))
    path = tmp_path / "lazy.zarr"
    with dask.config.set(scheduler="threads"):
        # consolidated=False: zarr warns that v3 does not standardise consolidated metadata
        ds.to_zarr(path, consolidated=False)
        expected = ds.diffraction.values
    back = xr.open_zarr(path, consolidated=False)
    np.testing.assert_array_equal(back.diffraction.values, expected)
    assert back.diffraction.dtype == np.uint32
    for name in ds.coords:
        np.testing.assert_array_equal(back[name].values, ds[name].values, err_msg=name)
    assert back.attrs["config_hash"] == ds.attrs["config_hash"]
    assert back.diffraction.attrs["units"] == "count"  # photons, as pint spells a count
    # a plain Zarr store, not a jscan store: the jscan tools say so
    with pytest.raises(StoreError, match="not a jscan scan"):
        open_scan(path)
    code, _, err = run_cli("verify", path)
    assert code == 2 and "not a jscan scan" in err


def test_block_size_override_and_early_refusal(tmp_path, small_scan, to_toml, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = parse_config(to_toml(small_scan()))
    ds = simulate_lazy(config, block_size=50)
    assert ds.diffraction.data.chunks[0] == (50, 50, 44) and ds.attrs["block_size"] == 50
    assert simulate_lazy(config, block_size=1000).diffraction.data.chunks[0] == (144,)
    cfg = small_scan(shape=(40, 40))  # 40 x 7.3 um steps leave the 160 um sample
    with pytest.raises(ConfigError, match="scan leaves the sample"):
        simulate_lazy(parse_config(to_toml(cfg)))
    (tmp_path / "scan.toml").write_text(to_toml(small_scan()))
    with dask.config.set(scheduler="threads"):
        part = simulate_lazy(tmp_path / "scan.toml").diffraction[:3].values
    assert part.shape == (3, 32, 32) and part.any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.toml"]  # no store written


def test_top_level_entry_points():
    import jscan.pipeline
    from jscan.pipeline import store
    from jscan.pipeline.run import simulate

    assert jscan.simulate_lazy is jscan.pipeline.simulate_lazy is simulate_lazy
    assert jscan.simulate_scan is simulate.simulate_scan and jscan.open_scan is store.open_scan
    assert {"simulate_lazy", "simulate_scan", "open_scan"} <= set(jscan.__all__)
