"""Stores made atomically, locked while a run writes, replaced only when asked: races,
crashes, foreign stores and lock files that point elsewhere.

Real stores on disk, real processes and LocalCluster workers.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import zarr

from jscan.errors import StoreError
from jscan.inputs.config import load_config, parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.prepare import prepare
from jscan.pipeline.run.spec import describe
from jscan.pipeline.run.worker import ScanWorker
from jscan.pipeline.store import create, open_scan
from jscan.pipeline.store.lock import LOCK_NAME, RunLock

BLOCK = 16  # 144 positions: 9 blocks


def test_store_id_of_another_store_is_refused_by_the_worker(tmp_path, client, scan_config):
    cfg = parse_config(scan_config(block_size=BLOCK))
    plan = plan_scan(cfg)
    store = str(tmp_path / "s.zarr")
    spec = describe(cfg, plan)
    real_id = create(store, spec)
    job = ScanJob(spec, store, store_id="0" * 32)
    # Every worker checks the store as it sets up the run's state: the run stops there.
    with pytest.raises(StoreError) as err, ScanWorker(job).registered(client):
        pass
    message = str(err.value)
    assert "sees another store" in message and real_id in message and "\n" not in message
    assert not zarr.open_array(store, path="block_done")[:].any()
    assert not (tmp_path / "s.zarr" / "diffraction" / "c").exists()  # nothing written


def test_relative_out_becomes_absolute(tmp_path, monkeypatch, scan_config):
    monkeypatch.chdir(tmp_path)
    _, store = prepare(parse_config(scan_config()), "rel.zarr")
    assert store == str(tmp_path / "rel.zarr")


def test_crash_between_build_and_rename_leaves_no_store(tmp_path, run_cli, client, scan_config):
    (tmp_path / "scan.toml").write_text(scan_config(block_size=72))
    store = tmp_path / "crash.zarr"
    # A real process killed at the rename that would publish the store.
    script = (
        "import os, signal\n"
        "from jscan.inputs.config import load_config\n"
        "from jscan.pipeline.run.plan import plan_scan\n"
        "from jscan.pipeline.run.spec import describe\n"
        "from jscan.pipeline.store.lock import RunLock\nfrom jscan.pipeline.store import create\n"
        "os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"cfg = load_config({str(tmp_path / 'scan.toml')!r})\n"
        f"create({str(store)!r}, describe(cfg, plan_scan(cfg)), lock=RunLock(None))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = list(tmp_path.glob(".crash.zarr.creating-*"))
    assert len(leftovers) == 1 and (leftovers[0] / "zarr.json").exists()
    assert not store.exists()
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", store, "--resume")
    assert code == 2 and "nothing to resume" in err
    simulate_scan(load_config(tmp_path / "scan.toml"), store, client=client, progress=False)
    assert not list(tmp_path.glob(".crash.zarr.*"))  # the dead run's folder is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash.zarr", "scan.toml"]
    code, _, _ = run_cli("verify", store)
    assert code == 0


def test_a_live_runs_temporary_folder_is_kept(tmp_path, scan_config):
    cfg = parse_config(scan_config(block_size=72))
    live = tmp_path / ".s.zarr.creating-0123"
    live.mkdir()
    with RunLock(None) as lock:
        lock.take(str(live))
        create(str(tmp_path / "s.zarr"), describe(cfg, plan_scan(cfg)))
        assert live.is_dir()


def test_two_new_runs_racing_the_loser_names_the_owner(tmp_path, scan_config):
    cfg = parse_config(scan_config(block_size=72))
    plan = plan_scan(cfg)
    store = str(tmp_path / "s.zarr")
    # Both passed their checks while nothing was at the path; the first one published.
    with RunLock(None) as winner:
        first = create(store, describe(cfg, plan), lock=winner)
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            create(store, describe(cfg, plan), lock=RunLock(None))
        assert os.path.samefile(winner.path, os.path.join(store, LOCK_NAME))
    with pytest.raises(
        StoreError, match=r"created meanwhile by another run.*--resume.*--overwrite"
    ):
        create(store, describe(cfg, plan), lock=RunLock(None))
    assert zarr.open_group(store).attrs["store_id"] == first
    assert sorted(os.listdir(tmp_path)) == ["s.zarr"]  # the losers' folders are removed


def test_existing_store_refused_names_both_flags_and_overwrite_replaces(
    tmp_path, run_cli, client, scan_config
):
    text = scan_config(block_size=72)
    (tmp_path / "scan.toml").write_text(text)
    store = tmp_path / "s.zarr"
    first = simulate_scan(parse_config(text), store, client=client, progress=False)
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", store)
    assert code == 2 and "--resume" in err and "--overwrite" in err
    second = simulate_scan(parse_config(text), store, client=client, overwrite=True, progress=False)
    assert second.attrs["store_id"] != first.attrs["store_id"]
    assert np.array_equal(second.diffraction.values, first.diffraction.values)
    assert sorted(os.listdir(tmp_path)) == ["s.zarr", "scan.toml"]
    # Anything but a jscan store or an empty folder is never deleted.
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", other, "--overwrite")
    assert code == 2 and "not a jscan store" in err
    assert (other / "precious.txt").read_text() == "keep me"
    code, _, err = run_cli(
        "simulate", tmp_path / "scan.toml", "--out", store, "--resume", "--overwrite"
    )
    assert code == 2 and "not allowed with" in err
    # Under the lock: replacing a store that another run writes is refused.
    with RunLock(str(store)):
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            simulate_scan(parse_config(text), store, client=client, overwrite=True, progress=False)
    assert open_scan(store).attrs["store_id"] == second.attrs["store_id"]


def test_symlinked_lock_is_refused_and_truncates_nothing(tmp_path, run_cli, client, scan_config):
    text = scan_config(block_size=72)
    (tmp_path / "scan.toml").write_text(text)
    store = tmp_path / "s.zarr"
    simulate_scan(parse_config(text), store, client=client, progress=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file")
    lock = store / LOCK_NAME
    assert lock.stat().st_mode & 0o777 == 0o600
    lock.unlink()
    lock.symlink_to(victim)
    code, _, err = run_cli(
        "simulate", tmp_path / "scan.toml", "--out", store, "--resume", "--workers", "1"
    )
    assert code == 2 and "symbolic link" in err and err.count("\n") == 1, err
    for how in ({"resume": True}, {"overwrite": True}):
        with pytest.raises(StoreError, match="symbolic link"):
            simulate_scan(parse_config(text), store, client=client, progress=False, **how)
    assert victim.read_text() == "the user's own file"
    assert lock.is_symlink()


@pytest.mark.slow
def test_two_jscan_processes_racing_for_one_new_store(tmp_path, run_cli, scan_config):
    (tmp_path / "scan.toml").write_text(scan_config(dose=1e4, block_size=8))
    store = tmp_path / "race.zarr"
    argv = [sys.executable, "-m", "jscan.cli", "simulate", str(tmp_path / "scan.toml")]
    argv += ["--out", str(store), "--workers", "1", "--no-progress"]
    runs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in runs)
    for p in runs:
        p.stderr.close()
    (ok, _), (lost, err) = results
    assert ok == 0 and lost == 2, results
    last = err.strip().splitlines()[-1]
    # Both passed their checks before either made the store (the usual case): the loser
    # names the winner; had it come later, it is told the store exists.
    assert last.startswith("jscan: error:") and ("pid " in last or "already exists" in last)
    assert "FileExistsError" not in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["race.zarr", "scan.toml"]
    code, _, _ = run_cli("verify", store)
    assert code == 0


def test_hard_linked_lock_is_refused_and_truncates_nothing(tmp_path, scan_config):
    cfg = parse_config(scan_config(block_size=72))
    store = tmp_path / "s.zarr"
    create(str(store), describe(cfg, plan_scan(cfg)))
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file")
    os.link(victim, store / LOCK_NAME)
    with pytest.raises(StoreError, match="not a plain file of its own"), RunLock(str(store)):
        pass
    assert victim.read_text() == "the user's own file"
