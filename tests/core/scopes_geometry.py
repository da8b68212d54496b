"""The geometry the forward-model tests share (test_scopes.py, test_scopes_exact.py): a
non-square window, its natural pixel, an off-centre aperture and positions inside a sample."""

import numpy as np

LAM, DX, Z = float(np.float32(633e-9)), float(np.float32(2e-6)), 0.1
H, W = 32, 48  # non-square probe window


def natural_pixel(zoom, width=W):
    return LAM * Z / (width * DX * zoom)


def aperture(zoom):
    """Diameter and a non-centred centre (x, y), in metres at the aperture plane."""
    dxz = DX * zoom
    return 27.3 * dxz, (3.37 * dxz, -2.21 * dxz)


def rel_max(a, b):
    b = np.asarray(b, np.float64)
    return np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b))


def inside_positions(rng, n, sample_shape, window=(H, W)):
    """Positions (n, 2) x, y whose windows lie inside, away from pixel edges; two touch corners."""
    rows, cols = sample_shape
    h, w = window
    r = rng.integers(0, rows - h + 1, n)
    c = rng.integers(0, cols - w + 1, n)
    r[0], c[0], r[-1], c[-1] = 0, 0, rows - h, cols - w
    frac = rng.uniform(0.1, 0.9, (n, 2))
    return np.stack([(c + w / 2 + frac[:, 0]) * DX, (r + h / 2 + frac[:, 1]) * DX], axis=1)
