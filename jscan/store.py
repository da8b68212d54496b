"""The Zarr v3 store of a scan: layout, codecs, run state, and lazy opening with xarray.

Layout (readable with plain ``xarray.open_zarr(STORE)``, no jscan needed):

- ``diffraction`` (position, det_y, det_x): float32 intensities (dose 0) or uint32 photon
  counts; one Zarr shard per block of positions, so each block writes whole shards of its
  own (no locks, idempotent rewrites), split into smaller inner chunks for readers.
- ``block_done`` (block,) uint8: set to 1 only after that block's patterns are written;
  one chunk per block.
- coordinates ``x``, ``y`` (position, m), ``det_y``, ``det_x`` (camera pixel centres, m),
  and for raster scans ``scan_row``, ``scan_col``.
- attributes: every optical parameter (unit in the name), the config text and its hash,
  the jscan version and the run history.
"""

import datetime
import fcntl
import hashlib
import json
import os
import socket
import warnings

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from jscan.config import Config
from jscan.digest import SampleDigest, file_sha256, sample_digest

FORMAT = "jscan-scan/1"
_INNER_CHUNK_BYTES = 4 << 20  # inner chunks near 4 MiB: cheap partial reads, few objects


class StoreError(ValueError):
    """A store cannot be used as asked; the message says why and what to do."""


def codec_for(dtype):
    """Blosc codec by measurement (benchmarks/RESULTS.md): counts compress well with
    bitshuffle + zstd; float intensities barely compress, so use fast lz4 + byte shuffle."""
    if np.dtype(dtype).kind == "f":
        return BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle)
    return BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)


