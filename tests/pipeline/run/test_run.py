"""The scan pipeline on real LocalCluster worker processes and real Zarr stores on disk."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import xarray as xr
import zarr

import jscan
from jscan.errors import StoreError, UsageError
from jscan.inputs.config import parse_config
from jscan.inputs.samples import make_probe, sample_region
from jscan.inputs.scan import scan_positions
from jscan.pipeline import open_scan, simulate_scan
from jscan.pipeline.run.plan import plan_scan

distributed = pytest.importorskip("distributed")


def reference(config_text):
    """The same scan in-process with simple_microscope on the whole sample.

    The plan's positions are those simulated: placed again, they give the same windows and
    shifts, so the [scan] placement mode decides alone.
    """
    cfg = parse_config(config_text)
    plan = plan_scan(cfg)
    sample = sample_region(cfg.sample, 0, 0, *plan.sample_shape)
    light = jscan.make_optical_wavefront(make_probe(cfg.probe), cfg.probe.wavelength, cfg.probe.dx)
    o = cfg.optics
    out = jscan.simple_microscope(
        jscan.make_sample_function(sample, cfg.sample.dx),
        plan.positions(),
        light,
        o.zoom_factor,
        o.aperture_diameter,
        o.travel_distance,
        o.camera_pixel_size,
        np.asarray(o.aperture_center),
        placement=cfg.scan.placement,
    )
    np.testing.assert_allclose(np.asarray(out.positions), plan.positions(), rtol=1e-7)
    return np.asarray(out.image_data), plan


def test_store_round_trip_matches_in_process_microscope(tmp_path, scan_config, client):
    text = scan_config(block_size=25)
    ds = simulate_scan(parse_config(text), tmp_path / "s.zarr", client=client, progress=False)
    ref, plan = reference(text)
    assert ds.diffraction.dtype == np.float32
    assert ds.diffraction.shape == ref.shape == (144, 32, 32)
    np.testing.assert_allclose(ds.diffraction.values, ref, rtol=1e-5, atol=1e-6 * ref.max())
    np.testing.assert_array_equal(ds.x.values, plan.positions()[:, 0])
    np.testing.assert_array_equal(ds.scan_row.values, np.repeat(np.arange(12), 12))
    assert ds.det_x.attrs["units"] == "m" and ds.x.attrs["units"] == "m"
    np.testing.assert_allclose(ds.det_x.values, (np.arange(32) - 16) * 200e-6)
    assert ds.attrs["config_hash"] == parse_config(text).hash
    assert ds.attrs["wavelength_m"] == 500e-9 and ds.attrs["camera_pixel_size_m"] == 200e-6
    assert ds.block_done.values.all() and ds.block_done.size == 6
    arr = zarr.open_array(tmp_path / "s.zarr", path="diffraction")
    assert arr.shards == (25, 32, 32)  # one shard per block: writes need no lock


def test_exact_and_snap_placement_end_to_end(tmp_path, small_scan, to_toml, client):
    """7.3 um steps at dx = 1 um: sub-pixel positions; the store holds what was simulated."""
    cfg = small_scan(block_size=25)
    text = to_toml(cfg)
    cfg["scan"]["placement"] = "snap"
    snap_text = to_toml(cfg)
    exact = simulate_scan(parse_config(text), tmp_path / "e.zarr", client=client, progress=False)
    snap = simulate_scan(
        parse_config(snap_text), tmp_path / "s.zarr", client=client, progress=False
    )
    for ds, cfg_text in ((exact, text), (snap, snap_text)):
        ref, plan = reference(cfg_text)
        np.testing.assert_allclose(ds.diffraction.values, ref, rtol=1e-5, atol=1e-6 * ref.max())
        np.testing.assert_array_equal(ds.x.values, plan.positions()[:, 0])
        np.testing.assert_array_equal(ds.y.values, plan.positions()[:, 1])
    requested = scan_positions(parse_config(text).scan, (160, 160), 1e-6)
    np.testing.assert_array_equal(exact.x.values, requested[:, 0])  # none within tol of a pixel
    assert "x_nominal" not in exact.coords
    np.testing.assert_array_equal(snap.x_nominal.values, requested[:, 0])
    np.testing.assert_array_equal(snap.y_nominal.values, requested[:, 1])
    assert snap.y_nominal.attrs["units"] == "m" and "long_name" in snap.x_nominal.attrs
    # snap: the simulated positions are the windows' axis pixels, up to 1/2 px from the request
    np.testing.assert_allclose(snap.x.values / 1e-6 % 1, 0, atol=1e-9)
    assert 0.3 < np.abs(snap.x.values - requested[:, 0]).max() / 1e-6 < 1
    assert rel_diff(exact.diffraction.values, snap.diffraction.values) > 1e-2


def rel_diff(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_lazy_open_without_jscan_and_partial_reads(tmp_path, scan_config, client):
    store = tmp_path / "lazy.zarr"
    simulate_scan(parse_config(scan_config()), store, client=client, progress=False)
    ds = open_scan(store)
    assert type(ds.diffraction.data).__module__.startswith("dask")
    part = ds.diffraction.isel(position=slice(20, 23)).values
    np.testing.assert_array_equal(part, ds.diffraction.values[20:23])
    script = (
        "import sys, warnings; warnings.simplefilter('error'); sys.modules['jscan'] = None\n"
        "import xarray as xr\n"
        f"ds = xr.open_zarr({str(store)!r})\n"
        "print(ds.diffraction.shape, float(ds.diffraction[5].sum()) > 0, ds.x.attrs['units'])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(144, 32, 32) True m"


def test_block_size_and_worker_count_invariance_with_noise(tmp_path, scan_config, client):
    runs = {}
    for b in (7, 50):
        ds = simulate_scan(
            parse_config(scan_config(dose=5e4, block_size=b)),
            tmp_path / f"b{b}.zarr",
            client=client,
            progress=False,
        )
        runs[b] = ds.diffraction.values
    ds = simulate_scan(
        parse_config(scan_config(dose=5e4, block_size=144)),
        tmp_path / "one.zarr",
        n_workers=1,
        progress=False,
    )
    runs["1 worker"] = ds.diffraction.values
    assert runs[7].dtype == np.uint32
    totals = runs[7].reshape(144, -1).sum(axis=1)
    assert 1e4 < totals.mean() < 5e4  # the aperture and the sample absorb part of the dose
    for other in (50, "1 worker"):
        np.testing.assert_array_equal(runs[7], runs[other])
    ref, _ = reference(scan_config())
    # Poisson: counts / factor scatter around the noiseless intensities.
    assert np.corrcoef(runs[7].ravel(), ref.ravel())[0, 1] > 0.95


def test_history_blocks_per_worker_and_refusals(tmp_path, scan_config, client):
    store = tmp_path / "h.zarr"
    text = scan_config(block_size=9)  # 16 blocks over 2 workers
    simulate_scan(parse_config(text), store, client=client, progress=False)
    history = xr.open_zarr(store).attrs["run_history"]
    assert [h["event"] for h in history] == ["start", "finish"]
    assert history[1]["blocks"] == 16 and history[0]["workers"] == 2
    with pytest.raises(StoreError, match="already exists"):
        simulate_scan(parse_config(text), store, client=client, progress=False)
    with pytest.raises(StoreError, match="another config"):
        simulate_scan(
            parse_config(scan_config(block_size=9, seed=4)),
            store,
            client=client,
            resume=True,
            progress=False,
        )
    with pytest.raises(StoreError, match="block-size 9"):
        simulate_scan(
            parse_config(text), store, client=client, resume=True, block_size=10, progress=False
        )
    # Resuming a finished store recomputes nothing: it is checked, and no run is started.
    simulate_scan(parse_config(text), store, client=client, resume=True, progress=False)
    assert xr.open_zarr(store).attrs["run_history"] == history


def test_dashboard_answers(client):
    with urllib.request.urlopen(client.dashboard_link, timeout=30) as reply:
        body = reply.read().decode()
        assert reply.status == 200
    assert "Dask needs bokeh" not in body


def _done(store):
    try:
        return int(zarr.open_array(store, path="block_done", mode="r")[:].sum())
    except Exception:  # the store is being created
        return 0


def _cli(*args):
    """`jscan ARGS` as a process in a session of its own, to kill with its cluster."""
    return subprocess.Popen(
        [sys.executable, "-m", "jscan.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(proc, timeout=300):
    """(exit code, stderr) of a _cli process, its pipes closed."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@pytest.mark.slow
