"""The detector model: each effect's statistics, independent streams, dtype, mask, refusals."""

import numpy as np
import pytest

from jscan.errors import ConfigError
from jscan.inputs.config import parse_config
from jscan.inputs.detector_model import (
    READOUT_STREAM,
    detector_mask,
    detector_model,
    detector_values,
    gaussian_blur,
    host_poisson,
    pattern_values,
    stream,
)
from jscan.inputs.digest import inputs_hash

SHAPE = (64, 64)
N = 8  # positions: 8 x 64 x 64 = 32768 samples per statistic


@pytest.fixture
def model(small_scan, to_toml, tmp_path):
    """model(**detector keys) -> DetectorModel for 64x64 patterns, 1 photon per unit."""

    def make(dose=1.0, **keys):
        data = small_scan(dose=dose)
        data["detector"].update(keys)
        (tmp_path / "scan.toml").write_text(to_toml(data))
        cfg = parse_config(to_toml(data), base_dir=tmp_path)
        return detector_model(cfg, SHAPE, factor=1.0)

    return make


def _flat(level):
    return np.full((N, *SHAPE), level, np.float32)


def _stats(values):
    v = values.astype(np.float64)
    return v.mean(), v.var()


@pytest.mark.parametrize("lam", [1e-3, 0.05, 0.4999, 0.5, 3.0, 31.0, 1e4])
@pytest.mark.reference
def test_host_poisson_matches_the_pmf(lam, poisson_fit):
    """Mean, variance and pmf (chi-square) of 400k draws, |z| < 5: the shared Poisson process
    of the dim pixels (lam < SPARSE_BELOW), numpy's sampler above, and their boundary."""
    out = np.zeros(400_000, np.int64)
    host_poisson(stream(4, 9, 0), np.full(out.shape, lam), out, np.inf)
    fit = poisson_fit(out, lam)
    assert abs(fit.z_mean) < 5 and abs(fit.z_var) < 5 and fit.z_chi2 < 5, fit


def test_host_poisson_with_no_arrival_draws_only_the_bright_pixels():
    """A dim total of 1e-9: almost surely no arrival, and the bright pixel still draws."""
    lam = np.full(64, 1e-11)
    lam[5] = 40.0
    out = np.zeros(64, np.int64)
    host_poisson(stream(0, 1, 0), lam, out, np.inf)
    assert out[5] > 0 and out.sum() == out[5]


@pytest.mark.reference
def test_host_poisson_of_a_mixed_pattern_is_poisson_per_pixel(poisson_fit):
    """Dim and bright pixels interleaved, zeros among them: over 2000 positions each pixel
    class has its own law, a zero mean gives no count, and neighbours are uncorrelated."""
    lam = np.tile([0.0, 0.02, 0.3, 0.7, 12.0, 0.0, 0.1, 2.0], 512)
    draws = np.zeros((2000, lam.size), np.int64)
    for i in range(2000):
        host_poisson(stream(1, i, 0), lam, draws[i], np.inf)
    for value in (0.02, 0.3, 0.7, 12.0):
        fit = poisson_fit(draws[:, lam == value], value)
        assert abs(fit.z_mean) < 5 and abs(fit.z_var) < 5 and fit.z_chi2 < 5, (value, fit)
    assert draws[:, lam == 0].sum() == 0
    a, b = draws[:, 2::8].ravel(), draws[:, 3::8].ravel()  # neighbouring dim pixels
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(a.size)


@pytest.mark.reference
def test_poisson_statistics(model):
    mean, var = _stats(detector_values(_flat(20.0), np.arange(N), model()))
    assert abs(mean - 20) < 0.15 and abs(var / 20 - 1) < 0.05


@pytest.mark.reference
def test_background_adds_poisson_photons(model):
    mean, var = _stats(detector_values(_flat(0.0), np.arange(N), model(background=3.5)))
    assert abs(mean - 3.5) < 0.05 and abs(var / 3.5 - 1) < 0.05


@pytest.mark.reference
def test_gain_scales_mean_and_variance(model):
    values = detector_values(_flat(20.0), np.arange(N), model(gain=3.0))
    mean, var = _stats(values)
    assert np.all(values % 3 == 0)  # whole photons times an integer gain
    assert abs(mean / 60 - 1) < 0.01 and abs(var / (9 * 20) - 1) < 0.05


