"""The worker-side state of one scan and its block function: `BlockRunner` (JAX).

Built from a `jscan.pipeline.run.job.ScanJob` in any process: a worker (its `ScanWorker`
plugin builds it in ``setup``), the lazy graph's `BlockSimulator`, a benchmark or a test.
Only processes that simulate import this module, and with it JAX: the client of a run
never does.
"""

import threading
import time

import jax
import numpy as np
import zarr
from jax.experimental.compilation_cache import compilation_cache
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jscan.core.detector import MAX_LAM, CameraParams, CameraStatic, camera_values
from jscan.core.sharding import data_mesh, run_sharded, to_host
from jscan.inputs.detector_model import (
    DetectorModel,
    blur_matrix,
    detector_values,
    overflow_error,
    resolve_generator,
)
from jscan.inputs.detectors import block_detectors, masked_sums
from jscan.inputs.samples import sample_region
from jscan.pipeline.live.receipt import BlockReceipt, binned, preview_pattern
from jscan.pipeline.microscope import probe_modes, scan_microscope
from jscan.pipeline.run.cachedir import private_dir
from jscan.pipeline.run.job import ScanJob
from jscan.pipeline.run.plan import BlockGeometry
from jscan.pipeline.store import BLOCK_ARRAYS, block_crc, check_id
from jscan.pipeline.store.coords import block_coords


def region_origin(origins, region_shape, sample_shape):
    """Top-left of the fixed-size region that holds all windows of a block, inside the sample."""
    low = origins.min(axis=0)
    return np.minimum(low, np.asarray(sample_shape) - np.asarray(region_shape))


def use_compilation_cache(path: str):
    """Point this process's JAX at a persistent compilation cache in the private ``path``;
    return a function that puts back the settings it had before (library code leaves the
    process as it found it: a later run with another folder uses that one).

    Every compiled executable is cached (no minimum compile time), so a new worker loads the
    microscope from disk. Raises UsageError when the folder is not private to this user.
    """
    path = private_dir(path)
    before = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    _cache_settings(path, 0.0)

    def restore():
        if jax.config.jax_compilation_cache_dir == path:  # not since set by another run
            _cache_settings(*before)

    return restore


def _cache_settings(path, min_compile_secs) -> None:
    if jax.config.jax_compilation_cache_dir != path:
        jax.config.update("jax_compilation_cache_dir", path)
        # A process that compiled before (a worker in the client's process) has its cache
        # set up already: JAX reads the folder again only after a reset.
        compilation_cache.reset_cache()
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_secs)


def device_camera(model: DetectorModel) -> tuple[CameraParams, CameraStatic]:
    """The `DetectorModel` as `camera_values` takes it: arrays, and the static rest."""
    h, w = model.mask.shape
    blur = model.psf_sigma > 0
    dose = model.factor > 0

    def matrix(n):
        return blur_matrix(n, model.psf_sigma) if blur else np.eye(1)

    params = CameraParams(
        factor=np.float32(model.factor if dose else 1.0),
        background=np.float32(model.background if dose else 0.0),
        blur_y=matrix(h).astype(np.float32),
        blur_x=matrix(w).astype(np.float32),
        gain=np.float32(model.gain),
        readout_noise=np.float32(model.readout_noise),
        mask=model.mask,
    )
    static = CameraStatic(
        seed=model.seed,
        dtype=model.dtype.name,
        noise=dose and model.noise,
        blur=blur,
        readout=model.readout_noise > 0,
        saturation=model.saturation,
    )
    return params, static