def test_killed_run_resumes_bit_identical(tmp_path, run_cli, scan_config):
    cfg = tmp_path / "scan.toml"
    cfg.write_text(scan_config(dose=2e4, block_size=4, shape=(14, 14)))  # 49 blocks
    store = tmp_path / "killed.zarr"
    run = _cli("simulate", str(cfg), "--out", str(store), "--workers", "1")
    deadline = time.time() + 120
    while _done(store) < 5 and time.time() < deadline and run.poll() is None:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the client, its LocalCluster and workers at once
    _finish(run)
    before = _done(store)
    assert 5 <= before < 49, "the run finished before it could be killed; slow it down"
    # A second run while the store exists is refused without --resume.
    rc, _, err = run_cli("simulate", cfg, "--out", store, "--no-progress", process=True)
    assert rc == 2 and "already exists" in err
    rc, _, err = run_cli(
        "simulate", cfg, "--out", store, "--resume", "--workers", "1", "--no-progress", process=True
    )
    assert rc == 0, err
    history = xr.open_zarr(store).attrs["run_history"]
    assert history[-1]["event"] == "finish" and history[-1]["blocks"] == 49 - before
    rc, _, err = run_cli(
        "simulate",
        cfg,
        "--out",
        tmp_path / "full.zarr",
        "--workers",
        "1",
        "--no-progress",
        process=True,
    )
    assert rc == 0, err
    np.testing.assert_array_equal(
        open_scan(store).diffraction.values, open_scan(tmp_path / "full.zarr").diffraction.values
    )


