"""A disk that fills: a real, size-limited tmpfs (mounting one needs root; those tests skip
without it). A run on it stops in one line, no block is marked done without its data, and
`--resume` on the grown disk finishes with the bits of a run on a roomy disk."""

import os
import subprocess

import numpy as np
import pytest
import xarray as xr

PAGE = 4096  # tmpfs counts whole pages


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(size) -> a folder on a tmpfs of ``size`` bytes; .grow(size) remounts it."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = []

    def mount(size):
        if os.geteuid() != 0:
            pytest.skip("mounting a size-limited tmpfs needs root")
        options = f"size={-(-size // PAGE) * PAGE}"
        if mounted:
            options = "remount," + options
        cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode and not mounted:
            pytest.skip(f"this machine refuses a tmpfs mount: {proc.stderr.strip()}")
        assert proc.returncode == 0, proc.stderr
        mounted.append(size)
        return where

    yield mount
    if mounted:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _config(tmp_path, small_scan, to_toml):
    cfg = small_scan(block_size=64, shape=(24, 24))  # 9 blocks of 64 KiB-patterns
    cfg["scan"]["step"] = 4.0e-6
    path = tmp_path / "scan.toml"
    path.write_text(to_toml(cfg))
    return path


def _size(path) -> int:
    return sum(
        -(-os.path.getsize(os.path.join(d, f)) // PAGE) * PAGE
        for d, _, files in os.walk(path)
        for f in files
    )


def _blocks_done(store) -> np.ndarray:
    import zarr

    return np.flatnonzero(zarr.open_array(str(store), path="block_done", mode="r")[:])


@pytest.mark.parametrize("share", [0.45, 0.85])
def test_a_disk_that_fills_leaves_a_store_that_verify_and_resume_handle(
    tmp_path, small_disk, small_scan, to_toml, run_cli, share
):
    config = _config(tmp_path, small_scan, to_toml)
    reference = tmp_path / "ref.zarr"
    assert run_cli("simulate", config, "--out", reference, "--no-progress")[0] == 0
    disk = small_disk(int(share * _size(reference)))
    store = disk / "s.zarr"
    code, _, err = run_cli("simulate", config, "--out", store, "--no-progress", "--force")
    assert code == 1 and "No space left on device" in err and "--resume" in err, err
    assert err.count("\n") == 1, err
    code, out, err = run_cli("verify", store)
    done = _blocks_done(store)
    assert code == 0 and f"{done.size}/9 blocks done, all sound" in out, (out, err)
    assert done.size < 9
    with xr.open_zarr(store) as got, xr.open_zarr(reference) as want:
        for b in done:  # every block marked done holds the reference's bits
            rows = slice(64 * b, 64 * (b + 1))
            np.testing.assert_array_equal(
                got.diffraction[rows].values, want.diffraction[rows].values
            )
    small_disk(4 * _size(reference))  # the disk grows; the same store goes on
    code, _, err = run_cli("simulate", config, "--out", store, "--no-progress", "--resume")
    assert code == 0, err
    code, out, _ = run_cli("verify", store)
    assert code == 0 and "9/9 blocks done, all sound" in out, out
    with xr.open_zarr(store) as got, xr.open_zarr(reference) as want:
        np.testing.assert_array_equal(got.diffraction.values, want.diffraction.values)
        np.testing.assert_array_equal(got.sample_truth.values, want.sample_truth.values)


def test_a_disk_too_small_for_the_layout_is_refused_with_nothing_written(
    tmp_path, small_disk, small_scan, to_toml, run_cli, tree
):
    config = _config(tmp_path, small_scan, to_toml)
    disk = small_disk(4 * PAGE)
    code, _, err = run_cli("simulate", config, "--out", disk / "s.zarr", "--no-progress", "--force")
    assert code == 2 and "could not be made" in err and "No space left on device" in err, err
    assert "nothing was written" in err and err.count("\n") == 1, err
    assert tree(disk) == []


def test_a_store_under_a_file_is_refused_with_nothing_written(
    tmp_path, small_scan, to_toml, run_cli
):
    """The folders of --out cannot be made (a plain file is in the way): one line, exit 2."""
    config = _config(tmp_path, small_scan, to_toml)
    (tmp_path / "plain").write_text("not a folder")
    code, _, err = run_cli("simulate", config, "--out", tmp_path / "plain" / "s.zarr")
    assert code == 2 and "could not be made" in err and "nothing was written" in err, err
    assert err.count("\n") == 1, err
    assert (tmp_path / "plain").read_text() == "not a folder"
