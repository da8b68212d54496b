"""Worker side: one block of positions -> patterns in the store.

`BlockRunner` holds one scan's worker-side state (the compiled microscope's constants on
the devices, the photon factor, the bright-field mask, the opened store) and runs blocks
with it; it can be built in any process. `ScanWorker` is the `distributed.WorkerPlugin`
that owns a runner on each worker process for one run: the client registers it at the
start of the run (`ScanWorker.registered`), every worker builds its runner once in
``setup``, new workers (a restarted one too) get it when they join, and ``teardown``
frees it when the run unregisters it. The block task, `block_task`, finds its runner
through ``get_worker().plugins``.
"""

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass

import jax
import numpy as np
import zarr
from distributed import WorkerPlugin, get_worker
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jscan.core.kernel import microscope_plan
from jscan.core.sharding import data_mesh, run_sharded, to_host
from jscan.core.types import make_optical_wavefront
from jscan.errors import ClusterError
from jscan.inputs.config import Config
from jscan.inputs.farfield import camera_axes, camera_radius
from jscan.inputs.samples import make_probe, sample_region
from jscan.pipeline.cachedir import private_dir
from jscan.pipeline.coords import block_coords
from jscan.pipeline.detectors import block_detectors
from jscan.pipeline.plan import BlockGeometry, ScanPlan
from jscan.pipeline.receipt import BlockReceipt, binned, masked_sums, preview_pattern
from jscan.pipeline.store import BLOCK_ARRAYS, block_crc, check_id


@dataclass(frozen=True)
class ScanJob:
    """What a scan's worker state is built from: small (the config and its O(blocks) plan)."""

    config: Config
    store: str
    plan: ScanPlan  # makes each block's positions from its index
    inputs_hash: str = ""  # fingerprint of the probe/positions/sample files (inputs_hash)
    bright_field_radius: float = 0.0  # m on the camera: the live page's virtual detector
    compilation_cache: str | None = None  # JAX's persistent compilation cache (private dir)
    store_id: str = ""  # the store's UUID (attribute store_id): checked before the first write


def photon_counts(intensity, indices, seed: int, factor: float):
    """Poisson counts (n, H, W) uint32 with mean intensity * factor, drawn on the host.

    Position i draws from Philox keyed (seed, i), i its global index, so the counts do not
    depend on the block size, the worker, the device or the order of completion. numpy's
    sampler is faster than jax.random.poisson on CPU (benchmarks/RESULTS.md).
    """
    out = np.empty(intensity.shape, np.uint32)
    for k, i in enumerate(indices):
        rng = np.random.Generator(np.random.Philox(key=np.array([seed, i], np.uint64)))
        counts = rng.poisson(intensity[k].astype(np.float64) * factor)
        if counts.max() > np.iinfo(np.uint32).max:  # would wrap around in uint32
            raise ValueError(
                f"position {i}: a pixel counts {counts.max()} photons, more than uint32 holds; "
                "lower detector.dose and write a new store (a changed config cannot be resumed)"
            )
        out[k] = counts
    return out


def noise_factor(config: Config, probe) -> float:
    """Photons per unit intensity: dose * camera_pixel^2 / (sum|probe|^2 (dx zoom)^2).

    By Parseval a transparent sample sends the whole dose into a detector that covers the
    far field, so ``dose`` is the mean total count per pattern of such a sample.
    """
    dxz = config.probe.dx * config.optics.zoom_factor
    energy = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2)) * dxz**2
    return config.detector.dose * config.optics.camera_pixel_size**2 / energy


def region_origin(origins, region_shape, sample_shape):
    """Top-left of the fixed-size region that holds all windows of a block, inside the sample."""
    low = origins.min(axis=0)
    return np.minimum(low, np.asarray(sample_shape) - np.asarray(region_shape))