def test_second_run_on_a_busy_store_is_refused(tmp_path, run_cli, scan_config):
    from jscan.pipeline.store.lock import RunLock

    cfg = tmp_path / "scan.toml"
    cfg.write_text(scan_config(block_size=50))
    store = tmp_path / "busy.zarr"
    rc, _, err = run_cli("simulate", cfg, "--out", store, "--no-progress", process=True)
    assert rc == 0, err
    before = sorted(p.name for p in store.rglob("*"))
    with RunLock(str(store)):  # this test process plays the run in progress
        rc, _, err = run_cli("simulate", cfg, "--out", store, "--resume", process=True)
    assert rc == 2 and f"pid {os.getpid()}" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in store.rglob("*")) == before
    # The lock file a killed run leaves behind holds no lock: the next run goes ahead.
    lock = store / ".jscan-run.lock"
    assert lock.exists()
    rc, _, err = run_cli("simulate", cfg, "--out", store, "--resume", "--no-progress", process=True)
    assert rc == 0, err


@pytest.mark.slow
def test_worker_killed_mid_run_gives_the_same_result(tmp_path, scan_config):
    text = scan_config(dose=1e4, block_size=3)  # 48 blocks
    # A cluster of its own: the test kills one of its workers.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        store = tmp_path / "faulty.zarr"
        result = {}
        thread = threading.Thread(
            target=lambda: result.update(
                ds=simulate_scan(parse_config(text), store, client=c, progress=False)
            )
        )
        thread.start()
        deadline = time.time() + 120
        while _done(store) < 4 and time.time() < deadline:
            time.sleep(0.02)
        victim = next(iter(c.scheduler_info(n_workers=-1)["workers"]))
        pid = c.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        thread.join(300)
        assert "ds" in result
        assert _done(store) == 48
    ref = simulate_scan(parse_config(text), tmp_path / "ref.zarr", n_workers=1, progress=False)
    np.testing.assert_array_equal(result["ds"].diffraction.values, ref.diffraction.values)
    assert json.dumps(result["ds"].attrs["run_history"])  # plain JSON


