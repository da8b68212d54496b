"""The Dask cluster of a run: a client given, a scheduler's address, or an embedded one."""

import contextlib
import os
import warnings

from jscan.errors import ClusterError


def local_cluster(n_workers: int | None, threads_per_worker: int = 2):
    """An embedded LocalCluster of ``n_workers`` processes (default 1), dashboard on :8787.

    Its workers run with XLA_PYTHON_CLIENT_PREALLOCATE=false: a worker process drives all
    its devices and must not take 75 % of a GPU's memory at start-up, so that other
    processes can share the card. (Workers of a cluster started elsewhere need the same
    variable in their environment; jscan does not change a running process's.)
    """
    from distributed import LocalCluster

    with warnings.catch_warnings():
        # With 8787 taken, distributed serves the dashboard on another port; the link
        # printed at start says which.
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        return LocalCluster(
            n_workers=n_workers or 1,
            # Two threads: one block's writes overlap the next one's simulation
            # (measured in benchmarks/RESULTS.md).
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":8787",
            env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
        )


@contextlib.contextmanager
def connect(client=None, n_workers=None, scheduler_file=None, threads_per_worker=2):
    """Yield a distributed Client: the one given, one for an address or scheduler file,
    or an embedded LocalCluster of n_workers processes (default 1).

    client: a Client, a scheduler address, or None (then DASK_SCHEDULER_ADDRESS when set).
    Raises ClusterError when the scheduler cannot be reached.
    """
    from distributed import Client

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
    with local_cluster(n_workers, threads_per_worker) as cluster, Client(cluster) as c:
        yield c
