"""The four forward models against a direct float64 DFT and against each other, and their
refusals (placement="exact", the sub-pixel positions: test_scopes_exact.py)."""

import jax
import numpy as np
import pytest
from scopes_geometry import DX, LAM, H, W, Z, aperture, inside_positions, natural_pixel, rel_max

from jscan import (
    diffractogram_noscale,
    field_intensity,
    linear_interaction,
    make_optical_wavefront,
    make_sample_function,
    simple_diffractogram,
    simple_microscope,
)
from jscan.core import sharding
from jscan.core.kernel import microscope_plan


def reference_intensity(cut, probe, zoom, diameter, center, odx):
    """|dx_z^2/(lam z) sum U exp(-2 pi i x.x'/(lam z))|^2 in float64, U = cut probe aperture."""
    h, w = cut.shape
    dxz = DX * zoom
    ys, xs = (np.arange(h) - h // 2) * dxz, (np.arange(w) - w // 2) * dxz
    r2 = (ys[:, None] - center[1]) ** 2 + (xs[None, :] - center[0]) ** 2
    # No pixel may sit on the rim, where float32 and float64 could disagree.
    assert np.min(np.abs(r2 - (diameter / 2) ** 2)) > 1e-4 * (diameter / 2) ** 2
    u = np.asarray(cut, np.complex128) * np.asarray(probe, np.complex128)
    u = u * (r2 <= (diameter / 2) ** 2)
    ym, xm = (np.arange(h) - h // 2) * odx, (np.arange(w) - w // 2) * odx
    ay = np.exp(-2j * np.pi * np.outer(ym, ys) / (LAM * Z))
    ax = np.exp(-2j * np.pi * np.outer(xm, xs) / (LAM * Z))
    return np.abs(dxz**2 / (LAM * Z) * (ay @ u @ ax.T)) ** 2


def rel_l2(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


def origins_of(positions, window=(H, W)):
    """floor(y/dx - H//2), floor(x/dx - W//2): the window rule away from pixel boundaries."""
    h, w = window
    rows = np.floor(positions[:, 1] / DX - h // 2).astype(int)
    cols = np.floor(positions[:, 0] / DX - w // 2).astype(int)
    return rows, cols


# --- simple_diffractogram and diffractogram_noscale ----------------------------------------


@pytest.mark.parametrize("zoom", [1.0, 1.7])
@pytest.mark.parametrize("ratio", [0.5, 0.7, 1.0, 1.6])
@pytest.mark.reference
def test_simple_diffractogram_matches_direct_dft(random_field, zoom, ratio):
    cut, probe = random_field((H, W)), random_field((H, W))
    diameter, center = aperture(zoom)
    odx = float(np.float32(ratio * natural_pixel(zoom)))
    out = simple_diffractogram(
        make_sample_function(cut, DX),
        make_optical_wavefront(probe, LAM, DX),
        zoom,
        diameter,
        Z,
        odx,
        center,
    )
    ref = reference_intensity(cut, probe, zoom, diameter, center, odx)
    assert out.image.shape == (H, W) and out.image.dtype == np.float32
    assert rel_l2(out.image, ref) <= 1e-5
    assert float(out.dx) == pytest.approx(odx, rel=1e-7)
    assert float(out.wavelength) == pytest.approx(LAM, rel=1e-7)


@pytest.mark.parametrize("shape", [(32, 48), (33, 27)])
@pytest.mark.reference
def test_default_aperture_centre_is_the_axis(random_field, shape):
    cut, probe = random_field(shape), random_field(shape)
    diameter = 0.71 * min(shape) * DX
    odx = 0.83 * natural_pixel(1.0, shape[1])
    out = simple_diffractogram(
        make_sample_function(cut, DX), make_optical_wavefront(probe, LAM, DX), 1.0, diameter, Z, odx
    )
    ref = reference_intensity(cut, probe, 1.0, diameter, (0.0, 0.0), odx)
    assert rel_l2(out.image, ref) <= 1e-5


@pytest.mark.parametrize("zoom", [1.0, 1.7])
@pytest.mark.reference
def test_diffractogram_noscale(random_field, zoom):
    cut, probe = random_field((H, W)), random_field((H, W))
    diameter, center = aperture(zoom)
    sample, light = make_sample_function(cut, DX), make_optical_wavefront(probe, LAM, DX, 0.02)
    out = diffractogram_noscale(sample, light, zoom, diameter, Z, center)
    natural = natural_pixel(zoom)
    assert float(out.dx) == pytest.approx(natural, rel=1e-6)
    assert float(out.z_position) == pytest.approx(0.02 + Z, rel=1e-6)
    assert out.field.shape == (H, W) and out.field.dtype == np.complex64
    intensity = np.asarray(field_intensity(out.field))
    ref = reference_intensity(cut, probe, zoom, diameter, center, natural)
    assert rel_l2(intensity, ref) <= 1e-5
    at_camera = simple_diffractogram(sample, light, zoom, diameter, Z, float(out.dx), center)
    assert rel_max(intensity, at_camera.image) <= 1e-5


def test_linear_interaction(random_field):
    cut, probe = random_field((H, W)), random_field((H, W))
    light = make_optical_wavefront(probe, LAM, DX, 0.3)
    out = linear_interaction(make_sample_function(cut, DX), light)
    expected = cut.astype(np.complex128) * probe.astype(np.complex128)
    err = np.abs(np.asarray(out.field, np.complex128) - expected)
    assert np.max(err) <= 1e-6 * np.max(np.abs(expected))
    assert float(out.dx) == float(light.dx) and float(out.z_position) == float(light.z_position)


# --- simple_microscope -------------------------------------------------------------------


@pytest.mark.parametrize("zoom", [1.0, 1.7])
@pytest.mark.parametrize("ratio", [0.5, 0.7, 1.0, 1.6])
@pytest.mark.reference
def test_microscope_equals_loop_of_diffractograms(rng, random_field, zoom, ratio):
    sample_shape = (70, 90)
    data = random_field(sample_shape)
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    sample = make_sample_function(data, DX)
    diameter, center = aperture(zoom)
    odx = float(np.float32(ratio * natural_pixel(zoom)))
    positions = inside_positions(rng, 6, sample_shape)
    out = simple_microscope(sample, positions, probe, zoom, diameter, Z, odx, center)
    assert out.image_data.shape == (6, H, W) and out.image_data.dtype == np.float32
    assert float(out.dx) == pytest.approx(odx, rel=1e-7)
    assert float(out.wavelength) == pytest.approx(LAM, rel=1e-7)
    rows, cols = origins_of(positions)
    # snap: the positions simulated are those of the windows' axis pixels
    snapped = np.stack([(cols + W // 2) * DX, (rows + H // 2) * DX], axis=1)
    np.testing.assert_allclose(np.asarray(out.positions), snapped, rtol=1e-7)
    assert rows.min() == 0 and cols.min() == 0
    assert rows.max() == sample_shape[0] - H and cols.max() == sample_shape[1] - W
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        cut = make_sample_function(data[r : r + H, c : c + W], DX)
        one = simple_diffractogram(cut, probe, zoom, diameter, Z, odx, center)
        assert rel_max(out.image_data[k], one.image) <= 1e-5, k
    ref = reference_intensity(data[r : r + H, c : c + W], probe.field, zoom, diameter, center, odx)
    assert rel_l2(out.image_data[-1], ref) <= 1e-5


@pytest.mark.parametrize("method", ["czt", "matrix"])
@pytest.mark.reference
def test_microscope_methods(rng, random_field, method):
    data = random_field((50, 60))
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    diameter, center = aperture(1.3)
    odx = 0.5 * natural_pixel(1.3)
    positions = inside_positions(rng, 3, data.shape)
    out = simple_microscope(
        make_sample_function(data, DX),
        positions,
        probe,
        1.3,
        diameter,
        Z,
        odx,
        center,
        method=method,
    )
    rows, cols = origins_of(positions)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        cut = data[r : r + H, c : c + W]
        ref = reference_intensity(cut, probe.field, 1.3, diameter, center, odx)
        assert rel_l2(out.image_data[k], ref) <= 1e-5


def test_microscope_does_not_recompile(rng, random_field, count_compiles):
    sample_shape = (60, 70)
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    diameter, center = aperture(1.0)
    odx = 0.7 * natural_pixel(1.0)
    args = (probe, 1.0, diameter, Z, odx, center)

    def run():
        sample = make_sample_function(random_field(sample_shape), DX)
        positions = inside_positions(rng, 5, sample_shape)
        return positions, simple_microscope(sample, positions, *args)

    first_positions, first = run()
    specs, _ = microscope_plan(probe, 1.0, diameter, Z, odx, center)
    compiled = sharding.compiled_microscope(specs, sharding.data_mesh())
    size = compiled._cache_size()
    assert size >= 1
    with count_compiles() as compiles:
        positions, second = run()
    assert compiles == []
    assert compiled._cache_size() == size
    assert not np.array_equal(positions, first_positions)
    assert not np.allclose(np.asarray(first.image_data), np.asarray(second.image_data))
    # The counter does count: a new number of positions compiles.
    with count_compiles() as compiles:
        sample = make_sample_function(random_field(sample_shape), DX)
        simple_microscope(sample, inside_positions(rng, 3, sample_shape), *args)
    assert compiles and compiled._cache_size() == size + 1


def test_microscope_with_traced_positions(rng, random_field):
    data = random_field((50, 60))
    sample = make_sample_function(data, DX)
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    diameter, center = aperture(1.7)
    odx = 0.7 * natural_pixel(1.7)
    positions = inside_positions(rng, 5, data.shape).astype(np.float32)
    args = (probe, 1.7, diameter, Z, odx, center)
    eager = simple_microscope(sample, positions, *args)
    jitted = jax.jit(lambda p: simple_microscope(sample, p, *args))(positions)
    assert jitted.image_data.shape == eager.image_data.shape == (5, H, W)
    assert rel_max(jitted.image_data, eager.image_data) <= 1e-5
    np.testing.assert_array_equal(np.asarray(jitted.positions), np.asarray(eager.positions))
    # Every window moved: a stale or clamped origin would not match.
    other = inside_positions(rng, 5, data.shape).astype(np.float32)
    moved = jax.jit(lambda p: simple_microscope(sample, p, *args))(other)
    assert rel_max(moved.image_data, simple_microscope(sample, other, *args).image_data) <= 1e-5


# --- errors ------------------------------------------------------------------------------


def test_window_leaving_the_sample_names_the_positions(rng, random_field):
    sample_shape = (60, 70)
    sample = make_sample_function(random_field(sample_shape), DX)
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    positions = inside_positions(rng, 6, sample_shape)
    positions[1, 0] = (W / 2 - 0.5) * DX  # one column left of the sample
    positions[4, 1] = (sample_shape[0] - H / 2 + 1.2) * DX  # one row below
    leave = r"2 probe windows \(32x48 px\) leave the 60x70 px sample.*position indices \[1, 4\]"
    with pytest.raises(ValueError, match=leave):
        simple_microscope(sample, positions, probe, 1.0, 20 * DX, Z, natural_pixel(1.0))
    positions = inside_positions(rng, 30, sample_shape)
    positions[:, 0] -= 100 * DX
    with pytest.raises(ValueError, match=r"30 probe windows.*\[0, 1, 2, .*19 \.\.\.\]"):
        simple_microscope(sample, positions, probe, 1.0, 20 * DX, Z, natural_pixel(1.0))


def test_sample_dx_must_match_probe_dx(rng, random_field):
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    cut = make_sample_function(random_field((H, W)), 1.01 * DX)
    big = make_sample_function(random_field((60, 70)), 1.01 * DX)
    positions = inside_positions(rng, 2, (60, 70))
    with pytest.raises(ValueError, match=r"sample dx .* differs from the probe dx"):
        linear_interaction(cut, probe)
    with pytest.raises(ValueError, match=r"sample dx .* differs from the probe dx"):
        simple_diffractogram(cut, probe, 1.0, 20 * DX, Z, natural_pixel(1.0))
    with pytest.raises(ValueError, match=r"sample dx .* differs from the probe dx"):
        simple_microscope(big, positions, probe, 1.0, 20 * DX, Z, natural_pixel(1.0))


def test_linear_interaction_shape_mismatch(random_field):
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    with pytest.raises(ValueError, match=r"sample shape \(32, 47\) differs"):
        linear_interaction(make_sample_function(random_field((H, W - 1)), DX), probe)
    with pytest.raises(ValueError, match=r"sample shape \(48, 32\) differs"):
        linear_interaction(make_sample_function(random_field((W, H)), DX), probe)


BAD = [-1.0, 0.0, float("nan"), float("inf")]
GOOD = {"zoom_factor": 1.0, "aperture_diameter": 20 * DX, "travel_distance": Z}


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    "name", ["zoom_factor", "aperture_diameter", "travel_distance", "camera_pixel_size"]
)
def test_bad_optics_parameters(rng, random_field, name, value):
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    cut = make_sample_function(random_field((H, W)), DX)
    sample = make_sample_function(random_field((50, 60)), DX)
    positions = inside_positions(rng, 2, (50, 60))
    kw = {**GOOD, "camera_pixel_size": natural_pixel(1.0), name: value}
    match = rf"`{name}`"
    with pytest.raises(ValueError, match=match):
        simple_diffractogram(cut, probe, **kw)
    with pytest.raises(ValueError, match=match):
        simple_microscope(sample, positions, probe, **kw)
    if name != "camera_pixel_size":
        del kw["camera_pixel_size"]
        with pytest.raises(ValueError, match=match):
            diffractogram_noscale(cut, probe, **kw)


def test_bad_positions(rng, random_field):
    probe = make_optical_wavefront(random_field((H, W)), LAM, DX)
    sample = make_sample_function(random_field((50, 60)), DX)
    positions = inside_positions(rng, 3, (50, 60))
    for bad in (positions[:, :1], positions[0], np.where(positions > 0, np.nan, 0)):
        with pytest.raises(ValueError, match="`positions`"):
            simple_microscope(sample, bad, probe, 1.0, 20 * DX, Z, natural_pixel(1.0))
