"""The rules of starting a run: what is refused before anything is written, and the store
a run writes to (a new one, a replaced one, or the one it resumes)."""

import os
import tomllib

from jscan.errors import ConfigError, StoreError, UsageError
from jscan.inputs.config import Config, load_config, with_overrides
from jscan.inputs.detector_model import resolve_generator
from jscan.inputs.digest import inputs_hash
from jscan.inputs.schema import REQUIRED, schema
from jscan.pipeline import store as zstore
from jscan.pipeline.run import checks
from jscan.pipeline.run.cachedir import private_dir
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store.integrity import recorded_damage, repair
from jscan.pipeline.store.integrity import verify as check_blocks
from jscan.pipeline.store.lock import RunLock, is_local


def prepare(
    config, store, resume=False, block_size=None, overwrite=False, force=False, workers=None
):
    """Validate everything before anything is created.

    Returns (spec, store): the `ScanSpec` of the config with overrides (block size capped
    at the scan length), its plan and the fingerprint of its input files, and the normalised
    store location (a local path made absolute, so that workers with another working folder
    write the same store). Raises UsageError (resume and overwrite together),
    ConfigError (bad config, sample values, brightness) or StoreError (store exists
    without --resume or --overwrite, missing or damaged with --resume, made with another
    config, other input files or another block size, not a jscan store with --overwrite;
    no room for it unless force). workers: the `cluster.WorkerMemory` of the embedded
    cluster, whose block memory is checked before the inputs are read (None: the cluster
    is started elsewhere, and checked once connected).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    config = checks.cap_block_size(with_overrides(config, block_size=block_size))
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass one")
    checks.check_store_location(store)
    store = zstore.location(store)
    if is_local(store):
        store = os.path.abspath(store)
    exists = zstore.exists(store)
    if exists and not (resume or overwrite):  # before the inputs are read (they may be large)
        raise StoreError(
            f"{store} already exists; pass --resume to finish it or --overwrite to "
            "replace it, or choose another --out"
        )
    if resume and not exists:
        raise StoreError(f"nothing to resume at {store}; drop --resume to start it")
    # Arithmetic on the config first (the plan, the store's size against the free disk):
    # a request refused for its size is refused before the probe or the sample is read.
    plan = plan_config(config)
    if not resume:  # a resume's need depends on its store, checked below first
        checks.check_disk(store, config, plan, resume, force)
    if workers:
        checks.check_block_memory(workers, config, plan)
    sample = checks.check_inputs(config)  # one streamed pass: values checked, fingerprint
    inputs = inputs_hash(config, sample)
    if exists and overwrite:
        zstore.check_replaceable(store)
    elif exists:
        attrs = zstore.check_store(store)
        if attrs["config_hash"] != config.hash:
            changed = "; ".join(config_changes(attrs.get("config", ""), config))
            raise StoreError(
                f"{store} was made with another config ({changed}); resume with the config "
                "it was made with, or start again with --overwrite"
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
    checks.warn_quiet_mistakes(config, plan)
    if resume:
        checks.check_disk(store, config, plan, resume, force)
    checks.check_brightness(config, sample, plan.slices)
    return describe(config, plan, inputs), store


def plan_config(config: Config):
    """`plan_scan`, whose refusal also says "lengths are in metres" when a length is about
    10^6 too large (`checks.length_hint`)."""
    try:
        return plan_scan(config)
    except ConfigError as err:
        hint = checks.length_hint(config)
        if not hint:
            raise
        raise ConfigError(f"{err}; {hint}") from None


def _values(text: str) -> dict[str, object]:
    """section.key -> value of a config's TOML text, the schema's defaults filled in, for
    the keys its kinds allow; the physics sections only ([run] is not in the hash)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}
    values = {}
    for section, keys in schema().items():
        if section == "run":
            continue
        table = data.get(section, {})
        if not isinstance(table, dict):
            continue
        for name, key in keys.items():
            allowed = key.kinds is None or table.get("kind") in key.kinds
            if name in table:
                values[f"{section}.{name}"] = table[name]
            elif allowed and key.default is not REQUIRED:
                values[f"{section}.{name}"] = key.default
    return values


