"""Client side of a scan: check, create the store, submit one task per missing block, watch
them land.

The pieces: `prepare` (what is refused up front, the store to write), `cluster.connect`,
`worker.ScanWorker` (each worker's state for the run), `run_blocks` (the bounded submit
loop), `progress.Progress` and `livepage.LivePage` (what the receipts feed).
"""

import sys
import uuid

import numpy as np
from distributed import as_completed

from jscan.inputs.detector_model import resolve_generator
from jscan.pipeline import store as zstore
from jscan.pipeline.live.livepage import LivePage
from jscan.pipeline.live.progress import Progress
from jscan.pipeline.run import checks
from jscan.pipeline.run.cluster import (
    check_guard,
    connect,
    embedded_workers,
    started_elsewhere,
    worker_memory,
)
from jscan.pipeline.run.logs import default_log
from jscan.pipeline.run.prepare import compile_cache, nothing_to_do, open_store, prepare
from jscan.pipeline.run.worker import ScanWorker, block_task, ground_truth_task, platform_task
from jscan.pipeline.store.lock import RunLock

TASK_PREFIX = "jscan-block"


def simulate_scan(
    config,
    store,
    client=None,
    resume=False,
    block_size=None,
    progress=True,
    n_workers=None,
    scheduler_file=None,
    threads_per_worker=2,
    compilation_cache=None,
    overwrite=False,
    verify=False,
    force=False,
    log=None,
    run_checks=None,
):
    """Simulate a scan into a Zarr store and return it opened lazily with xarray.

    config: a TOML path or a Config; store: path or URL of the Zarr store; client: a
    distributed Client or scheduler address (None: DASK_SCHEDULER_ADDRESS, else an embedded
    LocalCluster of n_workers processes with threads_per_worker threads); resume: finish a
    store's missing blocks; block_size: positions per block (overrides [run]);
    progress: bar and summary on stderr; compilation_cache: a private folder for JAX's
    persistent compilation cache, so new workers load the compiled model from disk;
    overwrite: replace the jscan store (or empty folder) at ``store``; verify: with resume,
    decode every done block and compare its checksum (default: check that its shard is
    there, one listing); damaged blocks are simulated again; force: write even when the
    store's size estimate exceeds the free disk space; log: the file Dask's log records
    are appended to during the run (None: `logs.default_log`, STORE/jscan.log for a local
    store; False: leave them on stderr).
    run_checks: a function that calls the zero-argument function it is given (the checks
    before anything is written, `prepare`) and returns its result; the CLI runs them in a
    thread so that a signal ends them at once (None: called here).
    """
    check_guard(client, scheduler_file)  # before anything is read: an unguarded script
    embedded = (
        None
        if started_elsewhere(client, scheduler_file)
        else embedded_workers(n_workers, threads_per_worker)
    )
    spec, store = (run_checks or _call)(
        lambda: prepare(config, store, resume, block_size, overwrite, force, workers=embedded)
    )
    config, plan = spec.config, spec.plan
    cache = compile_cache(compilation_cache)
    out = sys.stderr if progress else None
    if resume and nothing_to_do(store, verify):  # no cluster to start for nothing
        if out:
            how = "every block decoded" if verify else "shards present; --verify decodes them"
            print(
                f"{store} is complete ({plan.n_blocks} blocks, {how}); nothing to resume", file=out
            )
        return zstore.open_scan(store)
    # The cluster first: a scheduler that cannot be reached leaves nothing on disk.
    log = default_log(store) if log is None else log or None
    with connect(client, n_workers, scheduler_file, threads_per_worker, log) as c:
        checks.check_block_memory(worker_memory(c), config, plan)
        # Who draws the noise, decided once for the run from a worker's JAX backend.
        generator = resolve_generator(config, c.submit(platform_task, pure=False).result())
        # The ground-truth probe comes from the kernel, so a worker computes it: the client
        # starts no JAX backend (on a GPU node it would take the card's memory).
        # The spec is scattered, not put in the task's graph: its probe may be large.
        probe = None
        if not resume:
            ref = c.scatter(spec, hash=False)
            probe = c.submit(ground_truth_task, ref, cache, pure=False).result()
        with RunLock(store, hold=False) as lock:
            job, repaired = open_store(
                spec,
                store,
                lock,
                resume,
                overwrite,
                verify,
                cache,
                out,
                probe,
                generator,
            )
            with ScanWorker(job).registered(c) as name:  # every worker builds its state
                done = zstore.blocks_done(store)
                bar = Progress(plan, done, out)
                page = LivePage(c, plan, store, bar.blocks, bar.positions)
                links = [("dashboard", c.dashboard_link), ("scan page", page.link)]
                bar.start(store, checks.store_bytes(config, plan), links)
                zstore.append_history(
                    store,
                    event="start",
                    resume=resume,
                    blocks_todo=plan.n_blocks - bar.blocks,
                    workers=len(c.scheduler_info(n_workers=-1)["workers"]),
                    **({"repaired_blocks": repaired} if repaired else {}),
                )
                for receipt in run_blocks(c, name, np.flatnonzero(~done)):
                    bar.update(receipt)
                    page.block(receipt)
            page.finish()
            zstore.append_history(store, event="finish", **bar.finish(store))
    return zstore.open_scan(store)


def _call(work):
    return work()


def run_blocks(client, name: str, todo):
    """Submit the blocks ``todo`` with a bounded number in flight; yield their receipts.

    name: the run's `ScanWorker` plugin; todo: block indices (an iterable, consumed as
    blocks finish: a task is one block index, so the client holds O(blocks)). At most
    max(4, 3 x worker threads) tasks are in flight (flat memory on the scheduler); each
    `BlockReceipt` is yielded as its block lands, in any order, and its future released.
    """
    nthreads = sum(client.nthreads().values()) or 1
    window = max(4, 3 * nthreads)
    token = uuid.uuid4().hex
    pending = (int(b) for b in todo)

    def submit(b):
        return client.submit(
            block_task,
            name,
            b,  # the worker makes the block's positions from its index
            key=f"{TASK_PREFIX}-{b}-{token}",
            # No retries: a task that raises would raise again (bad value, full disk, wrong
            # store). A worker that dies is another matter: the scheduler reschedules its
            # tasks by itself (distributed.scheduler.allowed-failures).
            pure=False,
        )

    running = as_completed([submit(b) for _, b in zip(range(window), pending, strict=False)])
    for fut in running:
        receipt = fut.result()
        fut.release()
        yield receipt
        nxt = next(pending, None)
        if nxt is not None:
            running.add(submit(nxt))
