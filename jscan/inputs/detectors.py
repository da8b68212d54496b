"""Per-position virtual detectors that the worker stores with each block (numpy only).

Four float64 arrays over ``position``, one chunk per block like the diffraction shards, so
that a preview or a summary of a 10^7-position scan reads a few bytes per position instead
of every pattern:

- ``bright_field``: sum of the pattern inside the disc r <= ``bright_field_radius_m``;
- ``total``: sum of the whole pattern (photons, or intensity when dose is 0);
- ``com_x``, ``com_y``: intensity-weighted centre of the pattern on the camera [m],
  sum(I x) / sum(I) (NaN for a pattern that is zero everywhere).

float64 because a sum of uint32 counts passes float32's 2^24 exact integers at about 17
million photons per pattern, and the centre is a ratio of such sums; 8 bytes per position
are still 1/128 of a 32x32 float32 pattern. Positions of blocks not written read NaN (the
arrays' fill value).
"""

import numpy as np

DETECTORS = ("bright_field", "total", "com_x", "com_y")
SLAB_BYTES = 8 << 20  # float64 patterns converted at a time


def detector_attrs(units: str) -> dict[str, dict]:
    """The attributes (units, long_name) of each detector array; units: the patterns'."""
    return {
        "bright_field": {
            "units": units,
            "long_name": "sum of the pattern inside r <= bright_field_radius_m",
        },
        "total": {"units": units, "long_name": "sum of the whole pattern"},
        "com_x": {"units": "m", "long_name": "centre of mass of the pattern, x on the camera"},
        "com_y": {"units": "m", "long_name": "centre of mass of the pattern, y on the camera"},
    }


def block_detectors(patterns, det_y, det_x, bright_field) -> dict[str, np.ndarray]:
    """The virtual detectors (n,) float64 of patterns (n, H, W), by name (`DETECTORS`).

    det_y (H,), det_x (W,): camera pixel centres [m]; bright_field (n,): the sums inside the
    bright-field disc, already computed (`masked_sums`). The centre
    of mass comes from the row and column profiles: com_y = sum_r rows_r y_r / sum(I), com_x
    alike. The profiles are summed in float64 over slabs of about SLAB_BYTES (a float64 copy
    of the whole block would be twice its size again), by matrix-vector products.
    """
    n, h, w = patterns.shape
    rows, cols = np.empty((n, h)), np.empty((n, w))
    ones_h, ones_w = np.ones(h), np.ones(w)
    k = max(1, SLAB_BYTES // (h * w * 8))
    for s in range(0, n, k):
        slab = patterns[s : s + k].astype(np.float64)
        rows[s : s + k] = slab @ ones_w
        cols[s : s + k] = ones_h @ slab
    total = rows.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty pattern has no centre
        com_y = rows @ np.asarray(det_y, np.float64) / total
        com_x = cols @ np.asarray(det_x, np.float64) / total
    return {
        "bright_field": np.asarray(bright_field, np.float64),
        "total": total,
        "com_x": com_x,
        "com_y": com_y,
    }


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
