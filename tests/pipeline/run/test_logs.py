"""Dask's log lines go to a log file, not the terminal: a Ctrl-C and a script without the
``__main__`` guard each end in a few lines of jscan's own."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from jscan.pipeline.run.logs import DeferredFileHandler, captured, default_log


def _record(text):
    return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, text, (), None)


def test_log_waits_for_its_folder_and_follows_a_replaced_file(tmp_path):
    path = tmp_path / "store.zarr" / "jscan.log"
    handler = DeferredFileHandler(str(path))
    handler.emit(_record("before the store exists"))
    assert not path.parent.exists()  # nothing created: the store's folder is not ours
    path.parent.mkdir()
    handler.emit(_record("after"))
    lines = path.read_text().splitlines()
    assert [line.split(" ERROR ")[1] for line in lines] == ["before the store exists", "after"]
    path.parent.rename(tmp_path / "old.zarr")  # a store replaced (--overwrite)
    path.parent.mkdir()
    handler.emit(_record("in the new store"))
    handler.close()
    assert path.read_text().endswith("in the new store\n")


def test_captured_diverts_and_restores_the_loggers(tmp_path):
    logger = logging.getLogger("distributed.scheduler")
    before = (list(logging.getLogger("distributed").handlers), logger.propagate)
    with captured(str(tmp_path / "x.log")):
        logger.warning("to the file")
    assert (list(logging.getLogger("distributed").handlers), logger.propagate) == before
    assert "to the file" in (tmp_path / "x.log").read_text()


def test_default_log_is_in_a_local_store_else_in_the_temporary_folder(tmp_path):
    assert default_log(str(tmp_path / "s.zarr")) == str(tmp_path / "s.zarr" / "jscan.log")
    remote = default_log("s3://bucket/s.zarr")
    assert os.path.dirname(remote) != "" and remote.endswith(".log") and "s3" not in remote


def test_embedded_workers_log_to_the_file_without_the_profiler(tmp_path):
    distributed = pytest.importorskip("distributed")
    from jscan.pipeline.run.cluster import connect

    log = tmp_path / "run.log"

    def probe():
        import dask

        logging.getLogger("distributed.worker").error("a worker's line")
        return dask.config.get("distributed.worker.profile.enabled")

    with connect(n_workers=1, threads_per_worker=1, log=str(log)) as client:
        assert isinstance(client, distributed.Client)
        assert list(client.run(probe).values()) == [False]
    assert "a worker's line" in log.read_text()


UNGUARDED = """\
import jscan

ds = jscan.simulate_scan("scan.toml", "scan.zarr", n_workers=2)
"""


def test_a_script_without_the_main_guard_gets_one_line(tmp_path, scan_config, tree):
    (tmp_path / "scan.toml").write_text(scan_config())
    (tmp_path / "run.py").write_text(UNGUARDED)
    before = tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"jscan.errors.ClusterError: {tmp_path / 'run.py'}:3 starts")
    assert 'put the call (and the code it needs) under `if __name__ == "__main__":`' in last
    assert "Nanny" not in proc.stderr and len(proc.stderr.splitlines()) < 15
    assert tree(tmp_path) == before  # refused before anything was written


def test_the_guard_check_reads_the_running_script(tmp_path):
    script = (
        "from jscan.pipeline.run.cluster import unguarded_call\n"
        "print(unguarded_call())\n"
        'if __name__ == "__main__":\n'
        "    print(unguarded_call())\n"
    )
    (tmp_path / "s.py").write_text(script)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "s.py")], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [f"{tmp_path / 's.py'}:2", "None"]


def test_ctrl_c_prints_a_few_lines(tmp_path, demo_scan, to_toml):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: jscan's lines only."""
    data = demo_scan()
    data["scan"]["shape"] = [180, 180]  # long enough to be interrupted mid-run
    data["scan"]["step"] = 2.5e-6
    (tmp_path / "scan.toml").write_text(to_toml(data))
    store = tmp_path / "s.zarr"
    # SIGINT may be ignored where the tests run (a background job): the command gets the
    # default disposition back, as in a terminal, from a small launcher that execs it.
    launch = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.executable, [sys.executable, '-m', 'jscan.cli', *sys.argv[1:]])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "simulate", "scan.toml", "--out", str(store)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not (store / "block_done").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the store exists once the cluster runs
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 130, err
    assert lines[-1] == (
        "jscan: interrupted; finish the run later with --resume "
        f"(Dask's log: {store / 'jscan.log'})"
    )
    assert len(lines) <= 6, err  # links, the work line, a progress line, jscan's line
    assert "Traceback" not in err and "distributed" not in err
