"""What a block task returns, and the small per-block summaries it carries (numpy only).

Both sides import this module: the worker fills a `BlockReceipt`, the client reads it for
the progress line, the run's totals and the live scan page. The page code itself (tornado, a
scheduler plugin) stays on the client and scheduler side.
"""

from dataclasses import dataclass

import numpy as np

PREVIEW_SIDE = 64  # the page's latest pattern, binned to at most this many pixels per side


@dataclass(frozen=True, eq=False)
class BlockReceipt:
    """One finished block: its counts and timings, and the page's summaries of it.

    Small by design, whatever the pattern size: ``bright_field`` is 8 bytes per position
    and ``pattern`` at most PREVIEW_SIDE^2 float32 (16 KiB). eq=False: the fields hold
    arrays, so receipts compare by identity.
    """

    block: int  # block index in the scan plan
    positions: int  # positions simulated and written (the last block may be short)
    bytes: int  # bytes of patterns written (uncompressed)
    worker: str  # the Dask worker's address, or "in-process"
    compute_s: float  # s: simulation, device-to-host copy, Poisson noise, virtual detectors
    write_s: float  # s: the Zarr write, its checksum and the done mark
    bright_field: np.ndarray  # (positions,) float64: counts inside the bright-field disk
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


def masked_sums(patterns, mask) -> np.ndarray:
    """Sums (n,) float64 of patterns (n, H, W) over the pixels where ``mask`` (H, W) is true.

    Row by row over the mask's runs of pixels, accumulating in float64 without a float64
    copy of the block (a tensordot with a float64 mask makes one: half a block's bytes
    again, and most of the time on a GPU worker).
    """
    out = np.zeros(len(patterns))
    for r in np.flatnonzero(mask.any(axis=1)):
        cols = np.flatnonzero(mask[r])
        if cols[-1] - cols[0] + 1 == cols.size:  # one run, as in a disk: a view, no copy
            out += patterns[:, r, cols[0] : cols[-1] + 1].sum(axis=1, dtype=np.float64)
        else:
            out += patterns[:, r, cols].sum(axis=1, dtype=np.float64)
    return out
