"""The `jscan` command: simulate, demo, init, check, preview, info, verify.

Only the standard library is imported at start: `jscan --help` and `jscan --version` load
no numpy, JAX or Dask; each command imports what it needs.
"""

import argparse
import json
import os
import signal
import sys
import warnings

from jscan import __version__
from jscan.errors import ClusterError, JscanError, JscanWarning, StoreError, UsageError

DEMO_OUT = "jscan-demo.zarr"
PREVIEW_PATTERNS_MAX = 48  # jscan.preview.MAX_PATTERNS (not imported: it loads xarray)
DEMO_TIME = "about 10 s on 2 CPU cores, most of it starting the cluster"
KINDS = {
    "scan": ("raster", "spiral", "file"),
    "probe": ("gaussian", "airy", "file"),
    "sample": ("phantom", "file", "zarr"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage too)
        self.exit(2, f"jscan: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(flag, maximum=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < 1:  # argparse names the flag before the message
            raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


def _add_run_flags(p):
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--resume",
        action="store_true",
        help="finish the missing blocks of STORE (and re-run done blocks whose shard is gone)",
    )
    how.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the jscan store (or empty folder) at STORE with a new one",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="with --resume: also decode every done block and check its checksum (reads the "
        "whole store) and re-run the damaged ones",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int("--workers"),
        metavar="N",
        help="worker processes of the embedded LocalCluster (default 1)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (also: DASK_SCHEDULER_ADDRESS)",
    )
    where.add_argument(
        "--scheduler-file",
        metavar="FILE",
        help="run on the cluster described by a Dask scheduler file",
    )
    p.add_argument(
        "--threads",
        type=_positive_int("--threads"),
        default=2,
        metavar="T",
        help="threads per worker of the embedded LocalCluster (default 2: one block is "
        "written while the next is simulated)",
    )
    p.add_argument(
        "--block-size",
        type=_positive_int("--block-size"),
        metavar="B",
        help="positions per block (overrides [run] block_size)",
    )
    p.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="private folder for JAX's persistent compilation cache",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write even when the store's size estimate exceeds the free disk space",
    )
    p.add_argument(
        "--log",
        metavar="FILE",
        help="append the Dask scheduler's and workers' log lines to FILE (default: "
        "STORE/jscan.log for a local store)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or summary")


def build_parser():
    parser = _Parser(
        prog="jscan",
        description="Ptychography scan simulation at any scale. New here? `jscan demo`, "
        "then `jscan init scan.toml` and `jscan check scan.toml`.",
    )
    parser.add_argument("--version", action="version", version=f"jscan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sim = sub.add_parser("simulate", help="simulate a scan from a TOML config into a Zarr store")
    sim.add_argument("config", help="TOML config file")
    sim.add_argument("--out", required=True, metavar="STORE", help="Zarr store (path or URL)")
    _add_run_flags(sim)
    demo = sub.add_parser(
        "demo",
        help=f"a built-in 4,096-position scan of a Siemens star ({DEMO_TIME})",
    )
    demo.add_argument(
        "--out",
        metavar="STORE",
        help=f"Zarr store (default ./{DEMO_OUT}; only that default store is replaced when it "
        "holds an earlier demo, unless --resume)",
    )
    _add_run_flags(demo)
    init = sub.add_parser(
        "init", help="write a commented config template covering every key of every kind"
    )
    init.add_argument(
        "file", nargs="?", default="scan.toml", help="config to write (default scan.toml)"
    )
    for section, choices in KINDS.items():
        flag = "--kind" if section == "scan" else f"--{section}"
        init.add_argument(
            flag,
            dest=f"{section}_kind",
            choices=choices,
            default=choices[0],
            help=f"the [{section}] kind to set (default {choices[0]}); the other kinds' keys "
            "are written commented out",
        )
    init.add_argument("--force", action="store_true", help="replace FILE if it exists")
    check = sub.add_parser(
        "check",
        help="dry run: check a config and print what a run would do (camera, propagation "
        "path, scan on the sample, blocks, store size, memory, bright field); writes nothing",
    )
    check.add_argument("config", help="TOML config file")
    check.add_argument(
        "--block-size",
        type=_positive_int("--block-size"),
        metavar="B",
        help="positions per block (overrides [run] block_size)",
    )
    check.add_argument(
        "--plot",
        metavar="PNG",
        help="also draw the probe, the sample and the scan's outline into PNG (needs matplotlib)",
    )
    prev = sub.add_parser("preview", help="draw a store (finished or not) into a PNG")
    prev.add_argument("store", help="Zarr store (path or URL)")
    prev.add_argument(
        "--out", default="preview.png", metavar="PNG", help="picture to write (default preview.png)"
    )
    prev.add_argument(
        "--patterns",
        type=_positive_int("--patterns", maximum=PREVIEW_PATTERNS_MAX),
        default=4,
        metavar="K",
        help=f"diffraction patterns to show (default 4, at most {PREVIEW_PATTERNS_MAX})",
    )
    info = sub.add_parser("info", help="print a store's layout, config and progress")
    info.add_argument("store", help="Zarr store (path or URL)")
    ver = sub.add_parser(
        "verify",
        help="check every done block of a store (shard present, decodes, checksum matches); "
        "exit 1 naming the damaged ones",
    )
    ver.add_argument("store", help="Zarr store (path or URL)")
    ver.add_argument(
        "--quick",
        action="store_true",
        help="only check that each done block's shard is there (one listing, reads no data)",
    )
    _add_export(sub)
    return parser


def _add_export(sub):
    exp = sub.add_parser(
        "export", help="write a store's patterns, positions and probe for a reconstruction engine"
    )
    exp.add_argument("store", help="Zarr store (path or URL)")
    exp.add_argument("--format", required=True, choices=("cxi", "ptychodus", "ptylab"))
    exp.add_argument(
        "--out", required=True, metavar="PATH", help="file (cxi, ptylab .h5) or folder (ptychodus)"
    )
    exp.add_argument(
        "--partial", action="store_true", help="export the done blocks of an unfinished store"
    )


def _scheduler_address(address: str, flag: str) -> None:
    """ClusterError naming ``flag`` unless ``address`` parses as a Dask address."""
    from distributed.comm import get_address_host_port, parse_address

    try:
        scheme, _ = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):
            get_address_host_port(address)
    except (ValueError, TypeError) as err:
        raise ClusterError(
            f"{flag} {address!r} is not a Dask scheduler address ({err}); "
            "write it as tcp://HOST:PORT"
        ) from None


