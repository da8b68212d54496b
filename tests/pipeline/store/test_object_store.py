"""Stores on object storage: a real S3-compatible server (moto's server mode, started here on
the loopback address; the `[s3]` extra's s3fs is zarr's driver for s3:// URLs). Runs with
worker processes, a killed run resumed, verify and repair of damaged objects, open_scan,
preview and export, each against the same scan stored on disk. Skipped without moto or s3fs."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
pytest.importorskip("flask")


@pytest.fixture(scope="module")
def s3():
    """The endpoint of a moto S3 server for this module, in the environment that s3fs (here
    and in every worker process) reads."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        yield endpoint
    server.terminate()
    server.wait(10)


@pytest.fixture
def bucket(s3):
    """s3fs's file system and a new bucket of its own."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    name = f"jscan-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return fs, name


@pytest.fixture
def config(tmp_path, small_scan, to_toml):
    def make(shape=(12, 12), block_size=16, dose=1e4):
        cfg = small_scan(dose=dose, block_size=block_size, shape=shape)
        side = int(np.ceil((shape[0] - 1) * 7.3 + 32 + 20))
        cfg["sample"]["shape"] = [max(160, side)] * 2
        path = tmp_path / f"scan-{shape[0]}.toml"
        path.write_text(to_toml(cfg))
        return path

    return make


def _reference(tmp_path, run_cli, config):
    store = tmp_path / f"{config.stem}.zarr"
    if not store.exists():
        assert run_cli("simulate", config, "--out", store, "--no-progress")[0] == 0
    return store


def _same_scan(url, reference):
    import jscan

    with jscan.open_scan(url) as got, xr.open_zarr(reference) as want:
        for name in ("diffraction", "sample_truth", "probe", "bright_field"):
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
        for name in ("x", "y"):
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


def _done(fs, key) -> int:
    return len(fs.find(f"{key}/block_done/c")) if fs.exists(f"{key}/block_done/c") else 0


@pytest.mark.reference
def test_a_scan_on_an_object_store_equals_one_on_disk(tmp_path, bucket, config, run_cli):
    """Two worker processes write the store; verify, info, open_scan, preview and export
    read it back."""
    import h5py

    _, name = bucket
    cfg = config()
    url = f"s3://{name}/scan.zarr"
    code, _, err = run_cli(
        "simulate", cfg, "--out", url, "--no-progress", "--workers", "2", process=True
    )
    assert code == 0, err
    reference = _reference(tmp_path, run_cli, cfg)
    _same_scan(url, reference)
    code, out, _ = run_cli("verify", url)
    assert code == 0 and "9/9 blocks done, all sound" in out, out
    code, out, _ = run_cli("info", url)
    assert code == 0 and "blocks done: 9/9" in out, out
    code, out, err = run_cli("preview", url, "--out", tmp_path / "p.png")
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 1000, err
    code, out, err = run_cli("export", url, "--format", "cxi", "--out", tmp_path / "s.cxi")
    assert code == 0, err
    with h5py.File(tmp_path / "s.cxi") as f, xr.open_zarr(reference) as want:
        np.testing.assert_array_equal(f["entry_1/data_1/data"][()], want.diffraction.values)


def test_a_killed_run_on_an_object_store_resumes_to_the_same_bits(
    tmp_path, bucket, config, run_cli
):
    fs, name = bucket
    cfg = config(shape=(28, 28))  # 49 blocks
    url, key = f"s3://{name}/scan.zarr", f"{name}/scan.zarr"
    run = subprocess.Popen(
        [sys.executable, "-m", "jscan.cli", "simulate", cfg, "--out", url, "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _done(fs, key) < 3 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    done = _done(fs, key)
    assert 3 <= done < 49, f"{done} blocks were done when the run was killed"
    code, out, _ = run_cli("verify", url)
    assert code == 0 and "blocks done, all sound" in out, out
    code, _, err = run_cli("simulate", cfg, "--out", url, "--no-progress", "--resume")
    assert code == 0, err
    _same_scan(url, _reference(tmp_path, run_cli, cfg))


def test_damaged_objects_are_named_by_verify_and_rerun_by_resume(tmp_path, bucket, config, run_cli):
    fs, name = bucket
    cfg = config()
    url, key = f"s3://{name}/scan.zarr", f"{name}/scan.zarr"
    assert run_cli("simulate", cfg, "--out", url, "--no-progress")[0] == 0
    shard = f"{key}/diffraction/c/3/0/0"
    data = bytearray(fs.cat(shard))
    data[len(data) // 2] ^= 0xFF  # one flipped byte: its chunk's CRC32C fails
    fs.pipe(shard, bytes(data))
    fs.rm(f"{key}/diffraction/c/5/0/0")
    code, _, err = run_cli("verify", url, "--quick")
    assert code == 1 and "5 (shard missing)" in err and "3 (" not in err, err
    code, _, err = run_cli("verify", url)
    assert code == 1 and "2 of 9 done blocks are damaged: 3 (" in err, err
    assert "5 (shard missing)" in err and "recorded in the store" in err, err
    code, _, err = run_cli("simulate", cfg, "--out", url, "--no-progress", "--resume")
    assert code == 0, err
    code, out, _ = run_cli("verify", url)
    assert code == 0 and "9/9 blocks done, all sound" in out, out
    _same_scan(url, _reference(tmp_path, run_cli, cfg))
