"""Whole reads of a store's small per-block arrays, without zarr's cost per chunk.

``block_done``, ``block_checksum``, the virtual detectors and the coordinates have one chunk
per block (each worker writes only its own), so a 10^7-position store holds 10^4 chunks of
each and a 10^8-position one 10^5; zarr decodes them one at a time (a fraction of a
millisecond each). Stored as jscan writes them (plain little-endian values followed by
their CRC32C, the zarr v3 "bytes" and "crc32c" codecs, one file per chunk on a local file
system), a chunk is read here with one ``open`` and checked with the same CRC32C; any other
layout (object stores, other codecs) is read by zarr. What a plain chunk's bytes are is
`zarrbytes`' to say.
"""

import os

import numpy as np
import zarr

from jscan.pipeline.store.lock import is_local
from jscan.pipeline.store.zarrbytes import decode_plain, is_plain

# What zarr raises for a chunk that fails its CRC32C (ValueError) or its codec (Blosc's
# RuntimeError); I/O errors (OSError) are not damage and propagate.
DECODE_ERRORS = (ValueError, RuntimeError)


def read_blocks(store: str, name: str) -> tuple[np.ndarray, list[int]]:
    """The 1-D array ``name`` of a local store, and the chunks that cannot be read.

    Returns (values, bad): the values, with the array's fill value in chunks not written and
    in those that cannot be read; bad: the indices of the chunks that fail their CRC32C or
    have the wrong size (sorted).
    """
    arr = zarr.open_array(store, path=name, mode="r")
    values = np.full(arr.shape, arr.fill_value, arr.dtype)
    folder = os.path.join(store, name, "c")
    if not is_plain(arr) or not is_local(store):
        return _by_zarr(arr, values)
    if not os.path.isdir(folder):  # nothing written yet
        return values, []
    chunk = arr.chunks[0]
    bad, n_chunks = [], -(-arr.shape[0] // chunk)
    for entry in os.listdir(folder):
        if not (entry.isascii() and entry.isdigit()) or int(entry) >= n_chunks:
            continue  # not a chunk of this array's grid (zarr would not read it either)
        b = int(entry)
        with open(os.path.join(folder, entry), "rb") as f:
            data = f.read()
        start, decoded = b * chunk, decode_plain(data, arr)
        if decoded is None:
            bad.append(b)
            continue
        values[start : start + chunk] = decoded[: len(values) - start]
    return values, sorted(bad)


def read_sound(store: str, name: str) -> np.ndarray:
    """`read_blocks`, but a chunk that cannot be read raises ValueError (one of
    DECODE_ERRORS, which `jscan verify` names) instead of reading as the fill value."""
    values, bad = read_blocks(store, name)
    if bad:
        raise ValueError(f"{name} chunks {bad[:5]} fail their CRC32C or have the wrong size")
    return values


def _by_zarr(arr: zarr.Array, values: np.ndarray) -> tuple[np.ndarray, list[int]]:
    try:
        return arr[:], []
    except DECODE_ERRORS:  # a chunk fails its CRC32C or its codec: read chunk by chunk
        chunk, bad = arr.chunks[0], []
        for b in range(-(-arr.shape[0] // chunk)):
            try:
                values[b * chunk : (b + 1) * chunk] = arr[b * chunk : (b + 1) * chunk]
            except DECODE_ERRORS:
                bad.append(b)
        return values, bad
