"""Damaged, half-created, replaced and foreign stores: found, refused or repaired.

Real stores on disk, real LocalCluster worker processes; the damage is done to the files.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr

from jscan.cli import main
from jscan.errors import StoreError
from jscan.inputs.config import load_config, parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.lock import LOCK_NAME, RunLock
from jscan.pipeline.plan import plan_scan
from jscan.pipeline.prepare import prepare
from jscan.pipeline.store import create, open_scan
from jscan.pipeline.worker import BlockRunner, ScanJob, ScanWorker

BLOCK = 16  # 144 positions: 9 blocks


def cli(capsys, *argv):
    """(exit status, stdout, stderr) of `jscan ARGV` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_info:  # argparse's own refusals
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def clean(tmp_path_factory, client, scan_config):
    """A finished store with Poisson noise, its config file, and its patterns."""
    root = tmp_path_factory.mktemp("clean")
    text = scan_config(dose=3e4, block_size=BLOCK)
    (root / "scan.toml").write_text(text)
    ds = simulate_scan(parse_config(text), root / "clean.zarr", client=client, progress=False)
    return root / "clean.zarr", root / "scan.toml", ds.diffraction.values


def shard(store, block):
    return store / "diffraction" / "c" / str(block) / "0" / "0"


def flip_64_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "deleted": lambda p: p.unlink(),
    "emptied": lambda p: p.write_bytes(b""),
    "64 flipped bytes": flip_64_bytes,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_block_is_named_and_resume_repairs_it(tmp_path, capsys, client, clean, kind):
    store, cfg, expected = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    DAMAGE[kind](shard(copy, 5))
    DAMAGE[kind](shard(copy, 7))
    code, out, err = cli(capsys, "verify", copy)
    assert code == 1, err
    assert err.count("\n") == 1 and "2 of 9 done blocks are damaged: 5 (" in err and "7 (" in err
    assert "--resume --verify" in err
    # The default check of --resume (presence and size) finds deleted and emptied shards;
    # a shard with flipped bytes needs the full check.
    full = kind == "64 flipped bytes"
    if full:
        code, _, _ = cli(capsys, "verify", copy, "--quick")
        assert code == 0  # the quick check reads no data: it cannot see flipped bytes
    ds = simulate_scan(
        parse_config(cfg.read_text()),
        copy,
        client=client,
        resume=True,
        verify=full,
        progress=False,
    )
    assert ds.attrs["run_history"][-2]["repaired_blocks"] == [5, 7]
    assert ds.attrs["run_history"][-1]["blocks"] == 2
    assert np.array_equal(ds.diffraction.values, expected)
    code, out, _ = cli(capsys, "verify", copy)
    assert code == 0 and "9/9 blocks done, all sound" in out


def test_flipped_byte_raises_when_read(tmp_path, clean):
    store, _, _ = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    flip_64_bytes(shard(copy, 2))
    ds = open_scan(copy)
    with pytest.raises(ValueError, match="checksum"):
        ds.diffraction.isel(position=slice(2 * BLOCK, 3 * BLOCK)).load()


def test_missing_array_is_one_line_exit_2_everywhere(tmp_path, capsys, client, clean):
    store, cfg, expected = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    shutil.rmtree(copy / "diffraction")
    for argv in (
        ["verify", copy],
        ["info", copy],
        ["preview", copy, "--out", tmp_path / "p.png"],
        ["simulate", cfg, "--out", copy, "--resume"],
    ):
        code, _, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert err.startswith("jscan: error:") and err.count("\n") == 1, err
        assert "diffraction array is missing" in err and "--overwrite" in err
    assert not (tmp_path / "p.png").exists()
    with pytest.raises(StoreError, match="diffraction array is missing"):
        open_scan(copy)
    ds = simulate_scan(
        parse_config(cfg.read_text()), copy, client=client, overwrite=True, progress=False
    )
    assert np.array_equal(ds.diffraction.values, expected)


def test_unreadable_root_metadata_is_one_line(tmp_path, capsys, clean):
    store, _, _ = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    (copy / "zarr.json").write_text("{ not json")
    code, _, err = cli(capsys, "info", copy)
    assert code == 2 and err.count("\n") == 1 and "--overwrite" in err, err


