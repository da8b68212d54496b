"""The Zarr v3 format of a scan: its layout, codecs and creation (`create`).

Layout (readable with plain ``xarray.open_zarr(STORE)``, no jscan needed):

- ``diffraction`` (position, det_y, det_x): float32 intensities (dose 0) or expected photon
  counts (noise false), or integer counts (uint32, or uint16 when detector.saturation <=
  65535; `jscan.inputs.detector_model`); one Zarr shard per block of positions, so each
  block writes whole shards of its own (no locks, idempotent rewrites), split into smaller
  inner chunks for readers.
- ``block_done`` (block,) uint8: set to 1 only after that block's patterns and checksum are
  written; one chunk per block.
- ``block_checksum`` (block,) uint32: CRC32 (zlib) of the block's patterns, then its ``x``
  and ``y``, as little-endian bytes in C order, written before ``block_done``; one chunk per
  block. Inner chunks also carry a CRC32C codec, so a damaged chunk raises when read instead
  of decoding to garbage.
- ``bright_field``, ``total``, ``com_x``, ``com_y`` (position,) float64: the virtual
  detectors of `jscan.inputs.detectors`, written by the worker with the block's patterns
  (before ``block_done``); one chunk per block, CRC32C, NaN where not written.
- ``mask`` (det_y, det_x) bool: True at bad pixels and module gaps, whose values are 0.
- coordinates ``x``, ``y`` (position, m; ``x_nominal``, ``y_nominal`` with snap placement
  or position errors) and for raster scans ``scan_row``, ``scan_col``: written by the worker
  with its block (one chunk per block, CRC32C; NaN or -1 where not written), so that
  planning and creating a store cost O(blocks); ``det_y``, ``det_x`` (camera pixel centres, m).
- ground truth, written at creation (`jscan.pipeline.store.truth`): ``probe`` (mode, probe_y,
  probe_x), the illumination as the kernel multiplies the sample window; ``sample_truth``
  (sample_y, sample_x), the scanned region of the sample (or the attribute
  ``sample_truth_ref`` past 512 MiB); the attribute ``photons_per_intensity``.
- attributes: every optical parameter (unit in the name), the config text and its hash,
  the jscan version, the run history, a ``store_id`` (UUID) that workers check before
  writing, and ``complete`` (true once the layout is whole).

A local store is built under a hidden sibling folder ``.NAME.creating-<uuid>`` and renamed
into place, so a crash while creating it leaves no half store at its path.
"""

import contextlib
import os
import shutil
import threading
import uuid
import warnings

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

from jscan.errors import StoreError
from jscan.inputs.detector_model import resolve_generator
from jscan.inputs.detectors import DETECTORS, detector_attrs
from jscan.pipeline.store.coords import (
    POSITION_COORDS,
    camera_coords,
    diffraction_attrs,
    mask_variable,
    position_coords,
)
from jscan.pipeline.store.facts import ScanFacts
from jscan.pipeline.store.lock import RunLock, clean_stale, is_local, publish, sibling
from jscan.pipeline.store.truth import TILED_TRUTH, TRUTH_ARRAYS, truth_encoding, truth_variables

# 2: block checksums, CRC32C, store_id, atomic; 3: virtual detectors; 4: positions written
# per block by the workers, covered by the block checksum; 5: ground truth (probe, sample)
# and the detector mask
FORMAT = "jscan-scan/5"
# What opening a damaged or missing node raises: I/O errors, zarr's errors (ValueErrors:
# node not found, invalid metadata), garbled JSON (ValueError), a metadata key missing.
# Anything else is a bug and propagates.
METADATA_ERRORS = (OSError, ValueError, KeyError)
ARRAYS = (
    "diffraction",
    "block_done",
    "block_checksum",
    *DETECTORS,
    "x",
    "y",
    "det_y",
    "det_x",
    *TRUTH_ARRAYS,
)
# What a block writes, one chunk (or shard) per block each, those the store has
BLOCK_ARRAYS = ("diffraction", *DETECTORS, *POSITION_COORDS)
_INNER_CHUNK_BYTES = 4 << 20  # inner chunks near 4 MiB: cheap partial reads, few objects


