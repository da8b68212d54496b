"""Fraunhofer propagation, exact at any output pixel size.

Convention: pixel index N//2 is the optical axis, so pixel i sits at (i - N//2) dx
(equal to (i - N/2) dx for even N). The far field is

    U'(x') = exp(ikz) / (i lambda z) * exp(ik|x'|^2 / 2z) * DFT{U}(x' / lambda z) * dx^2,

with x' = (m - N//2) output_dx. Along each axis the DFT is sampled at
alpha = N dx output_dx / (lambda z) times the natural frequency step 1/(N dx).
`apply_axis` evaluates exactly that sum by one of four methods:

- "fft": alpha == 1, a plain FFT;
- "pad": alpha == 1/k for an integer k, an FFT of the zero-padded length k N, cropped;
- "czt": any alpha, Bluestein's chirp-z transform (two FFTs of length >= 2N - 1);
- "matrix": any alpha, a dense N x N DFT matrix (fastest for small N on some hardware).

Each axis is described by a static `AxisSpec` (method and lengths) and an `AxisPlan`
of arrays: a phase applied before the transform, the transform's kernel, and a phase
applied after. The intensity path of the microscope folds the input phase into the
probe and drops the output phase (it has unit modulus).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jscan.core.axes import AxisSpec, choose_axis
from jscan.core.types import OpticalWavefront, check_positive, concrete, make_optical_wavefront


class AxisPlan(NamedTuple):
    in_phase: jax.Array  # (n,) complex, multiplies the input
    kernel: jax.Array  # "czt": (m,) FFT of the chirp; "matrix": (n, n); else (0,)
    out_phase: jax.Array  # (n,) complex, multiplies the output


def axis_spec(n: int, alpha, method: str = "auto") -> AxisSpec:
    """Choose the method for one axis (`jscan.core.axes.choose_axis`); a traced alpha
    gets "czt" with "auto"."""
    return choose_axis(n, concrete(alpha), method)


def axis_plan(spec: AxisSpec, alpha, real_dtype=jnp.float32) -> AxisPlan:
    """Arrays for one axis: computed in float64 numpy when alpha is concrete, else in JAX."""
    a = concrete(alpha)
    xp, alpha_ = (np, float(a)) if a is not None else (jnp, alpha)
    fdt = np.float64 if xp is np else real_dtype
    cdt = jnp.complex128 if real_dtype == jnp.float64 else jnp.complex64
    n, m = spec.n, spec.m
    p = xp.arange(n, dtype=fdt) - (n // 2)  # centred index of input and output
    one = xp.ones(n, dtype=fdt)
    if spec.method in ("fft", "pad"):
        # Input at padded index i = n, output index j = p + m//2. A (-1)^i checkerboard
        # centres the spectrum (m even); the output phase moves the input centre to n//2.
        in_phase = xp.exp(1j * np.pi * xp.arange(n, dtype=fdt)) if m % 2 == 0 else one + 0j
        out_phase = xp.exp(2j * np.pi * p * (n // 2) / m)
        kernel = xp.zeros((0,), dtype=fdt)
    elif spec.method == "czt":
        # Bluestein: p q = (p^2 + q^2 - (p - q)^2) / 2 turns the sum into a convolution.
        half = np.pi * alpha_ / n
        in_phase = xp.exp(-1j * half * p**2)
        out_phase = in_phase
        # The convolution kernel b(k) = exp(i half k^2) for |k| < n, circularly wrapped
        # (k = j for j < n, j - m for j > m - n), and zero in between.
        j = xp.arange(m, dtype=fdt)
        k = xp.where(j < n, j, j - m)
        chirp = xp.where((j < n) | (j > m - n), xp.exp(1j * half * k**2), 0.0)
        kernel = xp.fft.fft(chirp)
    else:  # matrix
        in_phase = out_phase = one + 0j
        kernel = xp.exp(-2j * np.pi * alpha_ / n * p[:, None] * p[None, :])
    return AxisPlan(*(jnp.asarray(v, dtype=cdt) for v in (in_phase, kernel, out_phase)))


def apply_axis(x, axis: int, spec: AxisSpec, plan: AxisPlan, phases: bool = True):
    """Scaled centred DFT of ``x`` along ``axis``: F(p) = sum_q x_q exp(-2 pi i alpha p q / n).

    With phases=False the caller has applied ``plan.in_phase`` already and the unit-modulus
    ``plan.out_phase`` is left out (enough for intensities).
    """
    x = jnp.moveaxis(x, axis, -1)
    if phases:
        x = x * plan.in_phase
    n, m = spec.n, spec.m
    if spec.method in ("fft", "pad"):
        y = jnp.fft.fft(x, n=m, axis=-1)
        if m % 2:
            y = jnp.fft.fftshift(y, axes=-1)
        start = m // 2 - n // 2
        y = y[..., start : start + n]
    elif spec.method == "czt":
        y = jnp.fft.ifft(jnp.fft.fft(x, n=m, axis=-1) * plan.kernel, axis=-1)[..., :n]
    else:
        # HIGHEST: on GPUs the default float32 matmul runs in TF32 (~3e-4 relative error)
        y = jnp.matmul(x, plan.kernel.T, precision=jax.lax.Precision.HIGHEST)
    if phases:
        y = y * plan.out_phase
    return jnp.moveaxis(y, -1, axis)


def far_field_axes(shape, dx, wavelength, z, output_dx, method="auto", real_dtype=jnp.float32):
    """Specs and plans (y, x) of the scaled DFT from a plane of pixel dx to output_dx at z.

    alpha = N dx output_dx / (lambda z) per axis, in float64 when all values are concrete
    (so the natural pixel is recognised exactly), else traced. Returns (specs, plans).
    """
    vals = _floats(dx, output_dx, wavelength, z)
    dx, output_dx, wavelength, z = vals if vals is not None else (dx, output_dx, wavelength, z)
    specs, plans = [], []
    for n in shape:
        alpha = n * dx * output_dx / (wavelength * z)
        spec = axis_spec(n, alpha, method)
        specs.append(spec)
        plans.append(axis_plan(spec, alpha, real_dtype))
    return tuple(specs), tuple(plans)


def _far_field_phase(wavelength, z, output_dx, shape, real_dtype):
    """exp(ikz) / (i lambda z) * exp(ik |x'|^2 / 2z) on the output grid (H, W)."""
    vals = _floats(wavelength, z, output_dx)
    if vals is not None:
        lam, zz, odx = vals
        xp = np
    else:
        lam, zz, odx, xp = wavelength, z, output_dx, jnp
    h, w = shape
    beta = odx**2 / (lam * zz)
    ys = (xp.arange(h) - h // 2) ** 2 * beta
    xs = (xp.arange(w) - w // 2) ** 2 * beta
    # k z reduced modulo one wavelength before the exponential keeps float32 phases exact.
    kz = 2 * np.pi * xp.mod(zz, lam) / lam
    quad = xp.exp(1j * np.pi * ys)[:, None] * xp.exp(1j * np.pi * xs)[None, :]
    phase = quad * xp.exp(1j * kz) / (1j * lam * zz)
    cdt = jnp.complex128 if real_dtype == jnp.float64 else jnp.complex64
    return jnp.asarray(phase, dtype=cdt)


def _floats(*xs):
    """The values as Python floats (float64) when all are concrete, else None."""
    vals = [concrete(x) for x in xs]
    return None if any(v is None for v in vals) else [float(v) for v in vals]


def fraunhofer_prop(incoming: OpticalWavefront, z_move, method: str = "auto") -> OpticalWavefront:
    """Far field at the natural pixel lambda z / (W dx) (W = field width).

    incoming: wavefront at the aperture plane; z_move: m, > 0.
    Returns the wavefront at z_position + z_move with dx = lambda z / (W dx).
    """
    check_positive(z_move=z_move)
    w = incoming.field.shape[-1]
    vals = _floats(incoming.wavelength, z_move, incoming.dx)
    lam, z, dx = vals if vals is not None else (incoming.wavelength, z_move, incoming.dx)
    natural = lam * z / (w * dx)
    return fraunhofer_prop_scaled(incoming, z_move, natural, method=method)


def fraunhofer_prop_scaled(
    incoming: OpticalWavefront, z_move, output_dx, method: str = "auto"
) -> OpticalWavefront:
    """Far field sampled exactly at x' = (m - N//2) output_dx, same shape as the input.

    incoming: wavefront at the aperture plane; z_move: m, > 0; output_dx: m, > 0;
    method: "auto" | "fft" | "pad" | "czt" | "matrix" (see module docstring).
    Returns the wavefront at z_position + z_move with dx = output_dx.
    """
    check_positive(z_move=z_move, output_dx=output_dx)
    shape = incoming.field.shape
    rdt = jnp.finfo(incoming.field.dtype).dtype
    lam, dx = incoming.wavelength, incoming.dx
    specs, plans = far_field_axes(shape, dx, lam, z_move, output_dx, method, rdt)
    ft = incoming.field
    for axis, spec, plan in ((-1, specs[1], plans[1]), (-2, specs[0], plans[0])):
        ft = apply_axis(ft, axis, spec, plan)
    field = ft * _far_field_phase(lam, z_move, output_dx, shape, rdt) * dx**2
    return make_optical_wavefront(
        field, lam, jnp.asarray(output_dx, rdt), incoming.z_position + z_move
    )
