"""A config that runs but is most likely a mistake: one warning line each (`JscanWarning`),
and nothing for the configs the project ships."""

import pytest

from jscan.errors import ConfigError, JscanWarning
from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.pipeline.run import checks
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.prepare import plan_config, prepare


def _mistakes(text):
    config = parse_config(text)
    return checks.quiet_mistakes(config, plan_scan(config))


def test_shipped_configs_warn_of_nothing(scan_config):
    assert _mistakes(DEMO_CONFIG) == []
    assert _mistakes(scan_config()) == []


@pytest.mark.parametrize(
    ("ratio", "warned"),
    [(0.05, True), (0.1, False), (0.5, False), (1.0, False), (10.0, False), (15.0, True)],
)
def test_camera_pixel_far_from_natural(demo_scan, to_toml, ratio, warned):
    data = demo_scan()
    natural = 500e-9 * 0.05 / (64 * 1e-6)
    data["optics"]["camera_pixel_size"] = ratio * natural
    lines = [line for line in _mistakes(to_toml(data)) if "natural pixel" in line]
    assert bool(lines) == warned, lines
    if warned:
        assert f"{ratio:.3g}x the natural pixel" in lines[0]
        assert "keep it within 0.1x to 10x" in lines[0]


def test_camera_smaller_than_the_bright_field(demo_scan, to_toml):
    data = demo_scan()
    data["probe"]["waist"] = 2e-6  # a narrow probe: a wide far field
    data["optics"]["camera_pixel_size"] = 0.2 * 500e-9 * 0.05 / 64e-6
    lines = _mistakes(to_toml(data))
    assert any(line.startswith("the camera holds") for line in lines), lines
    data["probe"]["waist"] = 12e-6
    assert not any(line.startswith("the camera holds") for line in _mistakes(to_toml(data)))


def test_micrometres_written_as_metres_is_named(demo_scan, to_toml):
    data = demo_scan()
    data["probe"]["waist"] = 12  # meant 12 um: runs, with a flat probe
    (line,) = _mistakes(to_toml(data))
    assert line.startswith("lengths are in metres: probe.waist = 12 is 12 m")
    assert "write 1.2e-05" in line


def test_a_scan_off_by_a_million_says_lengths_are_in_metres(demo_scan, to_toml):
    data = demo_scan()
    data["scan"]["step"] = 10  # meant 10 um
    with pytest.raises(ConfigError, match=r"beyond the top edge.*lengths are in metres"):
        plan_config(parse_config(to_toml(data)))


def test_prepare_issues_the_warning_once(tmp_path, demo_scan, to_toml):
    data = demo_scan()
    data["optics"]["camera_pixel_size"] = 15 * 500e-9 * 0.05 / 64e-6
    with pytest.warns(JscanWarning, match="15x the natural pixel") as caught:
        prepare(parse_config(to_toml(data)), str(tmp_path / "s.zarr"))
    assert len(caught) == 1


def test_the_command_prints_one_line_per_warning(tmp_path, run_cli, demo_scan, to_toml):
    data = demo_scan()
    data["optics"]["camera_pixel_size"] = 0.05 * 500e-9 * 0.05 / 64e-6
    (tmp_path / "c.toml").write_text(to_toml(data))
    code, _, err = run_cli("check", tmp_path / "c.toml")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("jscan: warning: ") for line in lines)
    assert "0.05x the natural pixel" in lines[0] and "the camera holds" in lines[1]
