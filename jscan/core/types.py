"""PyTrees of jscan: plain NamedTuples, made and checked by `make_*` factories.

Factories check in Python whatever is concrete (shape, dtype, finite and positive
scalars) and keep the caller's precision: complex64 stays complex64, and float64
appears only when the caller turned on ``jax_enable_x64``. Inside ``jit`` the
traced values cannot be checked and pass through.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class OpticalWavefront(NamedTuple):
    field: jax.Array  # (H, W) complex, pixel (H//2, W//2) on the optical axis; or (M, H, W):
    # M mutually incoherent modes (partial coherence; `simple_microscope` sums their intensities)
    wavelength: jax.Array  # () m
    dx: jax.Array  # () m, pixel pitch
    z_position: jax.Array  # () m, plane along the optical axis


class SampleFunction(NamedTuple):
    sample: jax.Array  # (H, W) complex transmission
    dx: jax.Array  # () m, pixel pitch


class Diffractogram(NamedTuple):
    image: jax.Array  # (H, W) real intensity
    wavelength: jax.Array  # () m
    dx: jax.Array  # () m, camera pixel pitch


class MicroscopeData(NamedTuple):
    image_data: jax.Array  # (n, H, W) real intensities, one per position
    positions: jax.Array  # (n, 2) m, columns x, y
    wavelength: jax.Array  # () m
    dx: jax.Array  # () m, camera pixel pitch


def concrete(x):
    """Return ``x`` as a numpy array, or None when it is a JAX tracer."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def check_positive(**values):
    """ValueError naming the parameter when a concrete value is not finite and > 0.

    Traced values (inside jit) cannot be checked and pass.
    """
    for name, value in values.items():
        v = concrete(value)
        if v is not None and not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"`{name}` must be a finite positive number, got {value!r}")


def check_same_grid(sample, light: OpticalWavefront, what: str):
    """ValueError when the sample's dx (a SampleFunction's or ThickSample's) is not the probe's."""
    s, p = concrete(sample.dx), concrete(light.dx)
    if s is not None and p is not None and abs(float(s) - float(p)) > 1e-6 * abs(float(p)):
        raise ValueError(
            f"{what}: the sample dx ({float(s):.6g} m) differs from the probe dx "
            f"({float(p):.6g} m); resample the sample onto the probe's grid first"
        )


def _complex_dtype(dtype):
    """complex128 for float64/complex128 input when x64 is on, else complex64."""
    wide = np.dtype(dtype) in (np.float64, np.complex128)
    return jnp.complex128 if wide and jax.config.jax_enable_x64 else jnp.complex64


def _real_dtype(dtype):
    return jnp.finfo(_complex_dtype(dtype)).dtype


def _array(name, value, ndim, kinds=("complex", "real")):
    if isinstance(value, np.ndarray | jax.Array | jax.core.Tracer):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"`{name}` must be an array, got {type(value).__name__}") from err
    shape = tuple(arr.shape)
    if len(shape) not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"`{name}` must be {want}, got shape {shape}")
    if 0 in shape:
        raise ValueError(f"`{name}` must not be empty, got shape {shape}")
    dt = np.dtype(arr.dtype)
    ok = (dt.kind == "c" and "complex" in kinds) or (dt.kind in "fiu" and "real" in kinds)
    if not ok:
        want = " or ".join(kinds)
        raise TypeError(f"`{name}` must hold {want} numbers, got dtype {dt}; cast it first")
    values = concrete(arr)
    if values is not None and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"`{name}` holds {bad} NaN or infinite values; clean the input first")
    return arr


def _scalar(name, value, dtype, positive):
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be a number, got a bool")
    arr = jnp.asarray(value, dtype=dtype) if not isinstance(value, jax.core.Tracer) else value
    if jnp.ndim(arr) != 0:
        raise ValueError(f"`{name}` must be a scalar, got shape {jnp.shape(arr)}")
    v = concrete(value)
    if v is not None:
        v = float(v)
        if not np.isfinite(v):
            raise ValueError(f"`{name}` must be finite, got {v}")
        if positive and v <= 0:
            raise ValueError(f"`{name}` must be positive (in metres), got {v}")
    return jnp.asarray(arr, dtype=dtype)


def make_optical_wavefront(field, wavelength, dx, z_position=0.0) -> OpticalWavefront:
    """Make an OpticalWavefront.

    field: (H, W) complex (real is promoted), or (M, H, W) for M mutually incoherent probe
    modes (only `simple_microscope` takes those); wavelength, dx: m, > 0; z_position: m.
    """
    field = _array("field", field, ndim=(2, 3))
    cdt = _complex_dtype(field.dtype)
    rdt = _real_dtype(cdt)
    return OpticalWavefront(
        field=jnp.asarray(field, dtype=cdt),
        wavelength=_scalar("wavelength", wavelength, rdt, positive=True),
        dx=_scalar("dx", dx, rdt, positive=True),
        z_position=_scalar("z_position", z_position, rdt, positive=False),
    )


def make_sample_function(sample, dx) -> SampleFunction:
    """Make a SampleFunction. sample: (H, W) complex transmission; dx: m, > 0."""
    sample = _array("sample", sample, ndim=(2,))
    cdt = _complex_dtype(sample.dtype)
    return SampleFunction(
        sample=jnp.asarray(sample, dtype=cdt),
        dx=_scalar("dx", dx, _real_dtype(cdt), positive=True),
    )


def make_diffractogram(image, wavelength, dx) -> Diffractogram:
    """Make a Diffractogram. image: (H, W) real intensity; wavelength, dx: m, > 0."""
    image = _array("image", image, ndim=(2,), kinds=("real",))
    rdt = _real_dtype(image.dtype)
    return Diffractogram(
        image=jnp.asarray(image, dtype=rdt),
        wavelength=_scalar("wavelength", wavelength, rdt, positive=True),
        dx=_scalar("dx", dx, rdt, positive=True),
    )


def make_microscope_data(image_data, positions, wavelength, dx) -> MicroscopeData:
    """Make MicroscopeData.

    image_data: (n, H, W) real intensities; positions: (n, 2) m (x, y);
    wavelength, dx: m, > 0 (dx is the camera pixel pitch).
    """
    image_data = _array("image_data", image_data, ndim=(3,), kinds=("real",))
    positions = _array("positions", positions, ndim=(2,), kinds=("real",))
    if positions.shape[1] != 2 or positions.shape[0] != image_data.shape[0]:
        raise ValueError(
            f"`positions` must have shape (n, 2) with n = image_data.shape[0] = "
            f"{image_data.shape[0]}, got {tuple(positions.shape)}"
        )
    rdt = _real_dtype(image_data.dtype)
    return MicroscopeData(
        image_data=jnp.asarray(image_data, dtype=rdt),
        positions=jnp.asarray(positions, dtype=rdt),
        wavelength=_scalar("wavelength", wavelength, rdt, positive=True),
        dx=_scalar("dx", dx, rdt, positive=True),
    )
