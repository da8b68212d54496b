"""The scan plan: the window-leaves-sample rule and the float32 products, checked on the
client before anything is written (config parsing alone is a pure schema)."""

import math

import numpy as np
import pytest

from jscan.errors import ConfigError
from jscan.inputs.config import parse_config
from jscan.pipeline.plan import plan_scan

LEAVES = [
    (("shape", [80, 40]), ["scan leaves the sample", "top edge", "scan.shape"]),
    (("start", [0.0, 0.0]), ["scan leaves the sample", "left edge"]),
]


@pytest.mark.parametrize(("edit", "needles"), LEAVES)
def test_scan_leaving_the_sample_is_refused_by_the_plan_naming_the_key(
    demo_scan, to_toml, edit, needles
):
    """Parsing is a pure schema: the window rule needs the sample, so the plan checks it."""
    data = demo_scan()
    key, value = edit
    data["scan"][key] = value
    config = parse_config(to_toml(data))
    with pytest.raises(ConfigError) as info:
        plan_scan(config)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_scan_fit_matches_brute_force(demo_scan, to_toml):
    rng = np.random.default_rng(13)
    for _ in range(20):
        data = demo_scan()
        rows, cols = (int(v) for v in rng.integers(100, 400, 2))
        n_rows, n_cols = (int(v) for v in rng.integers(1, 12, 2))
        step = float(rng.uniform(1, 40)) * 1e-6
        data["sample"]["shape"] = [rows, cols]
        data["scan"].update(shape=[n_rows, n_cols], step=step)
        fits = True
        for r in range(n_rows):
            for c in range(n_cols):
                y = rows * 1e-6 / 2 + (r - (n_rows - 1) / 2) * step
                x = cols * 1e-6 / 2 + (c - (n_cols - 1) / 2) * step
                # the window rule: floor(u + tol), tol = 1e-3 px (jscan.core.placement)
                top, left = math.floor(y / 1e-6 - 32 + 1e-3), math.floor(x / 1e-6 - 32 + 1e-3)
                fits &= top >= 0 and left >= 0 and top + 64 <= rows and left + 64 <= cols
        config = parse_config(to_toml(data))
        if fits:
            plan_scan(config)
        else:
            with pytest.raises(ConfigError, match="scan leaves the sample"):
                plan_scan(config)


def test_file_sample_too_small_for_scan(tmp_path, demo_scan, to_toml):
    np.save(tmp_path / "s.npy", np.ones((100, 100), np.complex64))
    data = demo_scan()
    data["sample"] = {"kind": "file", "dx": 1e-6, "path": "s.npy"}
    config = parse_config(to_toml(data), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="use a larger sample"):
        plan_scan(config)
    data["scan"] = {"kind": "raster", "shape": [3, 3], "step": 5e-6}
    config = parse_config(to_toml(data), base_dir=tmp_path)
    assert plan_scan(config).sample_shape == (100, 100)
    assert config.sample.path == str(tmp_path / "s.npy")


@pytest.mark.parametrize(
    ("edits", "needles"),
    [
        ({"probe.wavelength": 1e-300}, ['"probe.wavelength" = 1e-300 underflows float32']),
        ({"optics.travel_distance": 1e39}, ['"optics.travel_distance"', "overflows float32"]),
        ({"optics.zoom_factor": 1e30}, ["illumination scale", "overflows", "zoom_factor"]),
        ({"probe.wavelength": 1e-37}, ["lambda*z", "underflows", "probe.wavelength"]),
        ({"optics.aperture_diameter": 1e-20}, ["aperture radius^2", "aperture_diameter"]),
        (
            {"optics.travel_distance": 1e30, "optics.camera_pixel_size": 1e-10},
            ["chirp phase scale", "underflows", "camera_pixel_size"],
        ),
        ({"optics.camera_pixel_size": 1e38}, ["sampling ratio", "overflows"]),
        ({"probe.dx": 1e-30, "sample.dx": 1e-30}, ["illumination scale", "probe.dx"]),
    ],
)
def test_float32_products_are_refused_naming_the_keys(demo_scan, to_toml, edits, needles):
    """The kernel computes these in float32: 0 or inf there would give NaN patterns.

    Single values are refused by parsing; products need the probe's window, so the plan.
    """
    data = demo_scan()
    for full, value in edits.items():
        section, key = full.split(".")
        data[section][key] = value
    with pytest.raises(ConfigError) as info:
        plan_scan(parse_config(to_toml(data)))
    message = str(info.value)
    assert "\n" not in message and "metres" in message
    for needle in needles:
        assert needle in message, message
