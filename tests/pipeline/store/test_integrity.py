"""Damaged and half-created stores: found, refused or repaired (checksums, `jscan verify`).

Real stores on disk, real LocalCluster worker processes; the damage is done to the files.
(Creation, locks and replacement: tests/pipeline/store/test_store.py.)
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from jscan.errors import StoreError
from jscan.inputs.config import parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import create, open_scan

BLOCK = 16  # 144 positions: 9 blocks


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
def test_damaged_block_is_named_and_resume_repairs_it(tmp_path, run_cli, client, clean, kind):
    store, cfg, expected = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    DAMAGE[kind](shard(copy, 5))
    DAMAGE[kind](shard(copy, 7))
    code, out, err = run_cli("verify", copy)
    assert code == 1, err
    assert err.count("\n") == 1 and "2 of 9 done blocks are damaged: 5 (" in err and "7 (" in err
    assert "--resume --verify" in err
    # The default check of --resume (presence and size) finds deleted and emptied shards;
    # a shard with flipped bytes needs the full check.
    full = kind == "64 flipped bytes"
    if full:
        code, _, _ = run_cli("verify", copy, "--quick")
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
    code, out, _ = run_cli("verify", copy)
    assert code == 0 and "9/9 blocks done, all sound" in out


def test_damage_found_by_verify_is_rerun_by_a_plain_resume(tmp_path, run_cli, client, clean):
    """Flipped bytes pass the presence check of --resume; once `jscan verify` has named the
    block, a plain --resume simulates it again (bit for bit the clean store), and says what
    a presence-only check is when there is nothing to do."""
    store, cfg, expected = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    flip_64_bytes(shard(copy, 4))
    code, _, err = run_cli("verify", copy)
    assert code == 1 and "4 (" in err and "a plain --resume re-runs them too" in err
    assert err.count("\n") == 1
    ds = simulate_scan(
        parse_config(cfg.read_text()), copy, client=client, resume=True, progress=False
    )
    assert ds.attrs["run_history"][-2]["repaired_blocks"] == [4]
    assert np.array_equal(ds.diffraction.values, expected)
    code, out, _ = run_cli("verify", copy)
    assert code == 0 and "9/9 blocks done, all sound" in out
    code, _, err = run_cli("simulate", cfg, "--out", copy, "--resume")
    assert code == 0 and "shards present; --verify decodes them); nothing to resume" in err


def test_a_bug_while_reading_a_block_is_not_called_damage(clean, tmp_path, monkeypatch):
    """A programming error inside the block reads (here the patterns' getitem raising
    TypeError) propagates from verify and repair; no block is reported or un-marked."""
    from jscan.pipeline.store import integrity

    store, _, _ = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)

    read = zarr.Array.__getitem__

    def bug(self, selection):  # in the patterns' read only
        if self.path == "diffraction":
            raise TypeError("a planted bug")
        return read(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", bug)
    with pytest.raises(TypeError, match="planted"):
        integrity.verify(str(copy), full=True)
    with pytest.raises(TypeError, match="planted"):
        integrity.repair(str(copy), full=True)
    monkeypatch.undo()
    assert zarr.open_array(str(copy), path="block_done")[:].all()


@pytest.mark.parametrize("damage", ["x chunk deleted", "y rewritten"])
def test_damaged_positions_are_named_and_resume_repairs_them(
    tmp_path, run_cli, client, clean, damage
):
    """A block's positions are the worker's too: their chunks are checked for presence, and
    the block checksum covers them, so positions rewritten with a valid CRC32C are found."""
    store, cfg, expected = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    clean_ds = open_scan(str(store))
    if damage == "x chunk deleted":
        (copy / "x" / "c" / "3").unlink()
        reason, full = "3 (x chunk missing)", False
    else:
        y = zarr.open_array(str(copy), path="y", mode="r+")
        y[3 * BLOCK : 4 * BLOCK] = y[3 * BLOCK : 4 * BLOCK] + 1e-6  # a probe 1 µm off
        reason, full = "3 (checksum differs)", True
        code, _, _ = run_cli("verify", copy, "--quick")
        assert code == 0  # present and whole: only the checksum sees it
    code, _, err = run_cli("verify", copy)
    assert code == 1 and reason in err, err
    ds = simulate_scan(
        parse_config(cfg.read_text()), copy, client=client, resume=True, verify=full, progress=False
    )
    assert ds.attrs["run_history"][-2]["repaired_blocks"] == [3]
    np.testing.assert_array_equal(ds.x.values, clean_ds.x.values)
    np.testing.assert_array_equal(ds.y.values, clean_ds.y.values)
    assert np.array_equal(ds.diffraction.values, expected)


@pytest.mark.parametrize("name", ["block_done", "block_checksum"])
def test_damaged_run_state_is_named_and_resume_repairs_it(tmp_path, run_cli, client, clean, name):
    """A block's done flag or checksum chunk with flipped bytes: found by its CRC32C."""
    store, cfg, expected = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    flip_64_bytes_or_all(copy / name / "c" / "4")
    code, _, err = run_cli("verify", copy)
    assert code == 1 and f"4 ({name} chunk unreadable)" in err, err
    if name == "block_done":  # info counts it as not done, and says so
        code, out, err = run_cli("info", copy)
        assert code == 1 and "blocks done: 8/9" in out and f"jscan verify {copy}" in err, err
    ds = simulate_scan(
        parse_config(cfg.read_text()), copy, client=client, resume=True, verify=True, progress=False
    )
    assert ds.attrs["run_history"][-1]["blocks"] == 1
    assert np.array_equal(ds.diffraction.values, expected)
    code, out, _ = run_cli("verify", copy)
    assert code == 0 and "9/9 blocks done, all sound" in out


