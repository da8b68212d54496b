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
from jscan.pipeline.detector_model import detector_model, detector_values
from jscan.pipeline.detectors import DETECTORS, block_detectors
from jscan.pipeline.receipt import BlockReceipt, masked_sums, preview_pattern
from jscan.pipeline.store import block_crc, check_id


@dataclass(frozen=True)
class ScanJob:
    """What a scan's worker state is built from: small (config text and a few numbers)."""

    config: Config
    store: str
    region_shape: tuple[int, int]  # sample pixels read per block
    sample_shape: tuple[int, int]
    inputs_hash: str = ""  # fingerprint of the probe/positions/sample files (inputs_hash)
    bright_field_radius: float = 0.0  # m on the camera: the live page's virtual detector
    compilation_cache: str | None = None  # JAX's persistent compilation cache (private dir)
    store_id: str = ""  # the store's UUID (attribute store_id): checked before the first write


def noise_factor(config: Config, probe) -> float:
    """Photons per unit intensity: dose * camera_pixel^2 / (sum|probe|^2 (dx zoom)^2).

    probe: (H, W), or (M, H, W) incoherent modes, whose sum over every mode is the power.

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
        window = probe.shape[-2:]  # (M, H, W) with incoherent modes
        self.camera = detector_model(cfg, window, self.factor)  # [detector]: noise, mask
        r = camera_radius(window, cfg.optics.camera_pixel_size)
        self.bright_field = r <= job.bright_field_radius  # (H, W) bool: the page's detector
        self.axes = camera_axes(window, cfg.optics.camera_pixel_size)  # det_y, det_x [m]
        self.arrays = None  # (diffraction, block_done, block_checksum, *DETECTORS), by open_store
        self.blocks = 0  # blocks run with this state
        self._lock = threading.Lock()  # the worker's threads start their first blocks together

    def open_store(self):
        """Check the store's store_id (StoreError if it is another store), open its arrays."""
        with self._lock:
            if self.arrays is None:
                check_id(self.job.store, self.job.store_id)
                # Every inner chunk is written, zeros too: a done block always has a whole
                # shard, which is what the presence check of --resume relies on.
                self.arrays = tuple(
                    zarr.open_array(self.job.store, path=name, mode="r+").with_config(
                        {"write_empty_chunks": True}
                    )
                    for name in ("diffraction", "block_done", "block_checksum", *DETECTORS)
                )
            return self.arrays

    def simulate(self, origins, shifts=None):
        """Intensities (>= block_size, H, W) on the devices; rows past block_size are padding.

        origins: the block's window origins (block_size, 2) row, col [sample px]; shifts:
        their sub-pixel shifts (block_size, 2) row, col [px] (exact placement), or None (snap).
        """
        job = self.job
        r0, c0 = region_origin(origins, job.region_shape, job.sample_shape)
        region = sample_region(job.config.sample, int(r0), int(c0), *job.region_shape)
        local = (origins - np.array([r0, c0])).astype(np.int32)
        return run_sharded(
            self.specs, self.mesh, region, local, self.microscope, trim=False, shifts=shifts
        )

    def patterns(self, origins, start: int, n_valid: int, shifts=None) -> np.ndarray:
        """One block's patterns on the host, as the store holds them; touches no store.

        (n_valid, H, W) float32 intensities (dose 0) or integer counts, through the
        [detector] model (`detector_model.detector_values`) keyed by the global indices
        start .. start + n_valid - 1; origins, shifts: as in `simulate`.
        """
        host = to_host(self.simulate(origins, shifts))[:n_valid]
        return detector_values(host, np.arange(start, start + n_valid), self.camera)

    def run(
        self, block: int, origins, start: int, n_valid: int, shifts=None, worker="in-process"
    ) -> BlockReceipt:
        """Simulate one block, write its patterns, virtual detectors (`jscan.pipeline.detectors`)
        and checksum, then mark it done.

        block: its index; origins, shifts: as in `simulate`; start: global index of its first
        position; n_valid: its positions (the rest of block_size is padding); worker: the
        name the receipt gives. Raises StoreError before writing anything when the store is
        not the run's (store_id).
        """
        t0 = time.perf_counter()
        host = self.patterns(origins, start, n_valid, shifts)
        bright = masked_sums(host, self.bright_field)
        detectors = block_detectors(host, *self.axes, bright)
        t1 = time.perf_counter()
        diffraction, block_done, block_checksum, *stored = self.open_store()
        diffraction[start : start + n_valid] = host
        for arr, name in zip(stored, DETECTORS, strict=True):  # one chunk per block each
            arr[start : start + n_valid] = detectors[name]
        block_checksum[block] = block_crc(host)
        block_done[block] = 1
        t2 = time.perf_counter()
        with self._lock:
            self.blocks += 1
        return BlockReceipt(
            block=block,
            positions=n_valid,
            bytes=host.nbytes,
            worker=worker,
            compute_s=t1 - t0,
            write_s=t2 - t1,
            bright_field=bright,
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


def block_task(name: str, block: int, origins, start: int, n_valid: int, shifts=None):
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
    return runner.run(block, origins, start, n_valid, shifts, worker=worker.address)
