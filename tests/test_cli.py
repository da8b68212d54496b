"""The `jscan` command: bad input exits 2 with one line and writes nothing."""

import math

import numpy as np
import pytest


def _set(section, key, value):
    def edit(cfg):
        assert key in cfg[section]
        cfg[section][key] = value

    return edit


def _rename(section, old, new):
    def edit(cfg):
        cfg[section][new] = cfg[section].pop(old)

    return edit


def _rename_section(old, new):
    def edit(cfg):
        cfg[new] = cfg.pop(old)

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_rename("sample", "seed", "sead"), 'did you mean "seed"'),
        (_rename_section("detector", "detectr"), "detector"),
        (_set("scan", "step", -7.3e-6), "scan.step"),
        (_set("scan", "step", "big"), "scan.step"),
        (_set("probe", "wavelength", math.nan), "probe.wavelength"),
        (_set("scan", "shape", [40, 40]), "scan leaves the sample"),
        (_set("sample", "dx", 2.0e-6), "sample.dx"),
        (_set("scan", "kind", "zigzag"), "scan.kind"),
        (lambda cfg: cfg["optics"].pop("travel_distance"), "travel_distance"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(
    tmp_path, run_cli, tree, small_scan, to_toml, edit, expected
):
    cfg = small_scan()
    edit(cfg)
    (tmp_path / "bad.toml").write_text(to_toml(cfg))
    before = tree(tmp_path)
    code, out, err = run_cli("simulate", tmp_path / "bad.toml", "--out", tmp_path / "s.zarr")
    assert code == 2
    assert expected in err and err.startswith("jscan: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err and out == ""
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--block-size", "0"], "argument --block-size: must be at least 1, got 0"),
        (["--workers", "two"], "argument --workers: must be a whole number"),
        (["--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with"),
        (["--resume"], "nothing to resume"),
        (["--scheduler-file", "/nonexistent/sched.json"], "--scheduler-file"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2(tmp_path, run_cli, tree, scan_config, argv, expected):
    (tmp_path / "ok.toml").write_text(scan_config())
    before = tree(tmp_path)
    code, _, err = run_cli("simulate", tmp_path / "ok.toml", "--out", tmp_path / "s.zarr", *argv)
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert tree(tmp_path) == before


def test_info_on_something_else_exits_2(tmp_path, run_cli):
    (tmp_path / "plain").mkdir()
    code, _, err = run_cli("info", tmp_path / "plain")
    assert code == 2 and "not a Zarr store" in err
    code, _, err = run_cli("info", tmp_path / "nowhere.zarr")
    assert code == 2 and "nowhere.zarr does not exist; check the path" in err, err
    assert not (tmp_path / "nowhere.zarr").exists()


def test_existing_store_is_never_overwritten(tmp_path, run_cli, tree, scan_config):
    (tmp_path / "ok.toml").write_text(scan_config())
    (tmp_path / "s.zarr").mkdir()
    (tmp_path / "s.zarr" / "precious.txt").write_text("keep me")
    code, _, err = run_cli("simulate", tmp_path / "ok.toml", "--out", tmp_path / "s.zarr")
    assert code == 2 and "already exists" in err
    assert (tmp_path / "s.zarr" / "precious.txt").read_text() == "keep me"
    assert tree(tmp_path / "s.zarr") == ["precious.txt"]


def test_demo_then_info(tmp_path, run_cli):
    store = tmp_path / "demo.zarr"
    out = run_cli("demo", "--out", store, process=True, timeout=300)
    assert out.code == 0, out.err
    lines = out.err.splitlines()
    assert lines[0].startswith("dashboard: http://") and lines[0].endswith("/status")
    assert any(line.startswith("done: 4096 positions in 8 blocks") for line in lines)
    info = run_cli("info", store, process=True, timeout=120)
    assert info.code == 0, info.err
    assert "blocks done: 8/8" in info.out
    assert "diffraction  uint32   (4096, 64, 64)" in info.out
    assert "camera_pixel_size_m = 0.0001953125" in info.out


def test_resume_refuses_changed_input_files(tmp_path, run_cli, tree, small_scan, to_toml):
    from jscan.inputs.config import load_config
    from jscan.pipeline.run.plan import plan_scan
    from jscan.pipeline.run.spec import describe
    from jscan.pipeline.store import create

    positions = np.stack([np.linspace(40e-6, 120e-6, 30)] * 2, axis=1)
    np.save(tmp_path / "pos.npy", positions)
    cfg = small_scan()
    cfg["scan"] = {"kind": "file", "path": "pos.npy"}
    (tmp_path / "scan.toml").write_text(to_toml(cfg))
    cfg = load_config(tmp_path / "scan.toml")
    store = str(tmp_path / "s.zarr")
    create(store, describe(cfg, plan_scan(cfg)))
    np.save(tmp_path / "pos.npy", positions + 1e-6)  # same path, other positions
    before = tree(tmp_path / "s.zarr")
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", store, "--resume")
    # The advice leads out: restore the files, or replace the store (no loop back to --resume).
    assert code == 2 and "changed since it was made" in err and "--overwrite" in err, err
    assert tree(tmp_path / "s.zarr") == before


def test_shared_compile_cache_folder_is_refused(tmp_path, run_cli, scan_config):
    (tmp_path / "ok.toml").write_text(scan_config())
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code, _, err = run_cli(
        "simulate", tmp_path / "ok.toml", "--out", tmp_path / "s.zarr", "--compile-cache", shared
    )
    assert code == 2 and "writable by others" in err
    assert not (tmp_path / "s.zarr").exists()


def test_unreachable_scheduler_exits_2_and_writes_nothing(tmp_path, run_cli, scan_config):
    import dask

    (tmp_path / "ok.toml").write_text(scan_config())
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code, _, err = run_cli(
            "simulate",
            tmp_path / "ok.toml",
            "--out",
            tmp_path / "s.zarr",
            "--scheduler",
            "tcp://127.0.0.1:9",
        )
    assert code == 2 and "cannot reach the Dask scheduler" in err, err
    assert not (tmp_path / "s.zarr").exists()


def test_demo_has_resume(tmp_path, run_cli):
    code, _, err = run_cli("demo", "--out", tmp_path / "d.zarr", "--resume")
    assert code == 2 and "nothing to resume" in err
    assert not (tmp_path / "d.zarr").exists()


def test_info_summarises_the_stored_detectors_without_reading_patterns(run_cli, partial_store):
    import pathlib

    import zarr

    store = partial_store([1, 6], dose=1e4)
    total = zarr.open_array(store, path="total", mode="r")[:]
    done = total[np.isfinite(total)]
    assert done.size == 32
    for shard in (pathlib.Path(store) / "diffraction" / "c").rglob("0"):  # unreadable now
        if shard.is_file():
            shard.write_bytes(bytes(b ^ 0x5A for b in shard.read_bytes()))
    code, out, err = run_cli("info", store)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("photons per pattern"))
    assert f"min {done.min():.4g}, median {np.median(done):.4g}, max {done.max():.4g}" in line
    assert "median bright-field share 0." in line
    assert "bright_field float64  (144,) dims ('position',) chunks (16,)" in out
