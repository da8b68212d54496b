"""The run's worker state in a WorkerPlugin, the typed block receipt, and the worker's imports.

Real LocalCluster worker processes and real stores. This module imports only the worker side
at the top: functions sent to the workers by reference import it there, and a worker must
not get the client side (the run loop, the live page) that way.
"""

import dataclasses
import gc
import os
import pickle
import signal
import subprocess
import sys
import time
import weakref

import numpy as np
import pytest
import zarr

from jscan.core.sharding import to_host
from jscan.inputs.config import parse_config
from jscan.inputs.detectors import masked_sums
from jscan.pipeline.live.receipt import BlockReceipt, preview_pattern
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe
from jscan.pipeline.run.worker import ScanWorker, block_task
from jscan.pipeline.store import create

distributed = pytest.importorskip("distributed")

BLOCK = 16  # 144 positions: 9 blocks


def new_store(tmp_path, text, name="s.zarr"):
    """(job, plan): a new store for the config ``text`` and the job of a run that writes it."""
    cfg = parse_config(text)
    plan = plan_scan(cfg)
    store = str(tmp_path / name)
    spec = describe(cfg, plan)
    return ScanJob(spec, store, store_id=create(store, spec)), plan


def submit_blocks(client, name, plan, blocks, **kw):
    futures = [client.submit(block_task, name, b, pure=False, **kw) for b in blocks]
    return client.gather(futures)


# Run on the workers (client.run): the state of plugin ``name`` in that process.
# _HELD keeps the plugin object alive on purpose (as anything on the worker might): its
# teardown, not the plugin's own end, must free the state.
_HELD = {}  # worker-side: name -> (plugin, weak reference to its runner)


def _runner_state(dask_worker, name):
    plugin = dask_worker.plugins.get(name)
    runner = None if plugin is None else plugin.runner
    if runner is None:
        return None
    _HELD[name] = plugin, weakref.ref(runner)
    return {"id": id(runner), "blocks": runner.blocks, "store_open": runner.arrays is not None}


def _freed(dask_worker, name):
    gc.collect()
    plugin, runner = _HELD.pop(name)
    return name not in dask_worker.plugins and plugin.runner is None and runner() is None


def _jscan_plugins(dask_worker):
    return sorted(n for n in dask_worker.plugins if n.startswith("jscan-"))


def test_state_is_built_once_per_worker_and_freed_at_teardown(tmp_path, client, scan_config):
    job, plan = new_store(tmp_path, scan_config(block_size=BLOCK))
    plugin = ScanWorker(job)
    assert plugin.name == f"jscan-{job.store_id}"
    with plugin.registered(client) as name:
        before = client.run(_runner_state, name=name)
        assert len(before) == 2
        assert all(s is not None and s["store_open"] and s["blocks"] == 0 for s in before.values())
        receipts = submit_blocks(client, name, plan, range(plan.n_blocks))
        after = client.run(_runner_state, name=name)
        # every block ran with a state built at setup: one per process, the same one
        assert {w: s["id"] for w, s in after.items()} == {w: s["id"] for w, s in before.items()}
        assert sum(s["blocks"] for s in after.values()) == plan.n_blocks
        assert {r.worker for r in receipts} <= set(after)
    assert all(client.run(_freed, name=name).values())  # teardown let the state go
    assert client.run_on_scheduler(lambda dask_scheduler: name not in dask_scheduler.worker_plugins)
    assert zarr.open_array(job.store, path="block_done")[:].all()


def test_two_runs_in_a_row_on_one_cluster_use_their_own_state(
    tmp_path, client, small_scan, scan_config, to_toml
):
    from jscan.pipeline import simulate_scan

    star = small_scan(block_size=24, phantom="siemens_star")
    star["optics"]["aperture_diameter"] = 18.0e-6
    texts = {"cells": scan_config(block_size=BLOCK), "star": to_toml(star)}
    stored = {}
    for key, text in texts.items():
        ds = simulate_scan(
            parse_config(text), tmp_path / f"{key}.zarr", client=client, progress=False
        )
        stored[key] = ds.diffraction.values
        # the run's plugin is gone from the scheduler and from every worker
        assert not any(client.run(_jscan_plugins).values())
        assert not client.run_on_scheduler(
            lambda dask_scheduler: [n for n in dask_scheduler.worker_plugins if "jscan" in n]
        )
    for key, text in texts.items():  # each store equals its own config, simulated in-process
        cfg = parse_config(text)
        plan = plan_scan(cfg)
        runner = BlockRunner(ScanJob(describe(cfg, plan), ""))
        blocks = [plan.block(b) for b in range(plan.n_blocks)]
        ref = np.concatenate(
            [to_host(runner.simulate(g.origins, g.shifts))[: g.n_valid] for g in blocks]
        )
        np.testing.assert_array_equal(stored[key], ref)
    assert not np.allclose(stored["cells"], stored["star"])


