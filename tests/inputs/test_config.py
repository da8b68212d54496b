"""TOML config parsing, validation, cross-checks and the physics hash."""

import math
import os

import numpy as np
import pytest
import zarr

from jscan.errors import ConfigError
from jscan.inputs.config import DEMO_CONFIG, Config, load_config, parse_config, with_overrides


def test_demo_config_parses_with_sensible_physics():
    config = parse_config(DEMO_CONFIG)
    assert isinstance(config, Config) and config.text == DEMO_CONFIG
    probe, optics = config.probe, config.optics
    assert (probe.kind, probe.size, config.sample.phantom) == ("gaussian", 64, "siemens_star")
    natural = probe.wavelength * optics.travel_distance / (probe.size * probe.dx)
    assert optics.camera_pixel_size == pytest.approx(natural / optics.zoom_factor / 2)
    assert config.scan.shape == (64, 64) and config.detector.dose == 1e5
    # A step below the probe's waist: the bright field resolves the star's spokes, no plaid.
    assert config.scan.step < probe.waist
    assert config.run.block_size == 512 and len(config.hash) == 64


def test_every_kind_round_trips(tmp_path):
    rng = np.random.default_rng(12)
    probe = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    np.save(tmp_path / "probe.npy", probe)
    np.save(tmp_path / "pos.npy", rng.uniform(20e-6, 60e-6, (25, 2)))
    os.mkdir(tmp_path / "data")
    array = zarr.create_array(
        store=tmp_path / "data" / "obj.zarr",
        name="t",
        shape=(80, 90),
        chunks=(32, 32),
        dtype="complex64",
    )
    array[:] = 1
    text = """
        [probe]
        kind = "file"
        path = "probe.npy"
        dx = 1e-6
        wavelength = 6.3e-7
        [optics]
        zoom_factor = 2
        aperture_diameter = 1e-5
        aperture_center = [1e-6, -2e-6]
        travel_distance = 0.1
        camera_pixel_size = 5e-5
        [sample]
        kind = "zarr"
        path = "data/obj.zarr"
        array = "t"
        dx = 1e-6
        [scan]
        kind = "file"
        path = "pos.npy"
    """
    (tmp_path / "run.toml").write_text(text)
    config = load_config(tmp_path / "run.toml")
    assert config.probe.path == str(tmp_path / "probe.npy")
    assert config.sample.path == str(tmp_path / "data" / "obj.zarr")
    assert config.scan.path == str(tmp_path / "pos.npy")
    assert config.optics.zoom_factor == 2.0 and isinstance(config.optics.zoom_factor, float)
    assert config.optics.aperture_center == (1e-6, -2e-6)
    assert (config.sample.array, config.sample.seed, config.sample.shape) == ("t", None, None)
    assert config.detector.dose == 0 and config.run.block_size == 1024  # optional sections
    assert parse_config(text, base_dir=tmp_path) == config

    other = """
        [probe]
        kind = "airy"
        size = 32.0
        dx = 2e-7
        wavelength = 1e-10
        radius = 1e-6
        [optics]
        zoom_factor = 1
        aperture_diameter = 1e-5
        travel_distance = 1
        camera_pixel_size = 1e-4
        [sample]
        kind = "phantom"
        phantom = "cells"
        shape = [300, 200]
        seed = 7
        dx = 2e-7
        [scan]
        kind = "spiral"
        step = 1e-6
        n = 50
    """
    config = parse_config(other)
    assert config.probe.size == 32 and isinstance(config.probe.size, int)
    assert (config.sample.shape, config.sample.seed) == ((300, 200), 7)
    assert (config.scan.kind, config.scan.n, config.scan.shape) == ("spiral", 50, None)
    assert config.optics.aperture_center is None


def _edit(section, key, value=None, delete=False):
    def apply(data):
        if delete:
            del data[section][key]
        else:
            data[section][key] = value

    return apply


