"""The `jscan` command: simulate, demo, init, check, preview, info, verify.

Only the standard library is imported at start: `jscan --help` and `jscan --version` load
no numpy, JAX or Dask; each command imports what it needs.
"""

import json
import os
import signal
import sys
import warnings

from jscan.cliargs import DEMO_OUT, KINDS, build_parser
from jscan.cliargs import check_cluster_flags as _check_cluster_flags
from jscan.errors import JscanError, JscanWarning, StoreError, UsageError


def _simulate(config, out, args, resume=False, overwrite=False):
    _no_preallocation()
    from jscan.pipeline import simulate_scan

    _check_cluster_flags(args)
    if args.verify and not resume:
        raise UsageError("--verify checks a store before resuming it; pass it with --resume")
    ds = simulate_scan(
        config,
        out,
        client=args.scheduler,
        resume=resume,
        block_size=args.block_size,
        progress=not args.no_progress,
        n_workers=args.workers,
        scheduler_file=args.scheduler_file,
        threads_per_worker=args.threads,
        compilation_cache=_compile_cache(args),
        overwrite=overwrite,
        verify=args.verify,
        force=args.force,
        log=args.log,
        run_checks=_promptly,
    )
    ds.close()


def _no_preallocation() -> None:
    """The embedded cluster's single worker runs in this process: like worker processes, it
    must not take 75 % of a GPU's memory when JAX starts (set before JAX is imported)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _compile_cache(args) -> str | None:
    """--compile-cache DIR; "none": no cache; not given: for the embedded cluster, the
    user's cache folder ($JSCAN_COMPILE_CACHE, else $XDG_CACHE_HOME or ~/.cache, then
    jscan/xla) when it can be made private, so that a second run loads the compiled model."""
    if args.compile_cache == "none":
        return None
    if args.compile_cache or args.scheduler or args.scheduler_file:
        return args.compile_cache
    if os.environ.get("DASK_SCHEDULER_ADDRESS"):
        return None
    from jscan.pipeline.run.cachedir import private_dir

    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    path = os.environ.get("JSCAN_COMPILE_CACHE") or os.path.join(base, "jscan", "xla")
    try:
        return private_dir(path)
    except UsageError:  # a shared or unsafe folder: run without a cache
        return None


def _demo(args):
    from jscan.inputs.config import DEMO_CONFIG, parse_config
    from jscan.pipeline import store

    config = parse_config(DEMO_CONFIG)
    out = DEMO_OUT if args.out is None else args.out
    overwrite = args.overwrite
    if args.out is None and os.path.isdir(out) and not args.resume and not overwrite:
        # The default demo store is disposable; anything else at that path is kept.
        try:
            made_by_demo = store.read_attrs(out).get("config_hash") == config.hash
        except StoreError:
            made_by_demo = False
        if not made_by_demo:
            raise StoreError(
                f"./{DEMO_OUT} exists and is not a whole jscan demo; pass --out, or "
                "--overwrite to replace it"
            )
        print(f"replacing the previous demo store ./{out}", file=sys.stderr)
        overwrite = True  # under the run lock: refused while another run writes it
    _simulate(config, out, args, resume=args.resume, overwrite=overwrite)
    if not args.no_progress:
        print(
            f"open it with: python -c \"import xarray; print(xarray.open_zarr('{out}'))\"",
            file=sys.stderr,
        )


def _init(args):
    from jscan.inputs.reference import template

    if os.path.exists(args.file) and not args.force:
        raise UsageError(f"{args.file} exists; choose another file, or pass --force to replace it")
    kinds = {section: getattr(args, f"{section}_kind") for section in KINDS}
    folder = os.path.dirname(os.path.abspath(args.file))
    os.makedirs(folder, exist_ok=True)
    with open(args.file, "w", encoding="utf-8") as handle:
        handle.write(template(kinds))
    files = {"probe": "probe.npy", "sample": "sample.npy", "scan": "positions.npy"}
    needs = [files[s] for s, kind in kinds.items() if kind == "file"]
    needs += ["the Zarr store sample.zarr"] if kinds["sample"] == "zarr" else []
    then = f"; put {', '.join(needs)} beside it" if needs else ""
    print(f"wrote {args.file}{then}; next: jscan check {args.file}")


def _check(args):
    from jscan.pipeline.run.cluster import embedded_workers, started_elsewhere
    from jscan.pipeline.run.dryrun import dry_run, report

    workers = None if started_elsewhere() else embedded_workers(args.workers, args.threads)

    def checked():
        run = dry_run(args.config, block_size=args.block_size, workers=workers)
        return run, report(run)

    run, lines = _promptly(checked)
    print(f"config: {args.config} (hash {run.spec.config.hash[:12]})")
    print("\n".join(lines))
    for line in run.warnings:
        warnings.warn(line, JscanWarning, stacklevel=1)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'jscan[plot]'") from None
        from jscan.preview import plot_dry_run

        print(f"plot: {plot_dry_run(run, args.plot)}")
    written = "no store was written" if args.plot else "nothing was written"
    print(f"{written}; run it with: jscan simulate {args.config} --out STORE")


def _promptly(work):
    """work() in a thread while this one waits: a SIGTERM or Ctrl-C ends the wait at once,
    where inside one long numpy call it would wait for the call to return. For work that
    writes nothing (`jscan check`, a run's checks; the thread is left to the interpreter's
    exit)."""
    import threading

    result = []

    def target():
        try:
            result.append((True, work()))
        except BaseException as err:  # handed to the waiting thread, raised there
            result.append((False, err))

    thread = threading.Thread(target=target, name="jscan-check", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
    ok, value = result[0]
    if not ok:
        raise value
    return value


def _preview(args):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("jscan preview needs matplotlib: pip install 'jscan[plot]'") from None
    from jscan.pipeline import store
    from jscan.preview import preview

    store.check_store(args.store)  # one line for something that is not a whole jscan store
    print(preview(args.store, args.out, n_patterns=args.patterns))


def info(store_path, stream=None):
    """Print a store's layout, optics, progress, config and run history (to stdout); return
    0, or 1 (with one line on stderr) when block_done flags cannot be read."""
    import zarr

    stream = stream or sys.stdout  # at call time: the one in use now, not at import

    from jscan.pipeline import store
    from jscan.pipeline.store.coords import OPTICS_KEYS

    attrs = store.check_store(store_path)
    group = zarr.open_group(store_path, mode="r")
    flags, unreadable = store.run_state(store_path, "block_done")
    done = flags.astype(bool)
    w = stream.write
    w(f"store: {store_path}  ({attrs['format']}, made by jscan {attrs['jscan_version']})\n")
    w(f"store_id: {attrs['store_id']}\n")
    w(
        f"blocks done: {int(done.sum())}/{len(done)}  (block size {attrs['block_size']}, "
        f"{attrs['n_positions']} positions)\n"
    )
    _detector_summary(store_path, attrs, done, w)
    w("\narrays:\n")
    for name, arr in sorted(group.arrays()):
        dims = arr.metadata.dimension_names
        codecs = ", ".join(type(c).__name__ for c in arr.compressors) or "none"
        shards = f" shards {arr.shards}" if arr.shards else ""
        w(
            f"  {name:12s} {arr.dtype!s:8s} {arr.shape} dims {dims} chunks {arr.chunks}"
            f"{shards} codecs {codecs}\n"
        )
    w("\noptics:\n")
    for key in OPTICS_KEYS:
        w(f"  {key} = {attrs.get(key)}\n")
    w(f"\nconfig (hash {attrs['config_hash'][:16]}):\n")
    w("".join(f"  {line}\n" for line in attrs["config"].splitlines()))
    w("\nrun history:\n")
    for entry in attrs.get("run_history", []):
        w(f"  {json.dumps(entry)}\n")
    if unreadable:  # counted as not done above; a resume would simulate them again
        print(
            f"jscan: error: {store_path}: the block_done flag of {len(unreadable)} block(s) "
            f"cannot be read (first: {unreadable[0]}); run jscan verify {store_path}",
            file=sys.stderr,
        )
        return 1
    return 0


def _detector_summary(store_path, attrs, done, w):
    """Print the stored per-pattern sums over the done positions (reads 16 bytes per position,
    never a pattern)."""
    import numpy as np
    import zarr

    if not done.any():
        return
    from jscan.pipeline.store import per_position
    from jscan.pipeline.store.chunks import read_sound

    mask = per_position(done, attrs["block_size"], attrs["n_positions"])
    read = {name: read_sound(store_path, name)[mask] for name in ("total", "bright_field")}
    total = read["total"]
    from jscan.inputs.detector_model import values_label

    meta = zarr.open_array(store_path, path="diffraction", mode="r").attrs
    units = values_label(meta.get("long_name", ""))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.nanmedian(read["bright_field"] / total)
    w(
        f"{units} per pattern (stored `total`, done positions): min {total.min():.4g}, "
        f"median {np.median(total):.4g}, max {total.max():.4g}; median bright-field share "
        f"{fraction:.3g}\n"
    )


def verify(store_path, quick=False, stream=None) -> int:
    """Check a store's done blocks; print one line; return 0 when all are sound, else 1.

    A progress line is redrawn every few seconds on long stores.
    """
    import time

    from jscan.pipeline.store.integrity import verify as check

    stream = stream or sys.stderr
    last = [time.monotonic()]

    def progress(k, n):
        if time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            print(f"verified {k}/{n} done blocks", file=stream, flush=True)

    report = check(store_path, full=not quick, on_progress=progress)
    if report.ok:
        from jscan.pipeline.store import read_attrs
        from jscan.pipeline.store.integrity import recorded_damage

        if not quick and recorded_damage(read_attrs(store_path)):  # found sound since
            _record_damage(store_path, report)
        print(report.line(), file=sys.stdout)
        return 0
    note = _record_damage(store_path, report) if report.faults else ""
    print(f"jscan: {report.line()}{note}", file=stream)
    return 1


def _record_damage(store_path, report) -> str:
    """Record what verify found in the store's history (the damaged blocks, none once it is
    sound again), for the next --resume to rerun; the end of verify's line that says so (or
    why not: a run writes the store)."""
    from jscan.pipeline.store import append_history
    from jscan.pipeline.store.lock import RunLock

    try:
        with RunLock(store_path):
            append_history(
                store_path, event="verify", full=report.full, bad_blocks=report.bad_blocks
            )
    except (StoreError, OSError) as err:
        return f" (not recorded in the store: {err})"
    return " (recorded in the store: a plain --resume re-runs them too)"


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a batch system's time limit): clean up as for Ctrl-C


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """jscan's warnings as one line on stderr; others as Python shows them."""
    if issubclass(category, JscanWarning):
        print(f"jscan: warning: {message}", file=sys.stderr, flush=True)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr)


