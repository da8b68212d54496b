"""Scan positions in metres: raster, spiral and file scans, generated for any index range.

Every function here takes a range of global position indices [start, stop), so a block's
positions can be made where the block runs (from its index alone) and equal, bit for bit,
those of the same indices made in any other range: each position is a function of its own
index (elementwise float64 arithmetic), never of its neighbours.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jscan.inputs.config import ScanConfig

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
CHUNK = 1 << 20  # positions per slab when a whole scan is walked through (file scans)


def scan_length(scan: ScanConfig) -> int:
    """Number of positions of a scan (a file scan's is read from its .npy header)."""
    if scan.kind == "raster":
        return int(scan.shape[0]) * int(scan.shape[1])
    if scan.kind == "spiral":
        return int(scan.n)
    if scan.kind == "file":
        return int(_open_positions(scan.path).shape[0])
    raise ValueError(f'scan.kind must be "raster", "spiral" or "file", got {scan.kind!r}')


def scan_positions(
    scan: ScanConfig,
    sample_shape_px: tuple[int, int],
    sample_dx: float,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Probe positions of the scan indices [start, stop), in scan order.

    Args:
        scan: the [scan] config.
        sample_shape_px: (rows, cols) of the sample in pixels; sample pixel (r, c) sits at
            y = r * sample_dx, x = c * sample_dx.
        sample_dx: sample pixel size (m).
        start, stop: the global index range (stop None: the scan's end).

    Returns:
        float64 array (stop - start, 2) with columns x, y (m). Raster: start + (col, row) *
        step, the grid centred on the sample unless scan.start is given; spiral: the sample
        centre + step sqrt(k) (cos k g, sin k g) with g the golden angle; file: the rows
        start..stop-1 of the .npy (read lazily, checked finite).
    """
    rows, cols = (int(v) for v in sample_shape_px)
    if not (math.isfinite(sample_dx) and sample_dx > 0):
        raise ValueError(f"sample_dx must be a finite length > 0 in metres, got {sample_dx!r}")
    stop = scan_length(scan) if stop is None else stop
    centre_x, centre_y = cols * sample_dx / 2, rows * sample_dx / 2
    if scan.kind == "raster":
        start_x, start_y = raster_start(scan, centre_x, centre_y)
        scan_row, scan_col = raster_indices(scan, start, stop)
        x = start_x + scan_col * scan.step
        y = start_y + scan_row * scan.step
        return np.stack([x, y], axis=1).astype(np.float64)
    if scan.kind == "spiral":
        k = np.arange(start, stop, dtype=np.float64)
        radius = scan.step * np.sqrt(k)
        theta = k * GOLDEN_ANGLE
        return np.stack(
            [centre_x + radius * np.cos(theta), centre_y + radius * np.sin(theta)], axis=1
        )
    if scan.kind == "file":
        positions = np.asarray(_open_positions(scan.path)[start:stop], dtype=np.float64)
        if not np.isfinite(positions).all():
            bad = start + int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
            raise ValueError(
                f"scan.path: {scan.path} holds NaN or inf (row {bad}); save finite positions "
                "in metres"
            )
        return positions
    raise ValueError(f'scan.kind must be "raster", "spiral" or "file", got {scan.kind!r}')


def raster_start(scan: ScanConfig, centre_x: float, centre_y: float) -> tuple[float, float]:
    """First (x, y) of a raster [m]: scan.start, or the grid centred (not its first
    position) on (centre_x, centre_y)."""
    if scan.start is not None:
        return scan.start
    n_rows, n_cols = scan.shape
    return centre_x - (n_cols - 1) * scan.step / 2, centre_y - (n_rows - 1) * scan.step / 2


def raster_indices(
    scan: ScanConfig, start: int = 0, stop: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Grid indices of the positions [start, stop) of a raster scan (row-major order).

    Returns (scan_row, scan_col) int64 arrays, or None for non-raster scans.
    """
    if scan.kind != "raster":
        return None
    n_rows, n_cols = scan.shape
    stop = n_rows * n_cols if stop is None else stop
    scan_row, scan_col = np.divmod(np.arange(start, stop, dtype=np.int64), n_cols)
    return scan_row, scan_col


def _open_positions(path: str) -> np.ndarray:
    """The .npy of a file scan, memory-mapped (rows read when sliced), its layout checked."""
    try:
        positions = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"scan.path: cannot read {path} as .npy ({err}); save positions with np.save"
        ) from err
    if not isinstance(positions, np.ndarray):
        raise ValueError(f"scan.path: {path} is not a single .npy array; save it with np.save")
    if positions.ndim != 2 or positions.shape[1] != 2 or positions.shape[0] == 0:
        raise ValueError(
            f"scan.path: {path} holds shape {positions.shape}; "
            "save a non-empty array of shape (n, 2) with columns x, y in metres"
        )
    if positions.dtype.kind not in "iuf":
        raise ValueError(
            f"scan.path: {path} holds dtype {positions.dtype}; save real positions in metres"
        )
    return positions


_GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function of uint64 x (Steele, Lea & Flood 2014): a bijective
    hash whose outputs pass BigCrush as a counter-based generator."""
    z = x + _GOLDEN64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def position_errors(scan: ScanConfig, start: int = 0, stop: int | None = None) -> np.ndarray:
    """The error (n, 2) x, y [m] of the positions [start, stop): drift * k + jitter * N(0, 1).

    k is the global position index; the Gaussian pair of position k is a Box-Muller
    transform of two uniforms hashed from (scan.seed, k) by SplitMix64, so each position's
    error is a function of its own index (the same whatever the block), and x, y are
    independent. Zero when scan.jitter and scan.drift are zero.
    """
    stop = scan_length(scan) if stop is None else stop
    k = np.arange(start, stop, dtype=np.uint64)
    out = np.zeros((len(k), 2))
    if scan.jitter:
        key = _splitmix64(np.array([scan.seed], np.uint64))[0]
        u1, u2 = (
            ((_splitmix64(key ^ (k * np.uint64(2) + np.uint64(j))) >> np.uint64(11)) + 0.5)
            * 2.0**-53
            for j in (0, 1)
        )  # in (0, 1): the log below stays finite
        radius = scan.jitter * np.sqrt(-2.0 * np.log(u1))
        out += np.stack([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)], 1)
    if any(scan.drift):
        out += np.arange(start, stop, dtype=np.float64)[:, None] * np.asarray(scan.drift)
    return out
