"""The `make_*` factories: precision kept, every bad input refused by name, jit-safe."""

import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jscan import (
    make_diffractogram,
    make_microscope_data,
    make_optical_wavefront,
    make_sample_function,
)

LAM, DX = 633e-9, 2e-6


def no_warnings(fn, *args):
    """Call fn, asserting that it emits no warning of any kind (even an ignored one)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    assert not caught, [str(w.message) for w in caught]
    return out


def real_image(rng, shape, dtype=np.float32):
    return rng.uniform(0.1, 2.0, size=shape).astype(dtype)


# --- precision ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.complex64, jnp.complex64),
        (np.float32, jnp.complex64),
        (np.complex128, jnp.complex64),  # x64 off: narrowed without a warning
        (np.float64, jnp.complex64),
        (np.int32, jnp.complex64),
    ],
)
def test_field_precision_without_x64(random_field, dtype, expected):
    assert not jax.config.jax_enable_x64
    field = random_field((6, 5), np.complex128)
    field = (field if np.dtype(dtype).kind == "c" else field.real * 10).astype(dtype)
    wf = no_warnings(make_optical_wavefront, field, LAM, DX)
    assert wf.field.dtype == expected
    assert wf.wavelength.dtype == wf.dx.dtype == wf.z_position.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(wf.field), field.astype(np.complex64), rtol=1e-7)
    assert float(wf.wavelength) == pytest.approx(LAM, rel=1e-7)
    assert float(wf.dx) == pytest.approx(DX, rel=1e-7)
    sample = no_warnings(make_sample_function, field, DX)
    assert sample.sample.dtype == expected and sample.dx.dtype == jnp.float32


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.complex64, jnp.complex64),
        (np.float32, jnp.complex64),
        (np.complex128, jnp.complex128),
        (np.float64, jnp.complex128),
    ],
)
def test_field_precision_with_x64(random_field, dtype, expected):
    field = random_field((6, 5), np.complex128)
    field = (field if np.dtype(dtype).kind == "c" else field.real).astype(dtype)
    with jax.enable_x64(True):
        wf = no_warnings(make_optical_wavefront, field, LAM, DX, 1e-3)
        sample = no_warnings(make_sample_function, field, DX)
    real = jnp.float64 if expected == jnp.complex128 else jnp.float32
    assert wf.field.dtype == expected
    assert wf.wavelength.dtype == wf.dx.dtype == wf.z_position.dtype == real
    assert sample.sample.dtype == expected and sample.dx.dtype == real
    if expected == jnp.complex128:
        np.testing.assert_array_equal(np.asarray(wf.field), field)  # not rounded on the way
        assert float(wf.dx) == DX
    assert not jax.config.jax_enable_x64  # the context restored the default


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_real_data_precision(rng, x64, dtype):
    image = real_image(rng, (4, 7), dtype)
    stack = real_image(rng, (3, 4, 7), dtype)
    positions = rng.uniform(0, 1e-4, size=(3, 2)).astype(dtype)
    with jax.enable_x64(x64):
        diff = no_warnings(make_diffractogram, image, LAM, DX)
        data = no_warnings(make_microscope_data, stack, positions, LAM, DX)
    wide = x64 and dtype == np.float64
    real = jnp.float64 if wide else jnp.float32
    assert diff.image.dtype == diff.wavelength.dtype == diff.dx.dtype == real
    assert data.image_data.dtype == data.positions.dtype == real
    assert data.wavelength.dtype == data.dx.dtype == real
    np.testing.assert_allclose(np.asarray(diff.image), image, rtol=0 if wide else 1e-7)
    np.testing.assert_allclose(np.asarray(data.positions), positions, rtol=0 if wide else 1e-7)
    assert data.image_data.shape == (3, 4, 7) and data.positions.shape == (3, 2)


def test_z_position_may_be_zero_or_negative(random_field):
    field = random_field((4, 4))
    assert float(make_optical_wavefront(field, LAM, DX).z_position) == 0.0
    assert float(make_optical_wavefront(field, LAM, DX, -0.25).z_position) == -0.25


# --- validation --------------------------------------------------------------------------


def _field_with(random_field, bad):
    field = random_field((5, 6))
    field[2, 3] = bad
    return field


@pytest.mark.parametrize(
    ("make_field", "error", "match"),
    [
        (lambda make: make((8,)), ValueError, r"`field` must be 2-D or 3-D.*\(8,\)"),
        (lambda make: make((2, 2, 3, 4)), ValueError, r"`field` must be 2-D or 3-D"),
        (lambda make: np.complex64(1 + 1j), ValueError, r"`field` must be 2-D or 3-D"),
        (lambda make: np.zeros((0, 4), np.complex64), ValueError, r"`field` must not be empty"),
        (lambda make: np.zeros((4, 0), np.float32), ValueError, r"`field` must not be empty"),
        (lambda make: np.full((3, 3), "a"), TypeError, r"`field` must hold.*dtype <U1"),
        (lambda make: np.ones((3, 3), bool), TypeError, r"`field` must hold.*dtype bool"),
        (lambda make: jnp.ones((3, 3), bool), TypeError, r"`field` must hold.*dtype bool"),
        (lambda make: np.full((3, 3), None), TypeError, r"`field` must hold.*dtype object"),
        (lambda make: _field_with(make, np.nan), ValueError, r"`field` holds 1 NaN or infinite"),
        (lambda make: _field_with(make, np.inf), ValueError, r"`field` holds 1 NaN or infinite"),
        (lambda make: _field_with(make, 1j * np.inf), ValueError, r"`field` holds 1 NaN"),
        (lambda make: jnp.asarray(_field_with(make, np.nan)), ValueError, r"`field` holds 1"),
    ],
)
def test_bad_field(random_field, make_field, error, match):
    with pytest.raises(error, match=match):
        make_optical_wavefront(make_field(random_field), LAM, DX)


BAD_SCALARS = [
    (-1e-6, ValueError, "positive"),
    (0.0, ValueError, "positive"),
    (float("nan"), ValueError, "finite"),
    (float("inf"), ValueError, "finite"),
    (-float("inf"), ValueError, "finite"),
    (True, TypeError, "bool"),
    (np.bool_(True), TypeError, "bool"),
    (np.array([1e-6, 2e-6]), ValueError, r"scalar.*\(2,\)"),
    (np.ones((1, 1)) * 1e-6, ValueError, "scalar"),
]


@pytest.mark.parametrize("name", ["wavelength", "dx"])
@pytest.mark.parametrize(("value", "error", "match"), BAD_SCALARS)
def test_bad_scalar(rng, random_field, name, value, error, match):
    field, image = random_field((4, 5)), real_image(rng, (4, 5))
    stack, positions = real_image(rng, (2, 4, 5)), rng.uniform(size=(2, 2))
    kw = {"wavelength": LAM, "dx": DX, name: value}
    for make in (
        lambda: make_optical_wavefront(field, **kw),
        lambda: make_diffractogram(image, **kw),
        lambda: make_microscope_data(stack, positions, **kw),
    ):
        with pytest.raises(error, match=rf"`{name}`.*{match}"):
            make()
    if name == "dx":
        with pytest.raises(error, match=rf"`dx`.*{match}"):
            make_sample_function(field, value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), np.zeros(2)])
def test_bad_z_position(random_field, value):
    with pytest.raises(ValueError, match="`z_position`"):
        make_optical_wavefront(random_field((4, 4)), LAM, DX, value)


def test_bad_sample(random_field):
    with pytest.raises(ValueError, match=r"`sample` must be 2-D"):
        make_sample_function(random_field((2, 4, 4)), DX)
    with pytest.raises(ValueError, match=r"`sample` holds 1 NaN"):
        make_sample_function(_field_with(random_field, np.nan), DX)
    with pytest.raises(TypeError, match=r"`sample` must hold"):
        make_sample_function(np.full((3, 3), "x"), DX)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_diffractogram_refuses_complex_image(random_field, dtype):
    with pytest.raises(TypeError, match=r"`image` must hold real numbers.*complex"):
        make_diffractogram(random_field((4, 4), dtype), LAM, DX)


def test_diffractogram_bad_image(rng):
    with pytest.raises(ValueError, match=r"`image` must be 2-D"):
        make_diffractogram(real_image(rng, (2, 4, 4)), LAM, DX)
    image = real_image(rng, (4, 4))
    image[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"`image` holds 1 NaN"):
        make_diffractogram(image, LAM, DX)


@pytest.mark.parametrize("shape", [(4, 2), (2, 3), (3,), (3, 2, 1), (2, 1)])
def test_microscope_data_positions_shape(rng, shape):
    stack = real_image(rng, (3, 4, 5))
    with pytest.raises(ValueError, match=r"`positions`"):
        make_microscope_data(stack, rng.uniform(size=shape), LAM, DX)


def test_microscope_data_bad_arrays(rng, random_field):
    positions = rng.uniform(size=(3, 2))
    with pytest.raises(ValueError, match=r"`image_data` must be 3-D"):
        make_microscope_data(real_image(rng, (4, 5)), positions, LAM, DX)
    with pytest.raises(TypeError, match=r"`image_data` must hold real"):
        make_microscope_data(random_field((3, 4, 5)), positions, LAM, DX)
    with pytest.raises(TypeError, match=r"`positions` must hold real"):
        make_microscope_data(real_image(rng, (3, 4, 5)), positions + 0j, LAM, DX)
    positions[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"`positions` holds 1 NaN"):
        make_microscope_data(real_image(rng, (3, 4, 5)), positions, LAM, DX)


# --- jax config and jit ------------------------------------------------------------------


def test_import_leaves_jax_config_alone():
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    code = "import jax; import jscan; print(jax.config.jax_enable_x64)"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env={**env, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_factories_under_jit(rng, random_field):
    field = random_field((6, 5))
    image, stack = real_image(rng, (6, 5)), real_image(rng, (2, 6, 5))
    positions = rng.uniform(0, 1e-4, size=(2, 2)).astype(np.float32)

    def build(field, image, stack, positions, lam, dx, z):
        return (
            make_optical_wavefront(field, lam, dx, z),
            make_sample_function(field * 2, dx),
            make_diffractogram(image, lam, dx),
            make_microscope_data(stack, positions, lam, dx),
        )

    args = (field, image, stack, positions, np.float32(LAM), np.float32(DX), np.float32(0.1))
    jitted = jax.jit(build)(*args)
    eager = build(*args)
    for got, want in zip(
        jax.tree_util.tree_leaves(jitted), jax.tree_util.tree_leaves(eager), strict=True
    ):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_array_equal(np.asarray(jitted[1].sample), field * 2)
