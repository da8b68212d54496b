"""Whole reads of a store's small per-block arrays, without zarr's cost per chunk.

``block_done``, ``block_checksum``, the virtual detectors and the coordinates have one chunk
per block (each worker writes only its own), so a 10^7-position store holds 10^4 chunks of
each and a 10^8-position one 10^5; zarr decodes them one at a time (a fraction of a
millisecond each). Stored as jscan writes them (plain little-endian values followed by
their CRC32C, the zarr v3 "bytes" and "crc32c" codecs, one file per chunk on a local file
system), a chunk is read here with one ``open`` and checked with the same CRC32C; any other
layout (object stores, other codecs) is read by zarr.
"""

import os

import google_crc32c  # zarr's own CRC32C
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec

from jscan.pipeline.store.lock import is_local

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
    if not _plain(arr) or not is_local(store):
        return _by_zarr(arr, values)
    if not os.path.isdir(folder):  # nothing written yet
        return values, []
    chunk, le = arr.chunks[0], arr.dtype.newbyteorder("<")
    whole = chunk * arr.dtype.itemsize + 4
    bad, n_chunks = [], -(-arr.shape[0] // chunk)
    for entry in os.listdir(folder):
        if not (entry.isascii() and entry.isdigit()) or int(entry) >= n_chunks:
            continue  # not a chunk of this array's grid (zarr would not read it either)
        b = int(entry)
        with open(os.path.join(folder, entry), "rb") as f:
            data = f.read()
        start = b * chunk
        if len(data) != whole or google_crc32c.value(data[:-4]) != int.from_bytes(
            data[-4:], "little"
        ):
            bad.append(b)
            continue
        values[start : start + chunk] = np.frombuffer(data, le, count=chunk)[: len(values) - start]
    return values, sorted(bad)


def read_sound(store: str, name: str) -> np.ndarray:
    """`read_blocks`, but a chunk that cannot be read raises ValueError (one of
    DECODE_ERRORS, which `jscan verify` names) instead of reading as the fill value."""
    values, bad = read_blocks(store, name)
    if bad:
        raise ValueError(f"{name} chunks {bad[:5]} fail their CRC32C or have the wrong size")
    return values


def _plain(arr: zarr.Array) -> bool:
    """True for a 1-D array stored as jscan writes its per-block arrays: chunk keys c/<i>,
    little-endian bytes, CRC32C, nothing else."""
    return (
        arr.ndim == 1
        and arr.metadata.zarr_format == 3
        and arr.metadata.encode_chunk_key((7,)) == "c/7"
        and arr.filters == ()
        and isinstance(arr.serializer, BytesCodec)
        and (arr.serializer.endian is None or arr.serializer.endian.value == "little")
        and len(arr.compressors) == 1
        and isinstance(arr.compressors[0], Crc32cCodec)
        and arr.shards is None
    )


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
