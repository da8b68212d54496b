"""What `jscan.pipeline.store.zarrbytes` says of zarr's bytes, against the files zarr wrote
for a real store: a zarr release that lays them out otherwise fails here."""

from pathlib import Path

import google_crc32c
import numpy as np
import zarr

from jscan.pipeline.store.zarrbytes import (
    decode_plain,
    is_plain,
    plain_chunk_bytes,
    shard_index_bytes,
    stored_sizes,
)


def test_stored_sizes_are_the_files_on_disk(partial_store):
    store = partial_store([0, 4])
    for name in ("diffraction", "block_done", "x"):
        folder = Path(store) / name
        on_disk = {
            str(path.relative_to(folder)): path.stat().st_size
            for path in folder.rglob("*")
            if path.is_file() and path.name != "zarr.json"
        }
        assert on_disk and stored_sizes(zarr.open_array(store, path=name, mode="r")) == on_disk


def _index_closes_the_shard(data: bytes, arr) -> None:
    n = shard_index_bytes(arr)
    inner = int(np.prod(np.divide(arr.shards, arr.chunks)))
    index = data[-n:]
    assert google_crc32c.value(index[:-4]) == int.from_bytes(index[-4:], "little")
    offset, nbytes = np.frombuffer(index[:-4], "<u8").reshape(inner, 2).T
    # the inner chunks, one after another, then the index: nothing else in the file
    assert offset[0] == 0 and (offset[1:] == offset[:-1] + nbytes[:-1]).all()
    assert int(offset[-1] + nbytes[-1]) + n == len(data)


def test_the_shard_index_closes_each_shard_with_its_crc32c(partial_store, tmp_path):
    store = partial_store([0, 4])
    arr = zarr.open_array(store, path="diffraction", mode="r")
    for b in (0, 4):
        key = arr.metadata.encode_chunk_key((b, 0, 0))
        _index_closes_the_shard((Path(store) / "diffraction" / key).read_bytes(), arr)
    # the store's codecs, with four inner chunks per shard (a large pattern's layout)
    h, w = arr.shape[1:]
    many = zarr.create_array(
        str(tmp_path / "many.zarr"),
        shape=(16, h, w),
        chunks=(2, h, w),
        shards=(8, h, w),
        dtype=arr.dtype,
        compressors=arr.compressors,
        zarr_format=3,
    )
    many[:] = np.random.default_rng(0).random((16, h, w)).astype(arr.dtype)
    for b in (0, 1):
        key = many.metadata.encode_chunk_key((b, 0, 0))
        _index_closes_the_shard((tmp_path / "many.zarr" / key).read_bytes(), many)


def test_a_plain_chunk_is_its_values_and_their_crc32c(partial_store):
    store = partial_store([0, 4])
    for name in ("block_done", "block_checksum", "x", "bright_field", "scan_row"):
        arr = zarr.open_array(store, path=name, mode="r")
        assert is_plain(arr), name
        chunk = arr.chunks[0]
        data = (Path(store) / name / arr.metadata.encode_chunk_key((4,))).read_bytes()
        assert len(data) == plain_chunk_bytes(arr)
        np.testing.assert_array_equal(decode_plain(data, arr), arr[4 * chunk : 5 * chunk])
        damaged = bytes([data[0] ^ 1]) + data[1:]
        assert decode_plain(damaged, arr) is None and decode_plain(data[:-1], arr) is None


def test_the_patterns_are_not_plain(partial_store):
    store = partial_store([0])
    assert not is_plain(zarr.open_array(store, path="diffraction", mode="r"))
