"""The commands a new user reaches for: --version, a fast --help, init, check, and preview
into a new folder."""

import json
import subprocess
import sys

import pytest

from jscan import __version__


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"jscan {__version__}"


def test_help_imports_no_numpy_jax_or_dask():
    """`jscan --help` loads the standard library only (it took seconds importing JAX)."""
    probe = (
        "import sys, contextlib, io\n"
        "from jscan.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('numpy', 'jax', 'dask', 'distributed', 'zarr') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_init_writes_a_template_that_check_accepts(tmp_path, run_cli, tree):
    cfg = tmp_path / "new" / "scan.toml"
    code, out, err = run_cli("init", cfg)
    assert code == 0, err
    assert out.strip() == f"wrote {cfg}; next: jscan check {cfg}"
    assert "# step [m] (kind raster or spiral)" in cfg.read_text()
    before = tree(tmp_path)
    code, out, err = run_cli("check", cfg)
    assert code == 0 and err == "", err
    assert tree(tmp_path) == before  # a dry run writes nothing
    lines = out.splitlines()
    assert lines[0].startswith(f"config: {cfg} (hash ")
    assert (
        "det_y: natural pixel 390.6 µm (λz/(N·dx·zoom)), camera pixel 0.5× natural -> "
        "padded FFT (×2, length 128)" in out
    )
    assert "scan: raster 64×64, 4,096 positions" in out
    assert "positions: x 35.5 µm to 476.5 µm, y 35.5 µm to 476.5 µm" in out
    assert "probe windows cover x 3.5 µm to 508.5 µm" in out
    assert "blocks: 8 of 512 positions" in out
    assert "store: at most 67.3 MB" in out and "memory per block about" in out
    assert "it covers the bright-field disc" in out
    assert lines[-1] == f"nothing was written; run it with: jscan simulate {cfg} --out STORE"


def test_init_refuses_an_existing_file(tmp_path, run_cli):
    (tmp_path / "scan.toml").write_text("mine")
    code, _, err = run_cli("init", tmp_path / "scan.toml", "--kind", "spiral")
    assert code == 2 and "exists" in err and "--force" in err
    assert (tmp_path / "scan.toml").read_text() == "mine"
    code, out, _ = run_cli("init", tmp_path / "scan.toml", "--kind", "file", "--force")
    assert code == 0 and "put positions.npy beside it" in out
    assert 'kind = "file"' in (tmp_path / "scan.toml").read_text()


def test_check_names_the_chirp_z_path_and_block_memory(tmp_path, run_cli, demo_scan, to_toml):
    data = demo_scan()
    data["optics"]["camera_pixel_size"] = 0.7 * 500e-9 * 0.05 / 64e-6
    (tmp_path / "c.toml").write_text(to_toml(data))
    code, out, err = run_cli("check", tmp_path / "c.toml", "--block-size", "100")
    assert code == 0, err
    assert "camera pixel 0.7× natural -> chirp-z transform (FFT length 128)" in out
    assert "blocks: 41 of 100 positions, the last of 96" in out


def test_check_refuses_what_a_run_refuses(tmp_path, run_cli, demo_scan, to_toml, tree):
    data = demo_scan()
    data["scan"]["step"] = 10  # micrometres meant
    (tmp_path / "c.toml").write_text(to_toml(data))
    code, out, err = run_cli("check", tmp_path / "c.toml")
    assert code == 2 and out == ""
    assert err.startswith("jscan: error: scan leaves the sample") and err.count("\n") == 1
    assert "lengths are in metres: scan.step = 10 is 10 m" in err


def test_check_plot(tmp_path, run_cli, scan_config):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    (tmp_path / "c.toml").write_text(scan_config())
    plot = tmp_path / "figs" / "check.png"
    code, out, err = run_cli("check", tmp_path / "c.toml", "--plot", plot)
    assert code == 0, err
    assert f"plot: {plot}" in out
    assert matplotlib.image.imread(plot).std() > 0.05  # not blank


def test_preview_creates_its_folder(tmp_path, run_cli, partial_store):
    pytest.importorskip("matplotlib")
    store = partial_store([0, 1])
    out = tmp_path / "new" / "dir" / "p.png"
    code, stdout, err = run_cli("preview", store, "--out", out)
    assert code == 0, err
    assert out.is_file() and stdout.strip() == str(out)


def test_preview_of_many_patterns_grows_the_figure(tmp_path, run_cli, partial_store):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    from jscan.preview import pattern_grid

    rows, cols = pattern_grid(30)
    assert rows * cols >= 30 and cols <= 2 * rows + 1
    store = partial_store(range(9))
    sizes = {}
    for k in (4, 30):
        out = tmp_path / f"p{k}.png"
        assert run_cli("preview", store, "--out", out, "--patterns", k).code == 0
        sizes[k] = matplotlib.image.imread(out).shape
    # each pattern keeps its size: 30 patterns take a wider, taller figure
    assert sizes[30][1] > 2 * sizes[4][1] and sizes[30][0] > sizes[4][0]
    code, _, err = run_cli("preview", store, "--patterns", 49)
    assert code == 2 and "argument --patterns: must be at most 48" in err


def test_preview_keeps_the_optics_off_the_image(partial_store):
    pytest.importorskip("matplotlib")
    from jscan.preview import preview_figure

    fig = preview_figure(partial_store([0, 1]))
    scan = fig.axes[0]
    assert len(scan.texts) == 0  # no box drawn over the bright-field image
    assert "λ = 500 nm" in fig._supxlabel.get_text()


def test_library_calls_leave_the_process_as_they_found_it(tmp_path, partial_store, scan_config):
    """A notebook's matplotlib backend and pyplot figures, and JAX's compilation cache, are
    the process's: preview and a run with its own compilation cache leave them as they were
    (a fresh process, where they are set first as a user would)."""
    pytest.importorskip("matplotlib")
    store = partial_store([0, 1])
    (tmp_path / "c.toml").write_text(scan_config())
    script = f"""
import json, sys
import matplotlib
matplotlib.use("svg")
import jax
jax.config.update("jax_compilation_cache_dir", {str(tmp_path / "mine")!r})
import jscan
from jscan.inputs.config import parse_config
from jscan.preview import plot_dry_run, preview
from jscan.pipeline.run.dryrun import dry_run
preview({str(store)!r}, {str(tmp_path / "p.png")!r})
cfg = parse_config(open({str(tmp_path / "c.toml")!r}).read())
plot_dry_run(dry_run(cfg), {str(tmp_path / "c.png")!r})
if __name__ == "__main__":
    jscan.simulate_scan(cfg, {str(tmp_path / "s.zarr")!r}, progress=False,
                        compilation_cache={str(tmp_path / "run-cache")!r})
    print(json.dumps({{"backend": matplotlib.get_backend(), "pyplot": "matplotlib.pyplot" in
                      sys.modules, "cache": jax.config.jax_compilation_cache_dir}}))
"""
    (tmp_path / "user.py").write_text(script)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "user.py")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen == {"backend": "svg", "pyplot": False, "cache": str(tmp_path / "mine")}, seen
    assert any((tmp_path / "run-cache").iterdir())  # the run did compile into its cache


