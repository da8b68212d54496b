"""The Dask cluster of a run: a client given, a scheduler's address, or an embedded one."""

import ast
import contextlib
import os
import sys
import warnings
from typing import NamedTuple

from jscan.errors import ClusterError

GUARD = 'if __name__ == "__main__":'


def _is_main_guard(node) -> bool:
    """True for ``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    sides = [node.test.left, *node.test.comparators]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    texts = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and texts == {"__main__"}


def unguarded_call() -> str | None:
    """``FILE:LINE`` of the statement of the main script that is running now, when it lies
    outside ``if __name__ == "__main__":``; None otherwise (no script: an interactive
    session, ``python -c``, a notebook; or a guarded call).

    The embedded cluster's worker processes are started with multiprocessing's "spawn",
    which runs the main script again in each new process (as module ``__mp_main__``): an
    unguarded call would start a cluster inside every worker, and their start fails.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    frame = sys._getframe(1)
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)
    ):
        frame = frame.f_back
    if frame is None:
        return None  # called later from an event loop or a thread, not while the script runs
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return None if _is_main_guard(node) else f"{path}:{line}"
    return None


def started_elsewhere(client=None, scheduler_file=None) -> bool:
    """True when a run uses a cluster started elsewhere (a client or scheduler address, a
    scheduler file, or DASK_SCHEDULER_ADDRESS); False when it embeds `local_cluster`."""
    return client is not None or bool(scheduler_file or os.environ.get("DASK_SCHEDULER_ADDRESS"))


class WorkerMemory(NamedTuple):
    """What a block-memory check needs of one worker."""

    name: str  # "worker tcp://...", or "the embedded worker"
    nthreads: int
    memory_limit: int  # bytes; 0: no limit


def worker_memory(client) -> list[WorkerMemory]:
    """The workers of a running cluster."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return [
        WorkerMemory(f"worker {address}", info.get("nthreads", 1), info.get("memory_limit") or 0)
        for address, info in workers.items()
    ]


def embedded_workers(n_workers: int | None, threads_per_worker: int = 2) -> list[WorkerMemory]:
    """The workers `local_cluster` would start, known before it starts: distributed's
    "auto" memory_limit of a LocalCluster, the machine's memory (its cgroup's limit when
    lower) shared by the workers."""
    from distributed.system import MEMORY_LIMIT

    n = n_workers or 1
    name = "the embedded worker" if n == 1 else f"each of the {n} embedded workers"
    return [WorkerMemory(name, threads_per_worker, int(MEMORY_LIMIT * min(1, 1 / n)))] * n


def check_guard(client=None, scheduler_file=None) -> None:
    """ClusterError, with the fix, when an embedded cluster would be started (no client,
    no scheduler address or file) from the top level of a script without the ``__main__``
    guard (see `unguarded_call`).

    In a worker process that re-runs such a script (its main module is ``__mp_main__``),
    exit at once and quietly instead: the client reports the cause in one line.
    """
    if started_elsewhere(client, scheduler_file):
        return
    main = sys.modules.get("__main__")
    if getattr(main, "__name__", None) == "__mp_main__":
        raise SystemExit(1)
    import dask

    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return  # fork does not run the script again
    where = unguarded_call()
    if where:
        raise ClusterError(
            f"{where} starts jscan's local Dask cluster outside `{GUARD}`, and each worker "
            "process runs the script again as it starts; put the call (and the code it "
            f"needs) under `{GUARD}`"
        )


@contextlib.contextmanager
def local_cluster(n_workers: int | None, threads_per_worker: int = 2, log: str | None = None):
    """An embedded LocalCluster, dashboard on :8787: one worker in this process (the
    default: no process to spawn and no second import of JAX and jscan, measured in
    benchmarks/startup.py), or ``n_workers`` > 1 worker processes.

    Worker processes run with XLA_PYTHON_CLIENT_PREALLOCATE=false: a worker process drives
    all its devices and must not take 75 % of a GPU's memory at start-up, so that other
    processes can share the card. (Workers of a cluster started elsewhere need the same
    variable in their environment; jscan does not change a running process's.)
    log: the file the workers' log records go to (`logs.WorkerLogs`), or None to leave
    them on stderr. Distributed's sampling profiler is off in the workers: jscan does not
    use it, and it once printed a traceback of its own in a run that then succeeded.
    Raises ClusterError for a script without the ``__main__`` guard (`check_guard`) or
    workers that do not start.
    """
    import dask
    from distributed import LocalCluster

    from jscan.pipeline.run.logs import WorkerLogs

    check_guard()
    processes = (n_workers or 1) > 1
    # A worker in this process logs where this process does (`logs.captured`).
    extra = {"plugins": {WorkerLogs(log)}} if log and processes else {}
    if processes:
        extra["env"] = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    # Set for the cluster's life: a worker in this process reads it while it runs.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        with warnings.catch_warnings():
            # With 8787 taken, distributed serves the dashboard on another port; the link
            # printed at start says which.
            warnings.filterwarnings("ignore", message="Port 8787 is already in use")
            try:
                cluster = LocalCluster(
                    n_workers=n_workers or 1,
                    # Two threads: one block's writes overlap the next one's simulation
                    # (measured in benchmarks/RESULTS.md).
                    threads_per_worker=threads_per_worker,
                    processes=processes,
                    dashboard_address=":8787",
                    **extra,
                )
            except RuntimeError as err:  # "Nanny failed to start" and the like
                where = f" (details in {log})" if log else ""
                raise ClusterError(
                    f"the local Dask cluster's worker processes did not start: {err}{where}; "
                    f"when jscan runs from a script, the call must be under `{GUARD}`"
                ) from None
        with cluster:
            yield cluster


@contextlib.contextmanager
def connect(client=None, n_workers=None, scheduler_file=None, threads_per_worker=2, log=None):
    """Yield a distributed Client: the one given, one for an address or scheduler file,
    or an embedded `local_cluster` (one worker in this process, or n_workers processes).

    client: a Client, a scheduler address, or None (then DASK_SCHEDULER_ADDRESS when set).
    log: a file [path] for Dask's log records while the client is open (this process's,
    and the embedded cluster's workers'), or None to leave them where they go.
    Raises ClusterError when the scheduler cannot be reached.
    """
    from distributed import Client

    from jscan.pipeline.run.logs import captured

    with captured(log) if log else contextlib.nullcontext():
        if client is not None and not isinstance(client, str):
            yield client
            return
        address = client or os.environ.get("DASK_SCHEDULER_ADDRESS")
        if address or scheduler_file:
            try:
                c = Client(address, scheduler_file=scheduler_file)
            except (OSError, TimeoutError, ValueError) as err:
                raise ClusterError(
                    f"cannot reach the Dask scheduler {scheduler_file or address} ({err}); "
                    "start it or fix the address"
                ) from None
            with c:
                yield c
            return
        with local_cluster(n_workers, threads_per_worker, log) as cluster, Client(cluster) as c:
            yield c
