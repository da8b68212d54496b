"""Worker side: one block of positions -> patterns in the store (the Dask half).

`jscan.pipeline.run.runner.BlockRunner` holds one scan's worker-side state (the compiled
microscope's constants on the devices, the photon factor, the bright-field mask, the opened
store) and runs blocks with it, built from a `jscan.pipeline.run.job.ScanJob`. This module
holds the worker's tasks (no JAX at import) and `ScanWorker`, the `distributed.WorkerPlugin`
that owns a runner on each worker process for one run: the client registers it at the
start of the run (`ScanWorker.registered`), every worker builds its runner once in
``setup``, new workers (a restarted one too) get it when they join, and ``teardown``
frees it when the run unregisters it. The block task, `block_task`, finds its runner
through ``get_worker().plugins``.
"""

import asyncio
import contextlib

import numpy as np
from distributed import WorkerPlugin, get_worker

from jscan.errors import ClusterError
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.spec import ScanSpec


def ground_truth_task(spec: ScanSpec, cache: str | None = None) -> np.ndarray:
    """The new store's ground-truth probe, computed on a worker (a Dask task): the client
    imports no JAX (`jscan.pipeline.microscope.ground_truth_probe`). cache: the run's
    compilation cache, set before this worker's first compilation."""
    from jscan.pipeline.microscope import ground_truth_probe
    from jscan.pipeline.run.runner import use_compilation_cache

    restore = use_compilation_cache(cache) if cache else None
    try:
        return ground_truth_probe(spec.config, spec.probe, spec.plan.slices)
    finally:
        if restore:
            restore()


def platform_task() -> str:
    """The JAX platform of the worker that runs it ("cpu", "gpu", ...): a Dask task (it
    compiles nothing, so it needs no compilation cache)."""
    import jax

    return jax.default_backend()


class ScanWorker(WorkerPlugin):
    """Owns one run's `BlockRunner` on each worker process, from setup to teardown.

    job: the run's `ScanJob`; name: the plugin's name on the workers (default
    ``jscan-<store_id>``: one store has one run at a time, and a run that resumes a store
    replaces whatever a lost client left registered for it). GPU workers of a cluster
    started outside jscan should run with ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` in their
    environment (the embedded LocalCluster sets it), so that several processes share a card.
    """

    def __init__(self, job: ScanJob, name: str | None = None):
        self.job = job
        self.name = name or f"jscan-{job.store_id}"
        self.runner = None  # its `BlockRunner`, built on the worker, never pickled
        self.error: BaseException | None = None  # why setup failed, for the block tasks
        self.restore = None  # puts back the process's compilation cache at teardown

    def __getstate__(self):
        return {**self.__dict__, "runner": None, "error": None, "restore": None}

    async def setup(self, worker):
        # In a thread: building the state starts JAX and may read input files, and the
        # worker's event loop must keep answering the scheduler meanwhile.
        try:
            self.runner = await asyncio.to_thread(self._build)
        except BaseException as err:
            self.error = err
            raise

    def _build(self):
        from jscan.pipeline.run.runner import BlockRunner, use_compilation_cache  # JAX: here only

        if self.job.compilation_cache:  # before the first compilation of this process
            self.restore = use_compilation_cache(self.job.compilation_cache)
        runner = BlockRunner(self.job)
        runner.open_store()  # a worker that cannot reach the run's store refuses at once
        return runner

    def teardown(self, worker):
        # Blocks still running keep their own reference; the state goes with the last one.
        self.runner = None
        if self.restore is not None:
            self.restore()
            self.restore = None

    @contextlib.contextmanager
    def registered(self, client):
        """Register the plugin on every worker of ``client``'s cluster for a ``with`` block.

        Yields the plugin's name, for `block_task`. Registration waits for every worker's
        setup and raises its error (StoreError: a worker that sees another store, or none);
        leaving the block unregisters the plugin, which frees the state on each worker.
        """
        try:
            client.register_plugin(self, name=self.name)
            yield self.name
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                client.unregister_worker_plugin(self.name)
            raise
        client.unregister_worker_plugin(self.name)


def block_task(name: str, block: int):
    """The Dask task of one block: `BlockRunner.run` with the state of plugin ``name``.

    Returns the block's `BlockReceipt`. Raises the error of the plugin's setup when it failed
    on this worker, ClusterError when the plugin is not registered.
    """
    worker = get_worker()
    plugin = worker.plugins.get(name)
    if plugin is None:
        raise ClusterError(
            f"worker {worker.address} has no jscan plugin {name}: the run ended or was "
            "replaced; start the run again (with --resume) from one client"
        )
    runner = plugin.runner
    if runner is None:
        raise plugin.error or ClusterError(f"worker {worker.address}: {name} is not set up")
    return runner.run(block, worker=worker.address)
