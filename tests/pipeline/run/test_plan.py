"""The scan plan: the window-leaves-sample rule and the float32 products, checked on the
client before anything is written (config parsing alone is a pure schema)."""

import numpy as np
import pytest

from jscan.core.placement import window_origins
from jscan.errors import ConfigError
from jscan.inputs.config import parse_config
from jscan.pipeline.run.plan import plan_scan

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
                # the window rule, tested on its own in tests/core/test_placement.py
                ((top, left),) = window_origins(np.array([[x, y]]), (64, 64), 1e-6)
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


def _whole_scan(config):
    """Positions, origins and shifts of the whole scan at once, by the window rule."""
    from jscan.core.placement import placed_positions, placement
    from jscan.inputs.samples import probe_shape, sample_shape
    from jscan.inputs.scan import scan_positions

    shape, window = sample_shape(config.sample), probe_shape(config.probe)
    requested = scan_positions(config.scan, shape, config.sample.dx)
    where = placement(requested, window, config.sample.dx)
    exact = config.scan.placement == "exact"
    return placed_positions(requested, where, window, config.sample.dx, exact), where, window


SCANS = {
    "raster": {"kind": "raster", "shape": [13, 11], "step": 3.3e-6},
    "spiral": {"kind": "spiral", "n": 700, "step": 1.1e-6},
    "file": {"kind": "file", "path": "positions.npy"},
}


@pytest.mark.parametrize("kind", list(SCANS))
@pytest.mark.parametrize("placement", ["exact", "snap"])
def test_blocks_made_from_their_index_equal_the_whole_scan(
    tmp_path, demo_scan, to_toml, kind, placement
):
    """The worker makes a block's geometry from its index: bit for bit what the whole scan
    gives those positions, for any block size; the region holds every block's windows."""
    rng = np.random.default_rng(4)
    np.save(tmp_path / "positions.npy", rng.uniform(100e-6, 400e-6, (500, 2)))
    for block in (1, 7, 64, 256, 1000):
        data = demo_scan()
        data["sample"]["shape"] = [1024, 1024]  # room for the positions file
        data["scan"] = {**SCANS[kind], "placement": placement}
        data["run"] = {"block_size": block}
        config = parse_config(to_toml(data), base_dir=tmp_path)
        plan = plan_scan(config)
        positions, where, window = _whole_scan(config)
        assert plan.n_positions == len(positions)
        blocks = [plan.block(b) for b in range(plan.n_blocks)]
        assert all(g.origins.shape == (block, 2) for g in blocks)
        np.testing.assert_array_equal(np.concatenate([g.positions for g in blocks]), positions)
        origins = np.concatenate([g.origins[: g.n_valid] for g in blocks])
        np.testing.assert_array_equal(origins, where.origins)
        if placement == "exact":
            shifts = np.concatenate([g.shifts[: g.n_valid] for g in blocks])
            np.testing.assert_array_equal(shifts, where.shifts)
        else:
            assert all(g.shifts is None for g in blocks)
        extent = np.max(
            [g.origins.max(axis=0) - g.origins.min(axis=0) + window for g in blocks], axis=0
        )
        assert np.all(np.asarray(plan.region_shape) >= extent), (plan.region_shape, extent)
        if kind != "spiral" or block < 256:  # rasters, files, short spiral blocks: exact
            assert plan.region_shape == tuple(int(v) for v in extent)
        (x0, x1), (y0, y1) = plan.extent_m
        assert (x0, x1, y0, y1) == (
            positions[:, 0].min(),
            positions[:, 0].max(),
            positions[:, 1].min(),
            positions[:, 1].max(),
        )


