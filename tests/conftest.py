"""Fixtures shared by every test folder: seeded generators, config dicts and their TOML, the
`jscan` command, and one real LocalCluster per test module.

Test folders have no __init__.py (pytest's default import mode): test file names are unique
across folders. Tests never import each other or this file: what they share is a fixture.
"""

import json
import math
import os
import subprocess
import sys
import tomllib
import zlib
from typing import NamedTuple

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's id so a failure reproduces."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def random_field(rng):
    """random_field(shape, dtype=complex64): complex normal values from the test's `rng`."""

    def make(shape, dtype=np.complex64):
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)

    return make


# --- configs: plain dicts, written as TOML only at the end --------------------------------


def _small_scan(dose=0.0, block_size=16, shape=(12, 12), phantom="cells", seed=3):
    return {
        "probe": {
            "kind": "gaussian",
            "size": 32,
            "dx": 1.0e-6,
            "wavelength": 500.0e-9,
            "waist": 6.0e-6,
        },
        "optics": {
            "zoom_factor": 1.0,
            "aperture_diameter": 24.0e-6,
            "aperture_center": [1.0e-6, -0.5e-6],
            "travel_distance": 0.02,
            "camera_pixel_size": 200.0e-6,
        },
        "sample": {
            "kind": "phantom",
            "phantom": phantom,
            "shape": [160, 160],
            "dx": 1.0e-6,
            "seed": seed,
        },
        "scan": {"kind": "raster", "shape": list(shape), "step": 7.3e-6},
        "detector": {"dose": dose, "seed": 11},
        "run": {"block_size": block_size},
    }


def _to_toml(data: dict) -> str:
    from jscan.inputs.reference import toml_value

    lines = []
    for section, table in data.items():
        if not isinstance(table, dict):  # a key outside any table (refused by jscan)
            lines.insert(0, f"{section} = {toml_value(table)}")
            continue
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def small_scan():
    """small_scan(dose=0.0, block_size=16, shape=(12, 12), phantom="cells", seed=3) -> dict:
    a raster scan of a 32x32 probe over a 160x160 phantom (seconds per run), a new dict
    each call, to edit as cfg["scan"]["shape"] = [40, 40] before `to_toml`."""
    return _small_scan


@pytest.fixture(scope="session")
def demo_scan():
    """demo_scan() -> dict: the built-in demo config (`jscan demo`), a new dict each call."""
    from jscan.inputs.config import DEMO_CONFIG

    return lambda: tomllib.loads(DEMO_CONFIG)


@pytest.fixture(scope="session")
def to_toml():
    """to_toml(dict) -> str: the TOML text of a config dict (flat tables of numbers,
    strings, booleans, lists and inline tables; tomllib reads it back equal)."""
    return _to_toml


@pytest.fixture(scope="session")
def scan_config():
    """scan_config(**small_scan keywords) -> TOML text of the small scan."""
    return lambda **kw: _to_toml(_small_scan(**kw))


# --- the jscan command --------------------------------------------------------------------


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """run_cli(*argv, process=False, timeout=300) -> (code, out, err) of `jscan ARGV`.

    In this process by default (jscan.cli.main, output read from capsys); process=True runs
    `python -m jscan.cli` as a real process, for what needs one (its own signals, its own
    LocalCluster, a clean interpreter).
    """

    def run(*argv, process=False, timeout=300):
        argv = [str(a) for a in argv]
        if process:
            proc = subprocess.run(
                [sys.executable, "-m", "jscan.cli", *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            return CliResult(proc.returncode, proc.stdout, proc.stderr)
        from jscan.cli import main

        try:
            code = main(argv)
        except SystemExit as exit_info:  # argparse's own refusals
            code = exit_info.code
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# --- a real Dask cluster ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster per test module: 2 worker processes of 1 thread each.

    Per module, not per session: the scan page plugin and the workers' state stay within
    the module that made them.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster):
    """A distributed Client on `cluster`."""
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster) as c:
        yield c


# --- stores -------------------------------------------------------------------------------


