"""Worker side: one block of positions -> patterns in the store, compiled once per process."""

import os
import threading
import time
from dataclasses import dataclass

import jax
import numpy as np
import zarr
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jscan.core.kernel import microscope_plan
from jscan.core.sharding import data_mesh, run_sharded, to_host
from jscan.core.types import make_optical_wavefront
from jscan.inputs.config import Config
from jscan.inputs.farfield import camera_radius
from jscan.inputs.samples import make_probe, sample_region
from jscan.pipeline.cachedir import private_dir
from jscan.pipeline.page import preview_pattern
from jscan.pipeline.store import block_crc, check_id


@dataclass(frozen=True)
class ScanJob:
    """What every block task carries: small (config text and a few numbers)."""

    config: Config
    store: str
    region_shape: tuple[int, int]  # sample pixels read per block
    sample_shape: tuple[int, int]
    inputs_hash: str = ""  # fingerprint of the probe/positions/sample files (store.inputs_hash)
    bright_field_radius: float = 0.0  # m on the camera: the live page's virtual detector
    compilation_cache: str | None = None  # JAX's persistent compilation cache (private dir)
    store_id: str = ""  # the store's UUID (attribute store_id): checked before the first write


def photon_counts(intensity, indices, seed: int, factor: float):
    """Poisson counts (n, H, W) uint32 with mean intensity * factor, drawn on the host.

    Position i draws from Philox keyed (seed, i), i its global index, so the counts do not
    depend on the block size, the worker, the device or the order of completion. numpy's
    sampler measured 13.6-21x faster than jax.random.poisson on CPU (benchmarks/RESULTS.md).
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


def masked_sums(patterns, mask) -> np.ndarray:
    """Sums (n,) float64 of patterns (n, H, W) over the pixels where ``mask`` (H, W) is true.

    Row by row over the mask's runs of pixels, accumulating in float64 without a float64
    copy of the block (a tensordot with a float64 mask makes one: half a block's bytes
    again, and most of the time on a GPU worker).
    """
    out = np.zeros(len(patterns))
    for r in np.flatnonzero(mask.any(axis=1)):
        cols = np.flatnonzero(mask[r])
        if cols[-1] - cols[0] + 1 == cols.size:  # one run, as in a disk: a view, no copy
            out += patterns[:, r, cols[0] : cols[-1] + 1].sum(axis=1, dtype=np.float64)
        else:
            out += patterns[:, r, cols].sum(axis=1, dtype=np.float64)
    return out


class _WorkerState:
    def __init__(self, job: ScanJob):
        # GPU workers share the card with other processes: let XLA allocate on demand
        # instead of taking 75 % of its memory (read when the backend starts, just below).
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if job.compilation_cache:
            jax.config.update("jax_compilation_cache_dir", private_dir(job.compilation_cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        cfg = job.config
        probe = make_probe(cfg.probe)
        light = make_optical_wavefront(probe, cfg.probe.wavelength, cfg.probe.dx)
        o = cfg.optics
        center = None if o.aperture_center is None else np.asarray(o.aperture_center)
        self.specs, plan = microscope_plan(
            light,
            o.zoom_factor,
            o.aperture_diameter,
            o.travel_distance,
            o.camera_pixel_size,
            center,
        )
        self.mesh = data_mesh()
        self.plan = jax.device_put(plan, NamedSharding(self.mesh, P()))
        self.factor = noise_factor(cfg, probe)
        r = camera_radius(probe.shape, cfg.optics.camera_pixel_size)
        self.bright_field = (r <= job.bright_field_radius).astype(np.float64)
        self.arrays = None  # (diffraction, block_done, block_checksum), by open_arrays

    def open_arrays(self, job: ScanJob):
        with _STATES_LOCK:
            if self.arrays is None:
                check_id(job.store, job.store_id)  # once per process and store
                # Every inner chunk is written, zeros too: a done block always has a whole
                # shard, which is what the presence check of --resume relies on.
                self.arrays = tuple(
                    zarr.open_array(job.store, path=name, mode="r+").with_config(
                        {"write_empty_chunks": True}
                    )
                    for name in ("diffraction", "block_done", "block_checksum")
                )
            return self.arrays


_STATES: dict = {}
_STATES_LOCK = threading.Lock()  # a worker's threads start their first blocks together


def _state(job: ScanJob) -> _WorkerState:
    # inputs_hash: a long-lived worker must not reuse a probe read from a file since changed
    key = (job.config.hash, job.inputs_hash, job.store, job.store_id, job.config.run.block_size)
    with _STATES_LOCK:
        if key not in _STATES:
            _STATES.clear()  # one scan at a time per process: free the last one's buffers
            _STATES[key] = _WorkerState(job)
        return _STATES[key]


def region_origin(origins, region_shape, sample_shape):
    """Top-left of the fixed-size region that holds all windows of a block, inside the sample."""
    low = origins.min(axis=0)
    return np.minimum(low, np.asarray(sample_shape) - np.asarray(region_shape))


def simulate_block(job: ScanJob, origins, shifts=None):
    """Intensities (>= block_size, H, W) on the devices; rows past block_size are padding.

    shifts: the block's sub-pixel shifts (block_size, 2) row, col [px] (exact placement),
    or None (snap).
    """
    state = _state(job)
    r0, c0 = region_origin(origins, job.region_shape, job.sample_shape)
    region = sample_region(job.config.sample, int(r0), int(c0), *job.region_shape)
    local = (origins - np.array([r0, c0])).astype(np.int32)
    return run_sharded(
        state.specs, state.mesh, region, local, state.plan, trim=False, shifts=shifts
    )


def run_block(job: ScanJob, block: int, origins, start: int, n_valid: int, shifts=None) -> dict:
    """Simulate one block, write its patterns and their checksum, then mark it done.

    Returns a small receipt. Raises StoreError before writing anything when the store at
    job.store is not the run's (store_id).
    """
    t0 = time.perf_counter()
    state = _state(job)
    host = to_host(simulate_block(job, origins, shifts))[:n_valid]
    if job.config.detector.dose > 0:
        indices = np.arange(start, start + n_valid)
        host = photon_counts(host, indices, job.config.detector.seed, state.factor)
    t1 = time.perf_counter()
    diffraction, block_done, block_checksum = state.open_arrays(job)
    diffraction[start : start + n_valid] = host
    block_checksum[block] = block_crc(host)
    block_done[block] = 1
    t2 = time.perf_counter()
    try:
        from distributed import get_worker

        worker = get_worker().address
    except ValueError:
        worker = "in-process"
    return {
        "block": block,
        "positions": n_valid,
        "bytes": host.nbytes,
        "worker": worker,
        "compute_s": t1 - t0,
        "write_s": t2 - t1,
        # for the live scan page: a virtual bright field per position and the last pattern
        "bf": masked_sums(host, state.bright_field > 0).tolist(),
        "pattern": preview_pattern(host[-1]),
    }