def config_changes(stored_text: str, config: Config, most: int = 6) -> list[str]:
    """The keys whose values differ between a store's config (its ``config`` attribute) and
    ``config``: "key: old -> new", at most ``most`` of them and a count of the rest."""
    old, new = _values(stored_text), _values(config.text)
    changed = [
        f"{key}: {old.get(key, 'absent')!r} -> {new.get(key, 'absent')!r}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]
    if not changed:
        return ["no key differs as written, but a relative path resolves to another file"]
    more = len(changed) - most
    return changed[:most] + ([f"{more} more"] if more > 0 else [])


def nothing_to_do(store: str, verify: bool) -> bool:
    """With --resume: True when every block of ``store`` is done and sound (checked as a
    resume checks them, `integrity.verify`; ``verify``: decoding every block), so that no
    cluster is started; False too when the last `jscan verify` recorded damage that no run
    has repaired (`integrity.recorded_damage`). The run lock is held while checking: a store
    another run writes is refused, as for any resume. A damaged store gives False and is
    repaired by `open_store`, under the run lock (then checked a second time: damage is
    rare, a sound store is read once).
    """
    if not zstore.blocks_done(store).all() or recorded_damage(zstore.read_attrs(store)):
        return False
    with RunLock(store):  # refused while another run writes the store (or a planted link)
        return check_blocks(store, full=verify).ok


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


def open_store(
    spec,
    store,
    lock,
    resume,
    overwrite,
    verify,
    cache,
    out,
    probe=None,
    generator=None,
):
    """Take the run lock on the store, create it unless resuming; return (job, repaired).

    spec: the run's `ScanSpec` (`prepare`); job: the `ScanJob` the workers build their
    state from, with the store's store_id and bright-field radius (the store's own when
    resuming, else the spec's); repaired:
    the damaged blocks found and un-marked when resuming (verify: decode every done block).
    cache: the compilation cache folder or None; out: a stream for the repair line, or None;
    probe: the new store's ground-truth probe (`zstore.create`; None: computed here);
    generator: who draws the counts (`resolve_generator`; None: as a CPU process decides).
    Raises StoreError when resuming a store whose counts another generator drew.
    """
    generator = generator or resolve_generator(spec.config, "cpu")
    if resume:
        lock.take(store)
        attrs = zstore.check_store(store)  # again, under the lock
        check_generator(store, attrs, generator)
        report = repair(store, full=verify)
        if out and report.faults:
            print(f"re-running damaged blocks: {report.named()}", file=out, flush=True)
        spec, store_id, repaired = spec.resumed(attrs), attrs["store_id"], report.bad_blocks
    else:
        if overwrite and zstore.exists(store):
            lock.take(store)  # refused while another run writes it
            zstore.check_replaceable(store)
        repaired = []
        # Built under a temporary name, locked, and renamed: a store made meanwhile by a
        # concurrent run is refused, naming its owner.
        store_id = zstore.create(
            store,
            spec,
            lock=lock,
            replace=overwrite,
            probe=probe,
            generator=generator,
        )
    job = ScanJob(
        spec,
        store,
        compilation_cache=cache,
        store_id=store_id,
        generator=generator,
    )
    return job, repaired


# What made the counts of a store that records no generator: jscan 0.1.0's host sampler
# (numpy's Poisson per pixel), which no later jscan draws.
EARLIER_HOST = "host (jscan 0.1.0 before the generator was recorded)"


def check_generator(store: str, attrs: dict, generator: str) -> None:
    """StoreError when this run would draw ``store``'s missing blocks with another generator
    than the one that drew its counts (a float store draws nothing: any is fine)."""
    stored = attrs.get("generator", EARLIER_HOST)
    if generator == "none" or stored == generator:  # same config: both draw, or neither
        return
    hint = (
        f'resume it on workers whose generator is {stored} ("auto" chooses by their JAX '
        "backend: CPU host, GPU device)"
        if stored in ("host", "device")
        else "finish it with the jscan that made it"
    )
    raise StoreError(
        f"the counts of {store} were drawn by the {stored} generator, this run would draw "
        f"with the {generator} one (other counts); {hint}, or start again with --overwrite"
    )
