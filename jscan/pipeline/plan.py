"""Client side of a scan: positions, window origins and fixed-size blocks."""

from dataclasses import dataclass

import numpy as np

from jscan.core.placement import placed_positions, placement, windows_leaving
from jscan.errors import ConfigError
from jscan.inputs.config import Config, check_float32_products
from jscan.inputs.samples import probe_shape, sample_shape
from jscan.inputs.scan import raster_indices, scan_positions


@dataclass(frozen=True)
class ScanPlan:
    positions: np.ndarray  # (n, 2) float64, x, y in m: the positions simulated
    origins: np.ndarray  # (n, 2) int64, window top-left row, col in sample pixels
    raster: tuple | None  # (scan_row, scan_col) int arrays for raster scans
    window: tuple[int, int]  # probe shape (H, W)
    sample_shape: tuple[int, int]  # (rows, cols) sample pixels
    block_size: int
    region_shape: tuple[int, int]  # sample pixels every block reads (the largest bounding box)
    shifts: np.ndarray | None = None  # (n, 2) float64 sub-pixel shifts row, col [px]; snap: None
    nominal: np.ndarray | None = None  # (n, 2) x, y [m] as requested, when they differ (snap)

    @property
    def n_positions(self) -> int:
        return len(self.positions)

    @property
    def extent_m(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((x_min, x_max), (y_min, y_max)) [m] of the positions simulated."""
        lo, hi = self.positions.min(axis=0), self.positions.max(axis=0)
        return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))

    @property
    def n_blocks(self) -> int:
        return -(-self.n_positions // self.block_size)

    def block_range(self, block: int) -> tuple[int, int]:
        """Global position indices [start, stop) of a block."""
        start = block * self.block_size
        return start, min(start + self.block_size, self.n_positions)

    def block_origins(self, block: int) -> np.ndarray:
        """Origins (block_size, 2) of a block; the last block repeats its last origin."""
        return _pad(self.origins[slice(*self.block_range(block))], self.block_size)

    def block_shifts(self, block: int) -> np.ndarray | None:
        """Sub-pixel shifts (block_size, 2) of a block, padded like `block_origins`; snap: None."""
        if self.shifts is None:
            return None
        return _pad(self.shifts[slice(*self.block_range(block))], self.block_size)


def _pad(rows: np.ndarray, n: int) -> np.ndarray:
    """``rows`` with its last row repeated up to ``n`` rows."""
    return np.concatenate([rows, np.repeat(rows[-1:], n - len(rows), axis=0)])


def plan_scan(config: Config) -> ScanPlan:
    """Positions simulated, origins, shifts and the per-block region of a validated config.

    Reads the probe and sample shapes (and a positions file); ConfigError, naming the keys to
    change, when one cannot be read or a probe window leaves the sample.
    """
    try:
        shape = sample_shape(config.sample)
        requested = scan_positions(config.scan, shape, config.sample.dx)
        window = probe_shape(config.probe)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    check_float32_products(config, window)
    where = placement(requested, window, config.sample.dx)
    leaving = windows_leaving(where.origins, window, shape)
    if leaving:
        raise ConfigError(f"scan leaves the sample: {leaving}; {_inward(config)}")
    exact = config.scan.placement == "exact"
    positions = placed_positions(requested, where, window, config.sample.dx, exact)
    origins = where.origins
    block = config.run.block_size
    n_blocks = -(-len(origins) // block)  # ScanPlan.n_blocks, before the plan exists
    padded = _pad(origins, n_blocks * block).reshape(n_blocks, block, 2)
    extent = padded.max(axis=1) - padded.min(axis=1) + np.asarray(window)
    # Every block reads a region of one shape, so the worker compiles once.
    region = tuple(int(v) for v in np.minimum(extent.max(axis=0), shape))
    return ScanPlan(
        positions,
        origins,
        raster_indices(config.scan),
        window,
        shape,
        block,
        region,
        shifts=where.shifts if exact else None,
        nominal=None if exact else requested,
    )


def _inward(config: Config) -> str:
    fix = {
        "raster": "reduce scan.shape or scan.step, or move scan.start",
        "spiral": "reduce scan.n or scan.step",
        "file": "move the positions in scan.path",
    }[config.scan.kind]
    grow = "enlarge sample.shape" if config.sample.kind == "phantom" else "use a larger sample"
    return f"{fix}, or {grow}"
