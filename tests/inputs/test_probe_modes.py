"""Probe modes from the config: the Hermite-Gaussian construction, file probes, refusals."""

import numpy as np
import pytest

from jscan.errors import ConfigError
from jscan.inputs.config import ProbeConfig, parse_config
from jscan.inputs.farfield import probe_pattern
from jscan.inputs.samples import make_probe, probe_mode_count, probe_shape


def _gaussian(**kw):
    return ProbeConfig(kind="gaussian", dx=1e-6, wavelength=5e-7, size=48, waist=8e-6, **kw)


@pytest.mark.parametrize("kind", ["gaussian", "airy"])
@pytest.mark.parametrize("ratio", [0.5, 1.0, 0.2])
def test_procedural_modes_are_orthogonal_with_geometric_powers(kind, ratio):
    extra = {"waist": 8e-6} if kind == "gaussian" else {"radius": 10e-6}
    cfg = ProbeConfig(
        kind=kind, dx=1e-6, wavelength=5e-7, size=48, modes=4, mode_power_ratio=ratio, **extra
    )
    probe = make_probe(cfg).astype(np.complex128)
    assert probe.shape == (4, 48, 48) and probe_mode_count(probe) == 4
    assert probe_shape(cfg) == (48, 48)
    flat = probe.reshape(4, -1)
    gram = flat.conj() @ flat.T
    powers = np.real(np.diag(gram))
    assert abs(powers.sum() - 1) < 1e-6  # total power as for one mode
    np.testing.assert_allclose(powers / powers[0], ratio ** np.arange(4), rtol=1e-5)
    off = gram - np.diag(np.diag(gram))
    assert np.max(np.abs(off)) < 1e-6  # mutually orthogonal
    # the first mode is the coherent probe, with its share of the power
    single = make_probe(ProbeConfig(kind=kind, dx=1e-6, wavelength=5e-7, size=48, **extra)).astype(
        np.complex128
    )
    np.testing.assert_allclose(probe[0], single * np.sqrt(powers[0]), atol=1e-6)


@pytest.mark.reference
def test_gaussian_modes_are_hermite_gaussian():
    probe = make_probe(_gaussian(modes=3, mode_power_ratio=1.0)).astype(np.complex128)
    n = 48
    t = (np.arange(n) - n // 2) * np.sqrt(2) * 1e-6 / 8e-6
    base = np.exp(-((t[:, None] ** 2 + t[None, :] ** 2) / 2))
    hg10 = base * (2 * t)[None, :]  # H_1 along x
    hg01 = base * (2 * t)[:, None]  # H_1 along y
    for mode, expected in ((probe[1], hg10), (probe[2], hg01)):
        expected = expected / np.linalg.norm(expected) * np.linalg.norm(mode)
        np.testing.assert_allclose(mode, expected, atol=1e-6)


def test_a_one_mode_config_is_the_coherent_probe():
    np.testing.assert_array_equal(make_probe(_gaussian(modes=1)), make_probe(_gaussian()))


def test_file_probe_with_modes(tmp_path, random_field):
    modes = random_field((3, 20, 24)).astype(np.complex128)
    np.save(tmp_path / "p.npy", modes)
    cfg = ProbeConfig(kind="file", dx=1e-6, wavelength=5e-7, path=str(tmp_path / "p.npy"))
    probe = make_probe(cfg)
    assert probe.shape == (3, 20, 24) and probe_shape(cfg) == (20, 24)
    total = np.sum(np.abs(modes) ** 2)
    np.testing.assert_allclose(probe, modes / np.sqrt(total), rtol=1e-5, atol=1e-7)


def test_probe_pattern_of_modes_is_the_power_weighted_sum(
    tmp_path, random_field, demo_scan, to_toml
):
    modes = random_field((2, 64, 64)).astype(np.complex128) * np.exp(
        -((np.arange(64) - 32) ** 2)[None, :, None] / 200.0
    )
    data = demo_scan()
    data["probe"] = {"kind": "file", "path": "p.npy", "dx": 1e-6, "wavelength": 500e-9}
    patterns, weights = [], []
    for name, arr in (("both", modes), ("a", modes[0]), ("b", modes[1])):
        folder = tmp_path / name
        folder.mkdir()
        np.save(folder / "p.npy", arr)
        patterns.append(probe_pattern(parse_config(to_toml(data), base_dir=folder)))
        weights.append(np.sum(np.abs(arr) ** 2))
    both, a, b = patterns
    expected = (weights[1] * a + weights[2] * b) / weights[0]
    # make_probe gives complex64: float32 rounding
    np.testing.assert_allclose(both, expected, rtol=1e-5, atol=1e-6 * both.max())


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("mode_power_ratio", 1.5, r'"probe.mode_power_ratio" must be in \(0, 1\]'),
        ("mode_power_ratio", 0.0, r'"probe.mode_power_ratio" must be > 0'),
        ("modes", 0, r'"probe.modes" must be >= 1'),
        ("modes", 2.5, r'"probe.modes" must be an integer'),
    ],
)
def test_bad_mode_keys_are_refused(demo_scan, to_toml, key, value, match):
    data = demo_scan()
    data["probe"][key] = value
    with pytest.raises(ConfigError, match=match):
        parse_config(to_toml(data))


def test_modes_key_is_refused_for_a_file_probe(tmp_path, demo_scan, to_toml):
    np.save(tmp_path / "p.npy", np.ones((2, 8, 8), np.complex64))
    data = demo_scan()
    data["probe"] = {"kind": "file", "path": "p.npy", "dx": 1e-6, "wavelength": 5e-7, "modes": 2}
    with pytest.raises(ConfigError, match=r'"probe.modes" is not allowed when probe.kind = "file"'):
        parse_config(to_toml(data), base_dir=tmp_path)


def test_too_many_modes_for_the_window_are_refused():
    cfg = ProbeConfig(
        kind="gaussian",
        dx=1e-6,
        wavelength=5e-7,
        size=4,
        waist=1e-6,
        modes=30,
        mode_power_ratio=0.5,
    )
    with pytest.raises(ValueError, match=r"probe.modes = 30: mode .* vanishes"):
        make_probe(cfg)


def test_new_keys_at_their_defaults_keep_the_config_hash(demo_scan, to_toml):
    data = demo_scan()
    base = parse_config(to_toml(data)).hash
    data["probe"]["modes"] = 1
    data["detector"].update(background=0.0, gain=1.0, readout_noise=0.0, psf_sigma=0.0)
    assert parse_config(to_toml(data)).hash == base
    data["probe"]["modes"] = 2
    assert parse_config(to_toml(data)).hash != base
