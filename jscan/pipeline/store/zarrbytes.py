"""What jscan knows of zarr-python 3's bytes beyond its public API, in one place.

`verify` and the whole reads of the per-block arrays (`chunks`) need three facts that
zarr's public API does not give. tests/pipeline/store/test_zarrbytes.py checks each against
what zarr itself writes, so a zarr release that changes one fails there, not silently in
`jscan verify`:

- `stored_sizes`: the bytes of every stored object of an array in one listing (zarr's store
  API is async; ``zarr.core.sync.sync`` is its private bridge to it);
- `shard_index_bytes`: the sharding codec's index at the end of each shard (an offset and a
  length, 8 bytes each, per inner chunk, then its CRC32C);
- `is_plain` and `decode_plain`: a chunk of the "bytes" and "crc32c" codecs alone is the
  little-endian values followed by the CRC32C of those bytes.
"""

import google_crc32c  # zarr's own CRC32C
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec
from zarr.core.sync import sync


def stored_sizes(arr: zarr.Array) -> dict[str, int]:
    """Bytes of every stored chunk (or shard) of ``arr`` by its key (one listing)."""

    async def collect():
        store, prefix = arr.store_path.store, arr.store_path.path
        prefix = f"{prefix}/" if prefix else ""
        out = {}
        async for key in store.list_prefix(prefix):
            if not key.endswith("zarr.json"):
                out[key.removeprefix(prefix)] = await store.getsize(key)
        return out

    return sync(collect())


def shard_index_bytes(arr: zarr.Array) -> int:
    """Size of a shard's index: 16 bytes per inner chunk and a CRC32C (zarr's default index
    codecs, which jscan's stores use)."""
    per_shard = int(np.prod([s // c for s, c in zip(arr.shards, arr.chunks, strict=True)]))
    return 16 * per_shard + 4


def is_plain(arr: zarr.Array) -> bool:
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


def plain_chunk_bytes(arr: zarr.Array) -> int:
    """Size of one whole chunk of a plain array (`is_plain`): its values and their CRC32C."""
    return arr.chunks[0] * arr.dtype.itemsize + 4


def decode_plain(data: bytes, arr: zarr.Array) -> np.ndarray | None:
    """The values of one stored chunk of a plain array (`is_plain`), or None when it is not
    whole or fails its CRC32C."""
    if len(data) != plain_chunk_bytes(arr):
        return None
    if google_crc32c.value(data[:-4]) != int.from_bytes(data[-4:], "little"):
        return None
    return np.frombuffer(data, arr.dtype.newbyteorder("<"), count=arr.chunks[0])
