"""placement="exact": sub-pixel positions by a Fourier shift of the probe, against a float64
direct DFT of the analytically shifted sample; whole pixels, the shift table, tracing and
refusals (the four forward models themselves: test_scopes.py)."""

import jax
import numpy as np
import pytest
from scopes_geometry import DX, LAM, H, W, Z, aperture, inside_positions, natural_pixel, rel_max

from jscan import make_optical_wavefront, make_sample_function, simple_microscope
from jscan.core import sharding
from jscan.core.kernel import microscope_plan, shift_table


def smooth_object(shape, delta=(0.0, 0.0), dtype=np.complex64):
    """exp(i phi(r + delta)), phi a sum of two low-frequency cosines (band-limited), r in px."""
    r = np.arange(shape[0])[:, None] + delta[0]
    c = np.arange(shape[1])[None, :] + delta[1]
    phi = 0.5 * np.cos(2 * np.pi * (r / 16 + c / 21) + 0.3) + 0.4 * np.cos(
        2 * np.pi * (c / 13 - r / 29)
    )
    return np.exp(1j * phi).astype(dtype)


def gaussian_probe(h, w, sigma=3.0):
    """A Gaussian probe ~0 (< 1e-12) at the window edge, as the Fourier shift needs."""
    yy, xx = np.arange(h)[:, None] - h // 2, np.arange(w)[None, :] - w // 2
    return make_optical_wavefront(
        np.exp(-(yy**2 + xx**2) / (2 * sigma**2)).astype(np.complex64), LAM, DX
    )


