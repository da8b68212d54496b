"""The probe's own far-field pattern (numpy, float64) and the camera discs read from it.

That it equals the pipeline's pattern of a transparent sample is checked on a cluster in
tests/pipeline/run/test_refuse.py (the dose check's basis).
"""

import numpy as np
import pytest

from jscan.inputs import farfield
from jscan.inputs.config import parse_config


def test_camera_radius_is_zero_on_the_axis_pixel():
    r = farfield.camera_radius((5, 8), 2e-4)
    assert r.shape == (5, 8) and r[2, 4] == 0 and r.min() == 0
    assert r[0, 4] == pytest.approx(2 * 2e-4) and r[2, 0] == pytest.approx(4 * 2e-4)
    assert r[0, 0] == pytest.approx(np.hypot(2, 4) * 2e-4)


def test_bright_field_disc_holds_90_percent_of_the_probe_pattern(scan_config):
    cfg = parse_config(scan_config())
    image = farfield.probe_pattern(cfg)
    assert image.shape == (32, 32) and image.dtype == np.float64
    assert not image.flags.writeable and (image >= 0).all()
    r = farfield.camera_radius(image.shape, cfg.optics.camera_pixel_size)
    radius = farfield.bright_field_radius(cfg)
    share = image[r <= radius].sum() / image.sum()
    below = image[r < radius].sum() / image.sum()  # the pixels on the rim make up the 90 %
    assert below < farfield.BRIGHT_FIELD_FRACTION <= share < 1
    assert 0 < radius < r.max()


def test_probe_pattern_is_kept_and_follows_the_optics(small_scan, to_toml):
    cfg = small_scan()
    first = parse_config(to_toml(cfg))
    assert farfield.probe_pattern(first) is farfield.probe_pattern(parse_config(to_toml(cfg)))
    cfg["optics"]["aperture_diameter"] = 12.0e-6  # half the aperture: less light through
    narrow = farfield.probe_pattern(parse_config(to_toml(cfg)))
    assert narrow.sum() < farfield.probe_pattern(first).sum()


@pytest.mark.parametrize("n", [31, 64, 65])
@pytest.mark.parametrize("pixels", [1.0, 0.37, 2.3, 0.843])
@pytest.mark.reference
def test_centred_dft_is_the_direct_sum(n, pixels, random_field):
    """The chirp-z transform against the float64 direct sum sum_n x_n exp(-2 pi i a m n)
    (centred m, n), camera pixel = ``pixels`` x the natural one, both axes of a 3-D stack:
    1e-12 relative, the rounding of FFTs of length 2N on values of size N."""
    x = random_field((2, n, n + 3), np.complex128)
    alpha = pixels / n
    for axis, size in ((-1, n + 3), (-2, n)):
        k = np.arange(size) - size // 2
        direct = np.exp(-2j * np.pi * alpha * np.outer(k, k))
        ref = np.moveaxis(np.moveaxis(x, axis, -1) @ direct.T, -1, axis)
        got = farfield.centred_dft(x, alpha, axis=axis)
        assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.reference
def test_probe_pattern_at_another_camera_pixel_is_the_direct_sum(small_scan, to_toml):
    """The whole pattern at 0.6x the natural camera pixel, aperture cutting the probe,
    against the matrix DFT of the float64 direct sum: 1e-12 of the peak."""
    data = small_scan()
    o = data["optics"]
    o["camera_pixel_size"] = o["camera_pixel_size"] * 0.6
    o["aperture_diameter"] = 14 * data["probe"]["dx"]
    cfg = parse_config(to_toml(data))
    from jscan.inputs.samples import make_probe

    probe = make_probe(cfg.probe).astype(np.complex128)
    n = probe.shape[-1]
    dxz = cfg.probe.dx * cfg.optics.zoom_factor
    lz = cfg.probe.wavelength * cfg.optics.travel_distance
    y = (np.arange(n) - n // 2) * dxz
    cx, cy = cfg.optics.aperture_center  # off the axis in the small scan
    inside = (y[:, None] - cy) ** 2 + (y[None, :] - cx) ** 2 <= (
        cfg.optics.aperture_diameter / 2
    ) ** 2
    u = (np.arange(n) - n // 2) * cfg.optics.camera_pixel_size / lz
    a = np.exp(-2j * np.pi * np.outer(u, y))
    ref = np.abs(a @ (probe * inside) @ a.T * dxz**2 / lz) ** 2
    got = farfield.probe_pattern(cfg)
    assert np.abs(got - ref).max() <= 1e-12 * ref.max()