def _store_by_the_run_path(config_dict, store, blocks=None):
    """A store made as `simulate_scan` makes it (`prepare`'s checks, then `open_store`) with
    ``blocks`` (None: all) simulated by the run's worker plugin, `ScanWorker`, and its
    `block_task` on a real LocalCluster: one worker in this process (no dashboard), as the
    embedded default runs."""
    from distributed import Client, LocalCluster

    from jscan.inputs.config import parse_config
    from jscan.pipeline.run.prepare import open_store, prepare
    from jscan.pipeline.run.worker import ScanWorker, block_task
    from jscan.pipeline.store.lock import RunLock

    spec, store = prepare(parse_config(_to_toml(config_dict)), store)
    with RunLock(store, hold=False) as lock:
        job, _ = open_store(spec, store, lock, False, False, False, None, None)
    plan = spec.plan
    todo = range(plan.n_blocks) if blocks is None else blocks
    with (
        LocalCluster(
            n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        ScanWorker(job).registered(client) as name,
    ):
        for b in todo:
            client.submit(block_task, name, int(b), pure=False).result()
    return store


@pytest.fixture
def partial_store(tmp_path):
    """partial_store(blocks, dose=0.0) -> path of a real store of the small scan (9 blocks of
    16 positions) with only ``blocks`` simulated, by a run's own path
    (`_store_by_the_run_path`)."""

    def make(blocks, dose=0.0):
        cfg = _small_scan(dose=dose, block_size=16)
        return _store_by_the_run_path(cfg, str(tmp_path / "partial.zarr"), blocks)

    return make


@pytest.fixture
def simulated_store(tmp_path):
    """simulated_store(cfg, name="scan.zarr", blocks=None) -> path of a real store of the
    config dict ``cfg`` (as `small_scan` gives) with ``blocks`` simulated (None: all), by a
    run's own path (`_store_by_the_run_path`)."""

    def make(cfg, name="scan.zarr", blocks=None):
        return _store_by_the_run_path(cfg, str(tmp_path / name), blocks)

    return make


# --- files --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tree():
    """tree(path) -> every path under it, relative and sorted (to show nothing was written)."""

    def listing(path):
        return sorted(str(p.relative_to(path)) for p in path.rglob("*"))

    return listing


# --- JAX on several CPU devices -----------------------------------------------------------


def _on_cpu_devices(script: str, *args, devices: int = 4, x64: bool = False) -> dict:
    """The JSON object a Python ``script`` prints last, run with ARGS in a fresh process
    that has ``devices`` CPU devices (fixed when JAX starts), warnings as errors."""
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    env.pop("JAX_ENABLE_X64", None)
    if x64:
        env["JAX_ENABLE_X64"] = "1"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def on_cpu_devices():
    """on_cpu_devices(script, *args, devices=4, x64=False) -> the JSON object the script
    prints last, from a fresh process with that many CPU devices."""
    return _on_cpu_devices


# --- statistics ---------------------------------------------------------------------------


class PoissonFit(NamedTuple):
    z_mean: float  # (sample mean - lam) / its standard error
    z_var: float  # (sample variance - lam) / its standard error
    z_chi2: float  # Wilson-Hilferty z of the chi-square against the pmf (cells >= 5 expected)


def _poisson_fit(samples, lam: float) -> PoissonFit:
    """How far integer ``samples`` of one mean ``lam`` are from Poisson(lam), as z-scores.

    The pmf is the closed form exp(k log lam - lam - lgamma(k + 1)) in float64; cells with
    fewer than 5 expected counts are pooled into the two tails.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    z_mean = (x.mean() - lam) / np.sqrt(lam / n)
    z_var = (x.var() - lam) / np.sqrt((lam + 2 * lam**2) / n)
    top = int(lam + 12 * np.sqrt(lam) + 12)
    k = np.arange(top + 1)
    pmf = np.exp(k * np.log(lam) - lam - np.array([math.lgamma(v + 1) for v in k]))
    observed = np.bincount(np.minimum(x, top + 1).astype(np.int64), minlength=top + 2)
    expected = np.append(pmf, max(0.0, 1 - pmf.sum())) * n
    keep = expected >= 5
    low, high = np.flatnonzero(keep)[[0, -1]]
    obs = np.concatenate(
        [[observed[: low + 1].sum()], observed[low + 1 : high], [observed[high:].sum()]]
    )
    exp = np.concatenate(
        [[expected[: low + 1].sum()], expected[low + 1 : high], [expected[high:].sum()]]
    )
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    dof = max(1, obs.size - 1)
    z_chi2 = ((chi2 / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / np.sqrt(2 / (9 * dof))
    return PoissonFit(float(z_mean), float(z_var), float(z_chi2))


@pytest.fixture(scope="session")
def poisson_fit():
    """poisson_fit(samples, lam) -> PoissonFit(z_mean, z_var, z_chi2): z-scores of integer
    samples against Poisson(lam), from the closed-form pmf (|z| < 5: a 1-in-3-million fail)."""
    return _poisson_fit
