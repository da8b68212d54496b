"""The window rule: which sample pixels a probe window covers, and the sub-pixel remainder."""

import jax.numpy as jnp
import numpy as np
import pytest

from jscan.core.placement import (
    PLACEMENT_TOL,
    PlacementRangeError,
    placed_positions,
    placement,
    window_origins,
)


def test_window_origins_hand_computed():
    dx = 1e-6
    positions = np.array([[10.5e-6, 20.2e-6], [0.0, 0.0], [1.5e-6, 2.99e-6], [0.9995e-6, 0]])
    where = placement(positions, (4, 5), dx)
    # rows = floor(y/dx - 2 + tol), cols = floor(x/dx - 2 + tol): axis pixel W//2 = 2
    np.testing.assert_array_equal(where.origins, [[18, 8], [-2, -2], [0, -1], [-2, -1]])
    np.testing.assert_allclose(where.shifts, [[0.2, 0.5], [0, 0], [0.99, 0.5], [0, 0]], atol=1e-9)
    assert where.origins.dtype == np.int64
    np.testing.assert_array_equal(window_origins(positions, (4, 5), dx), where.origins)


def test_the_axis_pixel_plus_the_remainder_is_the_stated_position():
    """The rule in words, not its floor: the window's axis pixel (origin + H//2) plus the
    remainder is the position in pixels, the remainder in (0, 1); within tol of a pixel the
    remainder is 0 and the axis pixel is that pixel."""
    rng = np.random.default_rng(3)
    dx = float(rng.uniform(1e-8, 1e-6))
    positions = rng.uniform(-50 * dx, 500 * dx, (400, 2))
    positions[::4] = np.round(positions[::4] / dx) * dx  # on a pixel
    positions[1::4] += rng.choice([-1, 1], (100, 2)) * 0.5 * PLACEMENT_TOL * dx  # just off it
    height, width = (int(v) for v in rng.integers(1, 64, 2))
    where = placement(positions, (height, width), dx)
    for (x, y), (row, col), (fy, fx) in zip(positions, *where, strict=True):
        for u, axis, f in ((y / dx, row + height // 2, fy), (x / dx, col + width // 2, fx)):
            if abs(u - round(u)) <= PLACEMENT_TOL:
                assert f == 0 and axis == round(u), (u, axis, f)
            else:  # float64 positions of at most 500 px: 1e-9 px is far beyond their rounding
                assert 0 < f < 1 and abs(axis + f - u) < 1e-9, (u, axis, f)


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


@pytest.mark.parametrize("x", [2.0**62 * 1.01, np.nan, -1e300])
def test_positions_beyond_int64_pixels_are_refused_not_wrapped(x):
    """An origin beyond int64 would wrap to a wrong window (numpy casts with only a
    RuntimeWarning): refused instead, with where the positions reach."""
    with pytest.raises(PlacementRangeError, match="positions reach"):
        placement(np.array([[10.0, 10.0], [x, 10.0]]), (4, 4), 1.0)
    far = placement(np.array([[2.0**40, 0.0]]), (4, 4), 1.0)  # far, but an int64: placed
    assert far.origins[0, 1] == 2**40 - 2
