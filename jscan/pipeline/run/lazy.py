"""The scan as a lazy xarray Dataset: one Dask task per block, run only where looked at.

`simulate_lazy` plans the scan in this process (the same checks as `simulate_scan`, no
store) and returns a Dataset whose ``diffraction`` is a dask array with one chunk per
block. Each chunk's task is `simulate_block`: the worker-side `BlockRunner.patterns` of
`simulate_scan`, with the same global position indices as Poisson keys, so its values equal
the store's bit for bit. Whatever Dask scheduler is active computes it.

The graph has one more key, the scan's `BlockSimulator`: a picklable object (its `ScanJob`:
the `ScanSpec` with its probe, and the plan) that every block task of the scan takes as its
argument. It builds its `BlockRunner` (the compiled microscope constants on the devices) on
first use and leaves it out of its pickled form. The threaded and synchronous schedulers
share the one object, so a process builds the state once per dataset; a distributed worker
builds it once per copy it receives, that is once per worker and computation (the
scheduler sends the key's value to each worker once, and blocks there share it). The
multiprocessing scheduler pickles the arguments with every task, so there it is built once
per block: use distributed instead.
"""

import threading

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from jscan.inputs.config import Config, load_config, with_overrides
from jscan.inputs.digest import inputs_hash
from jscan.pipeline.run import checks
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.runner import BlockRunner
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store.coords import (
    POSITION_COORDS,
    block_coords,
    camera_coords,
    diffraction_attrs,
    mask_variable,
    position_coords,
)
from jscan.pipeline.store.truth import truth_variables

_COUNT = threading.Lock()  # guards BlockSimulator's counters across threads


class BlockSimulator:
    """A scan's worker-side state for the lazy graph: built on first use, never pickled.

    job: the `ScanJob` the `BlockRunner` is built from (its store is never opened: only
    `BlockRunner.patterns` runs). Thread-safe: the scheduler's threads share one object.
    The class attributes count, in this process, the runners built (``builds``) and the
    blocks simulated (``blocks``): what a scheduler really ran, fused tasks or not.
    """

    builds = 0
    blocks = 0

    def __init__(self, job: ScanJob):
        self.job = job
        self._runner: BlockRunner | None = None
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"job": self.job}  # the runner holds device arrays: each copy builds its own

    def __setstate__(self, state):
        self.__init__(state["job"])

    @property
    def runner(self) -> BlockRunner:
        """The `BlockRunner`, built by the first caller in this copy of the object."""
        with self._lock:
            if self._runner is None:
                self._runner = BlockRunner(self.job)
                with _COUNT:
                    BlockSimulator.builds += 1
            return self._runner


def simulate_block(simulator: BlockSimulator, block: int):
    """The task of one block: its (n_valid, H, W) patterns by `BlockRunner.patterns`, its
    positions made from its index (`ScanPlan.block`)."""
    runner = simulator.runner
    out = runner.patterns(runner.job.plan.block(block))
    with _COUNT:
        BlockSimulator.blocks += 1
    return out


def block_coordinate(plan, block: int, name: str) -> np.ndarray:
    """The task of one block's chunk of the per-position coordinate ``name``."""
    return block_coords(plan.block(block))[name]


