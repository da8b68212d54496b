"""Input files read once, in full: a sha256 fingerprint and a check of every value.

A sample file is streamed (1 MiB reads for .npy, one stored chunk at a time for Zarr), so a
file of any size costs one pass and bounded memory. The same pass refuses what the float32
kernel cannot take (NaN, inf, values beyond float32's range) and records the largest
|value|^2, which bounds the brightest pattern (`jscan.pipeline.run.checks`).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from jscan.inputs.rules import FLOAT32_MAX
from jscan.inputs.samples import open_npy, open_zarr

if TYPE_CHECKING:
    from jscan.inputs.config import Config, SampleConfig

READ_BYTES = 1 << 20  # one read of a streamed file


class SampleDigest(NamedTuple):
    """What one streamed pass over a sample file found."""

    digest: bytes  # sha256: the .npy file's bytes, or a Zarr array's metadata and values
    max_abs2: float  # largest |value|^2 over the array (float64)


def file_sha256(path: str) -> bytes:
    """sha256 of a whole file, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_BYTES), b""):
            h.update(chunk)
    return h.digest()


def sample_digest(cfg: SampleConfig) -> SampleDigest | None:
    """Fingerprint and check a file or Zarr sample in one streamed pass; None for phantoms.

    .npy: sha256 of every byte of the file. Zarr: sha256 of the array's metadata (shape,
    dtype, chunk grid, codecs, fill value; not its free-form attributes) and of the decoded
    values of every stored chunk in row-major chunk order, missing chunks as their fill value.

    Raises ValueError naming sample.path (or sample.array) and the first bad pixel when a
    value is NaN/inf or beyond float32's range (it would become inf in the complex64 kernel).
    """
    if cfg.kind == "phantom":
        return None
    digest = _npy_digest(cfg.path) if cfg.kind == "file" else _zarr_digest(cfg)
    if cfg.values == "refractive_index":  # |exp(-i k (delta - i beta) t)| <= 1 for beta >= 0
        return digest._replace(max_abs2=1.0)
    return digest


def _npy_digest(path: str) -> SampleDigest:
    header = open_npy(path)  # a memory map: shape, dtype and data offset, no data read
    dtype, shape = header.dtype, header.shape
    order = "F" if header.flags.f_contiguous and not header.flags.c_contiguous else "C"
    begin = header.offset
    end = begin + header.size * dtype.itemsize
    del header
    h = hashlib.sha256()
    peak, seen, pos, carry = 0.0, 0, 0, b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_BYTES), b""):
            h.update(chunk)
            lo, hi = max(begin - pos, 0), min(end - pos, len(chunk))
            pos += len(chunk)
            if hi <= lo:
                continue
            data = carry + chunk[lo:hi]
            whole = len(data) - len(data) % dtype.itemsize
            values = np.frombuffer(data, dtype, whole // dtype.itemsize)
            bad, peak_here = _scan_values(values)
            if bad is not None:
                *_, row, col = np.unravel_index(seen + bad, shape, order=order)
                raise _bad_value("sample.path", path, values[bad], row, col)
            peak = max(peak, peak_here)
            seen += len(values)
            carry = data[whole:]
    return SampleDigest(h.digest(), peak)


def _zarr_digest(cfg: SampleConfig) -> SampleDigest:
    array = open_zarr(cfg)
    meta = array.metadata.to_dict()
    meta.pop("attributes", None)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=repr).encode())
    *lead, rows, cols = array.shape
    *step_k, step_r, step_c = array.shards or array.chunks  # one stored object per read
    peak = 0.0
    for k0 in range(0, lead[0], step_k[0]) if lead else (None,):
        stack = () if k0 is None else (slice(k0, k0 + step_k[0]),)
        for r0 in range(0, rows, step_r):
            for c0 in range(0, cols, step_c):
                box = (*stack, slice(r0, r0 + step_r), slice(c0, c0 + step_c))
                block = np.ascontiguousarray(array[box])
                h.update(block.tobytes())
                bad, peak_here = _scan_values(block.ravel())
                if bad is not None:
                    *_, row, col = np.unravel_index(bad, block.shape)
                    where = f'array "{cfg.array}" in {cfg.path}'
                    raise _bad_value("sample.path", where, block.flat[bad], r0 + row, c0 + col)
                peak = max(peak, peak_here)
    return SampleDigest(h.digest(), peak)


def _scan_values(values: np.ndarray) -> tuple[int | None, float]:
    """(index of the first value that is not a finite float32, or None; max |value|^2)."""
    if values.size == 0:
        return None, 0.0
    if values.dtype.kind in "fc":
        parts = values.view(values.real.dtype) if values.dtype.kind == "c" else values
        ok = np.abs(parts.astype(np.float64)) <= FLOAT32_MAX  # False for NaN, inf, too large
        if not ok.all():
            first = int(np.argmin(ok))
            return (first // 2 if values.dtype.kind == "c" else first), 0.0
    wide = values.astype(np.complex128 if values.dtype.kind == "c" else np.float64)
    return None, float(np.max(wide.real**2 + wide.imag**2))


def _bad_value(key: str, where: str, value, row, col) -> ValueError:
    what = "NaN or inf" if not np.isfinite(value) else f"{value!r}, beyond float32's range"
    return ValueError(
        f"{key}: {where} holds {what} at row {int(row)}, col {int(col)}; save a finite "
        "transmission within float32's range (|value| < 3.4e38, typically |value| <= 1)"
    )


def inputs_hash(config: Config, sample: SampleDigest | None = None) -> str:
    """A fingerprint of the data files a config reads (the config hash covers only their
    paths): resuming with a changed probe, positions, sample or bad-pixel file would mix inputs.

    Every file is hashed in full: the probe, positions and bad-pixel files and a .npy sample
    byte for byte, a Zarr sample by its metadata and every chunk's values (`jscan.inputs.digest`).
    sample: the sample's `SampleDigest` when the caller has streamed it already (the same
    pass checks its values); None streams it here.
    """
    h = hashlib.sha256()
    for path in (config.probe.path, config.scan.path, config.detector.bad_pixels):
        if path is not None:
            h.update(file_sha256(path))
    if config.sample.kind != "phantom":
        h.update((sample or sample_digest(config.sample)).digest)
    return h.hexdigest()
