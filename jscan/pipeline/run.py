"""Client side: check, create the store, submit one task per missing block, watch them land."""

import contextlib
import os
import sys
import time
import uuid
import warnings

import cloudpickle
import numpy as np
from distributed import as_completed

from jscan.errors import ClusterError, StoreError
from jscan.inputs.config import Config, load_config, with_overrides
from jscan.inputs.digest import inputs_hash
from jscan.inputs.farfield import bright_field_radius
from jscan.pipeline import checks
from jscan.pipeline import page as dashboard
from jscan.pipeline import store as zstore
from jscan.pipeline.integrity import repair
from jscan.pipeline.lock import RunLock
from jscan.pipeline.page import bright_field_grid
from jscan.pipeline.plan import plan_scan
from jscan.pipeline.worker import ScanJob, private_dir, run_block

TASK_PREFIX = "jscan-block"


def _local_cluster(n_workers: int | None, threads_per_worker: int = 2):
    from distributed import LocalCluster

    with warnings.catch_warnings():
        # With 8787 taken, distributed serves the dashboard on another port; the link
        # printed at start says which.
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        return LocalCluster(
            n_workers=n_workers or 1,
            # Two threads: one block's writes overlap the next one's simulation
            # (steady state 1.42x one thread on 2 cores, benchmarks/RESULTS.md).
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":8787",
            # A worker process drives all its devices; it must not take all GPU memory.
            env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
        )


@contextlib.contextmanager
def connect(client=None, n_workers=None, scheduler_file=None, threads_per_worker=2):
    """Yield a distributed Client: the one given, one for an address or scheduler file,
    or an embedded LocalCluster of n_workers processes (default 1)."""
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
    with _local_cluster(n_workers, threads_per_worker) as cluster, Client(cluster) as c:
        yield c