def simulate_lazy(config, block_size=None) -> xr.Dataset:
    """The scan as a lazy Dataset: ``diffraction`` (position, det_y, det_x) is a dask array
    with one chunk per block (the last one shorter), simulated when computed.

    config: a TOML path or a `Config`; block_size: positions per block (overrides [run];
    capped at the scan length). Indexing computes only the blocks it touches: one position,
    one block. ``.compute()``, ``.values`` and ``.to_zarr(path)`` run on the active Dask
    scheduler (threaded by default, a distributed Client when one is active). The values
    equal those of `simulate_scan`'s store bit for bit: float32 intensities, or integer
    counts when detector.dose > 0 (the same keys, so the same noise); ``mask`` (det_y,
    det_x) marks the bad pixels and module gaps, as in the store.

    The coordinates and attributes are a store's (x, y, x_nominal/y_nominal with snap or errors,
    det_y, det_x, scan_row/scan_col for rasters; optics, bright_field_radius_m, config,
    config_hash, inputs_hash, block_size), without the run state (no block_done,
    block_checksum, store_id or run history): ``ds.to_zarr(path)`` writes a plain Zarr
    store that xarray reopens with the same values, not a jscan store that
    `open_scan`, ``jscan verify`` or ``--resume`` accept.

    Raises ConfigError (bad config, sample values, brightness, a scan leaving the sample),
    as `simulate_scan` does before it writes anything.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    config = checks.cap_block_size(with_overrides(config, block_size=block_size))
    sample = checks.check_inputs(config)
    inputs = inputs_hash(config, sample)
    plan = plan_scan(config)
    checks.check_brightness(config, sample, plan.slices)
    spec = describe(config, plan, inputs)
    job = ScanJob(spec, "")  # no store: the lazy graph only simulates
    token = tokenize(config.hash, config.text, inputs, plan.block_size)
    data = xr.Variable(
        ("position", "det_y", "det_x"), lazy_patterns(job, token), diffraction_attrs(spec)
    )
    coords = camera_coords(spec)
    for name in position_coords(plan):
        dtype, _, meta = POSITION_COORDS[name]
        coords[name] = ("position", lazy_coordinate(plan, name, dtype, token), meta)
    probe = lazy_probe(job, token)
    truth, truth_coords, truth_meta = truth_variables(spec, probe)
    coords.update(truth_coords)
    variables = {"diffraction": data, "mask": mask_variable(spec), **truth}
    return xr.Dataset(variables, coords=coords, attrs={**spec.attrs, **truth_meta})


def runner_probe(simulator: BlockSimulator) -> np.ndarray:
    """The task of the ground-truth probe: the runner's (M, H, W) `BlockRunner.probe`."""
    return simulator.runner.probe


def lazy_probe(job: ScanJob, token: str) -> da.Array:
    """The (M, H, W) ground-truth probe as a one-chunk dask array, computed by the scan's
    `BlockSimulator` (the state key of `lazy_patterns`: one build serves both)."""
    name, state = f"jscan-probe-{token}", f"jscan-simulator-{token}"
    modes = job.spec.modes
    graph = HighLevelGraph(
        {state: {state: BlockSimulator(job)}, name: {(name, 0, 0, 0): (runner_probe, state)}},
        {state: set(), name: {state}},
    )
    h, w = job.plan.window
    return da.Array(graph, name, chunks=((modes,), (h,), (w,)), dtype=np.complex64)


def _sizes(plan) -> tuple[int, ...]:
    """The scan's chunk sizes along position: one per block, the last one shorter."""
    n, b = plan.n_positions, plan.block_size
    return (b,) * (n // b) + ((n % b,) if n % b else ())


def lazy_patterns(job: ScanJob, token: str) -> da.Array:
    """The (n, H, W) dask array of a plan's patterns: one `simulate_block` task per block.

    Keys: ``jscan-diffraction-<token>`` (block, 0, 0) and the shared ``jscan-simulator-
    <token>``; the token covers the config, the input files and the block size, so equal
    scans share keys. Each task holds its block index only: the graph is O(blocks).
    """
    plan = job.plan
    name, state = f"jscan-diffraction-{token}", f"jscan-simulator-{token}"
    blocks = {(name, b, 0, 0): (simulate_block, state, b) for b in range(plan.n_blocks)}
    graph = HighLevelGraph(
        {state: {state: BlockSimulator(job)}, name: blocks},
        {state: set(), name: {state}},
    )
    h, w = plan.window
    dtype = job.spec.values.dtype
    return da.Array(graph, name, chunks=(_sizes(plan), (h,), (w,)), dtype=dtype)


def lazy_coordinate(plan, coord: str, dtype, token: str) -> da.Array:
    """The (n,) dask array of a per-position coordinate: one `block_coordinate` task per
    block, sharing the plan (one key)."""
    name, shared = f"jscan-{coord}-{token}", f"jscan-plan-{token}"
    blocks = {(name, b): (block_coordinate, shared, b, coord) for b in range(plan.n_blocks)}
    graph = HighLevelGraph({shared: {shared: plan}, name: blocks}, {shared: set(), name: {shared}})
    return da.Array(graph, name, chunks=(_sizes(plan),), dtype=dtype)