def inner_chunk(block_size: int, pattern_bytes: int) -> int:
    """Largest divisor of block_size whose chunk stays under ~4 MiB (at least 1 pattern)."""
    target = max(1, _INNER_CHUNK_BYTES // pattern_bytes)
    return max(d for d in range(1, min(block_size, target) + 1) if block_size % d == 0)


def location(store) -> str:
    """A store path or URL as jscan passes it to zarr: ``file://`` URLs become local paths
    (zarr's local store creates missing folders; fsspec's file system does not)."""
    return str(store).removeprefix("file://")


def _is_local(store: str) -> bool:
    return "://" not in str(store)


def exists(store: str) -> bool:
    """True when something (a Zarr group or any file) is already at ``store``."""
    if _is_local(store):
        return os.path.exists(store)
    try:
        zarr.open_group(store, mode="r")
        return True
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False


OPTICS_KEYS = (
    "wavelength_m",
    "probe_dx_m",
    "sample_dx_m",
    "zoom_factor",
    "aperture_diameter_m",
    "aperture_center_m",
    "travel_distance_m",
    "camera_pixel_size_m",
    "dose_photons",
    "noise_seed",
)


def inputs_hash(config: Config, sample: SampleDigest | None = None) -> str:
    """A fingerprint of the data files a config reads (the config hash covers only their
    paths): resuming with a changed probe, positions or sample file would mix two inputs.

    Every file is hashed in full: the probe and positions files and a .npy sample byte for
    byte, a Zarr sample by its metadata and every chunk's values (`jscan.digest`).
    sample: the sample's `SampleDigest` when the caller has streamed it already (the same
    pass checks its values); None streams it here.
    """
    h = hashlib.sha256()
    for path in (config.probe.path, config.scan.path):
        if path is not None:
            h.update(file_sha256(path))
    if config.sample.kind != "phantom":
        h.update((sample or sample_digest(config.sample)).digest)
    return h.hexdigest()


def optics_attrs(config: Config) -> dict:
    """Every optical parameter, the unit in the key."""
    p, o, d = config.probe, config.optics, config.detector
    return {
        "wavelength_m": p.wavelength,
        "probe_dx_m": p.dx,
        "sample_dx_m": config.sample.dx,
        "zoom_factor": o.zoom_factor,
        "aperture_diameter_m": o.aperture_diameter,
        "aperture_center_m": list(o.aperture_center) if o.aperture_center else [0.0, 0.0],
        "travel_distance_m": o.travel_distance,
        "camera_pixel_size_m": o.camera_pixel_size,
        "dose_photons": d.dose,
        "noise_seed": d.seed,
    }


def create(store: str, config: Config, plan, bright_field_radius: float, inputs=None) -> None:
    """Write the layout, coordinates and attributes (no patterns) of a new store.

    plan: the `jscan.pipeline.plan.ScanPlan`; bright_field_radius: m on the camera;
    inputs: `inputs_hash(config)` when the caller has it already.
    """
    from jscan import __version__

    positions, raster, n_blocks = plan.positions, plan.raster, plan.n_blocks
    n, (h, w) = len(positions), plan.window
    block = config.run.block_size
    dtype = np.dtype("uint32") if config.detector.dose > 0 else np.dtype("float32")
    odx = config.optics.camera_pixel_size
    coords = {
        "x": ("position", positions[:, 0], {"units": "m", "long_name": "probe centre x"}),
        "y": ("position", positions[:, 1], {"units": "m", "long_name": "probe centre y"}),
        "det_y": ("det_y", (np.arange(h) - h // 2) * odx, {"units": "m"}),
        "det_x": ("det_x", (np.arange(w) - w // 2) * odx, {"units": "m"}),
    }
    if raster is not None:
        coords["scan_row"] = ("position", raster[0].astype(np.int32))
        coords["scan_col"] = ("position", raster[1].astype(np.int32))
    units = "photons" if dtype.kind == "u" else "|U'|^2, far-field intensity in units of |probe|^2"
    data = {
        "diffraction": (
            ("position", "det_y", "det_x"),
            da.zeros((n, h, w), dtype=dtype, chunks=(block, h, w)),
            {"units": units, "long_name": "far-field diffraction pattern"},
        ),
        "block_done": (
            ("block",),
            da.zeros(n_blocks, dtype="uint8", chunks=1),
            {"long_name": "1 once the block's patterns are written"},
        ),
    }
    attrs = {
        "format": FORMAT,
        "jscan_version": __version__,
        "config": config.text,
        "config_hash": config.hash,
        "inputs_hash": inputs or inputs_hash(config),
        "block_size": block,
        "n_positions": n,
        "n_blocks": n_blocks,
        **optics_attrs(config),
        "bright_field_radius_m": bright_field_radius,
        "run_history": [],
    }
    chunk = inner_chunk(block, h * w * dtype.itemsize)
    encoding = {
        "diffraction": {
            "chunks": (chunk, h, w),
            "shards": (block, h, w),
            "compressors": (codec_for(dtype),),
        },
        "block_done": {"chunks": (1,)},
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    with warnings.catch_warnings():
        # Consolidated metadata is what lets plain xr.open_zarr(STORE) open it without a
        # warning; zarr warns that v3 does not standardise it yet.
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        ds.to_zarr(
            store, mode="w-", compute=False, encoding=encoding, zarr_format=3, consolidated=True
        )


def _consolidate(store):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(store)


def read_attrs(store: str) -> dict:
    """The store's root attributes; StoreError when it is not a jscan store."""
    store = location(store)
    try:
        attrs = zarr.open_group(store, mode="r").attrs.asdict()
    except (
        FileNotFoundError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.NodeTypeValidationError,
    ) as err:
        raise StoreError(f"{store} is not a Zarr store; check the path") from err
    if attrs.get("format") != FORMAT:
        raise StoreError(f"{store} is a Zarr store but not a jscan scan; choose another --out")
    return attrs


def blocks_done(store: str) -> np.ndarray:
    """block_done as a bool array (one per block)."""
    return zarr.open_array(store, path="block_done", mode="r")[:].astype(bool)


def append_history(store: str, **entry) -> None:
    """Add a run record (time, host, what was done) to the attributes."""
    group = zarr.open_group(store, mode="r+")
    history = list(group.attrs.get("run_history", []))
    entry = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        **entry,
    }
    history.append(json.loads(json.dumps(entry, default=str)))
    group.attrs["run_history"] = history
    _consolidate(store)


def open_scan(store: str) -> xr.Dataset:
    """Open a scan lazily (dask-backed); works on a run in progress (missing blocks: NaN/0)."""
    store = location(store)
    read_attrs(store)
    return xr.open_zarr(store)


class RunLock:
    """An exclusive lock on a local store, so two runs cannot write one store at once.

    The lock is ``flock`` on ``STORE/.jscan-run.lock``: the operating system releases it when
    the process ends, however it ends, so a crashed or killed run never leaves it behind.
    Stores behind URLs (object stores) are not locked.
    """

    def __init__(self, store: str):
        self.path = None
        self.handle = None
        if _is_local(store):
            self.path = os.path.join(store, ".jscan-run.lock")

    def __enter__(self):
        if self.path is None:
            return self
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "owner unknown"
            handle.close()
            raise StoreError(
                f"another jscan run is writing this store ({owner}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
