"""What the blocks of a scan read: the corners of its requested positions and the largest
window span of one block, in memory that does not grow with the number of blocks.

A raster without position errors is bounded in closed form over its rows and columns
(O(rows + cols) work, so 10^12 positions plan at once); spirals, files and scans with
errors a slab of blocks at a time (O(positions) work for those made one by one).
"""

import math
import zlib
from typing import NamedTuple

import numpy as np

from jscan.core.placement import placement
from jscan.inputs.config import ScanConfig
from jscan.inputs.scan import CHUNK, position_errors, raster_start, scan_positions

WIDE_BLOCK = 256  # spiral blocks this long are bounded by their disc, not walked
SLAB_BLOCKS = 1 << 16  # blocks bounded at a time where each block's bounds are made


class ScanBounds(NamedTuple):
    corners: np.ndarray  # (2, 2) float64 [[x0, y0], [x1, y1]] [m]: every requested position
    span: np.ndarray  # (2,) int64 rows, cols: the largest window-origin span of one block
    crcs: np.ndarray | None  # (n_blocks,) uint32 CRC32 of each block's file rows, else None


def scan_bounds(scan: ScanConfig, shape, dx: float, n: int, block: int, window) -> ScanBounds:
    """The bounds of the n positions of ``scan`` in blocks of ``block`` over a sample of
    ``shape`` pixels of ``dx``, for a probe ``window`` (H, W): what the blocks' own
    positions give (the window rule is monotonic in the position, so a block's extreme
    positions give its extreme windows), exactly but for wide spiral blocks (a bound).

    Raster without errors: from the rows and columns each block covers; spiral without
    errors, with blocks of at least WIDE_BLOCK positions: a block's positions lie within
    step sqrt(k_last) of the centre and within the scan's own bounding box (golden-angle
    blocks that long go round the centre, so this bound is close); files, other spirals
    and scans with errors: made a slab of blocks at a time (a file's values checked finite).
    """
    if scan.kind == "raster" and not errors(scan):
        return _raster_bounds(scan, shape, dx, block, window)
    crcs = np.zeros(-(-n // block), np.uint32) if scan.kind == "file" else None
    corners = np.array([[np.inf, np.inf], [-np.inf, -np.inf]])
    span = np.zeros(2, np.int64)
    for low, high in _slabs(scan, shape, dx, n, block, crcs):
        corners = np.stack(
            [np.minimum(corners[0], low.min(0)), np.maximum(corners[1], high.max(0))]
        )
        spans = placement(high, window, dx).origins - placement(low, window, dx).origins
        span = np.maximum(span, spans.max(axis=0))
    return ScanBounds(corners, span, crcs)


def errors(scan: ScanConfig) -> bool:
    """Whether the scan has position errors (jitter or drift)."""
    return bool(scan.jitter or any(scan.drift))


def with_errors(scan: ScanConfig, commanded: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Where the probe goes for the ``commanded`` positions [start, stop): plus their errors."""
    return commanded + position_errors(scan, start, stop) if errors(scan) else commanded


def rows_crc(rows: np.ndarray) -> int:
    """CRC32 of positions (n, 2) float64 as little-endian bytes."""
    return zlib.crc32(np.ascontiguousarray(rows, "<f8").tobytes())


def _raster_bounds(scan: ScanConfig, shape, dx: float, block: int, window) -> ScanBounds:
    """A raster's bounds from its R rows and C columns: the same arithmetic as
    `scan_positions` (start + index * step), so the corners are positions of the scan."""
    n_rows, n_cols = scan.shape
    n = n_rows * n_cols
    start_x, start_y = raster_start(scan, shape[1] * dx / 2, shape[0] * dx / 2)
    x = start_x + np.arange(n_cols, dtype=np.int64) * scan.step
    y = start_y + np.arange(n_rows, dtype=np.int64) * scan.step
    col = placement(np.stack([x, np.full(n_cols, y[0])], 1), window, dx).origins[:, 1]
    row = placement(np.stack([np.full(n_rows, x[0]), y], 1), window, dx).origins[:, 0]
    full_cols = abs(col[-1] - col[0])
    if block >= n_cols:  # every block spans a whole row, or more
        cols = full_cols
        starts = np.arange(-(-n // block), dtype=np.int64) * block  # at most R blocks
        r0, r1 = starts // n_cols, (np.minimum(starts + block, n) - 1) // n_cols
        rows = np.abs(row[r1] - row[r0]).max()
    else:
        # A full block's columns depend on its first column alone, which repeats with the
        # period C / gcd(B, C); a block that crosses a row spans every column.
        n_full = n // block
        b = np.arange(min(n_full, n_cols // math.gcd(block, n_cols)), dtype=np.int64)
        firsts = np.append(b * block, n_full * block) % n_cols
        lengths = np.append(np.full(b.size, block), n - n_full * block)
        firsts, lengths = firsts[lengths > 0], lengths[lengths > 0]
        lasts = firsts + lengths - 1
        inside = lasts < n_cols
        within = np.abs(col[np.minimum(lasts, n_cols - 1)] - col[firsts])
        cols = np.where(inside, within, full_cols).max()
        # Blocks shorter than a row cross at most one row boundary: the one before row k
        # is crossed unless a block starts at k * C.
        k = np.arange(1, n_rows, dtype=np.int64)
        crossed = k[(k * n_cols) % block != 0]
        rows = np.abs(row[crossed] - row[crossed - 1]).max(initial=0)
    corners = np.array([[min(x[0], x[-1]), min(y[0], y[-1])], [max(x[0], x[-1]), max(y[0], y[-1])]])
    return ScanBounds(corners, np.array([rows, cols], np.int64), None)


def _slabs(scan: ScanConfig, shape, dx: float, n: int, block: int, crcs):
    """(low, high) (m, 2) float64 bounds x, y [m] of the requested positions of each block,
    a slab of blocks at a time; fills ``crcs`` for a file scan."""
    n_blocks = -(-n // block)
    if scan.kind == "spiral" and block >= WIDE_BLOCK and not errors(scan):
        lo, hi = _spiral_box(scan, shape, dx, n)
        centre = np.array([shape[1] * dx / 2, shape[0] * dx / 2])
        for b0 in range(0, n_blocks, SLAB_BLOCKS):
            b = np.arange(b0, min(b0 + SLAB_BLOCKS, n_blocks), dtype=np.int64)
            lasts = np.minimum((b + 1) * block, n) - 1
            reach = scan.step * np.sqrt(lasts.astype(np.float64))[:, None]
            yield np.maximum(centre - reach, lo), np.minimum(centre + reach, hi)
        return
    per_slab = max(1, CHUNK // block)
    for b0 in range(0, n_blocks, per_slab):
        b1 = min(b0 + per_slab, n_blocks)
        s0, s1 = b0 * block, min(b1 * block, n)
        commanded = scan_positions(scan, shape, dx, s0, s1)
        slab = with_errors(scan, commanded, s0, s1)
        padded = pad(slab, (b1 - b0) * block).reshape(b1 - b0, block, 2)
        if crcs is not None:
            for b in range(b0, b1):
                crcs[b] = rows_crc(commanded[(b - b0) * block : (b - b0 + 1) * block])
        yield padded.min(axis=1), padded.max(axis=1)


def pad(rows: np.ndarray, n: int) -> np.ndarray:
    """``rows`` with its last row repeated up to ``n`` rows."""
    return np.concatenate([rows, np.repeat(rows[-1:], n - len(rows), axis=0)])


def _spiral_box(scan: ScanConfig, shape, dx: float, n: int):
    """The bounding box (low, high) [m] of a spiral's positions, walked from its outer end
    until no inner position (radius <= step sqrt(k)) can reach past it."""
    rows, cols = (int(v) for v in shape)
    centre = np.array([cols * dx / 2, rows * dx / 2])
    low, high = np.full(2, np.inf), np.full(2, -np.inf)
    stop = n
    while stop > 0:
        start = max(0, stop - (1 << 16))
        p = scan_positions(scan, shape, dx, start, stop)
        low, high = np.minimum(low, p.min(axis=0)), np.maximum(high, p.max(axis=0))
        reach = scan.step * np.sqrt(max(start - 1, 0))
        if np.all(centre - reach >= low) and np.all(centre + reach <= high):
            break
        stop = start
    return low, high
