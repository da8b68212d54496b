"""Probes, J1, phantoms and file/zarr samples."""

import math

import numpy as np
import pytest
import zarr
from scipy.special import j1, jn_zeros

from jscan.inputs.config import ProbeConfig, SampleConfig
from jscan.inputs.samples import (
    J1_FIRST_ZERO,
    bessel_j1,
    make_probe,
    sample_region,
    sample_shape,
)


def _j1_series(x: float) -> float:
    return sum(
        (-1) ** m * (x / 2) ** (2 * m + 1) / (math.factorial(m) * math.factorial(m + 1))
        for m in range(40)
    )


@pytest.mark.reference
def test_j1_reference_values():
    assert bessel_j1(1.0) == pytest.approx(0.4400505857, abs=1e-10)
    assert abs(float(bessel_j1(3.8317059702))) < 1e-10
    assert abs(float(bessel_j1(J1_FIRST_ZERO))) < 1e-14
    assert bessel_j1(10.0) == pytest.approx(0.04347274616886141, abs=1e-13)
    assert bessel_j1(100.0) == pytest.approx(-0.0771453520141123, abs=1e-13)
    assert abs(float(bessel_j1(0.0))) < 1e-15


@pytest.mark.reference
def test_j1_matches_series_and_is_odd():
    x = np.random.default_rng(5).uniform(0, 8, 50)
    np.testing.assert_allclose(bessel_j1(x), [_j1_series(v) for v in x], atol=1e-12)
    np.testing.assert_allclose(bessel_j1(-x), -bessel_j1(x), atol=1e-15)
    assert bessel_j1(x.reshape(5, 10)).shape == (5, 10)