def use_compilation_cache(path: str) -> None:
    """Point this process's JAX at a persistent compilation cache in the private ``path``.

    Every compiled executable is cached (no minimum compile time), so a new worker loads the
    microscope from disk. Raises UsageError when the folder is not private to this user.
    """
    jax.config.update("jax_compilation_cache_dir", private_dir(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


class BlockRunner:
    """One scan's worker-side state, and the block function that uses it.

    Built from a `ScanJob` in any process (a worker's `ScanWorker`, a benchmark, a test):
    the probe, the `MicroscopePlan` (the kernel's per-scan constants) put on the devices of
    the data mesh, the photon factor and the bright-field mask. The store is opened (and its
    store_id checked) by `open_store`, once; `run` does it on first use. Thread-safe: the
    worker's threads share one runner.
    """

    def __init__(self, job: ScanJob):
        self.job = job
        cfg = job.config
        probe = make_probe(cfg.probe)
        light = make_optical_wavefront(probe, cfg.probe.wavelength, cfg.probe.dx)
        o = cfg.optics
        center = None if o.aperture_center is None else np.asarray(o.aperture_center)
        self.specs, microscope = microscope_plan(
            light,
            o.zoom_factor,
            o.aperture_diameter,
            o.travel_distance,
            o.camera_pixel_size,
            center,
        )
        self.mesh = data_mesh()
        self.microscope = jax.device_put(microscope, NamedSharding(self.mesh, P()))
        self.factor = noise_factor(cfg, probe)  # photons per unit intensity
        r = camera_radius(probe.shape, cfg.optics.camera_pixel_size)
        self.bright_field = r <= job.bright_field_radius  # (H, W) bool: the page's detector
        self.axes = camera_axes(probe.shape, cfg.optics.camera_pixel_size)  # det_y, det_x [m]
        self.grid = job.plan.page_grid  # the page's image, which receipts bin onto
        self.arrays = None  # {name: zarr array} the block writes, by open_store
        self.blocks = 0  # blocks run with this state
        self._lock = threading.Lock()  # the worker's threads start their first blocks together

    def open_store(self):
        """Check the store's store_id (StoreError if it is another store), open its arrays."""
        with self._lock:
            if self.arrays is None:
                check_id(self.job.store, self.job.store_id)
                # Every inner chunk is written, zeros too: a done block always has a whole
                # shard, which is what the presence check of --resume relies on.
                group = zarr.open_group(self.job.store, mode="r")
                names = [n for n in BLOCK_ARRAYS if n in group] + ["block_done", "block_checksum"]
                self.arrays = {
                    name: zarr.open_array(self.job.store, path=name, mode="r+").with_config(
                        {"write_empty_chunks": True}
                    )
                    for name in names
                }
            return self.arrays

    def simulate(self, origins, shifts=None):
        """Intensities (>= block_size, H, W) on the devices; rows past block_size are padding.

        origins: the block's window origins (block_size, 2) row, col [sample px]; shifts:
        their sub-pixel shifts (block_size, 2) row, col [px] (exact placement), or None (snap).
        """
        plan = self.job.plan
        r0, c0 = region_origin(origins, plan.region_shape, plan.sample_shape)
        region = sample_region(self.job.config.sample, int(r0), int(c0), *plan.region_shape)
        local = (origins - np.array([r0, c0])).astype(np.int32)
        return run_sharded(
            self.specs, self.mesh, region, local, self.microscope, trim=False, shifts=shifts
        )

    def patterns(self, geometry: BlockGeometry) -> np.ndarray:
        """One block's patterns on the host, as the store holds them; touches no store.

        geometry: the block's `BlockGeometry` (`ScanPlan.block`). Returns (n_valid, H, W)
        float32 intensities (dose 0) or uint32 `photon_counts` keyed by the global indices
        start .. start + n_valid - 1.
        """
        cfg, g = self.job.config, geometry
        host = to_host(self.simulate(g.origins, g.shifts))[: g.n_valid]
        if cfg.detector.dose > 0:
            indices = np.arange(g.start, g.start + g.n_valid)
            host = photon_counts(host, indices, cfg.detector.seed, self.factor)
        return host

    def run(self, block: int, worker="in-process") -> BlockReceipt:
        """Simulate one block, write its patterns, positions, virtual detectors
        (`jscan.pipeline.detectors`) and checksum, then mark it done.

        block: its index in the plan (its positions are made here, from the index); worker:
        the name the receipt gives. Raises StoreError before writing anything when the store
        is not the run's (store_id).
        """
        t0 = time.perf_counter()
        g = self.job.plan.block(block)
        host = self.patterns(g)
        bright = masked_sums(host, self.bright_field)
        detectors = block_detectors(host, *self.axes, bright)
        coords = block_coords(g)
        t1 = time.perf_counter()
        arrays = self.open_store()
        rows = slice(g.start, g.start + g.n_valid)
        arrays["diffraction"][rows] = host
        for name, values in {**detectors, **coords}.items():  # one chunk per block each
            if name in arrays:
                arrays[name][rows] = values
        arrays["block_checksum"][block] = block_crc(host, coords["x"], coords["y"])
        arrays["block_done"][block] = 1
        t2 = time.perf_counter()
        with self._lock:
            self.blocks += 1
        cells, sums, counts = binned(self.grid.cells(g.positions, g.raster), bright)
        return BlockReceipt(
            block=block,
            positions=g.n_valid,
            bytes=host.nbytes,
            worker=worker,
            compute_s=t1 - t0,
            write_s=t2 - t1,
            bf_cells=cells,
            bf_sums=sums,
            bf_counts=counts,
            pattern=preview_pattern(host[-1]),
        )


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
        self.runner: BlockRunner | None = None  # built on the worker, never pickled
        self.error: BaseException | None = None  # why setup failed, for the block tasks

    def __getstate__(self):
        return {**self.__dict__, "runner": None, "error": None}

    async def setup(self, worker):
        # In a thread: building the state starts JAX and may read input files, and the
        # worker's event loop must keep answering the scheduler meanwhile.
        try:
            self.runner = await asyncio.to_thread(self._build)
        except BaseException as err:
            self.error = err
            raise

    def _build(self) -> BlockRunner:
        if self.job.compilation_cache:  # before the first compilation of this process
            use_compilation_cache(self.job.compilation_cache)
        runner = BlockRunner(self.job)
        runner.open_store()  # a worker that cannot reach the run's store refuses at once
        return runner

    def teardown(self, worker):
        # Blocks still running keep their own reference; the state goes with the last one.
        self.runner = None

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