def test_plan_of_a_huge_raster_holds_no_positions(demo_scan, to_toml):
    """10^8 positions: the plan is a few numbers per block, and a block is made on demand."""
    import pickle

    data = demo_scan()
    data["sample"]["shape"] = [20_000, 20_000]
    data["scan"] = {"kind": "raster", "shape": [10_000, 10_000], "step": 1.5e-6}
    plan = plan_scan(parse_config(to_toml(data)))
    assert plan.n_positions == 10**8 and plan.n_blocks == -(-(10**8) // plan.block_size)
    assert len(pickle.dumps(plan)) < 4096
    last = plan.block(plan.n_blocks - 1)
    assert last.start + last.n_valid == 10**8
    assert (last.raster[0][-1], last.raster[1][-1]) == (9_999, 9_999)


def test_raster_region_in_closed_form_is_every_block_s_windows(demo_scan, to_toml):
    """A raster's region and corners come from its rows and columns (`bounds.scan_bounds`),
    not from each block: equal to the windows of every block made one by one, for random
    grids, steps, starts and block sizes (shorter, equal and longer than a row)."""
    rng = np.random.default_rng(19)
    for _ in range(60):
        data = demo_scan()
        n_rows, n_cols = (int(v) for v in rng.integers(1, 30, 2))
        data["sample"]["shape"] = [512, 512]
        data["scan"] = {
            "kind": "raster",
            "shape": [n_rows, n_cols],
            "step": float(rng.choice([0.33, 0.7, 1.0, 1.3, 2.5, 7.0])) * 1e-6,
            "placement": str(rng.choice(["exact", "snap"])),
        }
        if rng.random() < 0.5:
            data["scan"]["start"] = [float(v) for v in rng.uniform(40e-6, 60e-6, 2)]
        options = [1, 2, 3, 5, 7, 13, 64, 1000, n_cols, 2 * n_cols, n_cols + 1, n_cols - 1]
        data["run"] = {"block_size": max(1, int(rng.choice(options)))}
        plan = plan_scan(parse_config(to_toml(data)))
        blocks = [plan.block(b) for b in range(plan.n_blocks)]
        extent = np.max([g.origins.max(0) - g.origins.min(0) for g in blocks], axis=0)
        assert plan.region_shape == tuple(int(v) for v in extent + plan.window), data
        positions = np.concatenate([g.positions for g in blocks])
        (x0, x1), (y0, y1) = plan.extent_m
        assert (x0, x1) == (positions[:, 0].min(), positions[:, 0].max()), data
        assert (y0, y1) == (positions[:, 1].min(), positions[:, 1].max()), data


def test_plan_of_a_10_to_the_12_raster_is_made_in_bounded_memory(demo_scan, to_toml):
    """10^12 positions, 10^9 blocks: the plan is made from the rows and columns, never from
    the blocks (it once allocated several (blocks, 2) arrays: 24 GB here)."""
    import tracemalloc

    data = demo_scan()
    data["probe"].update(size=16, waist=3e-6)
    data["optics"].update(aperture_diameter=12e-6, camera_pixel_size=781.25e-6)
    data["sample"]["shape"] = [1_000_100, 1_000_100]
    data["scan"] = {"kind": "raster", "shape": [1_000_000, 1_000_000], "step": 1e-6}
    data["run"] = {"block_size": 1000}
    config = parse_config(to_toml(data))
    tracemalloc.start()
    try:
        plan = plan_scan(config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert plan.n_positions == 10**12 and plan.n_blocks == 10**9
    assert plan.region_shape == (16, 16 + 999)  # a block: 1000 positions of one row
    assert peak < 256 * 2**20, peak / 2**20


@pytest.mark.parametrize(
    "scan",
    [
        {"kind": "raster", "shape": [30, 70], "step": 20e-6},
        {"kind": "spiral", "n": 3000, "step": 20e-6},
    ],
)
def test_leaving_message_counts_every_window_of_the_scan(demo_scan, to_toml, scan):
    """The error path walks the scan a slab at a time; its phrase is the whole scan's."""
    from jscan.core.placement import windows_leaving

    data = demo_scan()
    data["scan"] = scan
    config = parse_config(to_toml(data))
    _, where, window = _whole_scan(config)
    expected = windows_leaving(where.origins, window, tuple(data["sample"]["shape"]))
    assert expected is not None
    with pytest.raises(ConfigError) as info:
        plan_scan(config)
    assert str(info.value).startswith(f"scan leaves the sample: {expected}; ")


def test_a_worker_refuses_file_rows_that_changed_since_the_plan(tmp_path, demo_scan, to_toml):
    """The plan keeps a CRC32 of each block's rows of a file scan: a block made from another
    file (changed since, or another at the same path on a worker) is refused, not simulated."""
    rng = np.random.default_rng(9)
    positions = rng.uniform(100e-6, 400e-6, (100, 2))
    np.save(tmp_path / "positions.npy", positions)
    data = demo_scan()
    data["scan"] = {"kind": "file", "path": "positions.npy"}
    data["run"] = {"block_size": 10}
    plan = plan_scan(parse_config(to_toml(data), base_dir=tmp_path))
    plan.block(1)
    positions[15, 0] += 30e-6
    np.save(tmp_path / "positions.npy", positions)
    plan.block(0)  # its rows are unchanged
    with pytest.raises(ValueError, match=r"rows 10\.\.19 of .* differ from those the run was"):
        plan.block(1)