def test_spiral_scan_over_a_zarr_sample_reads_only_block_regions(
    tmp_path, small_scan, to_toml, client
):
    rng = np.random.default_rng(5)
    obj = np.exp(1j * rng.uniform(0, 1.5, (200, 220))).astype(np.complex64)
    sample_store = tmp_path / "object.zarr"
    arr = zarr.create_array(
        store=sample_store,
        name="obj",
        shape=obj.shape,
        chunks=(20, 20),
        dtype="complex64",
        zarr_format=3,
    )
    arr[:] = obj
    cfg = small_scan(block_size=16)
    cfg["sample"] = {"kind": "zarr", "path": str(sample_store), "array": "obj", "dx": 1.0e-6}
    cfg["scan"] = {"kind": "spiral", "n": 60, "step": 6.1e-6}
    text = to_toml(cfg)
    cfg = parse_config(text)
    ds = simulate_scan(cfg, tmp_path / "spiral.zarr", client=client, progress=False)
    assert "scan_row" not in ds.coords and ds.diffraction.shape == (60, 32, 32)
    ref, plan = reference(text)
    np.testing.assert_allclose(ds.diffraction.values, ref, rtol=1e-5, atol=1e-6 * ref.max())
    # Each block reads one fixed-size region, smaller than the sample.
    assert plan.region_shape[0] * plan.region_shape[1] < obj.size


def test_file_url_store(tmp_path, scan_config, client):
    url = f"file://{tmp_path}/nested/url.zarr"  # a folder that does not exist yet
    ds = simulate_scan(parse_config(scan_config(block_size=72)), url, client=client, progress=False)
    assert (tmp_path / "nested" / "url.zarr" / "zarr.json").is_file()
    assert int(ds.block_done.sum()) == 2
    np.testing.assert_array_equal(open_scan(url).diffraction.values, ds.diffraction.values)


def test_persistent_compilation_cache_in_a_private_folder(tmp_path, scan_config):
    from jscan.pipeline.run.runner import private_dir

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="writable by others"):
        private_dir(str(shared))
    cache = tmp_path / "cache"
    simulate_scan(
        parse_config(scan_config(block_size=72)),
        tmp_path / "c.zarr",
        # Worker processes of their own: a worker in this process may find the microscope
        # compiled in memory by an earlier test, and then has nothing to write.
        n_workers=2,
        progress=False,
        compilation_cache=str(cache),
    )
    assert cache.stat().st_mode & 0o777 == 0o700
    assert any(cache.iterdir())  # the workers wrote their executables there


@pytest.mark.parametrize("placement", ["exact", "snap"])
def test_a_run_with_position_errors_equals_a_file_scan_at_its_true_positions(
    tmp_path, client, small_scan, to_toml, placement
):
    """x, y are where the probe was (commanded + jitter + drift), x_nominal, y_nominal where it
    was sent; the patterns are those of a file scan at the true positions, noise included,
    whatever the block size."""
    data = small_scan(dose=1e4, block_size=16)
    data["scan"].update(jitter=0.4e-6, drift=[3e-9, -2e-9], seed=5, placement=placement)
    text = to_toml(data)
    ds = simulate_scan(parse_config(text), tmp_path / "err.zarr", client=client, progress=False)
    commanded = np.concatenate([ds.x_nominal.values[:, None], ds.y_nominal.values[:, None]], 1)
    raster = parse_config(to_toml(small_scan())).scan
    np.testing.assert_array_equal(commanded, scan_positions(raster, (160, 160), 1e-6))
    moved = np.hypot(ds.x.values - commanded[:, 0], ds.y.values - commanded[:, 1])
    assert 0.1e-6 < np.median(moved) < 1.5e-6  # jitter 0.4 um rms per axis (+ drift)

    np.save(tmp_path / "true.npy", np.stack([ds.x.values, ds.y.values], axis=1))
    data["scan"] = {"kind": "file", "path": str(tmp_path / "true.npy"), "placement": placement}
    data["run"]["block_size"] = 25
    ref = simulate_scan(
        parse_config(to_toml(data)), tmp_path / "file.zarr", client=client, progress=False
    )
    np.testing.assert_array_equal(ref.x.values, ds.x.values)
    np.testing.assert_array_equal(ref.diffraction.values, ds.diffraction.values)
