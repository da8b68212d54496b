"""Scan positions and raster indices (the window rule itself: tests/core/test_placement.py)."""

import numpy as np
import pytest

from jscan.core.placement import placed_positions, placement
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


def test_any_index_range_equals_that_slice_of_the_whole_scan(tmp_path):
    """A block's positions are made from its indices alone: bit for bit the whole scan's."""
    from jscan.inputs.scan import scan_length

    np.save(tmp_path / "p.npy", np.random.default_rng(3).uniform(0, 1e-4, (1000, 2)))
    scans = [
        ScanConfig(kind="raster", shape=(37, 29), step=1.7e-6),
        ScanConfig(kind="raster", shape=(5, 9), step=2e-6, start=(3e-6, 4e-6)),
        ScanConfig(kind="spiral", step=0.7e-6, n=1000),
        ScanConfig(kind="file", path=str(tmp_path / "p.npy")),
    ]
    rng = np.random.default_rng(8)
    for scan in scans:
        whole = scan_positions(scan, (300, 200), 1e-7)
        assert scan_length(scan) == len(whole)
        for _ in range(20):
            start, stop = sorted(int(v) for v in rng.integers(0, len(whole) + 1, 2))
            np.testing.assert_array_equal(
                scan_positions(scan, (300, 200), 1e-7, start, stop), whole[start:stop]
            )
            if scan.kind == "raster":
                rows, cols = raster_indices(scan, start, stop)
                np.testing.assert_array_equal(rows, raster_indices(scan)[0][start:stop])
                np.testing.assert_array_equal(cols, raster_indices(scan)[1][start:stop])


def test_non_finite_file_positions_name_the_row(tmp_path):
    positions = np.zeros((10, 2))
    positions[7, 1] = np.nan
    np.save(tmp_path / "p.npy", positions)
    with pytest.raises(ValueError, match=r"NaN or inf \(row 7\)"):
        scan_positions(ScanConfig(kind="file", path=str(tmp_path / "p.npy")), (10, 10), 1e-6)


@pytest.mark.reference
def test_jitter_is_gaussian_per_axis_keyed_by_index_and_drift_grows_with_it():
    from jscan.inputs.scan import position_errors

    scan = ScanConfig(kind="spiral", step=1e-6, n=200_000, jitter=0.3e-6, seed=7)
    e = position_errors(scan)
    assert e.shape == (200_000, 2) and np.isfinite(e).all()
    np.testing.assert_allclose(e.mean(axis=0), 0, atol=5 * 0.3e-6 / np.sqrt(200_000))
    np.testing.assert_allclose(e.std(axis=0), 0.3e-6, rtol=0.01)
    assert abs(np.corrcoef(e.T)[0, 1]) < 0.01  # x and y independent
    assert abs(np.corrcoef(e[:-1, 0], e[1:, 0])[0, 1]) < 0.01  # neighbours independent
    # a Gaussian: the share beyond 2 sigma per axis (4.55 %)
    assert abs(np.mean(np.abs(e[:, 0]) > 0.6e-6) - 0.0455) < 0.003
    # keyed by (seed, index): any range is that slice; another seed, other errors
    np.testing.assert_array_equal(position_errors(scan, 1234, 5678), e[1234:5678])
    other = ScanConfig(kind="spiral", step=1e-6, n=200_000, jitter=0.3e-6, seed=8)
    assert abs(np.corrcoef(position_errors(other)[:, 0], e[:, 0])[0, 1]) < 0.01
    drift = ScanConfig(kind="raster", shape=(3, 4), step=1e-6, drift=(2e-9, -1e-9))
    np.testing.assert_array_equal(
        position_errors(drift), np.arange(12)[:, None] * np.array([2e-9, -1e-9])
    )
    assert not position_errors(ScanConfig(kind="raster", shape=(3, 4), step=1e-6)).any()
