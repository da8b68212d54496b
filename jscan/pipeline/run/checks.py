"""Refusals before anything is written: what would only fail later on the workers.

Each check raises ConfigError or StoreError with one line that names the key (or flag)
and the fix; `jscan.pipeline.run.prepare.prepare` and `simulate_scan` call them before the
store is created.
"""

import dataclasses
import math
import os
import shutil
import warnings

import dask

from jscan.errors import ConfigError, JscanWarning, StoreError
from jscan.inputs.config import Config
from jscan.inputs.digest import SampleDigest, sample_digest
from jscan.inputs.farfield import (
    BRIGHT_FIELD_FRACTION,
    camera_coverage,
    noise_factor,
    probe_of,
    probe_pattern,
)
from jscan.inputs.rules import FLOAT32_MAX, float32_outside
from jscan.inputs.scan import scan_length
from jscan.pipeline import store as zstore
from jscan.pipeline.live.progress import human
from jscan.pipeline.run.regimes import thick_lines
from jscan.pipeline.run.spec import kernel_axes
from jscan.pipeline.store.lock import is_local

COUNT_MAX = 2**32 - 1  # the uint32 photon counts of dose > 0
SIGMA_MARGIN = 10.0  # a mean m may draw m + 10 sqrt(m): one pixel in ~1e23 goes beyond
PROCESS_BYTES = 512 << 20  # a worker's own baseline: Python, Dask, JAX runtime


def cap_block_size(config: Config) -> Config:
    """The config with run.block_size at most the number of positions.

    A larger block only pads: every block is simulated and laid out at full block size.
    """
    try:
        n = scan_length(config.scan)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if config.run.block_size <= n:
        return config
    return dataclasses.replace(config, run=dataclasses.replace(config.run, block_size=n))


def check_store_location(store: str) -> None:
    """StoreError for a store location no worker can write: empty, or in-memory."""
    if not str(store).strip():
        raise StoreError("--out (the store) is empty; give a folder such as scan.zarr or a URL")
    if str(store).lower().startswith("memory://"):
        raise StoreError(
            f"--out {store}: a memory:// store lives in one process, where the worker "
            "processes cannot write; give a folder path or a shared URL (s3://, gs://, ...)"
        )


def check_inputs(config: Config) -> SampleDigest | None:
    """Read the probe (`probe_of`: kept for the checks after this one), then stream a file
    or Zarr sample once: its fingerprint, and ConfigError (naming probe.path or
    sample.path) when a value is NaN, inf or beyond float32's range."""
    try:
        probe_of(config)
        return sample_digest(config.sample)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    except OSError as err:
        raise ConfigError(
            f"sample.path: cannot read {config.sample.path} ({err}); check the file"
        ) from None


def check_brightness(config: Config, sample: SampleDigest | None, slices: int = 1) -> None:
    """ConfigError when the brightest expected pixel leaves float32 or, with a dose,
    overflows the uint32 counts.

    The brightest expected pixel is the peak of the probe's own pattern (`probe_pattern`,
    transparent sample) times max |O|^2 of the sample (1 for the phantoms, whose |O| <= 1).
    With dose > 0 and no detector.saturation its mean count m = peak x `noise_factor` +
    background must keep gain (m + 10 sqrt(m)) + 10 readout_noise within
    2**32 - 1: a Poisson draw beyond 10 standard deviations is practically impossible.
    A sample that focuses the probe (a phase that undoes the probe's) can still exceed this;
    the workers then stop the run with a message. K slices multiply: (max |O|^2)^K.
    """
    pattern = probe_pattern(config)
    transparent = float(pattern.max())
    if way := float32_outside(transparent):
        raise ConfigError(
            f"the brightest pixel of the probe's own pattern, {transparent:.3g} (|U'|^2), "
            f"{way} float32; check the units (metres) of probe.wavelength, probe.dx, "
            "optics.zoom_factor, optics.travel_distance and optics.camera_pixel_size"
        )
    max_abs2 = 1.0 if sample is None else sample.max_abs2**slices
    peak = transparent * max_abs2
    if peak > FLOAT32_MAX:
        raise ConfigError(
            f"sample.path: the sample's largest |O|^2 = {max_abs2:.3g} makes the brightest "
            f"pattern pixel {peak:.3g}, beyond float32; scale the transmission down "
            "(a physical sample has |O| <= 1)"
        )
    det = config.detector
    dose = det.dose
    if dose <= 0 or det.saturation is not None:  # a saturation clips within the stored dtype
        return
    mean = peak * noise_factor(config) + det.background
    # counts x gain + readout noise, in ADU; 10 sigma of each
    limit = (COUNT_MAX - SIGMA_MARGIN * det.readout_noise) / det.gain
    if mean + SIGMA_MARGIN * math.sqrt(mean) > limit:
        # largest m with m + 10 sqrt(m) <= limit, and the dose that gives it
        root = (-SIGMA_MARGIN + math.sqrt(SIGMA_MARGIN**2 + 4 * max(limit, 0.0))) / 2
        safe = dose * root**2 / mean
        with_sample = f" (x the sample's largest |O|^2 = {max_abs2:.3g})" if sample else ""
        raise ConfigError(
            f'"detector.dose" = {dose:g}: the brightest pixel would count {mean:.3g} photons '
            f"on average (the probe's own pattern{with_sample}), beyond uint32's "
            f"{COUNT_MAX} with a 10-sigma margin; set detector.dose <= {safe:.3g} (or set "
            "detector.saturation)"
        )