def codec_for(dtype):
    """Blosc codec by measurement (benchmarks/codecs.py, RESULTS.md): counts with lz4 +
    bitshuffle, which encodes 2.5-3.4x faster per core than zstd at 0.3-0.8x its ratio, so
    that compression keeps up with the forward model; float intensities barely compress,
    so lz4 + byte shuffle, the fastest to decode."""
    if np.dtype(dtype).kind == "f":
        return BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle)
    return BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.bitshuffle)


def inner_chunk(block_size: int, pattern_bytes: int) -> int:
    """Largest divisor of block_size whose chunk stays under ~4 MiB (at least 1 pattern)."""
    target = max(1, _INNER_CHUNK_BYTES // pattern_bytes)
    return max(d for d in range(1, min(block_size, target) + 1) if block_size % d == 0)


def location(store) -> str:
    """A store path or URL as jscan passes it to zarr: ``file://`` URLs become local paths
    (zarr's local store creates missing folders; fsspec's file system does not)."""
    return str(store).removeprefix("file://")


def exists(store: str) -> bool:
    """True when something (a Zarr group or any file) is already at ``store``."""
    if is_local(store):
        return os.path.exists(store)
    try:
        zarr.open_group(store, mode="r")
        return True
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False


def create(
    store: str,
    spec: ScanFacts,
    lock: RunLock | None = None,
    replace: bool = False,
    probe=None,
    generator: str | None = None,
) -> str:
    """Write the layout, coordinates and attributes (no patterns) of a new store, whole or
    not at all; return its ``store_id``.

    spec: the scan's `jscan.pipeline.run.spec.ScanSpec`; lock: a `RunLock` that takes the
    new store's lock before it appears at ``store`` (so a concurrent run sees its owner) and
    keeps it; replace: swap out what is at ``store`` (the caller checked it with
    `check_replaceable`, under the old store's lock); probe: the (M, H, W) ground-truth
    probe (`jscan.pipeline.microscope.ground_truth_probe`, which a run computes on a worker), or
    None to compute it in this process (this imports and starts JAX here); generator: who
    draws the counts (`detector_model.resolve_generator`; None: as a CPU process decides).
    """
    config, plan = spec.config, spec.plan
    n, n_blocks, (h, w) = plan.n_positions, plan.n_blocks, plan.window
    # The arrays below are never computed (to_zarr writes metadata only): one dask chunk
    # each, so that the graph has a few tasks whatever the number of blocks; the encoding
    # sets the store's chunks and shards.
    block = config.run.block_size
    dtype = spec.values.dtype
    data = {
        "diffraction": (
            ("position", "det_y", "det_x"),
            da.zeros((n, h, w), dtype=dtype, chunks=-1),
            diffraction_attrs(spec),
        ),
        "block_done": (
            ("block",),
            da.zeros(n_blocks, dtype="uint8", chunks=-1),
            {"units": "1", "long_name": "1 once the block's patterns are written"},
        ),
        "block_checksum": (
            ("block",),
            da.zeros(n_blocks, dtype="uint32", chunks=-1),
            {
                "units": "1",
                "long_name": "CRC32 (zlib) of the block's patterns, then its x and y",
            },
        ),
    }
    for name, meta in detector_attrs(spec.values.units).items():
        data[name] = ("position", da.full(n, np.nan, chunks=-1), meta)
    coords = camera_coords(spec)
    for name in position_coords(plan):
        dtype_, fill, meta = POSITION_COORDS[name]
        coords[name] = ("position", da.full(n, fill, dtype=dtype_, chunks=-1), meta)
    data["mask"] = mask_variable(spec)
    if probe is None:
        from jscan.pipeline.microscope import ground_truth_probe  # JAX: only when not given

        probe = ground_truth_probe(config, spec.probe, plan.slices)
    truth, truth_coords, truth_meta = truth_variables(spec, probe)
    data.update(truth)
    coords.update(truth_coords)
    attrs = {
        "format": FORMAT,
        **spec.attrs,
        **truth_meta,
        "generator": generator or resolve_generator(config, "cpu"),
        "run_history": [],
        "store_id": uuid.uuid4().hex,
        "complete": False,  # set last, once every array's metadata is written
    }
    chunk = inner_chunk(block, h * w * dtype.itemsize)
    encoding = {
        "diffraction": {
            "chunks": (chunk, h, w),
            "shards": (block, h, w),
            # CRC32C after Blosc: a damaged inner chunk raises instead of decoding to garbage
            "compressors": (spec.codec, Crc32cCodec()),
        },
        # CRC32C alone (a few bytes per block): a damaged flag or checksum is found, not read
        "block_done": {"chunks": (1,), "compressors": (Crc32cCodec(),)},
        "block_checksum": {"chunks": (1,), "compressors": (Crc32cCodec(),)},
        **{
            name: {"chunks": (block,), "fill_value": np.nan, "compressors": (Crc32cCodec(),)}
            for name in DETECTORS
        },
        **{
            name: {
                "chunks": (block,),
                "fill_value": POSITION_COORDS[name][1],
                "compressors": (Crc32cCodec(),),
            }
            for name in position_coords(plan)
        },
        **truth_encoding(truth, (Crc32cCodec(),)),  # written here, whole: CRC32C like the rest
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if not is_local(store):  # no rename on object stores: `complete` is written last
        try:
            _write_layout(store, ds, encoding, mode="w" if replace else "w-")
        except OSError as err:
            raise StoreError(
                f"{store}: the store could not be made ({type(err).__name__}: {err}); what "
                "was written has no `complete` mark and is not a store: fix the cause, then "
                "start again with --overwrite"
            ) from err
        return attrs["store_id"]
    clean_stale(store)
    tmp = sibling(store, "creating")
    try:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        os.mkdir(tmp)
        if lock is not None:
            lock.take(tmp)
        _write_layout(tmp, ds, encoding, mode="a")
        publish(tmp, store, replace)
    except BaseException as err:
        if lock is not None:
            lock.release(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):  # a full disk, or a folder this user cannot write
            raise StoreError(
                f"{store}: the store could not be made ({type(err).__name__}: {err}); "
                "nothing was written: free some space or fix the folder's permissions, or "
                "choose another --out"
            ) from err
        raise
    if lock is not None:
        lock.moved(tmp, store)
    return attrs["store_id"]


# warnings.catch_warnings changes the filters of the whole process: two runs in two threads
# of one client, each in its own block, would restore each other's filters half way.
_QUIET = threading.Lock()


@contextlib.contextmanager
def _quiet_zarr():
    """Without zarr's warnings that consolidated metadata is not yet standard in v3, and that
    the run lock (`lock.LOCK_NAME`) in the store is not a zarr node."""
    with _QUIET, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=zarr.errors.ZarrUserWarning)
        yield


def _write_layout(store: str, ds: xr.Dataset, encoding: dict, mode: str) -> None:
    """The metadata of every array, the numpy-backed ones' values, then the ground truth's
    dask-backed variables (`truth.region_tiles`) one tile at a time, then ``complete``."""
    # Consolidated metadata is what lets plain xr.open_zarr(STORE) open it without a warning.
    with _quiet_zarr():
        # write_empty_chunks: every chunk written now (the ground truth) is there even when
        # all zero, so that a missing chunk is damage (`integrity.verify`), never a zero.
        ds.to_zarr(
            store,
            mode=mode,
            compute=False,
            encoding=encoding,
            zarr_format=3,
            consolidated=True,
            write_empty_chunks=True,
        )
    for name in TILED_TRUTH:
        if name in ds:
            arr = zarr.open_array(store, path=name, mode="r+")
            arr = arr.with_config({"write_empty_chunks": True})  # this array alone
            da.store(ds[name].data, arr, lock=False, scheduler="synchronous")
    zarr.open_group(store, mode="r+").attrs["complete"] = True
    consolidate(store)


def consolidate(store):
    with _quiet_zarr():
        zarr.consolidate_metadata(store)
