"""The batched kernel for thick samples and the near field, against the public propagators.

References are the one-position chain built from `jscan.core.fresnel`, `optics` and
`propagation` (each tested against closed forms and float64 integrals in test_fresnel.py
and test_propagation.py). Tolerance 2e-5 of the peak: float32 rounding of two differently
ordered chains of a few FFTs (measured about 1e-6).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import jscan
from jscan.core.kernel import intensities, microscope_plan
from jscan.core.optics import aperture_mask, circular_aperture, field_intensity, optical_zoom
from jscan.core.propagation import fraunhofer_prop_scaled
from jscan.core.sharding import data_mesh, run_sharded

LAM, DX, Z = 633e-9, 2e-6, 0.1
H, W = 16, 24
SHAPE = (3, 48, 56)
ZOOM, DIAMETER = 1.3, 30 * DX * 1.3
SPACING = 4e-6  # the spread lambda spacing / dx over two gaps stays below 1.5 px
CAMERA = 0.7 * LAM * Z / (W * DX * ZOOM)
TOL = 2e-5


def _probe(random_field):
    yy, xx = np.mgrid[:H, :W]
    envelope = np.exp(-(((yy - H // 2) / 1.8) ** 2 + ((xx - W // 2) / 2.5) ** 2))
    return (random_field((H, W)) * 0.2 + 1) * envelope.astype(np.complex64)


def _reference(slices, origin, probe, shift=(0, 0), near=None):
    """One position: multislice over the window cut at ``origin``, aperture, camera."""
    r, c = origin
    cut = slices[:, r : r + H, c : c + W]
    light = jscan.make_optical_wavefront(probe, LAM, DX)
    exit_wave = jscan.multislice_interaction(jscan.make_thick_sample(cut, DX, SPACING), light)
    wave = circular_aperture(optical_zoom(exit_wave, ZOOM), DIAMETER)
    if near is not None:
        out = jscan.near_field_prop_scaled(wave, Z, near[0], near[1])
    else:
        out = fraunhofer_prop_scaled(wave, Z, CAMERA)
    return np.asarray(field_intensity(out.field))


def _plan(probe, **kw):
    light = jscan.make_optical_wavefront(probe, LAM, DX)
    cam = kw.pop("camera", CAMERA)
    return microscope_plan(light, ZOOM, DIAMETER, Z, cam, spacing=SPACING, **kw)


def test_thick_kernel_is_the_multislice_chain(random_field):
    probe = _probe(random_field)
    slices = np.exp(0.4j * random_field(SHAPE).real).astype(np.complex64)
    specs, plan = _plan(probe)
    origins = np.array([[0, 0], [5, 9], [30, 31]], np.int32)
    got = np.asarray(intensities(jnp.asarray(slices), origins, plan, specs))
    for k, o in enumerate(origins):
        want = _reference(slices, o, probe)
        assert np.max(np.abs(got[k] - want)) <= TOL * want.max()


def test_one_slice_through_the_thick_path_is_the_thin_kernel(random_field):
    probe = _probe(random_field)
    sample = random_field(SHAPE[1:])
    specs, plan = _plan(probe)
    origins = np.array([[2, 3], [11, 20]], np.int32)
    thick = np.asarray(intensities(jnp.asarray(sample[None]), origins, plan, specs))
    thin = np.asarray(intensities(jnp.asarray(sample), origins, plan, specs))
    assert np.max(np.abs(thick - thin)) <= TOL * thin.max()


def _fourier_shift(a, s):
    """``a`` (H, W) moved by s (row, col) px: float64 numpy, the definition of a shift."""
    fy, fx = np.fft.fftfreq(a.shape[0])[:, None], np.fft.fftfreq(a.shape[1])[None, :]
    ramp = np.exp(-2j * np.pi * (fy * s[0] + fx * s[1]))
    return np.fft.ifft2(np.fft.fft2(a.astype(np.complex128)) * ramp)


@pytest.mark.parametrize("shift", [(1.0, 0.0), (0.0, 1.0), (0.37, 0.81)])
def test_probe_and_aperture_move_apart_by_the_shift(random_field, shift):
    """The probe moves before the slices, the aperture (behind the sample) after them: the
    reference shifts each in float64 and runs the one-position chain, whose aperture here
    is an off-centre disc (a whole-pixel shift of it is a plain roll)."""
    probe = _probe(random_field)
    slices = np.exp(0.4j * random_field(SHAPE).real).astype(np.complex64)
    light = jscan.make_optical_wavefront(probe, LAM, DX)
    small = 9 * DX * ZOOM  # an aperture inside the window, so that a shift moves its edge
    specs, plan = microscope_plan(light, ZOOM, small, Z, CAMERA, spacing=SPACING)
    origin = np.array([[10, 12]], np.int32)
    got = np.asarray(
        intensities(jnp.asarray(slices), origin, plan, specs, jnp.asarray([shift], jnp.float32))
    )[0]
    cut = slices[:, 10 : 10 + H, 12 : 12 + W]
    moved = jscan.make_optical_wavefront(_fourier_shift(probe, shift).astype(np.complex64), LAM, DX)
    exit_wave = jscan.multislice_interaction(jscan.make_thick_sample(cut, DX, SPACING), moved)
    wave = optical_zoom(exit_wave, ZOOM)
    mask = np.asarray(aperture_mask((H, W), wave.dx, small))
    wave = wave._replace(field=wave.field * _fourier_shift(mask, shift).astype(np.complex64))
    want = np.asarray(field_intensity(fraunhofer_prop_scaled(wave, Z, CAMERA).field))
    assert np.max(np.abs(got - want)) <= TOL * want.max()


def test_thick_shift_table_equals_per_position_shifts(rng, random_field):
    probe = random_field((2, H, W)) * 0.1 + _probe(random_field)  # two incoherent modes
    slices = np.exp(0.4j * random_field(SHAPE).real).astype(np.complex64)
    specs, plan = _plan(probe)
    origins = rng.integers(0, 20, (8, 2)).astype(np.int32)
    shifts = np.round(rng.uniform(0, 1, (8, 2)), 3)
    shifts[::3] = 0
    mesh = data_mesh()
    table = np.asarray(run_sharded(specs, mesh, jnp.asarray(slices), origins, plan, shifts=shifts))
    each = np.asarray(
        run_sharded(specs, mesh, jnp.asarray(slices), origins, plan, shifts=jnp.asarray(shifts))
    )
    assert np.max(np.abs(table - each)) <= TOL * each.max()


@pytest.mark.parametrize("source", [None, 0.05])
@pytest.mark.parametrize("pixel", [1.0, 0.83])
def test_near_field_kernel_is_the_near_field_propagator(random_field, source, pixel):
    probe = _probe(random_field)
    slices = np.exp(0.4j * random_field(SHAPE).real).astype(np.complex64)
    m = 1.0 if source is None else (source + Z) / source
    camera = pixel * m * DX * ZOOM
    specs, plan = _plan(probe, camera=camera, propagation="near", source_distance=source)
    origins = np.array([[4, 6], [20, 17]], np.int32)
    got = np.asarray(intensities(jnp.asarray(slices), origins, plan, specs))
    for k, o in enumerate(origins):
        want = _reference(slices, o, probe, near=(camera, source))
        assert np.max(np.abs(got[k] - want)) <= TOL * want.max()


def test_bad_propagation_is_refused(random_field):
    with pytest.raises(ValueError, match='"far" or "near"'):
        _plan(_probe(random_field), propagation="fresnel")
