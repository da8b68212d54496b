"""Sample files streamed once: the fingerprint covers every byte or chunk, and the same pass
finds the first value the float32 kernel cannot take."""

import hashlib

import numpy as np
import pytest
import zarr

from jscan.inputs.config import SampleConfig
from jscan.inputs.digest import READ_BYTES, sample_digest


def npy(tmp_path, array, name="s.npy"):
    np.save(tmp_path / name, array)
    return SampleConfig(kind="file", dx=1e-6, path=str(tmp_path / name))


def test_npy_digest_is_the_sha256_of_the_whole_file(tmp_path, rng):
    data = (rng.normal(size=(700, 513)) + 1j).astype(np.complex64)  # not a whole MiB
    cfg = npy(tmp_path, data)
    found = sample_digest(cfg)
    assert found.digest == hashlib.sha256((tmp_path / "s.npy").read_bytes()).digest()
    assert found.max_abs2 == pytest.approx(float(np.max(np.abs(data.astype(complex)) ** 2)))


@pytest.mark.parametrize(
    ("dtype", "order"),
    [("<c8", "C"), (">c16", "C"), ("<f4", "F"), (">f8", "F"), ("<i2", "C"), ("<c8", "F")],
)
def test_first_bad_value_is_located_in_any_layout(tmp_path, dtype, order):
    shape = (600, 300)  # 600 * 300 * 16 B > 2 MiB: the bad value is read in a later chunk
    data = np.ones(shape, dtype=dtype, order=order)
    if np.dtype(dtype).kind == "i":
        data[450, 17] = 32000  # integers are always finite
        assert sample_digest(npy(tmp_path, data)).max_abs2 == 32000.0**2
        return
    data[450, 17] = np.nan if order == "C" else -np.inf
    with pytest.raises(ValueError, match=r"sample\.path: .* holds NaN or inf at row 450, col 17"):
        sample_digest(npy(tmp_path, data))


def test_values_beyond_float32_are_refused(tmp_path):
    data = np.ones((10, 10), np.complex128)
    data[3, 4] = 1 + 4e38j
    with pytest.raises(ValueError, match=r"beyond float32's range at row 3, col 4"):
        sample_digest(npy(tmp_path, data))


def test_an_edit_anywhere_changes_the_npy_digest(tmp_path):
    data = np.ones((1024, 1100), np.complex64)  # 8.6 MiB
    cfg = npy(tmp_path, data)
    before = sample_digest(cfg).digest
    size = (tmp_path / "s.npy").stat().st_size
    for offset in (size // 2 // 8 * 8, 3 * READ_BYTES + 8, size - 8):
        cfg = npy(tmp_path, data)
        with open(tmp_path / "s.npy", "r+b") as f:
            f.seek(offset)
            f.write(np.complex64(0.5).tobytes())
        assert sample_digest(cfg).digest != before


def test_zarr_digest_covers_every_chunk_and_the_metadata_not_the_attributes(tmp_path):
    store = tmp_path / "s.zarr"
    arr = zarr.create_array(store, name="sample", shape=(300, 200), chunks=(64, 64), dtype="c8")
    arr[:] = 1
    cfg = SampleConfig(kind="zarr", dx=1e-6, path=str(store), array="sample")
    first = sample_digest(cfg)
    arr.attrs["note"] = "measured on Tuesday"
    assert sample_digest(cfg) == first  # free-form attributes do not matter
    arr[150, 100] = 0.5  # a middle chunk
    changed = sample_digest(cfg)
    assert changed.digest != first.digest
    arr[150, 100] = 1
    assert sample_digest(cfg) == first
    arr[299, 199] = np.nan  # the last, partial chunk
    with pytest.raises(ValueError, match=r"NaN or inf at row 299, col 199"):
        sample_digest(cfg)


def test_phantoms_have_no_file():
    cfg = SampleConfig(kind="phantom", dx=1e-6, phantom="cells", shape=(10, 10), seed=0)
    assert sample_digest(cfg) is None
