"""The `jscan` command: bad input exits 2 with one line and writes nothing."""

import pytest
from conftest import small_config

from jscan.cli import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(list(argv)))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("seed = 3", "sead = 3"), 'did you mean "seed"'),
        (("[detector]", "[detectr]"), "detector"),
        (("step = 7.3e-6", "step = -7.3e-6"), "scan.step"),
        (("step = 7.3e-6", 'step = "big"'), "scan.step"),
        (("wavelength = 500.0e-9", "wavelength = nan"), "probe.wavelength"),
        (("shape = [12, 12]", "shape = [40, 40]"), "scan leaves the sample"),
        (("dx = 1.0e-6\nseed", "dx = 2.0e-6\nseed"), "sample.dx"),
        (('kind = "raster"', 'kind = "zigzag"'), "scan.kind"),
        (("travel_distance = 0.02\n", ""), "travel_distance"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, edit, expected):
    text = small_config()
    assert edit[0] in text
    (tmp_path / "bad.toml").write_text(text.replace(edit[0], edit[1], 1))
    before = listing(tmp_path)
    code, out, err = run(
        capsys, "simulate", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "s.zarr")
    )
    assert code == 2
    assert expected in err and err.startswith("jscan: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err and out == ""
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--block-size", "0"], "--block-size must be at least 1"),
        (["--workers", "two"], "--workers must be a whole number"),
        (["--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with"),
        (["--resume"], "nothing to resume"),
        (["--scheduler-file", "/nonexistent/sched.json"], "--scheduler-file"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2(tmp_path, capsys, argv, expected):
    (tmp_path / "ok.toml").write_text(small_config())
    before = listing(tmp_path)
    code, _, err = run(
        capsys, "simulate", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "s.zarr"), *argv
    )
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert listing(tmp_path) == before


def test_info_on_something_else_exits_2(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    code, _, err = run(capsys, "info", str(tmp_path / "plain"))
    assert code == 2 and "not a Zarr store" in err


def test_existing_store_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "ok.toml").write_text(small_config())
    (tmp_path / "s.zarr").mkdir()
    (tmp_path / "s.zarr" / "precious.txt").write_text("keep me")
    code, _, err = run(
        capsys, "simulate", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "s.zarr")
    )
    assert code == 2 and "already exists" in err
    assert (tmp_path / "s.zarr" / "precious.txt").read_text() == "keep me"
    assert listing(tmp_path / "s.zarr") == ["precious.txt"]


def test_demo_then_info(tmp_path):
    import subprocess
    import sys

    store = tmp_path / "demo.zarr"
    out = subprocess.run(
        [sys.executable, "-m", "jscan.cli", "demo", "--out", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("dashboard: http://") and lines[0].endswith("/status")
    assert any(line.startswith("done: 1600 positions in 7 blocks") for line in lines)
    info = subprocess.run(
        [sys.executable, "-m", "jscan.cli", "info", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert info.returncode == 0, info.stderr
    assert "blocks done: 7/7" in info.stdout
    assert "diffraction  uint32   (1600, 64, 64)" in info.stdout
    assert "camera_pixel_size_m = 0.0001953125" in info.stdout


def test_resume_refuses_changed_input_files(tmp_path, capsys):
    import numpy as np

    from jscan.inputs.config import load_config
    from jscan.pipeline.plan import plan_scan
    from jscan.pipeline.store import create

    positions = np.stack([np.linspace(40e-6, 120e-6, 30)] * 2, axis=1)
    np.save(tmp_path / "pos.npy", positions)
    text = small_config().replace(
        'kind = "raster"\nshape = [12, 12]\nstep = 7.3e-6', 'kind = "file"\npath = "pos.npy"'
    )
    (tmp_path / "scan.toml").write_text(text)
    cfg = load_config(tmp_path / "scan.toml")
    store = str(tmp_path / "s.zarr")
    create(store, cfg, plan_scan(cfg), 1e-3)
    np.save(tmp_path / "pos.npy", positions + 1e-6)  # same path, other positions
    before = listing(tmp_path / "s.zarr")
    code, _, err = run(capsys, "simulate", str(tmp_path / "scan.toml"), "--out", store, "--resume")
    # The advice leads out: restore the files, or replace the store (no loop back to --resume).
    assert code == 2 and "changed since it was made" in err and "--overwrite" in err, err
    assert listing(tmp_path / "s.zarr") == before


def test_shared_compile_cache_folder_is_refused(tmp_path, capsys):
    (tmp_path / "ok.toml").write_text(small_config())
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code, _, err = run(
        capsys,
        "simulate",
        str(tmp_path / "ok.toml"),
        "--out",
        str(tmp_path / "s.zarr"),
        "--compile-cache",
        str(shared),
    )
    assert code == 2 and "writable by others" in err
    assert not (tmp_path / "s.zarr").exists()


def test_unreachable_scheduler_exits_2_and_writes_nothing(tmp_path, capsys):
    import dask

    (tmp_path / "ok.toml").write_text(small_config())
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code, _, err = run(
            capsys,
            "simulate",
            str(tmp_path / "ok.toml"),
            "--out",
            str(tmp_path / "s.zarr"),
            "--scheduler",
            "tcp://127.0.0.1:9",
        )
    assert code == 2 and "cannot reach the Dask scheduler" in err, err
    assert not (tmp_path / "s.zarr").exists()


def test_demo_has_resume(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "d.zarr"), "--resume")
    assert code == 2 and "nothing to resume" in err
    assert not (tmp_path / "d.zarr").exists()
