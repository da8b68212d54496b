"""The `jscan` command line: its parser and the checks of its flags (standard library only,
so that `jscan --help` loads no numpy, JAX or Dask)."""

import argparse
import json
import os

from jscan import __version__
from jscan.errors import ClusterError

DEMO_OUT = "jscan-demo.zarr"
PREVIEW_PATTERNS_MAX = 48  # jscan.preview.MAX_PATTERNS (not imported: it loads xarray)
DEMO_TIME = "about 5.5 s on 2 CPU cores (6 s the first time)"
KINDS = {
    "scan": ("raster", "spiral", "file"),
    "probe": ("gaussian", "airy", "file", "lens", "zone_plate"),
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
        help="private folder for JAX's persistent compilation cache (default with the "
        "embedded cluster: ~/.cache/jscan/xla, or $JSCAN_COMPILE_CACHE; none: no cache)",
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
        "--workers",
        type=_positive_int("--workers"),
        metavar="N",
        help="check a block's memory against N embedded worker processes (default 1; "
        "with DASK_SCHEDULER_ADDRESS set, the run checks its cluster's workers)",
    )
    check.add_argument(
        "--threads",
        type=_positive_int("--threads"),
        default=2,
        metavar="T",
        help="threads per embedded worker, each holding one block (default 2)",
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
    exp.add_argument("--format", required=True, choices=("cxi", "ptychodus", "ptylab", "nexus"))
    exp.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="file (cxi, ptylab .h5, nexus .nxs) or folder (ptychodus)",
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


def check_cluster_flags(args) -> None:
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
