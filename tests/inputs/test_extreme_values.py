"""A table of extreme values per config key, through `jscan check`: each is accepted, or
refused in one line naming its key; never a traceback, a numpy warning or a late failure."""

import math

import pytest

KEYS = {  # section.key -> the demo's own value, for the table's rows
    "probe.size": 64,
    "probe.dx": 1e-6,
    "probe.wavelength": 5e-7,
    "probe.waist": 1.2e-5,
    "optics.zoom_factor": 1.0,
    "optics.aperture_diameter": 4.8e-5,
    "optics.travel_distance": 0.05,
    "optics.camera_pixel_size": 1.953125e-4,
    "sample.dx": 1e-6,
    "scan.step": 7e-6,
    "detector.dose": 1e5,
    "detector.background": 0.0,
    "detector.gain": 1.0,
    "run.block_size": 512,
}
VALUES = {
    "zero": 0,
    "tiny": 1e-300,
    "huge": 1e300,
    "negative": -1.0,
    "nan": math.nan,
    "inf": math.inf,
    "huge integer": 2**62,
}


def _cases():
    for kind in VALUES:
        for key in KEYS:
            yield pytest.param(key, kind, id=f"{kind}-{key}")


@pytest.mark.parametrize(("key", "kind"), list(_cases()))
def test_extreme_value_is_accepted_or_refused_in_one_line(
    key, kind, demo_scan, to_toml, tmp_path, run_cli, tree
):
    """Accepted (a run is described), or exit 2 with one line that names the key."""
    section, name = key.split(".")
    data = demo_scan()
    value = VALUES[kind]
    if isinstance(KEYS[key], int) and isinstance(value, float) and math.isfinite(value):
        value = int(value) if abs(value) < 2**63 else value
    data[section][name] = value
    (tmp_path / "scan.toml").write_text(to_toml(data))
    before = tree(tmp_path)
    code, out, err = run_cli("check", tmp_path / "scan.toml")
    assert "Traceback" not in err and "Warning:" not in err, err
    if code == 0:  # accepted: a run of it was described
        assert "jscan simulate" in out + err
    else:
        lines = [line for line in err.splitlines() if not line.startswith("jscan: warning")]
        assert code == 2 and len(lines) == 1, err
        assert name in lines[0] or "lengths are in metres" in lines[0], err
    assert tree(tmp_path) == before
