"""Whole reads of the per-block arrays (`jscan.pipeline.store.chunks`) against zarr's own reads."""

from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from jscan.pipeline.store.chunks import read_blocks

NAMES = ("block_done", "block_checksum", "bright_field", "x", "scan_row")


def test_whole_reads_equal_zarr_and_find_damaged_chunks(partial_store):
    store = partial_store([0, 3, 4, 8])  # 9 blocks of 16 positions, 4 of them done
    for name in NAMES:
        values, bad = read_blocks(store, name)
        expected = zarr.open_array(store, path=name, mode="r")[:]
        np.testing.assert_array_equal(values, expected)  # fill values where not written
        assert values.dtype == expected.dtype and bad == []
    folder = Path(store) / "bright_field" / "c"
    data = bytearray((folder / "3").read_bytes())
    data[20] ^= 0x01  # one flipped bit: the CRC32C fails
    (folder / "3").write_bytes(bytes(data))
    (folder / "8").write_bytes(b"")  # emptied
    values, bad = read_blocks(store, "bright_field")
    assert bad == [3, 8]
    assert np.isnan(values[3 * 16 : 4 * 16]).all() and np.isnan(values[8 * 16 :]).all()
    assert np.isfinite(values[:16]).all()


def test_other_layouts_are_read_by_zarr(tmp_path):
    path = str(tmp_path / "s.zarr")
    group = zarr.open_group(path, mode="w", zarr_format=3)
    arr = group.create_array(
        "a",
        shape=(10,),
        chunks=(4,),
        dtype="float64",
        fill_value=np.nan,
        compressors=(BloscCodec(), Crc32cCodec()),
    )
    arr[:6] = np.arange(6.0)
    values, bad = read_blocks(path, "a")
    np.testing.assert_array_equal(values, arr[:])
    assert bad == []


def test_stray_files_are_not_chunks(partial_store):
    store = partial_store([0])
    folder = Path(store) / "block_done" / "c"
    (folder / "99").write_bytes(b"\x01\x00\x00\x00\x00")  # past the grid (9 blocks)
    (folder / "²").write_bytes(b"")  # a digit, but not a chunk key
    values, bad = read_blocks(store, "block_done")
    np.testing.assert_array_equal(values, [1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert bad == []
