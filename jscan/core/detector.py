"""The camera on the device: expected intensities -> stored values, in JAX (no I/O).

`camera_values` is the ``[detector]`` model of `jscan.inputs.detector_model` (same steps,
same order) for workers whose JAX backend is an accelerator: the counts never leave the
device as floats. Random draws are keyed by (seed, stream, global position index) with
`jax.random.fold_in`, one key per position, so no value depends on the block size, the
worker or the number of devices. The draws differ from the host path's (another generator
and another sampler); a store records which one made its counts.

`poisson` is exact in distribution up to float32 rounding: inversion of the cumulative
distribution for lam < `INVERSION_BELOW` (tails summed without cancellation, one uniform of
64 bits for the first step, so a dim pixel's chance of a count keeps its relative
precision; `INVERSION_STEPS` terms, which drop P(X > 48) < 1e-18), Hormann's transformed
rejection (PTRS) above, with the log-pmf written without cancellation. Both run a fixed
number of steps, fused into one pass; a pixel rejected `REJECTION_ROUNDS` times draws again
in a branch taken only when the block has such a pixel (`block_poisson`).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

POISSON_STREAM = 0
READOUT_STREAM = 1
INVERSION_BELOW = 10.0  # lam below this: inversion; at or above: PTRS (valid for lam >= 10)
INVERSION_STEPS = 48  # terms: P(X > 48 | lam = 10) < 1e-18 is dropped
REJECTION_ROUNDS = 8  # PTRS accepts >= 0.85 per round for lam >= 10
FLOAT_TOP = {"uint16": 65535.0, "uint32": 4294967040.0}  # largest float32 <= the dtype's max
MAX_LAM = 2.0**22  # counts are exact integers in float32 up to 2^24; refused above this


class CameraParams(NamedTuple):
    """The arrays of the model (a PyTree); `CameraStatic` holds the rest."""

    factor: jax.Array  # photons per unit intensity
    background: jax.Array  # photons per pixel
    blur_y: jax.Array  # (H, H) row blur matrix (identity without psf_sigma)
    blur_x: jax.Array  # (W, W)
    gain: jax.Array  # ADU per photon
    readout_noise: jax.Array  # ADU rms
    mask: jax.Array  # (H, W) bool: written 0


class CameraStatic(NamedTuple):
    """What shapes the computation: hashable, for ``jit``'s static arguments."""

    seed: int
    dtype: str  # the stored dtype: "float32", "uint16" or "uint32"
    noise: bool  # False: the expected counts (float32)
    blur: bool
    readout: bool
    saturation: int | None  # ADU


def position_keys(seed: int, stream: int, index_lo, index_hi):
    """(n,) keys of one stream at positions (index_hi << 32) + index_lo (uint32 each)."""
    base = jax.random.key(seed & 0xFFFFFFFF)
    base = jax.random.fold_in(jax.random.fold_in(base, seed >> 32), stream)
    return jax.vmap(lambda lo, hi: jax.random.fold_in(jax.random.fold_in(base, lo), hi))(
        index_lo, index_hi
    )


def _wide_uniform(key, shape):
    """(hi, lo, u): two uint32 words of one 64-bit uniform, and u ~ U[0, 1) float32 of it."""
    bits = jax.random.bits(key, (2, *shape), jnp.uint32)
    hi, lo = bits[0], bits[1]
    u = (hi.astype(jnp.float32) + lo.astype(jnp.float32) * 2.0**-32) * 2.0**-32
    return hi, lo, jnp.minimum(u, 1.0 - 2.0**-24)


def _below(hi, lo, p):
    """64-bit uniform (hi, lo) < p, for p in [0, 1) float32 (exact: p has 24 bits)."""
    scaled = p * 2.0**32
    p_hi = jnp.floor(scaled)
    p_lo = jnp.floor((scaled - p_hi) * 2.0**32)  # exact: scaled's fraction has few bits
    p_hi = p_hi.astype(jnp.uint32)
    p_lo = jnp.minimum(p_lo, 2.0**32 - 1).astype(jnp.uint32)
    return (hi < p_hi) | ((hi == p_hi) & (lo < p_lo))


def _inversion(key, lam):
    """Inversion of the distribution with `INVERSION_STEPS` terms: X = #{j : v < S_j}, the
    tails S_j = p_{j+1} + ... + p_J summed from the top (sums of positive terms: no
    cancellation, so every S_j keeps its relative precision), the first step on all 64 bits
    of the uniform. X <= INVERSION_STEPS: P(X > 48 | lam < 10) < 1e-18 is all it drops."""
    hi, lo, v = _wide_uniform(key, lam.shape)
    terms = [jnp.exp(-lam)]
    for j in range(1, INVERSION_STEPS + 1):
        terms.append(terms[-1] * lam / j)
    tails = [terms[-1]]  # S_{J-1}
    for j in range(INVERSION_STEPS - 1, 0, -1):
        tails.append(tails[-1] + terms[j])  # S_{j-1}
    tails = tails[::-1]  # S_0 .. S_{J-1}
    more = sum((v < tail).astype(lam.dtype) for tail in tails[1:])
    return jnp.where(_below(hi, lo, tails[0]), 1.0 + more, 0.0)


