"""Scan positions in metres: raster, spiral and file scans."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jscan.inputs.config import ScanConfig

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def scan_positions(
    scan: ScanConfig, sample_shape_px: tuple[int, int], sample_dx: float
) -> np.ndarray:
    """Probe positions of a scan, in scan order.

    Args:
        scan: the [scan] config.
        sample_shape_px: (rows, cols) of the sample in pixels; sample pixel (r, c) sits at
            y = r * sample_dx, x = c * sample_dx.
        sample_dx: sample pixel size (m).

    Returns:
        float64 array (n, 2) with columns x, y (m).
    """
    rows, cols = (int(v) for v in sample_shape_px)
    if not (math.isfinite(sample_dx) and sample_dx > 0):
        raise ValueError(f"sample_dx must be a finite length > 0 in metres, got {sample_dx!r}")
    centre_x, centre_y = cols * sample_dx / 2, rows * sample_dx / 2
    if scan.kind == "raster":
        n_rows, n_cols = scan.shape
        if scan.start is None:
            # Centre the grid (not its first position) on the sample centre.
            start_x = centre_x - (n_cols - 1) * scan.step / 2
            start_y = centre_y - (n_rows - 1) * scan.step / 2
        else:
            start_x, start_y = scan.start
        scan_row, scan_col = raster_indices(scan)
        x = start_x + scan_col * scan.step
        y = start_y + scan_row * scan.step
        return np.stack([x, y], axis=1).astype(np.float64)
    if scan.kind == "spiral":
        k = np.arange(scan.n, dtype=np.float64)
        radius = scan.step * np.sqrt(k)
        theta = k * GOLDEN_ANGLE
        return np.stack(
            [centre_x + radius * np.cos(theta), centre_y + radius * np.sin(theta)], axis=1
        )
    if scan.kind == "file":
        return _load_positions(scan.path)
    raise ValueError(f'scan.kind must be "raster", "spiral" or "file", got {scan.kind!r}')


def raster_indices(scan: ScanConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Grid indices of each position of a raster scan, in scan (row-major) order.

    Args:
        scan: the [scan] config.

    Returns:
        (scan_row, scan_col) int64 arrays of length rows * cols, or None for non-raster scans.
    """
    if scan.kind != "raster":
        return None
    n_rows, n_cols = scan.shape
    scan_row, scan_col = np.divmod(np.arange(n_rows * n_cols, dtype=np.int64), n_cols)
    return scan_row, scan_col


def _load_positions(path: str) -> np.ndarray:
    try:
        positions = np.load(path, allow_pickle=False)
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
    positions = positions.astype(np.float64)
    if not np.isfinite(positions).all():
        raise ValueError(f"scan.path: {path} holds NaN or inf; save finite positions in metres")
    return positions