class BlockRunner:
    """One scan's worker-side state, and the block function that uses it.

    Built from a `ScanJob` in any process (a worker's `ScanWorker`, a benchmark, a test):
    the `MicroscopePlan` of its spec's probe (the kernel's per-scan constants) put on the
    devices of the data mesh, and the spec's detector model and bright-field mask. The store
    is opened (and its store_id checked) by `open_store`, once; `run` does it on first use.
    Thread-safe: the worker's threads share one runner.
    """

    def __init__(self, job: ScanJob):
        self.job = job
        spec, cfg = job.spec, job.config
        self.specs, microscope = scan_microscope(cfg, spec.probe, job.plan.slices)
        self.probe = probe_modes(microscope)  # (M, H, W): the store's ground-truth probe
        self.mesh = data_mesh()
        self.microscope = jax.device_put(microscope, NamedSharding(self.mesh, P()))
        self.camera = spec.detector  # [detector]: photons per intensity, noise, mask
        # who draws the noise: the run decided it (ScanJob.generator), else this process
        self.generator = job.generator or resolve_generator(cfg, jax.default_backend())
        if self.generator == "device":
            params, static = device_camera(self.camera)
            self.device_camera = jax.device_put(params, NamedSharding(self.mesh, P()))
            self._camera = jax.jit(camera_values, static_argnums=4)
            self._camera_static = static
        self.bright_field = spec.bright_field  # (H, W) bool: the page's detector
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
        cfg = self.job.config
        region = sample_region(
            cfg.sample, int(r0), int(c0), *plan.region_shape, wavelength=cfg.probe.wavelength
        )
        local = (origins - np.array([r0, c0])).astype(np.int32)
        # JAX clamps a window that leaves its region (dynamic_slice): it would simulate the
        # wrong place without a word, so a block outside the planned region stops here.
        if (local < 0).any() or (local + np.asarray(plan.window) > plan.region_shape).any():
            raise ValueError(
                "a block's probe windows leave the sample region its run planned; the "
                "positions differ from the planned ones: start again with --overwrite"
            )
        return run_sharded(
            self.specs, self.mesh, region, local, self.microscope, trim=False, shifts=shifts
        )

    def patterns(self, geometry: BlockGeometry) -> np.ndarray:
        """One block's patterns on the host, as the store holds them; touches no store.

        geometry: the block's `BlockGeometry` (`ScanPlan.block`). Returns (n_valid, H, W)
        float32 intensities (dose 0), float32 expected photon counts (dose > 0, noise false)
        or integer counts, through the [detector] model keyed by the global indices start ..
        start + n_valid - 1: on the host (`detector_model.detector_values`) or, with the
        device generator, on the devices (`jscan.core.detector.camera_values`).
        """
        g = geometry
        intensity = self.simulate(g.origins, g.shifts)
        if self.generator != "device":
            host = to_host(intensity)[: g.n_valid]
            return detector_values(host, np.arange(g.start, g.start + g.n_valid), self.camera)
        index = np.arange(g.start, g.start + intensity.shape[0], dtype=np.uint64)
        lo, hi = (index & 0xFFFFFFFF).astype(np.uint32), (index >> 32).astype(np.uint32)
        values, lam_max, peak = self._camera(
            intensity, lo, hi, self.device_camera, self._camera_static
        )
        lam_max, peak = (np.asarray(v)[: g.n_valid] for v in (lam_max, peak))  # no padding
        if lam_max.max() > MAX_LAM:
            raise ValueError(
                f"a pixel's mean count passes {MAX_LAM:.0f}, more than the device generator "
                'draws exactly in float32; set detector.generator = "host", or lower the dose'
            )
        over = np.flatnonzero(peak > np.iinfo(self.camera.dtype).max)  # counts: uint dtypes
        if over.size:
            raise overflow_error(g.start + int(over[0]), float(peak[over[0]]), self.camera.dtype)
        return to_host(values)[: g.n_valid]

    def run(self, block: int, worker="in-process") -> BlockReceipt:
        """Simulate one block, write its patterns, positions, virtual detectors
        (`jscan.inputs.detectors`) and checksum, then mark it done.

        block: its index in the plan (its positions are made here, from the index); worker:
        the name the receipt gives. Raises StoreError before writing anything when the store
        is not the run's (store_id).
        """
        t0 = time.perf_counter()
        g = self.job.plan.block(block)
        host = self.patterns(g)
        bright = masked_sums(host, self.bright_field)
        detectors = block_detectors(host, *(a.centres for a in self.job.spec.camera), bright)
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
