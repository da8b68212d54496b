"""The config reference made from the schema: the config guide's table and `jscan init`'s
template."""

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from jscan.inputs.config import load_config, parse_config
from jscan.inputs.reference import TABLE_END, TABLE_START, reference_table, template
from jscan.inputs.schema import schema

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "config.md"


def test_the_config_guide_s_table_is_the_rendered_schema():
    text = GUIDE.read_text()
    assert TABLE_START in text and TABLE_END in text
    table = text.split(TABLE_START)[1].split(TABLE_END)[0].strip()
    # If this fails after a schema change, paste reference_table() between the markers.
    assert table == reference_table().strip()


def test_every_key_has_its_meaning_and_the_table_lists_it():
    table = reference_table()
    for section, keys in schema().items():
        for name, key in keys.items():
            assert key.doc, f"{section}.{name} has no doc text in the schema"
            assert f"| `{section}.{name}` |" in table


def test_documented_defaults_and_conventions():
    """The questions a first run raises are answered in the schema's text."""
    keys = schema()
    assert "step*sqrt(k)" in keys["scan"]["step"].doc
    assert "centred" in keys["scan"]["start"].doc and keys["scan"]["start"].default is None
    assert keys["run"]["block_size"].default == 1024
    assert "dx*zoom_factor" in keys["optics"]["zoom_factor"].doc
    assert "unit power" in keys["probe"]["kind"].doc
    assert "|U'|^2" in keys["detector"]["dose"].doc
    assert keys["probe"]["dx"].unit == "m" and keys["scan"]["step"].unit == "m"


def test_default_template_loads_as_written(tmp_path):
    path = tmp_path / "scan.toml"
    path.write_text(template())
    config = load_config(path)
    assert (config.probe.kind, config.sample.kind, config.scan.kind) == (
        "gaussian",
        "phantom",
        "raster",
    )
    # every key of every kind is in it, set or commented out
    for section, keys in schema().items():
        body = path.read_text().split(f"[{section}]")[1]
        for name in keys:
            assert re.search(rf"^(# )?{name} = ", body, re.M), f"{section}.{name}"


@pytest.mark.parametrize(
    ("probe", "sample", "scan"),
    list(
        itertools.product(
            ("gaussian", "airy", "file", "lens", "zone_plate"),
            ("phantom", "file", "zarr"),
            ("raster", "spiral", "file"),
        )
    ),
)
def test_every_kind_template_loads_with_its_files(tmp_path, probe, sample, scan):
    zarr = pytest.importorskip("zarr")
    text = template({"probe": probe, "sample": sample, "scan": scan})
    np.save(tmp_path / "probe.npy", np.ones((64, 64), np.complex64))
    np.save(tmp_path / "sample.npy", np.ones((512, 512), np.complex64))
    np.save(tmp_path / "positions.npy", np.full((10, 2), 200e-6))
    if sample == "zarr":
        group = zarr.open_group(tmp_path / "sample.zarr", mode="w")
        group.create_array("sample", shape=(512, 512), dtype="c8")[:] = 1
    (tmp_path / "scan.toml").write_text(text)
    config = load_config(tmp_path / "scan.toml")
    assert (config.probe.kind, config.sample.kind, config.scan.kind) == (probe, sample, scan)


def test_template_parses_from_text_too():
    assert parse_config(template({"scan": "spiral"})).scan.n == 1000


@pytest.mark.parametrize("probe", ["gaussian", "file", "lens"])
def test_every_commented_example_is_a_value_its_key_accepts(probe):
    """Uncommenting an example line of the template gives a value its key's check accepts
    (a table-valued key's example is written as a table, not as one kind's entry)."""
    import tomllib

    keys, checked = schema(), 0
    for block in template({"probe": probe}).split("\n[")[1:]:
        section = block.split("]", 1)[0]
        for name, text in re.findall(r"^# (\w+) = (.+)$", block, re.M):
            if text == "...":
                continue
            value = tomllib.loads(f"v = {text}")["v"]
            keys[section][name].check(f"{section}.{name}", value)  # raises ConfigError if not
            checked += 1
    assert checked > 20
