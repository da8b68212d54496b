"""What a block task returns, and the small per-block summaries it carries (numpy only).

Both sides import this module: the worker fills a `BlockReceipt`, the client reads it for
the progress line, the run's totals and the live scan page. The page code itself (tornado, a
scheduler plugin) stays on the client and scheduler side.
"""

from dataclasses import dataclass

import numpy as np

PREVIEW_SIDE = 64  # the page's latest pattern, binned to at most this many pixels per side
MAX_GRID = 256  # the page's bright-field image: cells per side at most


@dataclass(frozen=True, eq=False)
class BlockReceipt:
    """One finished block: its counts and timings, and the page's summaries of it.

    Small by design, whatever the pattern size and the scan length: the bright field comes
    binned onto the page's `PageGrid` (one entry per cell the block touches, at most
    min(positions, MAX_GRID^2)) and ``pattern`` is at most PREVIEW_SIDE^2 float32 (16 KiB).
    eq=False: the fields hold arrays, so receipts compare by identity.
    """

    block: int  # block index in the scan plan
    positions: int  # positions simulated and written (the last block may be short)
    bytes: int  # bytes of patterns written (uncompressed)
    worker: str  # the Dask worker's address, or "in-process"
    compute_s: float  # s: simulation, device-to-host copy, Poisson noise, virtual detectors
    write_s: float  # s: the Zarr write, its checksum and the done mark
    bf_cells: np.ndarray  # (k,) int64: the page-grid cells (flat) the block's positions fall in
    bf_sums: np.ndarray  # (k,) float64: sums of the bright field (counts inside the disc) per cell
    bf_counts: np.ndarray  # (k,) int64: positions per cell
    pattern: np.ndarray  # (h, w) float32, h, w <= PREVIEW_SIDE: the last pattern, binned

    @property
    def seconds(self) -> float:
        """Busy time of the block on its worker [s]."""
        return self.compute_s + self.write_s


def preview_pattern(image, side: int = PREVIEW_SIDE) -> np.ndarray:
    """A pattern (H, W) binned by sums to at most side x side pixels, float32.

    Bins of ceil(H / side) x ceil(W / side) pixels; the edges are padded with zeros to whole
    bins, so every pixel counts and the sum is kept.
    """
    h, w = image.shape
    fy, fx = -(-h // side), -(-w // side)
    padded = np.zeros((-(-h // fy) * fy, -(-w // fx) * fx), np.float64)
    padded[:h, :w] = image
    binned = padded.reshape(padded.shape[0] // fy, fy, padded.shape[1] // fx, fx).sum((1, 3))
    return binned.astype(np.float32)


@dataclass(frozen=True)
class PageGrid:
    """The live page's bright-field image: at most MAX_GRID x MAX_GRID cells over the scan.

    A raster's cell is its grid index scaled down; other scans' positions are binned over
    their bounding box ``lo`` .. ``lo + span`` [m] on a grid of about sqrt(n) cells per side.
    """

    shape: tuple[int, int]  # (gh, gw) cells
    raster: tuple[int, int] | None  # (rows, cols) of a raster scan
    lo: tuple[float, float] = (0.0, 0.0)  # x, y [m] of the box's corner
    span: tuple[float, float] = (1.0, 1.0)  # x, y [m] extent of the box (> 0)

    @classmethod
    def of(cls, n_positions: int, extent_m, raster_shape=None) -> "PageGrid":
        """The grid of a scan: n_positions, extent_m ((x0, x1), (y0, y1)) of its positions,
        raster_shape (rows, cols) or None."""
        if raster_shape is not None:
            rows, cols = raster_shape
            return cls((min(rows, MAX_GRID), min(cols, MAX_GRID)), (int(rows), int(cols)))
        (x0, x1), (y0, y1) = extent_m
        span = np.maximum([x1 - x0, y1 - y0], 1e-300)
        side = int(min(MAX_GRID, max(8, np.sqrt(n_positions))))
        gw = max(1, round(side * span[0] / span.max()))
        gh = max(1, round(side * span[1] / span.max()))
        return cls((int(gh), int(gw)), None, (float(x0), float(y0)), tuple(map(float, span)))

    def cells(self, positions, raster=None) -> np.ndarray:
        """Flat cell (n,) int64 of positions (n, 2) x, y [m], or of raster (scan_row, scan_col)."""
        gh, gw = self.shape
        if self.raster is not None:
            rows, cols = self.raster
            r, c = raster[0] * gh // rows, raster[1] * gw // cols
        else:
            rel = (np.asarray(positions) - self.lo) / self.span
            c = np.clip((rel[:, 0] * gw).astype(np.int64), 0, gw - 1)
            r = np.clip((rel[:, 1] * gh).astype(np.int64), 0, gh - 1)
        return (r * gw + c).astype(np.int64)


def binned(cells, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cells touched, sum of values per cell, count per cell) of values (n,) in cells (n,)."""
    touched, where = np.unique(cells, return_inverse=True)
    sums = np.bincount(where, weights=np.asarray(values, np.float64), minlength=len(touched))
    return touched, sums, np.bincount(where, minlength=len(touched)).astype(np.int64)
