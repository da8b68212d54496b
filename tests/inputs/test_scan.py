"""Scan positions, raster indices and the window-origin rule."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jscan.core.placement import PLACEMENT_TOL, placed_positions, placement, window_origins
from jscan.inputs.config import ScanConfig
from jscan.inputs.scan import GOLDEN_ANGLE, raster_indices, scan_positions


def test_raster_is_row_major_and_centred():
    rng = np.random.default_rng(1)
    for _ in range(5):
        n_rows, n_cols = (int(v) for v in rng.integers(1, 30, 2))
        step = float(rng.uniform(1e-7, 1e-5))
        dx = float(rng.uniform(1e-8, 1e-6))
        sample = (int(rng.integers(10, 5000)), int(rng.integers(10, 5000)))
        scan = ScanConfig(kind="raster", shape=(n_rows, n_cols), step=step)
        pos = scan_positions(scan, sample, dx)
        assert pos.shape == (n_rows * n_cols, 2) and pos.dtype == np.float64
        # The grid's centre (not its first point) is the sample centre.
        np.testing.assert_allclose(pos.mean(axis=0), [sample[1] * dx / 2, sample[0] * dx / 2])
        grid = pos.reshape(n_rows, n_cols, 2)
        np.testing.assert_allclose(np.diff(grid[..., 0], axis=1), step, rtol=1e-9)
        np.testing.assert_allclose(np.diff(grid[..., 1], axis=0), step, rtol=1e-9)
        assert np.ptp(grid[..., 1], axis=1).max() == 0  # y constant along a scan row
        scan_row, scan_col = raster_indices(scan)
        k = int(rng.integers(n_rows * n_cols))
        assert (scan_row[k], scan_col[k]) == divmod(k, n_cols)


def test_raster_explicit_start():
    scan = ScanConfig(kind="raster", shape=(2, 3), step=2e-6, start=(5e-6, 7e-6))
    pos = scan_positions(scan, (100, 100), 1e-6)
    expected = [[5, 7], [7, 7], [9, 7], [5, 9], [7, 9], [9, 9]]
    np.testing.assert_allclose(pos, np.array(expected) * 1e-6)


def test_spiral_radii_and_angles():
    rng = np.random.default_rng(2)
    n, step, dx = int(rng.integers(50, 500)), float(rng.uniform(1e-7, 1e-6)), 1e-7
    sample = (int(rng.integers(100, 900)), int(rng.integers(100, 900)))
    scan = ScanConfig(kind="spiral", step=step, n=n)
    pos = scan_positions(scan, sample, dx)
    assert pos.shape == (n, 2)
    rel = pos - [sample[1] * dx / 2, sample[0] * dx / 2]
    k = np.arange(n)
    np.testing.assert_allclose(np.hypot(rel[:, 0], rel[:, 1]), step * np.sqrt(k), atol=1e-15)
    turn = np.diff(np.arctan2(rel[1:, 1], rel[1:, 0])) % (2 * np.pi)
    np.testing.assert_allclose(turn, GOLDEN_ANGLE, atol=1e-9)
    assert raster_indices(scan) is None


def test_window_origins_hand_computed():
    dx = 1e-6
    positions = np.array([[10.5e-6, 20.2e-6], [0.0, 0.0], [1.5e-6, 2.99e-6], [0.9995e-6, 0]])
    where = placement(positions, (4, 5), dx)
    # rows = floor(y/dx - 2 + tol), cols = floor(x/dx - 2 + tol): axis pixel W//2 = 2
    np.testing.assert_array_equal(where.origins, [[18, 8], [-2, -2], [0, -1], [-2, -1]])
    np.testing.assert_allclose(where.shifts, [[0.2, 0.5], [0, 0], [0.99, 0.5], [0, 0]], atol=1e-9)
    assert where.origins.dtype == np.int64
    np.testing.assert_array_equal(window_origins(positions, (4, 5), dx), where.origins)


def test_window_origins_random_against_loop():
    rng = np.random.default_rng(3)
    dx = float(rng.uniform(1e-8, 1e-6))
    positions = rng.uniform(-50 * dx, 500 * dx, (40, 2))
    height, width = (int(v) for v in rng.integers(1, 64, 2))
    where = placement(positions, (height, width), dx)
    for (x, y), (row, col), (fy, fx) in zip(positions, *where, strict=True):
        assert row == math.floor(y / dx - height // 2 + PLACEMENT_TOL)
        assert col == math.floor(x / dx - width // 2 + PLACEMENT_TOL)
        for f, u in ((fy, y / dx - height // 2 - row), (fx, x / dx - width // 2 - col)):
            assert f == (0.0 if abs(u) <= PLACEMENT_TOL else u)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dx", [1e-6, 1.3e-6])
@pytest.mark.parametrize("height", [15, 16])
def test_whole_pixel_positions_land_on_their_pixel(dtype, dx, height):
    """Pixel n stated as n * dx in float32 or float64: remainder 0, origin n - H//2."""
    n = np.arange(0, 400, 3)
    positions = np.stack([n * dx, n[::-1] * dx], axis=1).astype(dtype)
    for xp in (np, jnp):
        where = placement(positions, (height, height + 1), dx, xp=xp)
        origins, shifts = (np.asarray(v) for v in where)
        np.testing.assert_array_equal(origins[:, 0], n[::-1] - height // 2)
        np.testing.assert_array_equal(origins[:, 1], n - (height + 1) // 2)
        np.testing.assert_array_equal(shifts, 0)


def test_raster_from_34um_puts_every_window_where_stated():
    """60x60 raster, 2 um steps from 34 um at dx = 1 um: 34e-6 + 19 * 2e-6 = 7.1999...e-05."""
    scan = ScanConfig(kind="raster", shape=(60, 60), step=2e-6, start=(34e-6, 34e-6))
    positions = scan_positions(scan, (400, 400), 1e-6)
    assert (positions[:, 1] / 1e-6 % 1 > 0.5).any()  # the float rounding is there
    for height in (15, 16):
        where = placement(positions, (height, height), 1e-6)
        row, col = raster_indices(scan)
        np.testing.assert_array_equal(where.origins[:, 0], 34 + 2 * row - height // 2)
        np.testing.assert_array_equal(where.origins[:, 1], 34 + 2 * col - height // 2)
        np.testing.assert_array_equal(where.shifts, 0)
        placed = placed_positions(positions, where, (height, height), 1e-6, exact=False)
        np.testing.assert_allclose(placed, positions, rtol=1e-12)


def test_snap_equals_the_old_floor_rule_for_even_windows(rng):
    """Even H: floor(y/dx - H/2) wherever the position is not within tol of a boundary."""
    dx, height, width = 1e-6, 16, 24
    positions = rng.uniform(20 * dx, 300 * dx, (500, 2))
    frac = positions / dx % 1
    keep = ((frac > 2 * PLACEMENT_TOL) & (frac < 1 - 2 * PLACEMENT_TOL)).all(axis=1)
    positions = positions[keep]
    old = np.stack(
        [np.floor(positions[:, 1] / dx - height / 2), np.floor(positions[:, 0] / dx - width / 2)],
        axis=1,
    )
    np.testing.assert_array_equal(window_origins(positions, (height, width), dx), old)


def test_placed_positions_exact_and_snap():
    dx = 1e-6
    positions = np.array([[10.5e-6, 20.2e-6], [7.1999999999999e-05, 3e-6]])
    where = placement(positions, (4, 5), dx)
    snap = placed_positions(positions, where, (4, 5), dx, exact=False)
    np.testing.assert_allclose(snap, [[10e-6, 20e-6], [72e-6, 3e-6]], rtol=1e-12)
    exact = placed_positions(positions, where, (4, 5), dx, exact=True)
    np.testing.assert_array_equal(exact[0], positions[0])  # between pixels: as stated
    np.testing.assert_allclose(exact[1], [72e-6, 3e-6], rtol=1e-15)  # on the pixel


def test_window_origins_rejects_bad_shape():
    with pytest.raises(ValueError, match="positions"):
        window_origins(np.zeros((3, 3)), (4, 4), 1e-6)


def test_file_positions(tmp_path):
    rng = np.random.default_rng(4)
    positions = rng.uniform(0, 1e-4, (17, 2))
    path = tmp_path / "pos.npy"
    np.save(path, positions)
    scan = ScanConfig(kind="file", path=str(path))
    np.testing.assert_array_equal(scan_positions(scan, (10, 10), 1e-6), positions)
    assert raster_indices(scan) is None


@pytest.mark.parametrize(
    "bad", [np.zeros((5, 3)), np.zeros(4), np.full((2, 2), np.nan), np.zeros((0, 2))]
)
def test_file_positions_rejects_bad_arrays(tmp_path, bad):
    path = tmp_path / "pos.npy"
    np.save(path, bad)
    with pytest.raises(ValueError, match=r"scan\.path"):
        scan_positions(ScanConfig(kind="file", path=str(path)), (10, 10), 1e-6)