@pytest.mark.reference
def test_readout_noise_adds_variance_and_rounds(model):
    values = detector_values(_flat(100.0), np.arange(N), model(readout_noise=4.0, gain=1.5))
    mean, var = _stats(values)
    # gain^2 lam + sigma^2 + 1/12 (rounding)
    assert abs(mean / 150 - 1) < 0.01
    assert abs(var / (1.5**2 * 100 + 16 + 1 / 12) - 1) < 0.05
    assert values.dtype == np.uint32


def test_negative_values_become_zero(model):
    values = detector_values(_flat(0.0), np.arange(N), model(readout_noise=2.0))
    assert values.min() == 0 and 0.3 < np.mean(values == 0) < 0.7


@pytest.mark.reference
def test_saturation_clips_and_picks_uint16(model):
    m = model(saturation=25)
    values = detector_values(_flat(20.0), np.arange(N), m)
    assert values.dtype == np.uint16 and values.max() == 25
    from math import exp, factorial

    above = 1 - sum(exp(-20) * 20**k / factorial(k) for k in range(25))  # P(count >= 25)
    assert abs(np.mean(values == 25) - above) < 0.01
    unclipped = detector_values(_flat(20.0), np.arange(N), model())
    np.testing.assert_array_equal(values, np.minimum(unclipped, 25))


@pytest.mark.parametrize(
    ("dose", "saturation", "dtype"),
    [(0.0, None, "float32"), (1.0, None, "uint32"), (1.0, 65535, "uint16"), (1.0, 65536, "uint32")],
)
def test_pattern_dtype(small_scan, to_toml, dose, saturation, dtype):
    data = small_scan(dose=dose)
    if saturation is not None:
        data["detector"]["saturation"] = saturation
    assert pattern_values(parse_config(to_toml(data))).dtype == np.dtype(dtype)


@pytest.mark.reference
def test_psf_blur_conserves_level_and_has_its_width():
    delta = np.zeros((41, 41))
    delta[20, 20] = 1.0
    blurred = gaussian_blur(delta, 2.0)
    r = np.arange(41) - 20
    assert abs(blurred.sum() - 1) < 1e-12
    # variance sigma^2, less the tails beyond 4 sigma
    assert abs(np.sum(blurred.sum(axis=0) * r**2) - 4.0) < 2e-3
    flat = gaussian_blur(np.full((10, 13), 7.0), 3.0)  # renormalised at the edges
    np.testing.assert_allclose(flat, 7.0, rtol=1e-12)
    assert gaussian_blur(delta, 0.0) is delta


def test_psf_blurs_the_expected_counts(model):
    lam = np.zeros((N, *SHAPE), np.float32)
    lam[:, 32, 32] = 1000.0
    values = detector_values(lam, np.arange(N), model(psf_sigma=1.5)).astype(np.float64)
    expected = gaussian_blur(lam[0].astype(np.float64), 1.5)
    np.testing.assert_allclose(
        values.mean(axis=0)[28:37, 28:37],
        expected[28:37, 28:37],
        atol=4 * np.sqrt(expected.max() / N),
    )
    assert abs(values.sum(axis=(1, 2)).mean() - 1000) < 3 * np.sqrt(1000 / N)


def test_psf_and_mask_apply_to_float_intensities(model):
    m = model(dose=0.0, psf_sigma=1.0, gaps={"rows": [5]})
    lam = np.random.default_rng(1).uniform(0, 1, (2, *SHAPE)).astype(np.float32)
    values = detector_values(lam, np.arange(2), m)
    assert values.dtype == np.float32 and np.all(values[:, 5, :] == 0)
    np.testing.assert_allclose(
        values[0, 6:], gaussian_blur(lam[0].astype(np.float64), 1.0)[6:], rtol=1e-6
    )


def test_readout_noise_does_not_change_the_poisson_draws(model):
    """Streams are independent: the counts with readout noise are the Poisson counts without
    it plus the readout stream's own draws."""
    lam = np.random.default_rng(2).uniform(0, 30, (N, *SHAPE)).astype(np.float32)
    index = np.arange(40, 40 + N)
    counts = detector_values(lam, index, model())
    noisy = detector_values(lam, index, model(readout_noise=2.5))
    for k, i in enumerate(index):
        noise = stream(11, int(i), READOUT_STREAM).normal(0.0, 1.0, SHAPE)
        expected = np.maximum(np.rint(counts[k] + 2.5 * noise), 0)
        np.testing.assert_array_equal(noisy[k], expected)
    # and the saturation or mask, which draw nothing, change no draw either
    clipped = detector_values(lam, index, model(readout_noise=2.5, saturation=20))
    np.testing.assert_array_equal(clipped, np.minimum(noisy, 20))