def flip_64_bytes_or_all(path):
    """Flip 64 bytes in the middle, or every byte of a chunk shorter than that."""
    data = bytearray(path.read_bytes())
    start = max(0, len(data) // 2 - 32)
    for i in range(start, min(len(data), start + 64)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_byte_raises_when_read(tmp_path, clean):
    store, _, _ = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    flip_64_bytes(shard(copy, 2))
    ds = open_scan(copy)
    with pytest.raises(ValueError, match="checksum"):
        ds.diffraction.isel(position=slice(2 * BLOCK, 3 * BLOCK)).load()


def test_preview_of_a_damaged_drawn_block_is_one_line(tmp_path, run_cli, clean):
    store, _, _ = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    for b in range(9):  # whichever patterns preview draws
        flip_64_bytes(shard(copy, b))
    code, _, err = run_cli("preview", copy, "--out", tmp_path / "p.png")
    assert code == 1 and err.count("\n") == 1 and f"jscan verify {copy}" in err, err


def test_missing_array_is_one_line_exit_2_everywhere(tmp_path, run_cli, client, clean):
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
        code, _, err = run_cli(*argv)
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


def test_unreadable_root_metadata_is_one_line(tmp_path, run_cli, clean):
    store, _, _ = clean
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    (copy / "zarr.json").write_text("{ not json")
    code, _, err = run_cli("info", copy)
    assert code == 2 and err.count("\n") == 1 and "--overwrite" in err, err


def test_a_block_of_zeros_is_stored_and_sound(tmp_path, run_cli, small_scan, to_toml):
    np.save(tmp_path / "dark.npy", np.zeros((160, 160), np.complex64))  # blocks all light
    cfg = small_scan(block_size=72)
    cfg["sample"] = {"kind": "file", "path": str(tmp_path / "dark.npy"), "dx": 1.0e-6}
    text = to_toml(cfg)
    cfg = parse_config(text)
    plan = plan_scan(cfg)
    store = str(tmp_path / "s.zarr")
    spec = describe(cfg, plan)
    job = ScanJob(spec, store, store_id=create(store, spec))
    # in this process, as a worker would
    BlockRunner(job).run(0)
    assert shard(tmp_path / "s.zarr", 0).stat().st_size > 0  # zeros are written, not skipped
    code, out, err = run_cli("verify", store)
    assert code == 0 and "1/2 blocks done, all sound" in out, err


def test_incomplete_store_and_stray_verify_flag_are_refused(tmp_path, run_cli, scan_config):
    (tmp_path / "scan.toml").write_text(scan_config(block_size=72))
    cfg = parse_config(scan_config(block_size=72))
    store = str(tmp_path / "s.zarr")
    create(store, describe(cfg, plan_scan(cfg)))
    # What an object store (no rename) holds when its creation stopped: `complete` unset.
    zarr.open_group(store, mode="r+").attrs["complete"] = False
    for argv in (["info", store], ["verify", store]):
        code, _, err = run_cli(*argv)
        assert code == 2 and "never completely created" in err and "--overwrite" in err, err
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", store, "--verify")
    assert code == 2 and "--verify" in err and "--resume" in err, err


def test_full_verify_decodes_every_per_block_array(partial_store):
    """A raster's scan_row chunk with a flipped bit: present and whole (the quick check passes),
    unreadable to the full one, which names it."""
    from jscan.pipeline.store.integrity import verify

    store = partial_store([0, 1])
    chunk = Path(store) / "scan_row" / "c" / "1"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0x10
    chunk.write_bytes(bytes(data))
    assert verify(store, full=False).ok
    report = verify(store, full=True)
    assert [(f.block, f.reason) for f in report.faults] == [(1, "scan_row chunk unreadable")]


def test_a_deleted_optional_coordinate_is_refused(partial_store):
    store = partial_store([0])
    shutil.rmtree(Path(store) / "scan_col")
    with pytest.raises(StoreError, match="scan_col array is missing"):
        open_scan(store)


def test_a_bug_while_opening_the_store_is_not_called_a_missing_store(clean, monkeypatch):
    """check_id and check_replaceable name a missing or garbled store; a programming error
    while opening it (a TypeError) propagates instead of reading as "no jscan store"."""
    from jscan.pipeline.store import check_id, check_replaceable

    store, _, _ = clean

    def bug(*args, **kwargs):
        raise TypeError("a planted bug")

    monkeypatch.setattr(zarr, "open_group", bug)
    with pytest.raises(TypeError, match="planted"):
        check_id(str(store), "any")
    with pytest.raises(TypeError, match="planted"):
        check_replaceable(str(store))