class Progress:
    """Blocks and positions done, positions/s and ETA on stderr (one line, redrawn)."""

    def __init__(self, plan, done_blocks, done_positions, enabled, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.blocks, self.total_blocks = done_blocks, plan.n_blocks
        self.positions, self.total = done_positions, plan.n_positions
        self.start_positions = done_positions
        self.t0 = self.last = time.perf_counter()
        self.tty = self.stream.isatty()

    def update(self, receipt):
        self.blocks += 1
        self.positions += receipt["positions"]
        now = time.perf_counter()
        final = self.blocks == self.total_blocks
        if self.enabled and (final or now - self.last > (0.2 if self.tty else 5.0)):
            self.last = now
            rate = (self.positions - self.start_positions) / max(now - self.t0, 1e-9)
            eta = (self.total - self.positions) / rate if rate > 0 else float("inf")
            frac = self.positions / self.total
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            line = (
                f"[{bar}] blocks {self.blocks}/{self.total_blocks}  positions "
                f"{self.positions}/{self.total}  {rate:,.0f} pos/s  ETA {eta:,.0f} s"
            )
            end = "\r" if self.tty and not final else "\n"
            print(("\r" if self.tty else "") + line, end=end, file=self.stream, flush=True)


def prepare(config, store, resume=False, block_size=None, overwrite=False, force=False):
    """Validate everything before anything is created.

    Returns (config, plan, store, inputs): the config with overrides (block size capped at
    the scan length), the scan plan, the normalised store location (a local path made
    absolute, so that workers with another working folder write the same store) and the
    fingerprint of the input files. Raises ConfigError (bad config, sample values,
    brightness) or StoreError (store exists without --resume or --overwrite, missing or
    damaged with --resume, made with another config, other input files or another block
    size, not a jscan store with --overwrite; no room for it unless force).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    config = checks.cap_block_size(with_overrides(config, block_size=block_size))
    if resume and overwrite:
        raise StoreError("--resume and --overwrite exclude each other; pass one")
    checks.check_store_location(store)
    store = zstore.location(store)
    if "://" not in store:
        store = os.path.abspath(store)
    sample = checks.check_inputs(config)  # one streamed pass: values checked, fingerprint
    inputs = inputs_hash(config, sample)
    if zstore.exists(store) and overwrite:
        zstore.check_replaceable(store)
    elif zstore.exists(store):
        if not resume:
            raise StoreError(
                f"{store} already exists; pass --resume to finish it or --overwrite to "
                "replace it, or choose another --out"
            )
        attrs = zstore.check_store(store)
        if attrs["config_hash"] != config.hash:
            raise StoreError(
                f"{store} was made with another config (hash {attrs['config_hash'][:12]}, "
                f"this one {config.hash[:12]}); resume with the config it was made with"
            )
        if attrs["inputs_hash"] != inputs:
            raise StoreError(
                f"the probe, positions or sample file of {store} changed since it was made; "
                "restore the files it was made with, or replace the store with --overwrite"
            )
        if attrs["block_size"] != config.run.block_size:
            raise StoreError(
                f"{store} is laid out in blocks of {attrs['block_size']} positions; resume "
                f"with --block-size {attrs['block_size']}"
            )
    elif resume:
        raise StoreError(f"nothing to resume at {store}; drop --resume to start it")
    plan = plan_scan(config)
    checks.check_disk(store, config, plan, resume, force)
    checks.check_brightness(config, sample)
    return config, plan, store, inputs


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
    store's size estimate exceeds the free disk space.
    """
    config, plan, store, inputs = prepare(
        config, store, resume, block_size, overwrite=overwrite, force=force
    )
    if compilation_cache is not None:
        try:
            compilation_cache = private_dir(compilation_cache)
        except (OSError, ValueError) as err:
            raise StoreError(str(err)) from None
    out = sys.stderr
    # The cluster first: a scheduler that cannot be reached leaves nothing on disk.
    with connect(client, n_workers, scheduler_file, threads_per_worker) as c:
        checks.check_block_memory(c, config, plan)
        with RunLock(store, hold=False) as lock:
            bf_radius, store_id, repaired = _open_store(
                config, plan, store, inputs, lock, resume, overwrite, verify, progress and out
            )
            done = zstore.blocks_done(store)
            todo = [int(b) for b in np.flatnonzero(~done)]
            finished = sum(
                plan.block_range(b)[1] - plan.block_range(b)[0] for b in np.flatnonzero(done)
            )
            page = LivePage(c, plan, store, int(done.sum()), finished)
            if progress:
                print(f"dashboard: {c.dashboard_link}", file=out, flush=True)
                if page.link:
                    print(f"scan page: {page.link}", file=out, flush=True)
                print(
                    f"{plan.n_positions} positions in {plan.n_blocks} blocks of "
                    f"{plan.block_size}; {len(todo)} to do -> {store} (at most "
                    f"{checks.human(checks.store_bytes(config, plan))} uncompressed)",
                    file=out,
                    flush=True,
                )
            workers = len(c.scheduler_info(n_workers=-1)["workers"])
            zstore.append_history(
                store,
                event="start",
                resume=resume,
                blocks_todo=len(todo),
                workers=workers,
                **({"repaired_blocks": repaired} if repaired else {}),
            )
            job = ScanJob(
                config,
                store,
                plan.region_shape,
                plan.sample_shape,
                inputs_hash=inputs,
                bright_field_radius=bf_radius,
                compilation_cache=compilation_cache,
                store_id=store_id,
            )
            bar = Progress(plan, int(done.sum()), finished, progress, out)
            t0 = time.perf_counter()
            totals = _run_blocks(c, job, plan, todo, lambda r: (bar.update(r), page.block(r)))
            wall = time.perf_counter() - t0
            page.finish()
            zstore.append_history(
                store,
                event="finish",
                blocks=totals["blocks"],
                positions=totals["positions"],
                seconds=round(wall, 3),
            )
    if progress:
        n_new = totals["positions"]
        print(
            f"done: {n_new} positions in {totals['blocks']} blocks, {wall:.1f} s, "
            f"{n_new / max(wall, 1e-9):,.0f} pos/s, "
            f"{totals['bytes'] / max(wall, 1e-9) / 1e6:,.1f} MB/s of patterns -> {store}",
            file=out,
            flush=True,
        )
    return zstore.open_scan(store)


def _open_store(config, plan, store, inputs, lock, resume, overwrite, verify, out):
    """Take the run lock on the store and return (bright-field radius, store_id, blocks to
    repair): the store's own when resuming (damaged blocks un-marked), else a new store's.

    out: a stream for the repair line, or False.
    """
    if resume:
        lock.take(store)
        attrs = zstore.check_store(store)  # again, under the lock
        report = repair(store, full=verify)
        if out and report.faults:
            print(f"re-running damaged blocks: {report.line()}", file=out, flush=True)
        return attrs["bright_field_radius_m"], attrs["store_id"], report.bad_blocks
    if overwrite and zstore.exists(store):
        lock.take(store)  # refused while another run writes it
        zstore.check_replaceable(store)
    radius = bright_field_radius(config)
    # Built under a temporary name, locked, and renamed: a store made meanwhile by a
    # concurrent run is refused, naming its owner.
    store_id = zstore.create(store, config, plan, radius, inputs, lock=lock, replace=overwrite)
    return radius, store_id, []


def _has_plugin(dask_scheduler, name):
    return name in dask_scheduler.plugins


def _register_page(client):
    """Register the scan page once per scheduler; later runs reuse it ("start" resets it)."""
    if client.run_on_scheduler(_has_plugin, name=dashboard.ScanPage.name):
        return
    # By value: a remote scheduler needs no jscan to serve the page.
    cloudpickle.register_pickle_by_value(dashboard)
    try:
        client.register_plugin(dashboard.ScanPage())
    finally:
        cloudpickle.unregister_pickle_by_value(dashboard)


class LivePage:
    """Registers the dashboard's scan page on the scheduler and feeds it block receipts."""

    def __init__(self, client, plan, store, done_blocks, done_positions):
        self.client, self.plan, self.link = client, plan, None
        self.cells, grid = bright_field_grid(plan.positions, plan.raster)
        try:
            _register_page(client)
        except Exception as err:  # the run goes on without its page
            warnings.warn(
                f"the jscan scan page is unavailable: {err}", RuntimeWarning, stacklevel=3
            )
            return
        link = client.dashboard_link
        self.link = link[: link.rfind("/") + 1] + dashboard.ROUTE if link else None
        client.log_event(
            dashboard.TOPIC,
            {
                "event": "start",
                "store": store,
                "total_blocks": plan.n_blocks,
                "total_positions": plan.n_positions,
                "done_blocks": done_blocks,
                "done_positions": int(done_positions),
                "grid": list(grid),
            },
        )

    def block(self, receipt):
        if self.link is None:
            return
        start, stop = self.plan.block_range(receipt["block"])
        self.client.log_event(
            dashboard.TOPIC,
            {
                "event": "block",
                "positions": receipt["positions"],
                "cells": self.cells[start:stop].tolist(),
                "bf": receipt["bf"],
                "pattern": receipt["pattern"],
                "worker": receipt["worker"],
                "seconds": receipt["compute_s"] + receipt["write_s"],
            },
        )

    def finish(self):
        if self.link is not None:
            self.client.log_event(dashboard.TOPIC, {"event": "finish"})


def _run_blocks(client, job, plan, todo, on_receipt):
    """Submit blocks with a bounded number in flight (flat memory on the scheduler).

    Returns the totals of the receipts (blocks, positions, bytes); each receipt goes to
    on_receipt and is then dropped.
    """
    nthreads = sum(client.nthreads().values()) or 1
    window = max(4, 3 * nthreads)
    token = uuid.uuid4().hex
    pending = iter(todo)
    totals = {"blocks": 0, "positions": 0, "bytes": 0}

    def submit(b):
        start, stop = plan.block_range(b)
        return client.submit(
            run_block,
            job,
            b,
            plan.block_origins(b),
            start,
            stop - start,
            plan.block_shifts(b),
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
        totals["blocks"] += 1
        totals["positions"] += receipt["positions"]
        totals["bytes"] += receipt["bytes"]
        on_receipt(receipt)
        nxt = next(pending, None)
        if nxt is not None:
            running.add(submit(nxt))
    return totals