def test_values_depend_on_the_global_index_not_the_block(model):
    m = model(background=1.0, psf_sigma=0.8, gain=2.0, readout_noise=1.0, saturation=60)
    lam = np.random.default_rng(3).uniform(0, 20, (N, *SHAPE)).astype(np.float32)
    whole = detector_values(lam, np.arange(N), m)
    parts = [detector_values(lam[i : i + 3], np.arange(i, min(i + 3, N)), m) for i in (0, 3, 6)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(detector_values(lam, np.arange(1, N + 1), m), whole)


def test_mask_from_bad_pixels_and_gaps(model, tmp_path):
    bad = np.zeros(SHAPE, bool)
    bad[3, 7] = bad[60, 2] = True
    np.save(tmp_path / "bad.npy", bad)
    m = model(bad_pixels="bad.npy", gaps={"rows": [10, 11], "cols": [32]})
    expected = bad.copy()
    expected[[10, 11], :] = True
    expected[:, 32] = True
    np.testing.assert_array_equal(m.mask, expected)
    values = detector_values(_flat(50.0), np.arange(N), m)
    assert np.all(values[:, expected] == 0) and np.all(values[:, ~expected] > 0)


def test_photon_effects_are_refused_with_dose_zero(small_scan, to_toml):
    for key, value in (
        ("background", 1.0),
        ("gain", 2.0),
        ("readout_noise", 1.0),
        ("saturation", 100),
    ):
        data = small_scan(dose=0.0)
        data["detector"][key] = value
        with pytest.raises(ConfigError, match=rf'"detector.{key}" needs photons.*dose > 0'):
            parse_config(to_toml(data))


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("saturation", 2**32, r"beyond uint32"),
        ("saturation", 100.5, r'"detector.saturation" must be an integer'),
        ("gain", 0.0, r'"detector.gain" must be > 0'),
        ("background", -1.0, r'"detector.background" must be >= 0'),
        ("psf_sigma", "2", r'"detector.psf_sigma" must be a number'),
        ("gaps", [3, 4], r'"detector.gaps" must be a table'),
        ("gaps", {"row": [3]}, r'"detector.gaps" must be a table'),
        ("gaps", {"rows": 3}, r'"detector.gaps.rows" must be a list'),
        ("gaps", {"rows": [-1]}, r'"detector.gaps.rows\[0\]" must be >= 0'),
        ("bad_pixels", "missing.npy", r'"detector.bad_pixels": file not found'),
    ],
)
def test_bad_detector_keys_are_refused(small_scan, to_toml, tmp_path, key, value, match):
    data = small_scan(dose=10.0)
    data["detector"][key] = value
    with pytest.raises(ConfigError, match=match):
        parse_config(to_toml(data), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((64, 63), bool), r"has shape \(64, 63\), but the patterns are 64x64"),
        (np.zeros((64, 64), np.complex64), r"has dtype complex64"),
        (np.full((64, 64), np.nan), r"values other than 0 and 1 \(or NaN/inf\)"),
        (np.full((64, 64), 2), r"values other than 0 and 1"),
    ],
)
def test_bad_pixel_files_are_refused(small_scan, to_toml, tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    data = small_scan(dose=10.0)
    data["detector"]["bad_pixels"] = "bad.npy"
    cfg = parse_config(to_toml(data), base_dir=tmp_path)
    with pytest.raises(ConfigError, match=rf'"detector.bad_pixels": .*{match}'):
        detector_mask(cfg, SHAPE)


def test_integer_bad_pixel_files_are_accepted(model, tmp_path):
    array = np.zeros(SHAPE, np.uint8)
    array[1, 2] = 1
    np.save(tmp_path / "bad.npy", array)
    assert model(bad_pixels="bad.npy").mask.sum() == 1


def test_gaps_outside_the_camera_are_refused(small_scan, to_toml):
    data = small_scan(dose=10.0)
    data["detector"]["gaps"] = {"cols": [5, 64]}
    cfg = parse_config(to_toml(data))
    with pytest.raises(ConfigError, match=r'"detector.gaps.cols" holds 64, outside'):
        detector_mask(cfg, SHAPE)


def test_the_bad_pixel_file_is_fingerprinted(small_scan, to_toml, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros(SHAPE, bool))
    data = small_scan(dose=10.0)
    data["detector"]["bad_pixels"] = "bad.npy"
    cfg = parse_config(to_toml(data), base_dir=tmp_path)
    before = inputs_hash(cfg)
    changed = np.zeros(SHAPE, bool)
    changed[0, 0] = True
    np.save(tmp_path / "bad.npy", changed)
    assert inputs_hash(cfg) != before
