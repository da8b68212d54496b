"""The one window rule: probe positions in metres -> sample-pixel windows and sub-pixel shifts.

Array-API generic (numpy for the pipeline's float64 planning, jax.numpy for traced positions).
"""

from typing import Any, NamedTuple

import numpy as np

PLACEMENT_TOL = 1e-3
"""Pixels: a position within this distance of a pixel counts as on it (absorbs float rounding)."""
MAX_PIXEL = 2**62  # window origins are int64: a position this many pixels out is no scan's


class PlacementRangeError(ValueError):
    """Positions too far from the sample's origin for the window rule's integers."""


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

    Raises PlacementRangeError (a ValueError) for numpy positions whose origins would not be
    int64 (beyond 2^62 pixels, or NaN).

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
    snapped = xp.where(xp.abs(frac) <= PLACEMENT_TOL, xp.zeros_like(frac), frac)
    if xp is np:
        if not np.all(np.abs(start) < MAX_PIXEL):  # NaN too
            if np.isnan(positions).any():
                raise PlacementRangeError("positions reach NaN")
            raise PlacementRangeError(
                f"positions reach {np.abs(positions).max():.3g} m, beyond {MAX_PIXEL:.3g} "
                f"sample pixels of {dx:g} m"
            )
        return Placement(start.astype(np.int64), snapped)
    from jax.lax import stop_gradient

    # Traced: the value snaps, the gradient stays d(frac)/d(position) = 1/dx, so position
    # refinement that starts on the grid still moves.
    return Placement(start.astype(np.int32), frac + stop_gradient(snapped - frac))


def window_origins(positions, window_shape: tuple[int, int], dx, xp=np):
    """Top-left sample pixel (n, 2) row, col of the probe window: `placement(...)`.origins."""
    return placement(positions, window_shape, dx, xp).origins


def placed_positions(
    positions, where: Placement, window_shape: tuple[int, int], dx, exact: bool, xp=np
):
    """The positions (n, 2) x, y (m) that are simulated for a `placement`.

    exact: the stated positions, except that those within tol of a pixel are put on it
    ((origin + H//2) * dx); snap: (origin + H//2) * dx for every position. xp: numpy
    (float64), or jax.numpy for traced positions, whose gradient then stays 1 (the value
    snaps, the derivative does not).
    """
    height, width = (int(v) for v in window_shape)
    positions = np.asarray(positions, dtype=np.float64) if xp is np else xp.asarray(positions)
    on_pixel = ((where.origins + xp.asarray([height // 2, width // 2])) * dx)[:, ::-1]
    on_pixel = on_pixel.astype(positions.dtype)  # x, y
    if not exact:
        return np.ascontiguousarray(on_pixel) if xp is np else on_pixel
    snapped = xp.where((where.shifts == 0)[:, ::-1], on_pixel, positions)
    if xp is np:
        return snapped
    from jax.lax import stop_gradient

    return positions + stop_gradient(snapped - positions)


def windows_leaving(
    origins, window_shape: tuple[int, int], sample_shape, indices=None, count=None
) -> str | None:
    """What leaves the sample: None when every window lies inside, else one phrase.

    The phrase gives the count, the sample size, the farthest reach past each edge and the
    first position indices; callers add the fix that fits their input. indices: the global
    position index of each row of ``origins`` (default 0, 1, ...); count: how many windows
    of the whole scan leave, when ``origins`` holds only some of them (default: counted here).
    """
    origins = np.asarray(origins)
    indices = np.arange(len(origins)) if indices is None else np.asarray(indices)
    (h, w), (rows, cols) = window_shape, sample_shape
    beyond = {
        "top": -origins[:, 0],
        "bottom": origins[:, 0] + h - rows,
        "left": -origins[:, 1],
        "right": origins[:, 1] + w - cols,
    }
    bad = np.flatnonzero(np.any([px > 0 for px in beyond.values()], axis=0))
    if not bad.size:
        return None
    edges = ", ".join(
        f"{int(px.max())} px beyond the {edge} edge" for edge, px in beyond.items() if px.max() > 0
    )
    count = bad.size if count is None else count
    shown = ", ".join(str(i) for i in indices[bad[:20]]) + (" ..." if count > 20 else "")
    return (
        f"{count} probe windows ({h}x{w} px) leave the {rows}x{cols} px sample, reaching "
        f"{edges}: position indices [{shown}]"
    )
