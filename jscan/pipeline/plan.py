"""A scan's plan: its blocks, the sample region they read, and each block's geometry on demand.

The plan holds O(blocks) numbers, never the positions themselves: `ScanPlan.block` makes a
block's positions, window origins and sub-pixel shifts from its index alone, wherever the
block runs (the client plans, the worker makes its block). Each position is a function of its
own index (`jscan.inputs.scan`), so a block's geometry does not depend on the block size.
"""

import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from jscan.core.placement import placed_positions, placement, windows_leaving
from jscan.errors import ConfigError
from jscan.inputs.config import Config, ScanConfig
from jscan.inputs.rules import check_float32_products, check_slices
from jscan.inputs.samples import probe_shape, sample_shape, slice_count
from jscan.inputs.scan import (
    CHUNK,
    position_errors,
    raster_indices,
    raster_start,
    scan_length,
    scan_positions,
)
from jscan.pipeline.receipt import PageGrid
from jscan.pipeline.regimes import check_near


class BlockGeometry(NamedTuple):
    """Where one block's positions are: what the worker simulates and stores."""

    start: int  # global index of its first position
    positions: np.ndarray  # (n, 2) float64 x, y [m]: the positions simulated
    origins: np.ndarray  # (block_size, 2) int64 window top-left row, col [sample px], padded
    shifts: np.ndarray | None  # (block_size, 2) float64 sub-pixel shifts row, col [px]; snap: None
    nominal: np.ndarray | None  # (n, 2) x, y [m] as commanded, when they differ (snap, errors)
    raster: tuple[np.ndarray, np.ndarray] | None  # (scan_row, scan_col) int64 of a raster

    @property
    def n_valid(self) -> int:
        """Positions in the block (the rest of block_size is padding)."""
        return len(self.positions)


@dataclass(frozen=True)
class ScanPlan:
    """A validated scan split into blocks; small whatever the number of positions."""

    scan: ScanConfig
    sample_dx: float  # m
    exact: bool  # sub-pixel positions simulated (placement "exact"), else snapped
    n_positions: int
    window: tuple[int, int]  # probe shape (H, W)
    sample_shape: tuple[int, int]  # (rows, cols) sample pixels
    block_size: int
    region_shape: tuple[int, int]  # sample pixels every block reads (the largest bounding box)
    extent_m: tuple[tuple[float, float], tuple[float, float]]  # ((x0, x1), (y0, y1)) simulated
    # file scans: CRC32 of each block's rows as planned (uint32 little-endian bytes), which
    # the worker checks its rows against: a file changed since, or another file at the same
    # path on a worker, is refused instead of simulated
    file_crcs: bytes | None = None
    slices: int = 1  # the sample's slices along the beam (multislice when > 1)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_positions // self.block_size)

    @property
    def errors(self) -> bool:
        """True when the positions carry errors ([scan] jitter or drift)."""
        return _errors(self.scan)

    @property
    def raster_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of a raster scan, else None."""
        return tuple(self.scan.shape) if self.scan.kind == "raster" else None

    @property
    def page_grid(self) -> PageGrid:
        """The live page's bright-field image over this scan (the workers bin onto it)."""
        return PageGrid.of(self.n_positions, self.extent_m, self.raster_shape)

    def block_range(self, block: int) -> tuple[int, int]:
        """Global position indices [start, stop) of a block."""
        start = block * self.block_size
        return start, min(start + self.block_size, self.n_positions)

    def block(self, block: int) -> BlockGeometry:
        """The geometry of one block, made from its index; origins and shifts are padded to
        block_size by repeating the last position (the kernel's shapes stay fixed)."""
        start, stop = self.block_range(block)
        commanded = scan_positions(self.scan, self.sample_shape, self.sample_dx, start, stop)
        if self.file_crcs is not None:
            planned = int(np.frombuffer(self.file_crcs, "<u4")[block])
            if _rows_crc(commanded) != planned:
                raise ValueError(
                    f"scan.path: rows {start}..{stop - 1} of {self.scan.path} differ from those "
                    "the run was planned with (the file changed, or this worker sees another "
                    "file at that path); restore the file, or start again with --overwrite"
                )
        requested = (
            commanded + position_errors(self.scan, start, stop) if self.errors else commanded
        )
        where = placement(requested, self.window, self.sample_dx)
        positions = placed_positions(requested, where, self.window, self.sample_dx, self.exact)
        return BlockGeometry(
            start,
            positions,
            _pad(where.origins, self.block_size),
            _pad(where.shifts, self.block_size) if self.exact else None,
            None if self.exact and not self.errors else commanded,
            raster_indices(self.scan, start, stop),
        )

    def positions(self) -> np.ndarray:
        """Every position simulated (n, 2) x, y [m]: O(positions) memory, for small scans."""
        return np.concatenate([self.block(b).positions for b in range(self.n_blocks)])


