"""Propagation at finite distance: the angular spectrum, multislice, and the near field.

- `angular_spectrum_prop`: the band-limited angular spectrum, non-paraxial. Transfer
  function H(f) = exp(2 pi i z sqrt(1/lambda^2 - |f|^2)) on the FFT frequencies of the
  window, set to 0 for |f| >= 1/lambda (evanescent waves dropped); that is its only band
  limit, the same as pty-chi's `AngularSpectrumPropagator`. The product is a circular
  convolution: exact while the field stays inside its window over z.
- `multislice_interaction`: the wave times slice k, then propagated over the spacing to
  slice k + 1; the last slice's product is the exit wave (no propagation after it).
- `near_field_prop_scaled`: the near field at a camera at distance z with any pixel size,
  for a plane wave or, with ``source_distance``, a beam diverging from a point z1 upstream
  of the sample (Fresnel scaling theorem: magnification M = (z1 + z)/z1, effective distance
  z1 z/(z1 + z)).

Pure functions of PyTrees: jit, vmap and grad apply at the call site.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jscan.core.axes import choose_axis
from jscan.core.propagation import _floats, apply_axis, axis_plan
from jscan.core.types import (
    OpticalWavefront,
    _array,
    _complex_dtype,
    _real_dtype,
    _scalar,
    check_positive,
    check_same_grid,
    concrete,
)


class ThickSample(NamedTuple):
    slices: jax.Array  # (K, H, W) complex transmission of each slice, entrance first
    dx: jax.Array  # () m, pixel pitch
    spacing: jax.Array  # () m, distance from one slice to the next


def make_thick_sample(slices, dx, spacing) -> ThickSample:
    """Make a ThickSample. slices: (K, H, W) complex; dx: m, > 0; spacing: m, >= 0."""
    slices = _array("slices", slices, ndim=(3,))
    cdt = _complex_dtype(slices.dtype)
    rdt = _real_dtype(cdt)
    spacing = _scalar("spacing", spacing, rdt, positive=False)
    s = concrete(spacing)
    if s is not None and float(s) < 0:
        raise ValueError(f"`spacing` must be >= 0 (in metres), got {float(s)}")
    return ThickSample(
        jnp.asarray(slices, dtype=cdt), _scalar("dx", dx, rdt, positive=True), spacing
    )


def _whole_waves(z, wavelength):
    """(integer part dropped) z / lambda and z / lambda, for phases exact in float32."""
    vals = _floats(z, wavelength)
    if vals is not None:
        ratio = vals[0] / vals[1]
        return ratio - np.floor(ratio), ratio
    ratio = z / wavelength
    return ratio - jnp.floor(ratio), ratio


def angular_spectrum_transfer(shape, dx, wavelength, z, real_dtype=jnp.float32):
    """Transfer function (H, W) of the angular spectrum over z, in FFT frequency order.

    H = exp(2 pi i (z/lambda) sqrt(1 - lambda^2 |f|^2)) for lambda |f| < 1, else 0, with
    f = fftfreq(N, dx). The phase is computed as 2 pi [frac(z/lambda) + (z/lambda)(sqrt(1-u)
    - 1)], u = lambda^2 |f|^2, (sqrt(1-u) - 1 = -u / (1 + sqrt(1-u))), so that the large
    k z does not cost float32 its digits: in float64 numpy when every value is concrete,
    else in JAX, differentiable in z (the clamp keeps NaN out).
    """
    frac, ratio = _whole_waves(z, wavelength)
    vals = _floats(dx, wavelength, z)
    if vals is not None:
        # float64 numpy: a constant of the compiled function, also inside jit
        xp, fdt, (dx, wavelength, _) = np, np.float64, vals
    else:
        xp, fdt = jnp, real_dtype
    h, w = shape
    fy = xp.fft.fftfreq(h).astype(fdt)[:, None]
    fx = xp.fft.fftfreq(w).astype(fdt)[None, :]
    u = (fy**2 + fx**2) * (wavelength / dx) ** 2
    root = xp.sqrt(xp.clip(1 - u, 0.0, None))
    phase = 2 * np.pi * (frac - ratio * u / (1 + root))
    cdt = jnp.complex128 if real_dtype == jnp.float64 else jnp.complex64
    return jnp.asarray(xp.where(u < 1, xp.exp(1j * phase), 0), dtype=cdt)


def angular_spectrum_prop(incoming: OpticalWavefront, z) -> OpticalWavefront:
    """The wavefront after free space z [m] (any sign), same grid: ifft2(fft2(U) H).

    incoming.field: (H, W) or (M, H, W) modes (each propagated alone).
    """
    rdt = jnp.finfo(incoming.field.dtype).dtype
    h = angular_spectrum_transfer(
        incoming.field.shape[-2:], incoming.dx, incoming.wavelength, z, rdt
    )
    field = jnp.fft.ifft2(jnp.fft.fft2(incoming.field) * h)
    return incoming._replace(field=field, z_position=incoming.z_position + z)


def multislice_interaction(sample: ThickSample, light: OpticalWavefront) -> OpticalWavefront:
    """Exit wave of a thick sample: psi <- slice_k x psi, then psi propagated over the
    spacing (`angular_spectrum_prop`) to slice k + 1; the last slice has no propagation
    after it. One slice is `linear_interaction`. light.field: (H, W) or (M, H, W) modes;
    the slices' (H, W) must equal the probe window's and their dx the probe's.
    """
    k, *window = sample.slices.shape
    if tuple(window) != tuple(light.field.shape[-2:]):
        raise ValueError(
            f"the slices are {tuple(window)} but the probe window is "
            f"{tuple(light.field.shape[-2:])}; cut every slice to the probe's window first"
        )
    check_same_grid(sample, light, "multislice_interaction")
    rdt = jnp.finfo(light.field.dtype).dtype
    h = angular_spectrum_transfer(window, light.dx, light.wavelength, sample.spacing, rdt)
    psi = multislice_exit(light.field, sample.slices, h)
    return light._replace(field=psi, z_position=light.z_position + (k - 1) * sample.spacing)


def multislice_exit(psi, slices, transfer):
    """The multislice rule on arrays: psi ([M,] H, W) times slices[0], then for each further
    slice k: ifft2(fft2(psi) transfer) times slices[k]. slices: a (K, ...) array or a
    sequence of K arrays that broadcast against psi; transfer: (H, W), FFT order."""
    first, *rest = slices
    psi = psi * first
    for s in rest:
        psi = jnp.fft.ifft2(jnp.fft.fft2(psi) * transfer) * s
    return psi


def fresnel_scaling(z, source_distance=None):
    """(magnification M, effective distance) of a camera at z [m] behind the sample, for a
    beam diverging from a point ``source_distance`` z1 [m] upstream of it:
    M = (z1 + z)/z1, z_eff = z1 z/(z1 + z); a plane wave (None) gives (1, z)."""
    if source_distance is None:
        return 1.0, z
    check_positive(source_distance=source_distance)
    return (source_distance + z) / source_distance, source_distance * z / (source_distance + z)


class NearSpecs(NamedTuple):
    """Static half of `near_field_axes`: the camera pixel is the window's own (natural), or
    the AxisSpec of the scaled inverse DFT along y and x."""

    natural: bool
    y: object = None
    x: object = None


class NearPlan(NamedTuple):
    """Arrays of `near_field_axes` (a PyTree)."""

    transfer: jax.Array  # (H, W) angular spectrum over the effective distance, FFT order
    shift_y: jax.Array  # (H,) exp(2 pi i q (H//2)/H): window index N//2 on the axis
    shift_x: jax.Array  # (W,)
    py: object  # AxisPlan of y (None when natural)
    px: object


def near_field_axes(shape, dx, wavelength, z, output_dx, source_distance=None, real_dtype=None):
    """(specs, plan, M): the near field's transforms from a window (H, W) of pitch dx to a
    camera at z with pixel output_dx (`near_field_apply`); M the Fresnel-scaling magnification."""
    check_positive(z=z, output_dx=output_dx)
    m, z_eff = fresnel_scaling(z, source_distance)
    rdt = real_dtype or jnp.float32
    cdt = jnp.complex128 if rdt == jnp.float64 else jnp.complex64
    transfer = angular_spectrum_transfer(shape, dx, wavelength, z_eff, rdt)
    # the camera pixel in window pixels, in float64 when concrete (inside jit too)
    vals = _floats(output_dx, m, dx)
    b = None if vals is None else vals[0] / (vals[1] * vals[2])
    if b is not None and abs(b - 1) < 1e-6:  # float32 dx: as `choose_axis`
        empty = jnp.ones((0,), cdt)
        return NearSpecs(True), NearPlan(transfer, empty, empty, None, None), m
    beta = output_dx / (m * dx) if b is None else b
    specs, plans, shifts = [], [], []
    for n in shape:
        q = jnp.arange(n) - n // 2
        shifts.append(jnp.exp(2j * np.pi * q * (n // 2) / n).astype(cdt))
        spec = choose_axis(n, b, "auto")
        specs.append(spec)
        plans.append(axis_plan(spec, beta, rdt))
    return NearSpecs(False, *specs), NearPlan(transfer, *shifts, *plans), m


def near_field_apply(field, specs: NearSpecs, plan: NearPlan):
    """u(X/M) on the camera of `near_field_axes`: field ([...,] H, W) propagated over the
    effective distance and evaluated between its pixels by exact trigonometric interpolation
    (a scaled inverse DFT by the conjugate trick; one ifft2 when natural)."""
    spectrum = jnp.fft.fft2(field) * plan.transfer
    if specs.natural:
        return jnp.fft.ifft2(spectrum)
    spectrum = jnp.fft.fftshift(spectrum, axes=(-2, -1))  # centred frequency index q
    h, w = field.shape[-2:]
    for axis, n, spec, p, shift in (
        (-1, w, specs.x, plan.px, plan.shift_x),
        (-2, h, specs.y, plan.py, plan.shift_y),
    ):
        # u at window index j = p beta + n//2 is sum_q c_q exp(2 pi i q j / n) / n
        moved = jnp.moveaxis(spectrum, axis, -1) * shift
        spectrum = jnp.moveaxis(jnp.conj(apply_axis(jnp.conj(moved), -1, spec, p)) / n, -1, axis)
    return spectrum


def near_field_prop_scaled(
    incoming: OpticalWavefront, z, output_dx, source_distance=None
) -> OpticalWavefront:
    """Near field on a camera at z [m], sampled exactly at X = (m - N//2) output_dx.

    incoming.field is the wave in the sample plane without the divergent beam's curvature
    exp(i pi r^2 / (lambda z1)), which ``source_distance`` z1 (None: a plane wave) implies.
    By the Fresnel scaling theorem the camera field is
    U(X) = (1/M) exp(i k (z - z_eff)) exp(i pi X^2 / (lambda (z1 + z))) u(X / M),
    u = `angular_spectrum_prop` over z_eff, evaluated between its pixels by exact
    trigonometric interpolation of the window's band-limited field (`near_field_apply`).
    The camera sees only the window's period: keep N output_dx / M within the window N dx.
    """
    field = incoming.field
    rdt = jnp.finfo(field.dtype).dtype
    cdt = field.dtype
    shape = field.shape[-2:]
    lam = incoming.wavelength
    specs, plan, m = near_field_axes(shape, incoming.dx, lam, z, output_dx, source_distance, rdt)
    out = near_field_apply(field, specs, plan)
    if source_distance is not None:
        _, z_eff = fresnel_scaling(z, source_distance)
        frac, _ = _whole_waves(z - z_eff, lam)
        big_x = (jnp.arange(shape[1]) - shape[1] // 2) * output_dx
        big_y = (jnp.arange(shape[0]) - shape[0] // 2) * output_dx
        r2 = big_y[:, None] ** 2 + big_x[None, :] ** 2
        curve = jnp.exp(1j * (np.pi * r2 / (lam * (source_distance + z)) + 2 * np.pi * frac))
        out = out * (curve / m).astype(cdt)
    return incoming._replace(
        field=out.astype(cdt),
        dx=jnp.asarray(output_dx, rdt),
        z_position=incoming.z_position + z,
    )


def fresnel_number(window_width, wavelength, z, source_distance=None) -> float:
    """(N dx)^2 / (lambda z_eff) of a window of width N dx [m] seen at z (numpy floats)."""
    _, z_eff = fresnel_scaling(z, source_distance)
    return window_width**2 / (wavelength * z_eff)


__all__ = [
    "ThickSample",
    "angular_spectrum_prop",
    "angular_spectrum_transfer",
    "fresnel_number",
    "fresnel_scaling",
    "make_thick_sample",
    "multislice_exit",
    "multislice_interaction",
    "near_field_apply",
    "near_field_axes",
    "near_field_prop_scaled",
]