def _check_cluster_flags(args) -> None:
    """--scheduler and --scheduler-file are checked before anything starts."""
    if args.scheduler is not None:
        _scheduler_address(args.scheduler, "--scheduler")
    path = args.scheduler_file
    if path is None:
        return
    if not os.path.exists(path):
        raise ClusterError(f"--scheduler-file {path} does not exist; check the path")
    try:
        with open(path, encoding="utf-8") as handle:
            address = json.load(handle)["address"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ClusterError(
            f"--scheduler-file {path} is not a Dask scheduler file ({type(err).__name__}: "
            f"{err}); pass the file written by `dask scheduler --scheduler-file FILE`"
        ) from None
    if not isinstance(address, str):
        raise ClusterError(
            f"--scheduler-file {path} is not a Dask scheduler file (its address is "
            f"{address!r}); pass the file written by `dask scheduler --scheduler-file FILE`"
        )
    _scheduler_address(address, f"--scheduler-file {path}: address")


def _simulate(config, out, args, resume=False, overwrite=False):
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
        compilation_cache=args.compile_cache,
        overwrite=overwrite,
        verify=args.verify,
        force=args.force,
        log=args.log,
    )
    ds.close()


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
    from jscan.pipeline.dryrun import dry_run, report

    run = dry_run(args.config, block_size=args.block_size)
    print(f"config: {args.config} (hash {run.config.hash[:12]})")
    print("\n".join(report(run)))
    for line in run.warnings:
        warnings.warn(line, JscanWarning, stacklevel=1)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'jscan[plot]'") from None
        from jscan.preview import plot_dry_run

        print(f"plot: {plot_dry_run(run, args.plot)}")
    print(f"nothing was written; run it with: jscan simulate {args.config} --out STORE")


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
    from jscan.pipeline.coords import OPTICS_KEYS

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
    from jscan.preview import READ_BATCH

    mask = per_position(done, attrs["block_size"], attrs["n_positions"])
    with zarr.config.set({"codec_pipeline.batch_size": READ_BATCH}):  # one chunk per block
        read = {
            name: zarr.open_array(store_path, path=name, mode="r")[:][mask]
            for name in ("total", "bright_field")
        }
    total = read["total"]
    meta = zarr.open_array(store_path, path="diffraction", mode="r").attrs
    if meta.get("units") in ("count", "photons"):  # "photons": format 4
        units = "photons"
    else:
        units = "ADU" if "ADU" in meta.get("long_name", "") else "intensity"
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

    from jscan.pipeline.integrity import verify as check

    stream = stream or sys.stderr
    last = [time.monotonic()]

    def progress(k, n):
        if time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            print(f"verified {k}/{n} done blocks", file=stream, flush=True)

    report = check(store_path, full=not quick, on_progress=progress)
    if report.ok:
        print(report.line(), file=sys.stdout)
        return 0
    print(f"jscan: {report.line()}", file=stream)
    return 1


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
    from jscan.pipeline.logs import default_log
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
            from jscan.pipeline.chunks import DECODE_ERRORS

            if args.command == "verify" or not isinstance(err, DECODE_ERRORS):
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
