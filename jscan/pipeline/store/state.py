"""A store's run state and validation: its attributes checked, which blocks are done, the
block checksum, the run history, and `open_scan`."""

import datetime
import json
import os
import socket
import zlib

import numpy as np
import xarray as xr
import zarr

from jscan.errors import StoreError
from jscan.inputs.detectors import DETECTORS
from jscan.pipeline.store.chunks import read_blocks
from jscan.pipeline.store.coords import POSITION_COORDS
from jscan.pipeline.store.format import (
    ARRAYS,
    FORMAT,
    METADATA_ERRORS,
    consolidate,
    exists,
    location,
)
from jscan.pipeline.store.lock import LOCK_NAME, is_local


def read_attrs(store: str) -> dict:
    """The store's root attributes; StoreError when it is not a whole jscan store."""
    store = location(store)
    try:
        attrs = zarr.open_group(store, mode="r").attrs.asdict()
    except (
        FileNotFoundError,
        NotADirectoryError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.NodeTypeValidationError,
    ) as err:
        missing = is_local(store) and not os.path.exists(store)
        what = "does not exist" if missing else "is not a Zarr store"
        raise StoreError(f"{store} {what}; check the path") from err
    except (OSError, ValueError) as err:  # unreadable or garbled zarr.json
        raise StoreError(
            f"{store} has unreadable metadata ({type(err).__name__}: {err}); "
            "replace it with --overwrite"
        ) from None
    fmt = attrs.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("jscan-scan/"):
            raise StoreError(
                f"{store} is in the older format {fmt} (no ground-truth probe, or its block "
                f"checksums do not cover the positions, or it has none); this jscan reads "
                f"{FORMAT}: open it with xarray.open_zarr, or make it again with --overwrite"
            )
        raise StoreError(f"{store} is a Zarr store but not a jscan scan; choose another --out")
    if attrs.get("complete") is not True:
        raise StoreError(
            f"{store} was never completely created (the run that made it stopped); "
            "replace it with --overwrite"
        )
    return attrs


_REQUIRED_ATTRS = (
    "config",
    "config_hash",
    "inputs_hash",
    "block_size",
    "n_positions",
    "n_blocks",
    "store_id",
    "bright_field_radius_m",
)


def check_store(store: str) -> dict:
    """Check that a store's attributes and every array are there and consistent; return its
    attributes, or StoreError with one line naming what is missing.

    Each array's own metadata is read (not the consolidated copy at the root), so an array
    folder that was deleted is found missing instead of reading as zeros.
    """
    store = location(store)
    attrs = read_attrs(store)
    missing = [key for key in _REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise StoreError(
            f"{store} lacks the attribute(s) {', '.join(missing)}; replace it with --overwrite"
        )
    n, blocks = attrs["n_positions"], attrs["n_blocks"]
    expected = {"diffraction": n, "x": n, "y": n, "block_done": blocks, "block_checksum": blocks}
    expected.update(dict.fromkeys(DETECTORS, n))
    # The optional per-block coordinates the root's (consolidated) metadata lists must be
    # there too: a deleted one would otherwise read as its fill value.
    listed = zarr.open_group(store, mode="r")
    optional = [name for name in POSITION_COORDS if name not in ARRAYS and name in listed]
    expected.update(dict.fromkeys(optional, n))
    for name in (*ARRAYS, *optional):
        try:
            arr = zarr.open_array(store, path=name, mode="r")
        except METADATA_ERRORS as err:  # missing folder, garbled or unreadable metadata
            raise StoreError(
                f"{store} is damaged: its {name} array is missing or unreadable "
                f"({type(err).__name__}); replace the store with --overwrite"
            ) from None
        if name in expected and arr.shape[0] != expected[name]:
            raise StoreError(
                f"{store} is damaged: {name} has {arr.shape[0]} rows, not {expected[name]}; "
                "replace the store with --overwrite"
            )
    return attrs


def check_replaceable(store: str) -> None:
    """StoreError unless ``store`` is missing, an empty folder or a jscan store (whole or
    not): --overwrite deletes nothing else."""
    store = location(store)
    if not exists(store):
        return
    if is_local(store) and os.path.isdir(store) and not os.path.islink(store):
        if not [e for e in os.listdir(store) if e != LOCK_NAME]:
            return
    try:
        fmt = zarr.open_group(store, mode="r").attrs.get("format")
    except METADATA_ERRORS:
        fmt = None
    if not (isinstance(fmt, str) and fmt.startswith("jscan-scan/")):
        raise StoreError(
            f"{store} is not a jscan store; --overwrite replaces only jscan stores and empty "
            "folders: move it away or choose another --out"
        )


def check_id(store: str, store_id: str) -> None:
    """StoreError unless the store at ``store``, as this process sees it, is ``store_id``.

    Workers call this before their first write: a relative path, another machine's folder or
    a store replaced since the run began must not receive its patterns.
    """
    host = socket.gethostname()
    try:
        found = zarr.open_group(location(store), mode="r").attrs.get("store_id")
    except METADATA_ERRORS as err:
        raise StoreError(
            f"worker on {host} finds no jscan store at {store} ({type(err).__name__}); put the "
            "store where every worker reaches it (a shared file system or a URL)"
        ) from None
    if found != store_id:
        raise StoreError(
            f"worker on {host} sees another store at {store} (store_id {found}, this run's "
            f"{store_id}); every worker must reach the same store: use a shared file system "
            "or a URL"
        )


def blocks_done(store: str) -> np.ndarray:
    """block_done as a bool array (one per block); a block whose flag cannot be read (its
    chunk fails its CRC32C) counts as not done, so that a resumed run simulates it again."""
    return run_state(store, "block_done")[0].astype(bool)


def run_state(store: str, name: str) -> tuple[np.ndarray, list[int]]:
    """A per-block array (``block_done`` or ``block_checksum``) and the blocks whose chunk
    cannot be read (0 in the array): `jscan.pipeline.store.chunks.read_blocks`."""
    return read_blocks(location(store), name)


def block_crc(patterns: np.ndarray, x: np.ndarray, y: np.ndarray) -> int:
    """CRC32 (zlib) of a block's patterns, then its x and y, as little-endian bytes in C
    order: a block's checksum covers where its patterns were simulated too."""
    crc = 0
    for values in (patterns, x, y):
        data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        crc = zlib.crc32(memoryview(data).cast("B"), crc)
    return crc


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
    consolidate(store)


def block_rows(block: int, block_size: int, n_positions: int) -> tuple[int, int]:
    """Global position indices [start, stop) of a block: its rows in every per-position
    array."""
    start = block * block_size
    return start, min(start + block_size, n_positions)


def per_position(block_values, block_size: int, n_positions: int) -> np.ndarray:
    """A per-block array (n_blocks,) spread over its blocks' positions (n_positions,)."""
    return np.repeat(np.asarray(block_values), int(block_size))[: int(n_positions)]


def open_scan(store: str) -> xr.Dataset:
    """Open a scan lazily (dask-backed), also a run in progress.

    The ``done`` coordinate (position) is True where the position's block was marked done
    when the store was opened; patterns of other positions read as zeros (the fill value),
    and the `jscan.analysis` helpers give NaN there.
    """
    store = location(store)
    attrs = check_store(store)
    ds = xr.open_zarr(store)
    done = per_position(blocks_done(store), attrs["block_size"], attrs["n_positions"])
    return ds.assign_coords(
        done=(
            "position",
            done,
            {"units": "1", "long_name": "position's block simulated (when opened)"},
        )
    )
