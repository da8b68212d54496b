"""The device camera (`jscan.core.detector`): its Poisson sampler against the closed-form pmf,
independent streams and positions, and values that depend on the global index alone (block
size, one device or four)."""

import math
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jscan.core import detector

LAMS = [1e-3, 0.05, 0.7, 3.0, 9.99, 10.0, 31.0, 400.0, 1e4]


def _draws(lam, n=400_000, seed=7):
    keys = detector.position_keys(
        seed, 0, jnp.arange(4, dtype=jnp.uint32), jnp.zeros(4, jnp.uint32)
    )
    lam = jnp.full((4, n // 4), lam, jnp.float32)
    return np.asarray(jax.jit(lambda k, m: detector.block_poisson(k, m))(keys, lam))  # traced anew


@pytest.mark.parametrize("lam", LAMS)
@pytest.mark.reference
def test_poisson_matches_the_pmf(lam, poisson_fit):
    """Mean, variance and the whole pmf (chi-square) of 400k draws, |z| < 5 each: both
    samplers (inversion below 10, rejection from 10) and their boundary."""
    fit = poisson_fit(_draws(lam), lam)
    assert abs(fit.z_mean) < 5 and abs(fit.z_var) < 5 and fit.z_chi2 < 5, fit


@pytest.mark.reference
def test_poisson_of_a_tiny_mean_keeps_its_relative_precision():
    """lam = 1e-7: the first step compares all 64 bits of the uniform, so the rate of ones is
    lam, not a multiple of float32's 2^-24 (which would give 0 or 6e-8)."""
    n = 2**27
    keys = detector.position_keys(1, 0, jnp.arange(64, dtype=jnp.uint32), jnp.zeros(64, jnp.uint32))
    ones = jax.jit(
        lambda k: detector.block_poisson(k, jnp.full((64, n // 64), 1e-7, jnp.float32)).sum()
    )(keys)
    expected = n * 1e-7  # 13.4: Poisson, so within 5 sigma = 18
    assert abs(float(ones) - expected) < 5 * np.sqrt(expected)


@pytest.mark.reference
def test_rejected_pixels_are_drawn_again_exactly(monkeypatch, poisson_fit):
    """With 1 rejection round many pixels of lam >= 10 are rejected; their redraw gives
    them their exact law, so the result is still Poisson."""
    monkeypatch.setattr(detector, "REJECTION_ROUNDS", 1)
    _, rejected = jax.jit(detector.poisson)(jax.random.key(0), jnp.full((300, 300), 25.0))
    assert float(rejected.mean()) > 0.02
    fit = poisson_fit(_draws(25.0, n=200_000), 25.0)
    assert abs(fit.z_mean) < 5 and abs(fit.z_var) < 5 and fit.z_chi2 < 5, fit


def test_the_inversion_drops_less_than_1e_18():
    """The tail beyond INVERSION_STEPS at the largest mean it serves, in float64."""
    lam, k = detector.INVERSION_BELOW, np.arange(detector.INVERSION_STEPS + 1, 400)
    tail = np.exp(k * np.log(lam) - lam - np.array([math.lgamma(v + 1) for v in k])).sum()
    assert tail < 1e-18


def test_inversion_counts_are_whole_and_within_the_steps_for_every_mean_below_10():
    """10^5 means across [0, 10): whole counts, none past INVERSION_STEPS, and no loop to
    hang in (tails subtracted term by term once stalled above 0 for some means)."""
    lam = jnp.linspace(0.0, 9.999, 100_000, dtype=jnp.float32).reshape(100, 1000)
    counts = jax.jit(lambda k, m: detector.poisson(k, m)[0])(jax.random.key(2), lam)
    assert float(counts.max()) <= detector.INVERSION_STEPS
    assert np.all(np.asarray(counts) == np.round(np.asarray(counts)))


def test_streams_and_neighbouring_positions_are_independent():
    """Correlation of the counts of neighbouring positions, and of the Poisson and readout
    streams of one position, is 0 within 5 / sqrt(n)."""
    n_pos, pixels = 64, 4096
    lo, hi = jnp.arange(n_pos, dtype=jnp.uint32), jnp.zeros(n_pos, jnp.uint32)
    counts = np.asarray(
        detector.block_poisson(detector.position_keys(5, 0, lo, hi), jnp.full((n_pos, pixels), 2.0))
    )
    readout = np.asarray(
        jax.vmap(lambda k: jax.random.normal(k, (pixels,)))(detector.position_keys(5, 1, lo, hi))
    )
    limit = 5 / np.sqrt((n_pos - 1) * pixels)
    neighbours = np.corrcoef(counts[:-1].ravel(), counts[1:].ravel())[0, 1]
    streams = np.corrcoef(counts.ravel(), readout.ravel())[0, 1]
    assert abs(neighbours) < limit and abs(streams) < limit
    # and the high word of the index makes another position
    other = detector.position_keys(5, 0, lo, hi + 1)
    assert not np.array_equal(
        np.asarray(detector.block_poisson(other, jnp.full((n_pos, pixels), 2.0))), counts
    )


def _camera(shape, **kw):
    h, w = shape
    params = detector.CameraParams(
        factor=np.float32(50.0),
        background=np.float32(0.3),
        blur_y=np.eye(h, dtype=np.float32),
        blur_x=np.eye(w, dtype=np.float32),
        gain=np.float32(1.5),
        readout_noise=np.float32(0.8),
        mask=np.zeros(shape, bool),
    )
    static = detector.CameraStatic(
        seed=2**40 + 3, dtype="uint16", noise=True, blur=False, readout=True, saturation=60000
    )
    return params._replace(**kw), static


def test_values_depend_on_the_global_index_not_the_block(rng):
    intensity = rng.uniform(0, 2, (12, 16, 16)).astype(np.float32)
    params, static = _camera((16, 16))
    index = np.arange(1000, 1012, dtype=np.uint32)
    camera = jax.jit(detector.camera_values, static_argnums=4)
    whole = np.asarray(camera(intensity, index, 0 * index, params, static)[0])
    parts = [
        np.asarray(camera(intensity[a:b], index[a:b], 0 * index[a:b], params, static)[0])
        for a, b in ((0, 5), (5, 6), (6, 12))
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    shifted = np.asarray(camera(intensity, index + 1, 0 * index, params, static)[0])
    assert not np.array_equal(shifted, whole)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from jscan.core import detector
    from jscan.core.sharding import data_mesh
    params = detector.CameraParams(np.float32(80.0), np.float32(0.1), np.eye(8, dtype=np.float32),
        np.eye(8, dtype=np.float32), np.float32(1.0), np.float32(0.0), np.zeros((8, 8), bool))
    static = detector.CameraStatic(11, "uint32", True, False, False, None)
    x = np.random.default_rng(int(sys.argv[1])).uniform(0, 3, (16, 8, 8)).astype(np.float32)
    idx = np.arange(16, dtype=np.uint32) * 977
    camera = jax.jit(detector.camera_values, static_argnums=4)
    mesh = data_mesh()
    sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
    on_all = camera(sharded, idx, 0 * idx, params, static)[0]
    one = [np.asarray(camera(x[i:i+1], idx[i:i+1], 0 * idx[i:i+1], params, static)[0])
           for i in range(16)]
    print(json.dumps({"devices": len(on_all.devices()), "values": np.asarray(on_all).tolist(),
                      "singles": np.concatenate(one).tolist()}))
    """
)


def test_values_on_four_devices_equal_those_on_one(rng, on_cpu_devices):
    """The same block sharded over 4 CPU devices and one position per call on one device:
    bit for bit (a subprocess, since the device count is fixed when JAX starts)."""
    seed = int(rng.integers(2**31))
    outs = {count: on_cpu_devices(SCRIPT, seed, devices=count) for count in (4, 1)}
    assert outs[4]["devices"] == 4 and outs[1]["devices"] == 1
    assert outs[4]["values"] == outs[1]["values"] == outs[4]["singles"] == outs[1]["singles"]
    assert np.asarray(outs[4]["values"]).sum() > 0
