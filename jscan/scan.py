"""Scan positions in metres and the one rule that places them on sample-pixel windows."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from jscan.config import ScanConfig

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


PLACEMENT_TOL = 1e-3
"""Pixels: a position within this distance of a pixel counts as on it (absorbs float rounding)."""


class Placement(NamedTuple):
    """Where the probe windows of a scan go on the sample-pixel grid."""

    origins: Any  # (n, 2) int, window top-left row, col (int64 numpy, int32 jax.numpy)
    shifts: Any  # (n, 2) float, sub-pixel remainder row, col in pixels, in [-tol, 1 - tol)


def placement(positions, window_shape: tuple[int, int], dx, xp=np) -> Placement:
    """Window origins and sub-pixel remainders of probe positions: the one window rule.

    The probe's axis pixel (H//2, W//2) belongs at the stated position, so with
    u = y / dx - H//2 and v = x / dx - W//2 the window starts at
    row = floor(u + tol), col = floor(v + tol), and the remainders are u - row, v - col.
    A remainder within tol = `PLACEMENT_TOL` px of 0 is set to 0: float rounding
    (34e-6 + 19 * 2e-6 = 7.1999...e-05) or float32 positions then never move a window.

    Args:
        positions: float array (n, 2) with columns x, y (m).
        window_shape: (H, W) of the probe window in pixels.
        dx: sample pixel size (m).
        xp: numpy (float64 arithmetic), or jax.numpy for traced positions inside jit.

    Returns:
        Placement(origins (n, 2) row, col: int64 with numpy, int32 with jax.numpy;
        shifts (n, 2) row, col in pixels, float64 with numpy, the positions' dtype with jax).
    """
    positions = np.asarray(positions, dtype=np.float64) if xp is np else xp.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(
            f"positions must have shape (n, 2) with columns x, y; got shape {positions.shape}"
        )
    height, width = (int(v) for v in window_shape)
    u = xp.stack([positions[:, 1] / dx - height // 2, positions[:, 0] / dx - width // 2], axis=1)
    start = xp.floor(u + PLACEMENT_TOL)
    frac = u - start
    frac = xp.where(xp.abs(frac) <= PLACEMENT_TOL, xp.zeros_like(frac), frac)
    return Placement(start.astype(np.int64 if xp is np else np.int32), frac)


def window_origins(positions, window_shape: tuple[int, int], dx, xp=np):
    """Top-left sample pixel (n, 2) row, col of the probe window: `placement(...)`.origins."""
    return placement(positions, window_shape, dx, xp).origins


def placed_positions(
    positions, where: Placement, window_shape: tuple[int, int], dx, exact: bool
) -> np.ndarray:
    """The positions (n, 2) x, y (m) that are simulated for a `placement`.

    exact: the stated positions, except that those within tol of a pixel are put on it
    ((origin + H//2) * dx); snap: (origin + H//2) * dx for every position.
    """
    height, width = (int(v) for v in window_shape)
    origins = np.asarray(where.origins, dtype=np.float64)
    on_pixel = (origins + np.array([height // 2, width // 2])) * dx  # row, col order
    on_pixel = on_pixel[:, ::-1]  # x, y
    if not exact:
        return np.ascontiguousarray(on_pixel)
    snapped = (np.asarray(where.shifts) == 0)[:, ::-1]
    return np.where(snapped, on_pixel, np.asarray(positions, dtype=np.float64))


def windows_outside(origins, window_shape: tuple[int, int], sample_shape) -> dict:
    """Pixels by which the windows reach past each sample edge (> 0 where they leave it).

    Returns {"top", "bottom", "left", "right": (n,) int arrays}.
    """
    origins = np.asarray(origins)
    (h, w), (rows, cols) = window_shape, sample_shape
    return {
        "top": -origins[:, 0],
        "bottom": origins[:, 0] + h - rows,
        "left": -origins[:, 1],
        "right": origins[:, 1] + w - cols,
    }


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
