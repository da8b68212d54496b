"""Partial coherence in the kernel: M incoherent probe modes share one window and transform."""

import textwrap

import jax
import numpy as np
import pytest

import jscan
from jscan.core.kernel import microscope_plan

LAM, DX, Z = 633e-9, 2e-6, 0.1
H, W = 16, 24
SHAPE = (60, 70)
OPTICS = (1.3, 15 * DX, Z, 0.7 * LAM * Z / (W * DX * 1.3), (1.1 * DX, -0.6 * DX))


def _positions(rng, n):
    r = rng.integers(0, SHAPE[0] - H + 1, n) + H / 2 + rng.uniform(0.1, 0.9, n)
    c = rng.integers(0, SHAPE[1] - W + 1, n) + W / 2 + rng.uniform(0.1, 0.9, n)
    pos = np.stack([c * DX, r * DX], axis=1)
    pos[::3] = np.round(pos[::3] / DX) * DX  # some on whole pixels: the unshifted entry
    return pos


def _run(sample, pos, field, placement, mesh=None):
    probe = jscan.make_optical_wavefront(field, LAM, DX)
    out = jscan.simple_microscope(sample, pos, probe, *OPTICS, placement=placement, mesh=mesh)
    return np.asarray(out.image_data)


@pytest.mark.parametrize("placement", ["snap", "exact"])
def test_modes_are_the_sum_of_single_mode_runs(rng, random_field, placement):
    modes = random_field((3, H, W))
    sample = jscan.make_sample_function(random_field(SHAPE), DX)
    pos = _positions(rng, 11)
    both = _run(sample, pos, modes, placement)
    singles = sum(_run(sample, pos, m, placement) for m in modes)
    assert both.shape == (11, H, W) and both.dtype == np.float32
    assert np.max(np.abs(both - singles)) <= 2e-6 * np.max(singles)
    # a one-mode stack is the coherent probe
    np.testing.assert_array_equal(
        _run(sample, pos, modes[:1], placement), _run(sample, pos, modes[0], placement)
    )


def test_modes_are_bit_identical_whatever_the_call_size(rng, random_field):
    modes = random_field((2, H, W))
    sample = jscan.make_sample_function(random_field(SHAPE), DX)
    pos = _positions(rng, 9)
    whole = _run(sample, pos, modes, "exact")
    for size in (1, 2, 5):
        parts = [_run(sample, pos[i : i + size], modes, "exact") for i in range(0, 9, size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_traced_shifts_with_modes_match_the_table(rng, random_field):
    modes = random_field((2, H, W))
    sample = jscan.make_sample_function(random_field(SHAPE), DX)
    pos = _positions(rng, 6)
    table = _run(sample, pos, modes, "exact")
    probe = jscan.make_optical_wavefront(modes, LAM, DX)

    @jax.jit
    def traced(p):
        return jscan.simple_microscope(sample, p, probe, *OPTICS, placement="exact").image_data

    # inside jit the positions are traced, so each position's shift is applied on its own
    # ("each"), without the host table; windows were checked on the host above
    got = np.asarray(traced(pos.astype(np.float32)))
    assert np.max(np.abs(got - table)) <= 1e-4 * np.max(table)


def test_plan_keeps_the_modes(random_field):
    probe = jscan.make_optical_wavefront(random_field((4, H, W)), LAM, DX)
    _, plan = microscope_plan(probe, *OPTICS)
    assert plan.illumination.shape == (4, H, W) and plan.spectrum.shape == (4, H, W)
    assert plan.frame.shape == (H, W)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    import numpy as np
    import jscan
    from jscan.core import sharding

    rng = np.random.default_rng(int(sys.argv[1]))
    LAM, DX, Z = 633e-9, 2e-6, 0.1
    H, W, N, SHAPE = 16, 24, 13, (60, 70)
    OPTICS = (1.3, 15 * DX, Z, 0.7 * LAM * Z / (W * DX * 1.3), (1.1 * DX, -0.6 * DX))

    def field(shape):
        return rng.normal(size=shape) + 1j * rng.normal(size=shape)

    r = rng.integers(0, SHAPE[0] - H + 1, N) + H / 2 + rng.uniform(0.1, 0.9, N)
    c = rng.integers(0, SHAPE[1] - W + 1, N) + W / 2 + rng.uniform(0.1, 0.9, N)
    pos = np.stack([c * DX, r * DX], axis=1)
    sample = jscan.make_sample_function(field(SHAPE), DX)
    modes = field((2, H, W))

    def run(f, placement, mesh=None):
        probe = jscan.make_optical_wavefront(f, LAM, DX)
        out = jscan.simple_microscope(
            sample, pos, probe, *OPTICS, placement=placement, mesh=mesh)
        return np.asarray(out.image_data)

    one = sharding.data_mesh(jax.devices()[:1])
    result = {"devices": jax.device_count()}
    for placement in ("snap", "exact"):
        both = run(modes, placement)
        singles = run(modes[0], placement) + run(modes[1], placement)
        result[placement] = {
            "dtype": str(both.dtype),
            "rel": float(np.max(np.abs(both - singles)) / np.max(singles)),
            "bitwise_one_device": bool(np.array_equal(both, run(modes, placement, one))),
        }
    print(json.dumps(result))
    """
)


def test_modes_in_float64_on_four_devices(rng, on_cpu_devices):
    """x64: the 2-mode run equals the sum of the single-mode runs to float64 rounding, and
    4 devices give the 1-device result bit for bit."""
    got = on_cpu_devices(SCRIPT, int(rng.integers(2**31)), x64=True)
    assert got["devices"] == 4
    for placement in ("snap", "exact"):
        assert got[placement]["dtype"] == "float64"
        assert got[placement]["rel"] <= 1e-13, got
        assert got[placement]["bitwise_one_device"], got


def test_single_pattern_functions_refuse_modes(random_field):
    probe = jscan.make_optical_wavefront(random_field((2, H, W)), LAM, DX)
    cut = jscan.make_sample_function(random_field((H, W)), DX)
    with pytest.raises(ValueError, match="2 incoherent modes, which only simple_microscope"):
        jscan.simple_diffractogram(cut, probe, *OPTICS[:4])
