"""The rules of starting a run: what is refused before anything is written, and the store
a run writes to (a new one, a replaced one, or the one it resumes)."""

import os

from jscan.errors import StoreError, UsageError
from jscan.inputs.config import Config, load_config, with_overrides
from jscan.inputs.digest import inputs_hash
from jscan.inputs.farfield import bright_field_radius
from jscan.pipeline import checks
from jscan.pipeline import store as zstore
from jscan.pipeline.cachedir import private_dir
from jscan.pipeline.detector_model import check_detector
from jscan.pipeline.integrity import repair
from jscan.pipeline.plan import plan_scan
from jscan.pipeline.worker import ScanJob


def prepare(config, store, resume=False, block_size=None, overwrite=False, force=False):
    """Validate everything before anything is created.

    Returns (config, plan, store, inputs): the config with overrides (block size capped at
    the scan length), the scan plan, the normalised store location (a local path made
    absolute, so that workers with another working folder write the same store) and the
    fingerprint of the input files. Raises UsageError (resume and overwrite together),
    ConfigError (bad config, sample values, brightness) or StoreError (store exists
    without --resume or --overwrite, missing or damaged with --resume, made with another
    config, other input files or another block size, not a jscan store with --overwrite;
    no room for it unless force).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    config = checks.cap_block_size(with_overrides(config, block_size=block_size))
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass one")
    checks.check_store_location(store)
    store = zstore.location(store)
    if "://" not in store:
        store = os.path.abspath(store)
    exists = zstore.exists(store)
    if exists and not (resume or overwrite):  # before the inputs are read (they may be large)
        raise StoreError(
            f"{store} already exists; pass --resume to finish it or --overwrite to "
            "replace it, or choose another --out"
        )
    sample = checks.check_inputs(config)  # one streamed pass: values checked, fingerprint
    inputs = inputs_hash(config, sample)
    if exists and overwrite:
        zstore.check_replaceable(store)
    elif exists:
        attrs = zstore.check_store(store)
        if attrs["config_hash"] != config.hash:
            raise StoreError(
                f"{store} was made with another config (hash {attrs['config_hash'][:12]}, "
                f"this one {config.hash[:12]}); resume with the config it was made with"
            )
        if attrs["inputs_hash"] != inputs:
            raise StoreError(
                f"the probe, positions, sample or bad-pixel file of {store} changed since it "
                "was made; restore the files it was made with, or replace the store with "
                "--overwrite"
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
    check_detector(config, plan.window)
    return config, plan, store, inputs


def compile_cache(path) -> str | None:
    """The compilation cache folder (--compile-cache), made private or refused; None: none.

    Raises UsageError naming the folder (or the folder above it) that makes it unsafe.
    """
    if path is None:
        return None
    try:
        return private_dir(path)
    except OSError as err:
        raise UsageError(f"compilation cache (--compile-cache) {path}: {err}") from None


def open_store(config, plan, store, inputs, lock, resume, overwrite, verify, cache, out):
    """Take the run lock on the store, create it unless resuming; return (job, repaired).

    job: the `ScanJob` the workers build their state from, with the store's store_id and
    bright-field radius (the store's own when resuming, else the new store's); repaired:
    the damaged blocks found and un-marked when resuming (verify: decode every done block).
    cache: the compilation cache folder or None; out: a stream for the repair line, or None.
    """
    if resume:
        lock.take(store)
        attrs = zstore.check_store(store)  # again, under the lock
        report = repair(store, full=verify)
        if out and report.faults:
            print(f"re-running damaged blocks: {report.named()}", file=out, flush=True)
        radius, store_id, repaired = (
            attrs["bright_field_radius_m"],
            attrs["store_id"],
            report.bad_blocks,
        )
    else:
        if overwrite and zstore.exists(store):
            lock.take(store)  # refused while another run writes it
            zstore.check_replaceable(store)
        radius, repaired = bright_field_radius(config), []
        # Built under a temporary name, locked, and renamed: a store made meanwhile by a
        # concurrent run is refused, naming its owner.
        store_id = zstore.create(store, config, plan, radius, inputs, lock=lock, replace=overwrite)
    job = ScanJob(
        config,
        store,
        plan,
        inputs_hash=inputs,
        bright_field_radius=radius,
        compilation_cache=cache,
        store_id=store_id,
    )
    return job, repaired