def test_store_id_of_another_store_is_refused_by_the_worker(tmp_path, client, scan_config):
    cfg = parse_config(scan_config(block_size=BLOCK))
    plan = plan_scan(cfg)
    store = str(tmp_path / "s.zarr")
    real_id = create(store, cfg, plan, 1e-3)
    job = ScanJob(cfg, store, plan.region_shape, plan.sample_shape, store_id="0" * 32)
    # Every worker checks the store as it sets up the run's state: the run stops there.
    with pytest.raises(StoreError) as err, ScanWorker(job).registered(client):
        pass
    message = str(err.value)
    assert "sees another store" in message and real_id in message and "\n" not in message
    assert not zarr.open_array(store, path="block_done")[:].any()
    assert not (tmp_path / "s.zarr" / "diffraction" / "c").exists()  # nothing written


def test_relative_out_becomes_absolute(tmp_path, monkeypatch, scan_config):
    monkeypatch.chdir(tmp_path)
    _, _, store, _ = prepare(parse_config(scan_config()), "rel.zarr")
    assert store == str(tmp_path / "rel.zarr")


def test_crash_between_build_and_rename_leaves_no_store(tmp_path, capsys, client, scan_config):
    (tmp_path / "scan.toml").write_text(scan_config(block_size=72))
    store = tmp_path / "crash.zarr"
    # A real process killed at the rename that would publish the store.
    script = (
        "import os, signal\n"
        "from jscan.inputs.config import load_config\n"
        "from jscan.pipeline.plan import plan_scan\n"
        "from jscan.pipeline.lock import RunLock\nfrom jscan.pipeline.store import create\n"
        "os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"cfg = load_config({str(tmp_path / 'scan.toml')!r})\n"
        f"create({str(store)!r}, cfg, plan_scan(cfg), 1e-3, lock=RunLock(None))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = list(tmp_path.glob(".crash.zarr.creating-*"))
    assert len(leftovers) == 1 and (leftovers[0] / "zarr.json").exists()
    assert not store.exists()
    code, _, err = cli(capsys, "simulate", tmp_path / "scan.toml", "--out", store, "--resume")
    assert code == 2 and "nothing to resume" in err
    simulate_scan(load_config(tmp_path / "scan.toml"), store, client=client, progress=False)
    assert not list(tmp_path.glob(".crash.zarr.*"))  # the dead run's folder is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash.zarr", "scan.toml"]
    code, _, _ = cli(capsys, "verify", store)
    assert code == 0


def test_a_live_runs_temporary_folder_is_kept(tmp_path, scan_config):
    cfg = parse_config(scan_config(block_size=72))
    live = tmp_path / ".s.zarr.creating-0123"
    live.mkdir()
    with RunLock(None) as lock:
        lock.take(str(live))
        create(str(tmp_path / "s.zarr"), cfg, plan_scan(cfg), 1e-3)
        assert live.is_dir()


def test_two_new_runs_racing_the_loser_names_the_owner(tmp_path, scan_config):
    cfg = parse_config(scan_config(block_size=72))
    plan = plan_scan(cfg)
    store = str(tmp_path / "s.zarr")
    # Both passed their checks while nothing was at the path; the first one published.
    with RunLock(None) as winner:
        first = create(store, cfg, plan, 1e-3, lock=winner)
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            create(store, cfg, plan, 1e-3, lock=RunLock(None))
        assert os.path.samefile(winner.path, os.path.join(store, LOCK_NAME))
    with pytest.raises(
        StoreError, match=r"created meanwhile by another run.*--resume.*--overwrite"
    ):
        create(store, cfg, plan, 1e-3, lock=RunLock(None))
    assert zarr.open_group(store).attrs["store_id"] == first
    assert sorted(os.listdir(tmp_path)) == ["s.zarr"]  # the losers' folders are removed


def test_existing_store_refused_names_both_flags_and_overwrite_replaces(
    tmp_path, capsys, client, scan_config
):
    text = scan_config(block_size=72)
    (tmp_path / "scan.toml").write_text(text)
    store = tmp_path / "s.zarr"
    first = simulate_scan(parse_config(text), store, client=client, progress=False)
    code, _, err = cli(capsys, "simulate", tmp_path / "scan.toml", "--out", store)
    assert code == 2 and "--resume" in err and "--overwrite" in err
    second = simulate_scan(parse_config(text), store, client=client, overwrite=True, progress=False)
    assert second.attrs["store_id"] != first.attrs["store_id"]
    assert np.array_equal(second.diffraction.values, first.diffraction.values)
    assert sorted(os.listdir(tmp_path)) == ["s.zarr", "scan.toml"]
    # Anything but a jscan store or an empty folder is never deleted.
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    code, _, err = cli(capsys, "simulate", tmp_path / "scan.toml", "--out", other, "--overwrite")
    assert code == 2 and "not a jscan store" in err
    assert (other / "precious.txt").read_text() == "keep me"
    code, _, err = cli(
        capsys, "simulate", tmp_path / "scan.toml", "--out", store, "--resume", "--overwrite"
    )
    assert code == 2 and "not allowed with" in err
    # Under the lock: replacing a store that another run writes is refused.
    with RunLock(str(store)):
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            simulate_scan(parse_config(text), store, client=client, overwrite=True, progress=False)
    assert open_scan(store).attrs["store_id"] == second.attrs["store_id"]


def test_symlinked_lock_is_refused_and_truncates_nothing(tmp_path, capsys, client, scan_config):
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
    code, _, err = cli(
        capsys, "simulate", tmp_path / "scan.toml", "--out", store, "--resume", "--workers", "1"
    )
    assert code == 2 and "symbolic link" in err and err.count("\n") == 1, err
    for how in ({"resume": True}, {"overwrite": True}):
        with pytest.raises(StoreError, match="symbolic link"):
            simulate_scan(parse_config(text), store, client=client, progress=False, **how)
    assert victim.read_text() == "the user's own file"
    assert lock.is_symlink()


def test_a_block_of_zeros_is_stored_and_sound(tmp_path, capsys, scan_config):
    np.save(tmp_path / "dark.npy", np.zeros((160, 160), np.complex64))  # blocks all light
    text = (
        scan_config(block_size=72)
        .replace(
            'kind = "phantom"\nphantom = "cells"\nshape = [160, 160]',
            f'kind = "file"\npath = "{tmp_path / "dark.npy"}"',
        )
        .replace("seed = 3\n", "")
    )
    cfg = parse_config(text)
    plan = plan_scan(cfg)
    store = str(tmp_path / "s.zarr")
    job = ScanJob(
        cfg, store, plan.region_shape, plan.sample_shape, store_id=create(store, cfg, plan, 1e-3)
    )
    # in this process, as a worker would
    BlockRunner(job).run(0, plan.block_origins(0), 0, 72, plan.block_shifts(0))
    assert shard(tmp_path / "s.zarr", 0).stat().st_size > 0  # zeros are written, not skipped
    code, out, err = cli(capsys, "verify", store)
    assert code == 0 and "1/2 blocks done, all sound" in out, err


def test_incomplete_store_and_stray_verify_flag_are_refused(tmp_path, capsys, scan_config):
    (tmp_path / "scan.toml").write_text(scan_config(block_size=72))
    cfg = parse_config(scan_config(block_size=72))
    store = str(tmp_path / "s.zarr")
    create(store, cfg, plan_scan(cfg), 1e-3)
    # What an object store (no rename) holds when its creation stopped: `complete` unset.
    zarr.open_group(store, mode="r+").attrs["complete"] = False
    for argv in (["info", store], ["verify", store]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "never completely created" in err and "--overwrite" in err, err
    code, _, err = cli(capsys, "simulate", tmp_path / "scan.toml", "--out", store, "--verify")
    assert code == 2 and "--verify" in err and "--resume" in err, err


@pytest.mark.slow
def test_two_jscan_processes_racing_for_one_new_store(tmp_path, capsys, scan_config):
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
    code, _, _ = cli(capsys, "verify", store)
    assert code == 0


def test_hard_linked_lock_is_refused_and_truncates_nothing(tmp_path, scan_config):
    cfg = parse_config(scan_config(block_size=72))
    store = tmp_path / "s.zarr"
    create(str(store), cfg, plan_scan(cfg), 1e-3)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file")
    os.link(victim, store / LOCK_NAME)
    with pytest.raises(StoreError, match="not a plain file of its own"), RunLock(str(store)):
        pass
    assert victim.read_text() == "the user's own file"