def _log_pointer(args) -> str:
    """ " (Dask's log: FILE)" for a run's error line, or "" when the run keeps no log file."""
    if args.command not in ("simulate", "demo"):
        return ""
    if args.log:
        return f" (Dask's log: {args.log})"
    out = args.out if args.command == "simulate" else args.out or DEMO_OUT
    from jscan.pipeline.run.logs import default_log
    from jscan.pipeline.store import location

    path = default_log(location(out))
    return f" (Dask's log: {path})" if os.path.exists(path) else ""


def main(argv=None):
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # jscan's warnings: one line each, never an error
        warnings.simplefilter("always", JscanWarning)
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args):
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "simulate":
            _simulate(args.config, args.out, args, resume=args.resume, overwrite=args.overwrite)
        elif args.command == "demo":
            _demo(args)
        elif args.command == "init":
            _init(args)
        elif args.command == "check":
            _check(args)
        elif args.command == "preview":
            _preview(args)
        elif args.command == "verify":
            return verify(args.store, quick=args.quick)
        elif args.command == "export":
            from jscan.export import export

            report = export(args.store, args.format, args.out, partial=args.partial)
            print(f"{report.out}: {report.positions} patterns ({report.format})")
        else:
            return info(args.store)
    except JscanError as err:  # ConfigError, StoreError, ClusterError, UsageError
        print(f"jscan: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        runs = args.command in ("simulate", "demo")
        hint = "; finish the run later with --resume" if runs else ""
        print(f"jscan: interrupted{hint}{_log_pointer(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `jscan info STORE | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as err:
        if os.environ.get("JSCAN_TRACEBACK"):
            raise
        if args.command not in ("simulate", "demo"):
            from jscan.pipeline.store.chunks import DECODE_ERRORS

            damage = isinstance(err, DECODE_ERRORS) and hasattr(args, "store")
            if args.command == "verify" or not damage:
                raise  # not damage that verify would name: a bug, or an I/O error
            print(
                f"jscan: error: reading {args.store} failed ({type(err).__name__}: {err}); "
                f"it may be damaged: run jscan verify {args.store} (JSCAN_TRACEBACK=1 shows "
                "the traceback)",
                file=sys.stderr,
            )
            return 1
        print(
            f"jscan: error: the run stopped: {type(err).__name__}: {err}; blocks already "
            "written are kept: fix the cause, then finish with --resume, or start again "
            "with --overwrite if you changed the config or input files "
            f"(JSCAN_TRACEBACK=1 shows the traceback){_log_pointer(args)}",
            file=sys.stderr,
        )
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