def test_resume_of_a_finished_store_starts_no_cluster(tmp_path, run_cli, scan_config):
    (tmp_path / "c.toml").write_text(scan_config())
    store = tmp_path / "s.zarr"
    first = run_cli("simulate", tmp_path / "c.toml", "--out", store, process=True)
    assert first.code == 0, first.err
    again = run_cli("simulate", tmp_path / "c.toml", "--out", store, "--resume", process=True)
    assert again.code == 0, again.err
    assert again.err.splitlines() == [
        f"{store} is complete (9 blocks, shards present; --verify decodes them); nothing to resume"
    ]


def test_resume_with_another_config_names_the_changed_keys(
    tmp_path, run_cli, partial_store, small_scan, to_toml
):
    store = partial_store([0, 1])
    data = small_scan()
    data["probe"]["waist"] = 7.0e-6
    data["scan"]["placement"] = "snap"
    data["run"]["block_size"] = 16
    (tmp_path / "c.toml").write_text(to_toml(data))
    code, _, err = run_cli("simulate", tmp_path / "c.toml", "--out", store, "--resume")
    assert code == 2 and err.count("\n") == 1, err
    assert "made with another config (probe.waist: 6e-06 -> 7e-06; " in err
    assert "scan.placement: 'exact' -> 'snap')" in err


def test_config_changes_fill_in_defaults():
    from jscan.inputs.config import parse_config
    from jscan.pipeline.run.prepare import config_changes

    old = "[scan]\nkind = 'raster'\nshape = [2, 2]\nstep = 1e-6\n"
    text = old.replace("step = 1e-6", "step = 1e-6\nplacement = 'exact'")
    full = "[probe]\nkind='gaussian'\ndx=1e-6\nwavelength=5e-7\nsize=8\nwaist=2e-6\n"
    full += "[optics]\nzoom_factor=1.0\naperture_diameter=8e-6\ntravel_distance=0.01\n"
    full += "camera_pixel_size=6e-4\n[sample]\nkind='phantom'\ndx=1e-6\nshape=[32, 32]\n"
    config = parse_config(full + text)
    changes = config_changes(full + old, config)  # the default written out: no change
    assert changes == ["no key differs as written, but a relative path resolves to another file"]
    assert config_changes(full + old.replace("1e-6\n", "2e-6\n", 1), config) == [
        "scan.step: 2e-06 -> 1e-06"
    ]


def test_demo_time_is_stated_once_for_readme_and_help(run_cli):
    """The demo's time (measured on the 2-core machine) reads the same in both places."""
    from pathlib import Path

    from jscan.cliargs import DEMO_TIME

    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    code, out, _ = run_cli("--help")
    assert code == 0
    assert DEMO_TIME in readme and DEMO_TIME in " ".join(out.split())
    assert "few seconds" not in readme and "under a minute" not in readme