def _log_pmf(k, lam):
    """log P(X = k), written as -(k log1p(d/lam) - d) - log(2 pi k)/2 - Stirling(k) for
    k >= 10 (no cancellation of k log lam against lgamma), directly below."""
    kk = jnp.maximum(k, 10.0)
    d = kk - lam
    stirling = 1 / (12 * kk) - 1 / (360 * kk**3) + 1 / (1260 * kk**5)
    wide = -(kk * jnp.log1p(d / lam) - d) - 0.5 * jnp.log(2 * jnp.pi * kk) - stirling
    narrow = k * jnp.log(lam) - lam - lax.lgamma(jnp.maximum(k, 0.0) + 1)
    return jnp.where(k >= 10, wide, narrow)


def _rejection(key, lam):
    """(k, accepted): Hormann's PTRS, `REJECTION_ROUNDS` rounds, first acceptance kept."""
    lam = jnp.maximum(lam, INVERSION_BELOW)
    b = 0.931 + 2.53 * jnp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)
    draws = jax.random.uniform(key, (REJECTION_ROUNDS, 2, *lam.shape), jnp.float32)
    k_out, done = jnp.zeros_like(lam), jnp.zeros(lam.shape, bool)
    for r in range(REJECTION_ROUNDS):
        u, v = draws[r, 0] - 0.5, draws[r, 1]
        us = 0.5 - jnp.abs(u)
        k = jnp.floor((2 * a / us + b) * u + lam + 0.43)
        quick = (us >= 0.07) & (v <= v_r)
        reject = (k < 0) | ((us < 0.013) & (v > us))
        slow = jnp.log(v * inv_alpha / (a / (us * us) + b)) <= _log_pmf(k, lam)
        accept = (quick | (~reject & slow)) & ~done
        k_out = jnp.where(accept, k, k_out)
        done = done | accept
    return k_out, done


def poisson(key, lam):
    """Poisson draws of mean ``lam`` (float32, 0 <= lam <= MAX_LAM) for one position:
    (counts, rejected), counts exact where not ``rejected`` (`block_poisson` redraws those)."""
    k_inv, k_rej = jax.random.split(key)
    small = lam < INVERSION_BELOW
    k_small = _inversion(k_inv, jnp.where(small, lam, 0.0))
    k_large, accepted = _rejection(k_rej, lam)
    return jnp.where(small, k_small, k_large), ~small & ~accepted


def block_poisson(keys, lam):
    """Poisson counts (float32) of a block's means (n, H, W), one key per position.

    A pixel rejected every round draws again by `jax.random.poisson` with a key folded from
    its position's (a fresh draw is what one more round would be), in a branch taken only
    when the block has such a pixel.
    """
    counts, rejected = jax.vmap(poisson)(keys, lam)

    def redraw(counts):
        again = jax.vmap(lambda k, m: jax.random.poisson(jax.random.fold_in(k, 1), m))(keys, lam)
        return jnp.where(rejected, again.astype(jnp.float32), counts)

    return lax.cond(rejected.any(), redraw, lambda c: c, counts)


def camera_values(intensity, index_lo, index_hi, params: CameraParams, static: CameraStatic):
    """A block's stored values (n, H, W) from its intensities (n, H, W), on the device,
    and the block's brightest mean and largest value before the stored dtype's limit.

    index_lo, index_hi (n,) uint32: the positions' global indices, low and high words.
    The steps of `jscan.inputs.detector_model`: photons, background, blur, Poisson, gain,
    readout noise, rounding, clipping at 0 and at the saturation, the mask. Returns
    (values, lam_max, peak), the last two per position (n,): the caller refuses lam_max >
    `MAX_LAM` and a peak past the stored dtype (values are clipped there, as they must not
    wrap around).
    """
    lam = intensity.astype(jnp.float32) * params.factor + params.background
    if static.blur:
        lam = jnp.einsum("yh,nhw,xw->nyx", params.blur_y, lam, params.blur_x)
    lam_max = lam.max(axis=(1, 2))
    peak = jnp.zeros(lam.shape[0], jnp.float32)
    if static.noise:
        keys = position_keys(static.seed, POISSON_STREAM, index_lo, index_hi)
        adu = block_poisson(keys, jnp.clip(lam, 0.0, MAX_LAM)) * params.gain
        if static.readout:
            keys = position_keys(static.seed, READOUT_STREAM, index_lo, index_hi)
            noise = jax.vmap(lambda k: jax.random.normal(k, lam.shape[1:], jnp.float32))(keys)
            adu = adu + noise * params.readout_noise
        adu = jnp.maximum(jnp.round(adu), 0.0)
        if static.saturation is not None:
            adu = jnp.minimum(adu, static.saturation)
        peak = adu.max(axis=(1, 2))
        lam = jnp.minimum(adu, FLOAT_TOP[static.dtype])
    return jnp.where(params.mask, 0, lam).astype(static.dtype), lam_max, peak