BAD = [
    (_edit("sample", "sead", 3), ['"sample.sead"', 'did you mean "seed"']),
    (_edit("optics", "zoom", 1.0), ['"optics.zoom"', 'did you mean "zoom_factor"']),
    (lambda d: d.update(detecter={"dose": 1.0}), ['"detecter"', 'did you mean "detector"']),
    (_edit("probe", "dx", "abc"), ["probe.dx", "number"]),
    (_edit("optics", "zoom_factor", True), ["optics.zoom_factor", "number"]),
    (_edit("probe", "size", True), ["probe.size", "integer"]),
    (_edit("probe", "size", 64.5), ["probe.size", "integer"]),
    (_edit("probe", "dx", -1e-6), ["probe.dx", "> 0"]),
    (_edit("optics", "travel_distance", math.nan), ["optics.travel_distance", "finite"]),
    (_edit("optics", "camera_pixel_size", math.inf), ["optics.camera_pixel_size", "finite"]),
    (_edit("detector", "dose", -1.0), ["detector.dose", ">= 0"]),
    (_edit("detector", "noise", "no"), ["detector.noise", "true or false"]),
    (
        lambda d: d["detector"].update(dose=0.0, noise=False),
        ['"detector.noise" = false', "dose"],
    ),
    (_edit("run", "block_size", 0), ["run.block_size", ">= 1"]),
    (_edit("probe", "wavelength", delete=True), ['missing key "probe.wavelength"']),
    (_edit("probe", "waist", delete=True), ['missing key "probe.waist"', "gaussian"]),
    (_edit("scan", "kind", delete=True), ['missing key "scan.kind"', '"raster"']),
    (lambda d: d.pop("optics"), ["[optics]"]),
    (_edit("probe", "radius", 1e-6), ['"probe.radius"', "not allowed", "airy"]),
    (_edit("scan", "n", 10), ['"scan.n"', "not allowed", "spiral"]),
    (_edit("probe", "kind", "gausian"), ["probe.kind", 'did you mean "gaussian"']),
    (_edit("scan", "shape", [40]), ["scan.shape", "two values"]),
    (_edit("optics", "aperture_center", [0.0, "x"]), ["optics.aperture_center[1]"]),
    (_edit("sample", "seed", -1), ["sample.seed", ">= 0"]),
    (_edit("sample", "dx", 1.1e-6), ["sample.dx", "probe.dx"]),
    (_edit("scan", "placement", "floor"), ["scan.placement", '"exact" or "snap"']),
    (
        lambda d: d.update(sample={"kind": "file", "dx": 1e-6, "path": "nope.npy"}),
        ["sample.path", "not found", "nope.npy"],
    ),
]


@pytest.mark.parametrize(("edit", "needles"), BAD)
def test_bad_input_names_the_key(demo_scan, to_toml, edit, needles):
    data = demo_scan()
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_config(to_toml(data))
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_syntax_error_and_top_level_key():
    with pytest.raises(ConfigError, match="invalid TOML"):
        parse_config("[probe\nkind = 1")
    with pytest.raises(ConfigError, match='"dose"'):
        parse_config("dose = 3\n" + DEMO_CONFIG)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.toml"):
        load_config(tmp_path / "nothere.toml")


def test_placement_defaults_to_exact(demo_scan, to_toml):
    data = demo_scan()
    assert parse_config(to_toml(data)).scan.placement == "exact"
    data["scan"]["placement"] = "snap"
    snap = parse_config(to_toml(data))
    assert snap.scan.placement == "snap" and snap.hash != parse_config(DEMO_CONFIG).hash


def test_hash_ignores_run_but_tracks_physics(demo_scan, to_toml):
    rng = np.random.default_rng(14)
    base = parse_config(DEMO_CONFIG)
    data = demo_scan()
    data["run"]["block_size"] = int(rng.integers(1, 5000))
    assert parse_config(to_toml(data)).hash == base.hash
    data["probe"]["wavelength"] = float(rng.uniform(1e-10, 1e-6))
    assert parse_config(to_toml(data)).hash != base.hash
    assert parse_config(DEMO_CONFIG).hash == base.hash


def test_with_overrides():
    config = parse_config(DEMO_CONFIG)
    block = int(np.random.default_rng(15).integers(1, 10_000))
    changed = with_overrides(config, block_size=block)
    assert changed.run.block_size == block and config.run.block_size == 512
    assert changed.hash == config.hash and changed.probe == config.probe
    assert with_overrides(config) == config
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ConfigError, match="block_size"):
            with_overrides(config, block_size=bad)
