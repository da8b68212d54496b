"""The embedded cluster as it is known before it starts, against the one that starts."""

import pytest

from jscan.pipeline.run.cluster import (
    connect,
    embedded_workers,
    started_elsewhere,
    worker_memory,
)

pytest.importorskip("distributed")


@pytest.mark.parametrize(("n_workers", "threads"), [(None, 2), (2, 1)])
def test_embedded_workers_are_those_the_local_cluster_starts(monkeypatch, n_workers, threads):
    """The block-memory check before the cluster starts reads the memory_limit and threads
    that distributed then gives the embedded workers (in this process, or processes)."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    expected = embedded_workers(n_workers, threads)
    with connect(n_workers=n_workers, threads_per_worker=threads) as client:
        started = worker_memory(client)
    assert [(w.nthreads, w.memory_limit) for w in started] == [
        (w.nthreads, w.memory_limit) for w in expected
    ]
    assert all(w.memory_limit > 0 for w in started)


def test_a_cluster_is_started_elsewhere_when_one_is_named(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert not started_elsewhere()
    assert started_elsewhere("tcp://127.0.0.1:8786")
    assert started_elsewhere(scheduler_file="scheduler.json")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:8786")
    assert started_elsewhere()