@pytest.mark.slow
def test_a_killed_workers_replacement_gets_the_plugin(tmp_path, scan_config):
    job, plan = new_store(tmp_path, scan_config(block_size=BLOCK))
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
        ScanWorker(job).registered(c) as name,
    ):
        (victim,) = c.scheduler_info(n_workers=-1)["workers"]
        assert c.run(_runner_state, name=name)[victim]["store_open"]
        os.kill(c.run(os.getpid)[victim], signal.SIGKILL)  # the nanny starts a new process
        deadline = time.time() + 120
        while time.time() < deadline:
            workers = set(c.scheduler_info(n_workers=-1)["workers"]) - {victim}
            if workers:
                break
            time.sleep(0.1)
        (new,) = workers
        # The scheduler lists a new worker before its plugins are set up (it takes no task
        # until then): wait for the state.
        state = None
        while state is None and time.time() < deadline:
            state = c.run(_runner_state, name=name, workers=[new])[new]
            time.sleep(0.1)
        assert state is not None and state["store_open"] and state["blocks"] == 0
        receipts = submit_blocks(c, name, plan, range(3), workers=[new])
        assert {r.worker for r in receipts} == {new}
        assert c.run(_runner_state, name=name)[new]["blocks"] == 3


def test_receipt_is_typed_small_and_matches_the_store(tmp_path, scan_config):
    job, plan = new_store(tmp_path, scan_config(dose=1e4, block_size=BLOCK))
    runner = BlockRunner(job)
    start, stop = plan.block_range(2)
    r = runner.run(2)
    assert isinstance(r, BlockReceipt) and r.worker == "in-process"
    assert (r.block, r.positions) == (2, BLOCK) and r.seconds == r.compute_s + r.write_s > 0
    stored = zarr.open_array(job.store, path="diffraction")[start:stop]
    assert r.bytes == stored.nbytes
    # The bright field comes binned onto the page's grid: per cell, the sum and the count.
    bright = masked_sums(stored, runner.bright_field)
    cells = plan.page_grid.cells(None, (np.arange(start, stop) // 12, np.arange(start, stop) % 12))
    np.testing.assert_array_equal(r.bf_cells, np.unique(cells))
    np.testing.assert_allclose(r.bf_sums, [bright[cells == c].sum() for c in r.bf_cells])
    np.testing.assert_array_equal(r.bf_counts, [(cells == c).sum() for c in r.bf_cells])
    assert r.bf_sums.dtype == np.float64 and r.bf_sums.min() > 0
    np.testing.assert_array_equal(r.pattern, preview_pattern(stored[-1]))
    assert len(pickle.dumps(r)) < 8 * BLOCK + 4 * 32 * 32 + 1024  # a few kB
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.positions = 0


def test_a_worker_imports_no_page_code(tmp_path, client, scan_config):
    client_side = (
        "jscan.pipeline.live.page",
        "jscan.pipeline.live.livepage",
        "jscan.pipeline.run.simulate",
    )
    code = "import sys, jscan.pipeline.run.worker; print(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "jscan.pipeline.run.worker" in out and not set(client_side) & set(out)
    # and in a worker process that has run blocks
    job, plan = new_store(tmp_path, scan_config(block_size=BLOCK))
    with ScanWorker(job).registered(client) as name:
        submit_blocks(client, name, plan, range(4))

        def jscan_modules():  # sent by value: it imports nothing itself
            return [m for m in sys.modules if m.startswith("jscan")]

        for modules in client.run(jscan_modules).values():
            assert "jscan.pipeline.run.worker" in modules
            assert not set(client_side) & set(modules), modules


def test_a_block_outside_its_planned_region_is_refused(tmp_path, scan_config):
    """JAX would clamp a window that leaves the region it reads (dynamic_slice): the runner
    refuses such origins instead of simulating the wrong place."""
    job, plan = new_store(tmp_path, scan_config(block_size=BLOCK))
    runner = BlockRunner(job)
    origins = plan.block(0).origins.copy()
    origins[-1] += plan.region_shape  # one window far beyond the others
    with pytest.raises(ValueError, match="leave the sample region its run planned"):
        runner.simulate(origins)