def far_field_np(u, odx):
    """|dx^2/(lam z) sum_x u(x) exp(-2 pi i x.X/(lam z))|^2 at X = (k - N//2) odx: the
    Fraunhofer intensity of the exit wave u (H, W) by a direct float64 DFT, written here."""
    h, w = u.shape
    ys, xs = (np.arange(h) - h // 2) * DX, (np.arange(w) - w // 2) * DX
    ym, xm = (np.arange(h) - h // 2) * odx, (np.arange(w) - w // 2) * odx
    ay = np.exp(-2j * np.pi * np.outer(ym, ys) / (LAM * Z))
    ax = np.exp(-2j * np.pi * np.outer(xm, xs) / (LAM * Z))
    return np.abs(DX**2 / (LAM * Z) * (ay @ u @ ax.T)) ** 2


@pytest.mark.parametrize("window", [(32, 32), (33, 30)])
@pytest.mark.parametrize("ratio", [1.0, 0.7])
@pytest.mark.reference
def test_exact_subpixel_equals_analytically_shifted_sample(window, ratio):
    """A scan at m + delta over O equals the far field at m of the probe times O(r + delta),
    the object's closed form evaluated at the shifted pixels and propagated by a float64
    direct DFT written here (`far_field_np`; the aperture, 3 windows wide and centred, passes
    the whole window). Tolerance 1e-5 of the peak (measured 1.0e-6: float32 rounding of the
    Fourier shift and the transforms); snap misses it by 4-9 %, so the test can fail.
    """
    h, w = window
    probe = gaussian_probe(h, w)
    odx = ratio * LAM * Z / (w * DX)
    args = (probe, 1.0, 3 * max(h, w) * DX, Z, odx)  # aperture > window
    p = np.asarray(probe.field, np.complex128)
    m = np.array([[20, 25], [31, 40], [44, 22]])  # window origins row, col
    on_pixel = np.stack([(m[:, 1] + w // 2) * DX, (m[:, 0] + h // 2) * DX], axis=1)
    for delta in ((0.3, 0.55), (0.5, 0.0), (0.9, 0.12)):
        stated = on_pixel + np.array([delta[1], delta[0]]) * DX
        sample = make_sample_function(smooth_object((100, 100)), DX)
        exact = simple_microscope(sample, stated, *args, placement="exact")
        shifted = smooth_object((100, 100), delta, np.complex128)
        expected = np.stack([far_field_np(p * shifted[r : r + h, c : c + w], odx) for r, c in m])
        assert rel_max(exact.image_data, expected) <= 1e-5, delta
        snap = simple_microscope(sample, stated, *args)
        assert rel_max(snap.image_data, expected) > 1e-2  # the test can fail
        np.testing.assert_allclose(np.asarray(exact.positions), stated, rtol=1e-7)
        np.testing.assert_allclose(np.asarray(snap.positions), on_pixel, rtol=1e-7)


def test_exact_on_whole_pixels_is_bit_identical_to_snap(rng, random_field):
    sample = make_sample_function(random_field((70, 90)), DX)
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    diameter, center = aperture(1.3)
    args = (probe, 1.3, diameter, Z, 0.7 * natural_pixel(1.3), center)
    r, c = rng.integers(0, 70 - H + 1, 9), rng.integers(0, 90 - W + 1, 9)
    # float32, as JAX hands them over: within tol of the pixel, not on it
    positions = np.stack([(c + W // 2) * DX, (r + H // 2) * DX], axis=1).astype(np.float32)
    snap = simple_microscope(sample, positions, *args)
    exact = simple_microscope(sample, positions, *args, placement="exact")
    np.testing.assert_array_equal(np.asarray(exact.image_data), np.asarray(snap.image_data))
    np.testing.assert_array_equal(np.asarray(exact.positions), np.asarray(snap.positions))


def test_shift_table_groups_repeated_remainders():
    assert shift_table(np.zeros((8, 2)), (H, W)) is None
    # a 19.5 px step: two distinct remainders and no shift; float noise does not split them
    shifts = np.array([[0.0, 0.5], [0.0, 0.5 + 1e-9], [0.0, 0.0], [0.5, 0.0]] * 4)
    (ramp_y, ramp_x), index = shift_table(shifts, (H, W))
    assert ramp_y.shape == (2, H) and ramp_x.shape == (2, W) and index.dtype == np.int32
    assert list(index[:4]) == [1, 1, 0, 2]  # 0: the unshifted illumination
    # the ramps move by the distinct shifts: exp(-2 pi i f s), f = fftfreq(N)
    np.testing.assert_allclose(ramp_x[0], np.exp(-1j * np.pi * np.fft.fftfreq(W)))
    np.testing.assert_allclose(ramp_y[1], np.exp(-1j * np.pi * np.fft.fftfreq(H)))
    # K distinct non-zero shifts padded to a power of two, at most n
    (ramp_y, _), index = shift_table(np.full((3, 2), 0.25) + np.arange(3)[:, None] / 10, (H, W))
    assert ramp_y.shape == (3, H) and list(index) == [1, 2, 3]


def test_exact_table_and_per_position_agree_and_do_not_recompile(random_field, count_compiles):
    """19.5 px steps share two remainders (a table); the spiral's are all distinct."""
    sample_shape = (90, 110)
    probe = gaussian_probe(H, W)
    args = (probe, 1.0, 3 * W * DX, Z, 0.7 * natural_pixel(1.0))
    specs, _ = microscope_plan(*args)
    mesh = sharding.data_mesh()
    compiled = sharding.compiled_microscope(specs, mesh, "table")

    def raster(offset):
        k = np.arange(16)
        u = np.stack([26 + (k % 4) * 19.5 + offset, 17 + (k // 4) * 12.0], axis=1)
        return u * DX

    def run(positions, data):
        return simple_microscope(
            make_sample_function(data, DX), positions, *args, placement="exact"
        )

    data = random_field(sample_shape)
    first = run(raster(0.0), data)
    size = compiled._cache_size()
    assert size >= 1
    with count_compiles() as compiles:
        second = run(raster(1.0), random_field(sample_shape))  # same shifts, new values
    assert compiles == [] and compiled._cache_size() == size
    assert not np.allclose(np.asarray(first.image_data), np.asarray(second.image_data))
    # the same positions one by one give the same patterns, bit for bit
    each = np.concatenate(
        [np.asarray(run(p[None], data).image_data) for p in raster(0.0)[[1, 2, 5]]]
    )
    np.testing.assert_array_equal(each, np.asarray(first.image_data)[[1, 2, 5]])


def test_exact_with_traced_positions(rng, random_field):
    data = random_field((50, 60))
    sample = make_sample_function(data, DX)
    probe = gaussian_probe(H, W)
    args = (probe, 1.0, 3 * W * DX, Z, 0.7 * natural_pixel(1.0))
    positions = inside_positions(rng, 5, data.shape).astype(np.float32)
    positions[0] = np.round(positions[0] / DX) * DX  # one on a pixel
    eager = simple_microscope(sample, positions, *args, placement="exact")
    jitted = jax.jit(lambda p: simple_microscope(sample, p, *args, placement="exact"))(positions)
    assert rel_max(jitted.image_data, eager.image_data) <= 1e-5
    np.testing.assert_allclose(np.asarray(jitted.positions), np.asarray(eager.positions), rtol=1e-7)
    # positions in exact mode carry gradients through the sub-pixel shift
    grad = jax.grad(
        lambda p: simple_microscope(sample, p, *args, placement="exact").image_data[1, 3, 5]
    )(jax.numpy.asarray(positions))
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad[1]) != 0)
    # also on a whole pixel (where refinement usually starts): the remainder snaps to 0 but
    # its gradient does not, for the patterns and for the returned positions
    grad0 = jax.grad(
        lambda p: simple_microscope(sample, p, *args, placement="exact").image_data[0, 3, 5]
    )(jax.numpy.asarray(positions))
    assert np.any(np.asarray(grad0[0]) != 0)
    dpos = jax.jacobian(
        lambda p: simple_microscope(sample, p, *args, placement="exact").positions[0]
    )(jax.numpy.asarray(positions))
    np.testing.assert_allclose(np.asarray(dpos[:, 0, :]), np.eye(2), atol=1e-6)


def test_bad_placement(rng, random_field):
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    sample = make_sample_function(random_field((50, 60)), DX)
    positions = inside_positions(rng, 3, (50, 60))
    with pytest.raises(ValueError, match="`placement`"):
        simple_microscope(sample, positions, probe, 1.0, 20 * DX, Z, 1e-5, placement="floor")