WIDE_BLOCK = 256  # spiral blocks this long are bounded by their disc, not walked


def _pad(rows: np.ndarray, n: int) -> np.ndarray:
    """``rows`` with its last row repeated up to ``n`` rows."""
    return np.concatenate([rows, np.repeat(rows[-1:], n - len(rows), axis=0)])


def plan_scan(config: Config) -> ScanPlan:
    """The plan of a validated config: blocks, region, extent; O(blocks) work and memory for
    raster and spiral scans (a file scan's positions, and those of a scan with position
    errors, are made once, a slab at a time: O(positions) work, O(blocks) memory).

    Reads the probe and sample shapes (and a positions file); ConfigError, naming the keys to
    change, when one cannot be read or a probe window leaves the sample.
    """
    scan, dx = config.scan, config.sample.dx
    try:
        shape = sample_shape(config.sample)
        slices = slice_count(config.sample)
        window = probe_shape(config.probe)
        n = scan_length(scan)
        low, high, crcs = block_bounds(scan, shape, dx, n, config.run.block_size)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    check_slices(config.sample, slices)
    check_float32_products(config, window)
    check_near(config, window)
    # The window rule is monotonic in the position, so the extreme positions of a block
    # give its extreme windows.
    corners = np.stack([low.min(axis=0), high.max(axis=0)])
    outer = placement(corners, window, dx)
    if windows_leaving(outer.origins, window, shape):
        raise ConfigError(f"scan leaves the sample: {_leaving(config, shape, window, n)}")
    exact = config.scan.placement == "exact"
    simulated = placed_positions(corners, outer, window, dx, exact)
    lo, hi = placement(low, window, dx).origins, placement(high, window, dx).origins
    extent = (hi - lo).max(axis=0) + np.asarray(window)
    # Every block reads a region of one shape, so the worker compiles once.
    region = tuple(int(v) for v in np.minimum(extent, shape))
    return ScanPlan(
        scan,
        dx,
        exact,
        n,
        window,
        shape,
        config.run.block_size,
        region,
        tuple((float(simulated[0, k]), float(simulated[1, k])) for k in range(2)),
        None if crcs is None else crcs.astype("<u4").tobytes(),
        slices,
    )