def store_bytes(config: Config, plan) -> int:
    """Upper bound [bytes] of a finished store: uncompressed patterns, plus the codec's
    and the shard index's overhead per inner chunk, coordinates and metadata."""
    itemsize = 4  # float32 intensities or uint32 counts
    h, w = plan.window
    chunk = zstore.inner_chunk(plan.block_size, h * w * itemsize)
    n_chunks = plan.n_blocks * -(-plan.block_size // chunk)
    patterns = plan.n_positions * h * w * itemsize
    return patterns + 64 * n_chunks + 32 * plan.n_positions + 4096 * (plan.n_blocks + 16)


def check_disk(store: str, config: Config, plan, resume: bool, force: bool) -> None:
    """StoreError when a local store would not fit in its file system's free space."""
    if force or not is_local(store):
        return
    need = store_bytes(config, plan)
    if resume:
        done = int(zstore.blocks_done(store).sum())
        need = need * (plan.n_blocks - done) // plan.n_blocks
    folder = os.path.abspath(store)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise StoreError(
            f"--out {store}: the store needs up to {human(need)} (uncompressed patterns) but "
            f"{folder} has {human(free)} free; free some space, choose another --out, or "
            "pass --force when compression will make it fit"
        )


def block_bytes(config: Config, plan) -> tuple[int, int]:
    """(fixed, per_position) bytes of one block's working set on a worker.

    fixed: the sample region (source values, complex64 on host and device, float64
    temporaries of the phantoms: 32 B/px). per_position: on the device the float32 pattern,
    per probe mode the complex64 window x illumination and two complex64 buffers of each
    axis' FFT length;
    on the host the float32 copy, the uint32 counts, float64 for the bright-field sum, and
    the encoded shard with its assembly buffer; with exact placement also the table of
    shifted illuminations (at most one per position: spectrum x ramp, its inverse FFT and
    the gathered copy, complex64). Counted together: on CPU workers the device is the host.
    A sample of K slices holds K regions and, per position and mode, the multislice wave
    and its FFT (complex64); the shift table then also holds the shifted apertures.
    """
    h, w = plan.window
    # the axis' FFT length, as the kernel's plan chooses it
    my, mx = (axis.spec.m for axis in kernel_axes(config, plan.window))
    modes = plan.modes  # a probe file's from its header
    device = 4 * h * w + 8 * modes * (h * w + 2 * h * mx + 2 * my * w)
    if config.scan.placement == "exact":
        device += 3 * 8 * (modes + (plan.slices > 1)) * h * w
    if plan.slices > 1:
        device += 2 * 8 * modes * h * w
    host = 4 * h * w + 8 * h * w + 2 * 4 * h * w + (4 * h * w if config.detector.dose else 0)
    rows, cols = plan.region_shape
    return 32 * rows * cols * plan.slices, device + host


def block_memory(config: Config, plan) -> int:
    """Bytes of one block's working set on a worker (`block_bytes` at the plan's block
    size); a worker holds one per thread."""
    fixed, per_position = block_bytes(config, plan)
    return fixed + plan.block_size * per_position


def check_block_memory(workers, config: Config, plan) -> None:
    """ConfigError naming run.block_size when a worker cannot hold its threads' blocks.

    workers: `cluster.WorkerMemory` tuples, those of a running cluster
    (`cluster.worker_memory`) or of the embedded one before it starts
    (`cluster.embedded_workers`). Each thread of a worker runs one block at a time; the
    estimate (`block_bytes`) for min(threads, blocks) blocks plus the process itself must
    stay below the worker's memory_limit times distributed's terminate fraction (the point
    where the nanny kills it). Arithmetic only: nothing is read.
    """
    fraction = dask.config.get("distributed.worker.memory.terminate", 0.95) or 1.0
    fixed, per_position = block_bytes(config, plan)
    one = block_memory(config, plan)
    for worker in sorted(workers):
        if not worker.memory_limit:
            continue  # no limit set
        k = min(worker.nthreads or 1, plan.n_blocks)
        if k * one + PROCESS_BYTES <= worker.memory_limit * fraction:
            continue
        fits = int((worker.memory_limit * fraction - PROCESS_BYTES) / k - fixed) // per_position
        fix = (
            f"use --block-size {fits} or less (run.block_size), or workers with more memory"
            if fits >= 1
            else "even one position does not fit: use workers with more memory"
        )
        at_once = f", {k} at once (one per thread)" if k > 1 else ""
        raise ConfigError(
            f'"run.block_size" = {plan.block_size}: a block needs about {human(one)}{at_once} '
            f"on {worker.name}, whose memory_limit is {human(worker.memory_limit)}; {fix}"
        )


# ---- quiet mistakes: a config that runs, but most likely not as meant -----------------

PIXEL_RATIO_MAX = 10.0  # camera pixel / natural pixel above this: the pattern is a few pixels
PIXEL_RATIO_MIN = 0.1  # below this: the camera sees a small central part of the far field
# Lengths beyond these [m] are taken for micrometres (or nanometres) written as metres.
LIKELY_MAX = {
    "probe.dx": 1e-2,
    "probe.wavelength": 1e-2,
    "probe.waist": 1e-2,
    "probe.radius": 1e-2,
    "sample.dx": 1e-2,
    "scan.step": 1e-2,
    "optics.aperture_diameter": 1e-2,
    "optics.camera_pixel_size": 1e-2,
    "optics.travel_distance": 1e3,
}


def length_hint(config: Config) -> str:
    """ "lengths are in metres: KEY = V is V m" when a length is beyond `LIKELY_MAX` (about
    10^6 too large: micrometres written as metres), else ""."""
    p, o, sc = config.probe, config.optics, config.scan
    values = {
        "probe.dx": p.dx,
        "probe.wavelength": p.wavelength,
        "probe.waist": p.waist,
        "probe.radius": p.radius,
        "sample.dx": config.sample.dx,
        "scan.step": sc.step,
        "optics.aperture_diameter": o.aperture_diameter,
        "optics.camera_pixel_size": o.camera_pixel_size,
        "optics.travel_distance": o.travel_distance,
    }
    big = [(k, v) for k, v in values.items() if v is not None and v >= LIKELY_MAX[k]]
    if not big:
        return ""
    listed = ", ".join(f"{k} = {v:g} is {v:g} m" for k, v in big)
    value = big[0][1]
    return f"lengths are in metres: {listed} (for {value:g} um write {value * 1e-6:g})"


def quiet_mistakes(config: Config, plan) -> list[str]:
    """One line for each thing in a config that runs but is most likely not what was meant:
    a length about 10^6 too large (`length_hint`), a far-field camera pixel beyond
    `PIXEL_RATIO_MAX` or below `PIXEL_RATIO_MIN` times the natural one, a camera that
    holds less of the probe's own pattern than the bright-field disc (90 %,
    `farfield.camera_coverage`), and a thick sample the wave spreads out of the window
    through (`regimes.thick_lines`)."""
    lines = []
    if hint := length_hint(config):
        lines.append(hint)
    far = config.optics.propagation == "far"
    for axis in kernel_axes(config, plan.window) if far else ():
        if not PIXEL_RATIO_MIN <= axis.alpha <= PIXEL_RATIO_MAX:
            what = (
                "a pattern covers only a few pixels"
                if axis.alpha > 1
                else "the camera sees only the centre of the far field"
            )
            lines.append(
                f"optics.camera_pixel_size = {config.optics.camera_pixel_size:.4g} m is "
                f"{axis.alpha:.3g}x the natural pixel {axis.natural:.4g} m along {axis.name} "
                f"({what}); keep it within {PIXEL_RATIO_MIN:g}x to {PIXEL_RATIO_MAX:g}x"
            )
            break
    covered = camera_coverage(config)
    if covered < BRIGHT_FIELD_FRACTION:
        lines.append(
            f"the camera holds {100 * covered:.3g} % of the probe's own pattern, less than "
            f"the bright-field disc ({100 * BRIGHT_FIELD_FRACTION:g} %); enlarge "
            "optics.camera_pixel_size or probe.size (or the probe's waist)"
        )
    return lines + thick_lines(config, plan)


def warn_quiet_mistakes(config: Config, plan) -> None:
    """Issue a `JscanWarning` for each line of `quiet_mistakes`."""
    for line in quiet_mistakes(config, plan):
        warnings.warn(line, JscanWarning, stacklevel=3)