@pytest.mark.parametrize("kind", ["gaussian", "airy"])
def test_probe_normalised_and_centred(kind):
    rng = np.random.default_rng(6)
    size, dx = int(rng.integers(16, 80)), float(rng.uniform(1e-8, 1e-6))
    length = float(rng.uniform(3, 8)) * dx
    cfg = ProbeConfig(
        kind=kind,
        dx=dx,
        wavelength=5e-7,
        size=size,
        waist=length if kind == "gaussian" else None,
        radius=length if kind == "airy" else None,
    )
    probe = make_probe(cfg)
    assert probe.shape == (size, size) and probe.dtype == np.complex64
    assert float(np.sum(np.abs(probe.astype(np.complex128)) ** 2)) == pytest.approx(1, abs=1e-6)
    peak = np.unravel_index(np.argmax(np.abs(probe)), probe.shape)
    assert peak == (size // 2, size // 2)


@pytest.mark.reference
def test_gaussian_waist_is_the_1_over_e2_intensity_radius():
    """waist w = 10 px on a 64 px window against the closed forms of the intensity
    exp(-2 r^2 / w^2): I(w) / I(0) = e^-2 (rel 1e-5: complex64 rounding, ~1e-7); the second
    moment <r^2> = w^2 / 2 (rel 1e-6, measured 4e-9: the pixel sum of a Gaussian sampled
    at w/10 equals its integral to exp(-pi^2 w^2 / (2 dx^2)) ~ 0, the window cuts
    exp(-2 (32/10)^2) ~ 1e-9 of it, complex64 rounding ~1e-7); and the power inside r <= w,
    1 - e^-2 = 0.8647, to 1e-2 (measured 2.1e-3): the pixels whose centres lie within w
    stand for the disc, a staircase at the rim, where a 1 px ring holds 4 e^-2 dx / w =
    5.4 % of the power and only part of it is counted wrongly."""
    cfg = ProbeConfig(kind="gaussian", dx=1e-6, wavelength=5e-7, size=64, waist=10e-6)
    intensity = np.abs(make_probe(cfg).astype(np.complex128)) ** 2
    assert intensity[32, 42] / intensity[32, 32] == pytest.approx(math.exp(-2), rel=1e-5)
    x = (np.arange(64) - 32) * 1e-6
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    power = intensity.sum()
    assert np.sum(r2 * intensity) / power == pytest.approx((10e-6) ** 2 / 2, rel=1e-6)
    inside = intensity[r2 <= (10e-6) ** 2].sum() / power
    assert inside == pytest.approx(1 - math.exp(-2), abs=1e-2)


@pytest.mark.reference
def test_airy_first_dark_ring_at_radius():
    """The Airy probe (first dark ring at `radius`, 4 to 12 px) against the closed form
    2 J1(v) / v, v = j_1,1 r / radius (scipy's j1 and first zero j_1,1 = 3.8317), both
    scaled to unit power over the 64 x 64 window, to 1e-6 of the peak (measured 4e-8:
    complex64 rounding, ~6e-8 of the peak); the profile first turns negative at the ring."""
    rng = np.random.default_rng(7)
    size, dx = 64, 1e-7
    idx = np.arange(size) - size // 2
    r = np.hypot(idx[:, None], idx[None, :])  # pixels
    for _ in range(4):
        radius_px = float(rng.uniform(4, 12))
        cfg = ProbeConfig(kind="airy", dx=dx, wavelength=5e-7, size=size, radius=radius_px * dx)
        probe = make_probe(cfg).astype(np.complex128)
        v = jn_zeros(1, 1)[0] * r / radius_px
        safe = np.where(v == 0, 1.0, v)
        airy = np.where(v == 0, 1.0, 2 * j1(safe) / safe)
        airy /= np.linalg.norm(airy)
        assert np.abs(probe - airy).max() <= 1e-6 * airy.max(), radius_px
        profile = probe[size // 2, size // 2 :].real
        first_negative = int(np.argmax(profile < 0))
        assert first_negative - 1 < radius_px <= first_negative


def test_file_probe(tmp_path):
    rng = np.random.default_rng(8)
    field = rng.normal(size=(12, 20)) + 1j * rng.normal(size=(12, 20))
    np.save(tmp_path / "p.npy", field)
    cfg = ProbeConfig(kind="file", dx=1e-6, wavelength=5e-7, path=str(tmp_path / "p.npy"))
    probe = make_probe(cfg)
    assert probe.shape == (12, 20) and probe.dtype == np.complex64
    np.testing.assert_allclose(probe, field / np.linalg.norm(field), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad", [np.ones((2, 2, 3, 4)), np.array([[1.0, np.nan]]), np.zeros(5)])
def test_file_probe_rejects_bad_arrays(tmp_path, bad):
    np.save(tmp_path / "p.npy", bad)
    cfg = ProbeConfig(kind="file", dx=1e-6, wavelength=5e-7, path=str(tmp_path / "p.npy"))
    with pytest.raises(ValueError, match=r"probe\.path"):
        make_probe(cfg)


@pytest.mark.parametrize("phantom", ["siemens_star", "cells"])
def test_subregion_is_bitwise_slice_of_larger_region(phantom):
    rng = np.random.default_rng(9)
    cfg = SampleConfig(kind="phantom", dx=1e-6, phantom=phantom, shape=(300, 340), seed=11)
    for _ in range(3):
        r0, c0 = int(rng.integers(0, 150)), int(rng.integers(0, 170))
        rows, cols = int(rng.integers(60, 150)), int(rng.integers(60, 170))
        big = sample_region(cfg, r0, c0, rows, cols)
        sr, sc = int(rng.integers(0, rows - 10)), int(rng.integers(0, cols - 10))
        h, w = int(rng.integers(1, rows - sr)), int(rng.integers(1, cols - sc))
        small = sample_region(cfg, r0 + sr, c0 + sc, h, w)
        assert small.dtype == np.complex64 and small.shape == (h, w)
        assert small.tobytes() == big[sr : sr + h, sc : sc + w].tobytes()


def test_siemens_star_pattern():
    cfg = SampleConfig(kind="phantom", dx=1e-6, phantom="siemens_star", shape=(200, 200))
    star = sample_region(cfg, 0, 0, 200, 200)
    values = set(np.unique(star).tolist())
    assert len(values) == 2 and 1 + 0j in values
    assert star[0, 0] == 1  # background beyond the outer radius
    # Going once around a circle inside the star crosses 2 * 36 spoke edges.
    theta = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    rr = np.round(100 + 70 * np.sin(theta)).astype(int)
    cc = np.round(100 + 70 * np.cos(theta)).astype(int)
    around = star[rr, cc] == 1
    assert np.count_nonzero(around != np.roll(around, 1)) == 72


def test_cells_seed_changes_pattern_and_values_are_physical():
    base = dict(kind="phantom", dx=1e-6, phantom="cells", shape=(200, 200))
    a = sample_region(SampleConfig(**base, seed=1), 20, 30, 120, 100)
    b = sample_region(SampleConfig(**base, seed=2), 20, 30, 120, 100)
    assert not np.array_equal(a, b)
    for t in (a, b):
        assert np.all(np.abs(t) <= 1) and np.all(np.abs(t) > 0.5)
        assert np.ptp(np.angle(t)) > 1  # a real phase object, not a flat field


def test_file_sample_reads_region(tmp_path):
    rng = np.random.default_rng(10)
    data = (rng.normal(size=(40, 50)) + 1j * rng.normal(size=(40, 50))).astype(np.complex128)
    np.save(tmp_path / "s.npy", data)
    cfg = SampleConfig(kind="file", dx=1e-6, path=str(tmp_path / "s.npy"))
    assert sample_shape(cfg) == (40, 50)
    region = sample_region(cfg, 7, 11, 20, 30)
    assert region.dtype == np.complex64
    np.testing.assert_array_equal(region, data[7:27, 11:41].astype(np.complex64))


def test_zarr_sample_reads_region(tmp_path):
    rng = np.random.default_rng(11)
    data = (rng.normal(size=(45, 38)) + 1j * rng.normal(size=(45, 38))).astype(np.complex64)
    store = tmp_path / "s.zarr"
    array = zarr.create_array(
        store=store, name="obj", shape=data.shape, chunks=(16, 16), dtype="complex64", zarr_format=3
    )
    array[:] = data
    cfg = SampleConfig(kind="zarr", dx=1e-6, path=str(store), array="obj")
    assert sample_shape(cfg) == (45, 38)
    np.testing.assert_array_equal(sample_region(cfg, 13, 5, 30, 20), data[13:43, 5:25])
    with pytest.raises(ValueError, match=r"sample\.array"):
        sample_shape(SampleConfig(kind="zarr", dx=1e-6, path=str(store), array="missing"))


@pytest.mark.parametrize("region", [(-1, 0, 5, 5), (0, 0, 101, 5), (95, 95, 3, 6)])
def test_region_outside_sample_is_rejected(region):
    cfg = SampleConfig(kind="phantom", dx=1e-6, phantom="cells", shape=(100, 100), seed=0)
    with pytest.raises(ValueError, match=r"outside the sample of shape \(100, 100\)"):
        sample_region(cfg, *region)