def block_bounds(scan: ScanConfig, shape, dx: float, n: int, block: int):
    """(low, high, crcs): (n_blocks, 2) float64 bounds x, y [m] of each block's requested
    positions, and for file scans the CRC32 of each block's rows (`_rows_crc`), else None.

    Raster without position errors: exact, from the rows and columns a block covers; spiral
    without errors, with blocks of at least WIDE_BLOCK positions: a block's positions lie
    within step sqrt(k_last) of the centre and within the scan's own bounding box
    (golden-angle blocks that long go round the centre, so this bound is close); files,
    other spirals and scans with errors: exact, made a slab of blocks at a time (a file's
    values checked finite).
    """
    n_blocks = -(-n // block)
    starts = np.arange(n_blocks, dtype=np.int64) * block
    lasts = np.minimum(starts + block, n) - 1
    rows, cols = (int(v) for v in shape)
    if scan.kind == "raster" and not _errors(scan):
        n_cols = scan.shape[1]
        start_x, start_y = raster_start(scan, cols * dx / 2, rows * dx / 2)
        (r0, c0), (r1, c1) = np.divmod(starts, n_cols), np.divmod(lasts, n_cols)
        one_row = r0 == r1
        # The same arithmetic as scan_positions, so the bounds are positions of the scan.
        xa = start_x + np.where(one_row, c0, 0) * scan.step
        xb = start_x + np.where(one_row, c1, n_cols - 1) * scan.step
        ya, yb = start_y + r0 * scan.step, start_y + r1 * scan.step
        return (
            np.stack([np.minimum(xa, xb), np.minimum(ya, yb)], axis=1),
            np.stack([np.maximum(xa, xb), np.maximum(ya, yb)], axis=1),
            None,
        )
    if scan.kind == "spiral" and block >= WIDE_BLOCK and not _errors(scan):
        lo, hi = _spiral_box(scan, shape, dx, n)
        centre = np.array([cols * dx / 2, rows * dx / 2])
        reach = scan.step * np.sqrt(lasts.astype(np.float64))[:, None]
        return np.maximum(centre - reach, lo), np.minimum(centre + reach, hi), None
    per_slab = max(1, CHUNK // block)
    low, high = np.empty((n_blocks, 2)), np.empty((n_blocks, 2))
    crcs = np.zeros(n_blocks, np.uint32) if scan.kind == "file" else None
    for b0 in range(0, n_blocks, per_slab):
        b1 = min(b0 + per_slab, n_blocks)
        s0, s1 = b0 * block, min(b1 * block, n)
        commanded = scan_positions(scan, shape, dx, s0, s1)
        slab = commanded + position_errors(scan, s0, s1) if _errors(scan) else commanded
        padded = _pad(slab, (b1 - b0) * block).reshape(b1 - b0, block, 2)
        low[b0:b1], high[b0:b1] = padded.min(axis=1), padded.max(axis=1)
        if crcs is not None:
            for b in range(b0, b1):
                crcs[b] = _rows_crc(commanded[(b - b0) * block : (b - b0 + 1) * block])
    return low, high, crcs


def _rows_crc(rows: np.ndarray) -> int:
    """CRC32 of positions (n, 2) float64 as little-endian bytes."""
    return zlib.crc32(np.ascontiguousarray(rows, "<f8").tobytes())


def _errors(scan: ScanConfig) -> bool:
    return bool(scan.jitter or any(scan.drift))


def _requested(scan: ScanConfig, shape, dx: float, start: int, stop: int) -> np.ndarray:
    """The positions [start, stop) the probe goes to: commanded plus their errors."""
    commanded = scan_positions(scan, shape, dx, start, stop)
    return commanded + position_errors(scan, start, stop) if _errors(scan) else commanded


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


def _leaving(config: Config, shape, window, n: int) -> str:
    """The windows-leave phrase of the whole scan, walked a slab at a time (the error path):
    every leaving window counted, the first 20 and the farthest on each edge named."""
    scan, dx = config.scan, config.sample.dx
    kept, where, count = [], [], 0
    for s in range(0, n, CHUNK):
        origins = placement(_requested(scan, shape, dx, s, min(s + CHUNK, n)), window, dx)
        o = origins.origins
        # px beyond the top, bottom, left and right edges
        over = np.stack(
            [-o[:, 0], o[:, 0] + window[0] - shape[0], -o[:, 1], o[:, 1] + window[1] - shape[1]]
        )
        bad = np.flatnonzero((over > 0).any(axis=0))
        count += bad.size
        pick = np.unique(np.concatenate([bad[: max(0, 20 - sum(map(len, where)))], over.argmax(1)]))
        pick = pick[(over[:, pick] > 0).any(axis=0)]
        kept.append(o[pick])
        where.append(s + pick)
    origins, indices = np.concatenate(kept), np.concatenate(where)
    order = np.argsort(indices, kind="stable")
    phrase = windows_leaving(origins[order], window, shape, indices[order], count)
    return f"{phrase}; {_inward(config)}"


def _inward(config: Config) -> str:
    fix = {
        "raster": "reduce scan.shape or scan.step, or move scan.start",
        "spiral": "reduce scan.n or scan.step",
        "file": "move the positions in scan.path",
    }[config.scan.kind]
    grow = "enlarge sample.shape" if config.sample.kind == "phantom" else "use a larger sample"
    return f"{fix}, or {grow}"
