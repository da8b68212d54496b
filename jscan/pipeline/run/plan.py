"""A scan's plan: its blocks, the sample region they read, and each block's geometry on demand.

The plan holds O(blocks) numbers, never the positions themselves: `ScanPlan.block` makes a
block's positions, window origins and sub-pixel shifts from its index alone, wherever the
block runs (the client plans, the worker makes its block). Each position is a function of its
own index (`jscan.inputs.scan`), so a block's geometry does not depend on the block size.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from jscan.core.placement import (
    PlacementRangeError,
    placed_positions,
    placement,
    windows_leaving,
)
from jscan.errors import ConfigError
from jscan.inputs.config import Config, ScanConfig
from jscan.inputs.rules import check_camera_span, check_float32_products, check_slices
from jscan.inputs.samples import probe_dims, sample_shape, slice_count
from jscan.inputs.scan import CHUNK, raster_indices, scan_length, scan_positions
from jscan.pipeline.live.receipt import PageGrid
from jscan.pipeline.run.bounds import errors, pad, rows_crc, scan_bounds, with_errors
from jscan.pipeline.run.regimes import check_near
from jscan.pipeline.store.state import block_rows


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
    modes: int = 1  # the probe's incoherent modes (a probe file's from its header)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_positions // self.block_size)

    @property
    def errors(self) -> bool:
        """True when the positions carry errors ([scan] jitter or drift)."""
        return errors(self.scan)

    @property
    def raster_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of a raster scan, else None."""
        return tuple(self.scan.shape) if self.scan.kind == "raster" else None

    @property
    def page_grid(self) -> PageGrid:
        """The live page's bright-field image over this scan (the workers bin onto it)."""
        return PageGrid.of(self.n_positions, self.extent_m, self.raster_shape)

    def block_range(self, block: int) -> tuple[int, int]:
        """Global position indices [start, stop) of a block (`store.block_rows`)."""
        return block_rows(block, self.block_size, self.n_positions)

    def block(self, block: int) -> BlockGeometry:
        """The geometry of one block, made from its index; origins and shifts are padded to
        block_size by repeating the last position (the kernel's shapes stay fixed)."""
        start, stop = self.block_range(block)
        commanded = scan_positions(self.scan, self.sample_shape, self.sample_dx, start, stop)
        if self.file_crcs is not None:
            planned = int(np.frombuffer(self.file_crcs, "<u4")[block])
            if rows_crc(commanded) != planned:
                raise ValueError(
                    f"scan.path: rows {start}..{stop - 1} of {self.scan.path} differ from those "
                    "the run was planned with (the file changed, or this worker sees another "
                    "file at that path); restore the file, or start again with --overwrite"
                )
        wanted = with_errors(self.scan, commanded, start, stop)
        where = placement(wanted, self.window, self.sample_dx)
        positions = placed_positions(wanted, where, self.window, self.sample_dx, self.exact)
        return BlockGeometry(
            start,
            positions,
            pad(where.origins, self.block_size),
            pad(where.shifts, self.block_size) if self.exact else None,
            None if self.exact and not self.errors else commanded,
            raster_indices(self.scan, start, stop),
        )

    def positions(self) -> np.ndarray:
        """Every position simulated (n, 2) x, y [m]: O(positions) memory, for small scans."""
        return np.concatenate([self.block(b).positions for b in range(self.n_blocks)])


def plan_scan(config: Config) -> ScanPlan:
    """The plan of a validated config: blocks, region, extent (`bounds.scan_bounds`): O(rows +
    cols) work for a raster without errors, O(blocks) for a spiral, O(positions) for a file
    or a scan with errors, in memory of one slab of blocks (and a file scan's CRC per block).

    Reads the probe and sample shapes (and a positions file); ConfigError, naming the keys to
    change, when one cannot be read or a probe window leaves the sample.
    """
    scan, dx = config.scan, config.sample.dx
    try:
        shape = sample_shape(config.sample)
        slices = slice_count(config.sample)
        modes, *window = probe_dims(config.probe)
        window = tuple(window)
        n = scan_length(scan)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    check_slices(config.sample, slices)
    check_float32_products(config, window)
    check_camera_span(config, window)
    check_near(config, window)
    try:
        bounds = scan_bounds(scan, shape, dx, n, config.run.block_size, window)
    except PlacementRangeError as err:
        raise ConfigError(f"scan leaves the sample: {err}; {_inward(config)}") from None
    except ValueError as err:  # a positions file's values
        raise ConfigError(str(err)) from err
    corners, crcs = bounds.corners, bounds.crcs
    outer = placement(corners, window, dx)
    if windows_leaving(outer.origins, window, shape):
        raise ConfigError(f"scan leaves the sample: {_leaving(config, shape, window, n)}")
    exact = config.scan.placement == "exact"
    simulated = placed_positions(corners, outer, window, dx, exact)
    # Every block reads a region of one shape, so the worker compiles once.
    region = tuple(int(v) for v in np.minimum(bounds.span + np.asarray(window), shape))
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
        modes,
    )


def _leaving(config: Config, shape, window, n: int) -> str:
    """The windows-leave phrase of the whole scan, walked a slab at a time (the error path):
    every leaving window counted, the first 20 and the farthest on each edge named."""
    scan, dx = config.scan, config.sample.dx
    kept, where, count = [], [], 0
    for s in range(0, n, CHUNK):
        stop = min(s + CHUNK, n)
        wanted = with_errors(scan, scan_positions(scan, shape, dx, s, stop), s, stop)
        origins = placement(wanted, window, dx)
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
