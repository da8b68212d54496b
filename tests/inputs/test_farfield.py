"""The probe's own far-field pattern (numpy, float64) and the camera discs read from it.

That it equals the pipeline's pattern of a transparent sample is checked on a cluster in
tests/pipeline/test_refuse.py (the dose check's basis).
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
