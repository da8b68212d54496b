"""What can only fail later is refused up front: exit 2, one line naming the key, nothing
written. And what is accepted but fails on a worker fails once, with one line."""

import json
import math
import time

import numpy as np
import pytest
import zarr

from jscan.errors import JscanWarning
from jscan.inputs.config import load_config, parse_config
from jscan.inputs.farfield import noise_factor, probe_pattern
from jscan.inputs.samples import make_probe
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.checks import COUNT_MAX, SIGMA_MARGIN
from jscan.pipeline.run.plan import plan_scan

distributed = pytest.importorskip("distributed")


def file_sample_config(small_scan, **kw):
    """The small scan (a dict) over a 160x160 sample read from sample.npy."""
    cfg = small_scan(**kw)
    cfg["sample"] = {"kind": "file", "path": "sample.npy", "dx": 1.0e-6}
    return cfg


def zarr_sample_config(small_scan, **kw):
    """The small scan (a dict) over a sample read from the Zarr store sample.zarr."""
    cfg = small_scan(**kw)
    cfg["sample"] = {"kind": "zarr", "path": "sample.zarr", "dx": 1.0e-6}
    return cfg


def _nan_zarr(path):
    data = np.ones((160, 160), np.complex64)
    data[85, 90] = np.nan + 0j  # inside a middle chunk
    arr = zarr.create_array(path, name="sample", shape=data.shape, chunks=(40, 40), dtype="c8")
    arr[:] = data


def _sample(value, dtype=np.complex64, at=(125, 80)):
    def write(folder):
        sample = np.ones((160, 160), dtype)
        sample[at] = value
        np.save(folder / "sample.npy", sample)

    return write


def _huge_probe(folder):
    np.save(folder / "probe.npy", np.full((32, 32), 1e200, np.complex128))


def _probe_file(cfg):
    """cfg with the probe read from probe.npy (same pixel and wavelength)."""
    cfg["probe"] = {"kind": "file", "path": "probe.npy", "dx": 1.0e-6, "wavelength": 500.0e-9}
    return cfg


def _with(section, key, value):
    """A config maker: the small scan with one key changed."""

    def make(small_scan):
        cfg = small_scan()
        assert key in cfg[section]
        cfg[section][key] = value
        return cfg

    return make


REFUSED = {
    # name: (config maker, input writer, key in the message)
    "nan_in_sample_file": (file_sample_config, _sample(np.nan), "sample.path"),
    "inf_in_sample_file": (file_sample_config, _sample(np.inf), "sample.path"),
    "sample_beyond_float32": (
        file_sample_config,
        _sample(1e39, np.complex128),
        "beyond float32's range",
    ),
    "nan_in_zarr_chunk": (zarr_sample_config, lambda d: _nan_zarr(d / "sample.zarr"), "row 85"),
    "probe_overflows_float64": (
        lambda small_scan: _probe_file(small_scan()),
        _huge_probe,
        "probe.path",
    ),
    "wavelength_1e-300": (
        _with("probe", "wavelength", 1e-300),
        None,
        '"probe.wavelength" = 1e-300 underflows float32',
    ),
    "zoom_product_overflows": (
        _with("optics", "zoom_factor", 1e30),
        None,
        "probe.dx, optics.zoom_factor",
    ),
    "dose_overflows_uint32": (_with("detector", "dose", 1e15), None, '"detector.dose" = 1e+15'),
    "bright_sample_overflows_uint32": (
        lambda small_scan: file_sample_config(small_scan, dose=1e8),
        _sample(1e4),  # |O| = 1e4 at one pixel: 1e8 times the probe's own peak
        "the sample's largest |O|^2 = 1e+08",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_up_front_with_nothing_written(
    refused, tmp_path, run_cli, small_scan, to_toml, tree, case
):
    make, write_inputs, key = REFUSED[case]
    if write_inputs is not None:
        write_inputs(tmp_path)
    (tmp_path / "scan.toml").write_text(to_toml(make(small_scan)))
    before = tree(tmp_path)
    code, out, err = run_cli("simulate", tmp_path / "scan.toml", "--out", tmp_path / "s.zarr")
    refused(code, err, key)
    assert out == "" and tree(tmp_path) == before


def test_dose_limit_is_the_probe_pattern_with_a_margin(
    refused, tmp_path, run_cli, scan_config, tree
):
    """The refused dose and the largest accepted one bracket 2**32 - 1 with 10 sigma."""
    cfg = parse_config(scan_config(dose=1.0))
    per_photon = probe_pattern(cfg).max() * noise_factor(cfg, make_probe(cfg.probe))
    root = (-SIGMA_MARGIN + math.sqrt(SIGMA_MARGIN**2 + 4 * COUNT_MAX)) / 2
    limit = root**2 / per_photon
    for dose, too_bright in ((limit * 1.001, True), (limit * 0.999, False)):
        # the claim itself: the brightest pixel's mean plus 10 sigma passes 2**32 - 1 or not
        mean = dose * per_photon
        assert (mean + SIGMA_MARGIN * math.sqrt(mean) > COUNT_MAX) == too_bright
        (tmp_path / "scan.toml").write_text(scan_config(dose=dose, shape=(2, 2)))
        before = tree(tmp_path)
        code, _, err = run_cli(
            "simulate",
            tmp_path / "scan.toml",
            "--out",
            tmp_path / f"{too_bright}.zarr",
            "--no-progress",
        )
        if too_bright:
            refused(code, err, "detector.dose")
            assert tree(tmp_path) == before
        else:
            assert code == 0, err


def test_probe_pattern_is_the_transparent_pipeline_pattern(tmp_path, client, small_scan, to_toml):
    """The dose check's basis: the pipeline's pattern of a transparent sample (dose 0)."""
    np.save(tmp_path / "sample.npy", np.ones((160, 160), np.complex64))
    cfg = file_sample_config(small_scan, shape=(2, 2))
    # whole-pixel positions: a sub-pixel shift of the probe moves its aperture-cut edge
    cfg["scan"]["step"] = 8.0e-6
    (tmp_path / "scan.toml").write_text(to_toml(cfg))
    cfg = load_config(tmp_path / "scan.toml")
    ds = simulate_scan(cfg, tmp_path / "s.zarr", client=client, progress=False)
    expected = probe_pattern(cfg)
    for pattern in ds.diffraction.values:
        np.testing.assert_allclose(pattern, expected, rtol=2e-4, atol=1e-6 * expected.max())


def test_huge_block_size_is_capped_at_the_scan_length(tmp_path, run_cli, scan_config):
    (tmp_path / "scan.toml").write_text(scan_config(shape=(4, 4)))
    t0 = time.perf_counter()
    out = run_cli(
        "simulate",
        tmp_path / "scan.toml",
        "--out",
        tmp_path / "s.zarr",
        "--block-size",
        10**7,
        process=True,
        timeout=120,
    )
    assert out.code == 0, out.err
    assert time.perf_counter() - t0 < 90
    start = next(line for line in out.err.splitlines() if " to do -> " in line)
    assert start.startswith("16 positions in 1 block of 16; 1 to do")
    assert start.endswith("kB uncompressed)") and "(at most " in start
    attrs = zarr.open_group(tmp_path / "s.zarr", mode="r").attrs
    assert attrs["block_size"] == 16


def _edit_middle(path, value=0.5 + 0.25j):
    """Overwrite one complex64 value half-way through the file, far from both ends."""
    size = path.stat().st_size
    offset = size // 2 // 8 * 8  # .npy data start at a multiple of 64 bytes
    assert (1 << 20) < offset < size - (1 << 20)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.asarray(value, np.complex64).tobytes())


@pytest.mark.parametrize("kind", ["npy", "zarr"])
def test_resume_refuses_a_sample_edited_in_the_middle(
    refused, tmp_path, run_cli, small_scan, to_toml, tree, kind
):
    if kind == "npy":  # 72 MiB: beyond the 64 MiB that were once hashed whole
        data = np.ones((3072, 3072), np.complex64)
        np.save(tmp_path / "sample.npy", data)
        cfg = file_sample_config(small_scan, shape=(4, 4))
    else:
        data = np.ones((1024, 1024), np.complex64)
        arr = zarr.create_array(
            tmp_path / "sample.zarr", name="sample", shape=data.shape, chunks=(128, 128), dtype="c8"
        )
        arr[:] = data
        cfg = zarr_sample_config(small_scan, shape=(4, 4))
    (tmp_path / "scan.toml").write_text(to_toml(cfg))
    store = tmp_path / "s.zarr"
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", store)
    assert code == 0, err
    if kind == "npy":
        _edit_middle(tmp_path / "sample.npy")
    else:
        zarr.open_array(tmp_path / "sample.zarr", path="sample", mode="r+")[600, 700] = 0.5
    before = tree(store)
    code, _, err = run_cli("simulate", tmp_path / "scan.toml", "--out", store, "--resume")
    refused(code, err, "changed since it was made")
    assert tree(store) == before


@pytest.mark.parametrize(
    ("flag", "value", "key"),
    [
        ("--scheduler", "garbage", "--scheduler 'garbage' is not a Dask scheduler address"),
        ("--scheduler-file", "hello.json", "is not a Dask scheduler file"),
        ("--scheduler-file", "noaddress.json", "is not a Dask scheduler file (KeyError"),
        ("--scheduler-file", "badaddress.json", "is not a Dask scheduler address"),
        ("--out", "", "--out (the store) is empty"),
        ("--out", "memory://scan", "--out memory://scan: a memory:// store"),
        ("--compile-cache", "plain-file", "compilation cache (--compile-cache)"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    refused, tmp_path, run_cli, scan_config, tree, flag, value, key
):
    (tmp_path / "ok.toml").write_text(scan_config())
    (tmp_path / "hello.json").write_text("hello")
    (tmp_path / "noaddress.json").write_text(json.dumps({"id": "x"}))
    (tmp_path / "badaddress.json").write_text(json.dumps({"address": "nowhere"}))
    (tmp_path / "plain-file").write_text("not a folder")
    argv = ["simulate", tmp_path / "ok.toml", "--out", tmp_path / "s.zarr"]
    if flag == "--out":
        argv = argv[:-2]
    value = value if flag == "--out" or flag == "--scheduler" else tmp_path / value
    before = tree(tmp_path)
    code, _, err = run_cli(*argv, flag, value)
    refused(code, err, key)
    assert tree(tmp_path) == before


def test_demo_with_empty_out_is_refused(refused, tmp_path, run_cli, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("demo", "--out", "")
    refused(code, err, "--out")
    assert tree(tmp_path) == []


def _focusing_inputs(folder, small_scan, to_toml, rng):
    """A speckle probe (random phase) and a flat sample with one patch that undoes the
    probe's phase at the last position: there the pattern focuses into one pixel, far
    brighter than the probe's own pattern, which is all the up-front dose check sees."""
    n = 32
    r2 = ((np.arange(n) - n // 2)[:, None] ** 2 + (np.arange(n) - n // 2)[None, :] ** 2) * 1.0
    probe = np.exp(-r2 / 8.0**2) * np.exp(2j * np.pi * rng.uniform(size=(n, n)))
    np.save(folder / "probe.npy", probe.astype(np.complex64))
    np.save(folder / "sample.npy", np.ones((160, 160), np.complex64))
    data = _probe_file(file_sample_config(small_scan, dose=1.0, block_size=8, shape=(4, 4)))
    data["optics"]["aperture_diameter"] = 100.0e-6
    (folder / "scan.toml").write_text(to_toml(data))
    cfg = load_config(folder / "scan.toml")
    unit = make_probe(cfg.probe)
    plan = plan_scan(cfg)
    r0, c0 = plan.block(plan.n_blocks - 1).origins[-1]
    sample = np.ones((160, 160), np.complex64)
    sample[r0 : r0 + n, c0 : c0 + n] = np.conj(unit / np.abs(unit))
    np.save(folder / "sample.npy", sample)
    transparent = probe_pattern(cfg).max()
    scale = (1e-6**2 / (500e-9 * 0.02)) ** 2  # ((dx zoom)^2 / (lambda z))^2
    focused = np.abs(unit).sum() ** 2 * scale  # the centre pixel once the phase is undone
    root = (-SIGMA_MARGIN + math.sqrt(SIGMA_MARGIN**2 + 4 * COUNT_MAX)) / 2
    dose = 0.9 * root**2 / (transparent * noise_factor(cfg, unit))  # accepted, by 10 %
    assert 0.9 * focused / transparent > 2  # the focused pixel overflows uint32
    data["detector"]["dose"] = dose
    (folder / "scan.toml").write_text(to_toml(data))
    return folder / "scan.toml"


class AttemptCounter(distributed.diagnostics.plugin.SchedulerPlugin):
    """Counts, per task key, how often the scheduler sends a jscan block to a worker."""

    name = "jscan-test-attempts"

    def __init__(self):
        self.counts = {}

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "processing" and str(key).startswith("jscan-block"):
            self.counts[str(key)] = self.counts.get(str(key), 0) + 1


def _attempts(dask_scheduler):
    return dict(dask_scheduler.plugins[AttemptCounter.name].counts)


def test_a_worker_error_fails_once(tmp_path, client, small_scan, to_toml, rng):
    config = _focusing_inputs(tmp_path, small_scan, to_toml, rng)
    client.register_plugin(AttemptCounter())
    with (
        pytest.warns(JscanWarning, match="the camera holds"),  # the speckle's wide far field
        pytest.raises(ValueError, match="more than uint32 holds"),
    ):
        simulate_scan(config, tmp_path / "s.zarr", client=client, progress=False)
    counts = client.run_on_scheduler(_attempts)
    last = [k for k in counts if k.startswith("jscan-block-1-")]
    assert len(last) == 1 and counts[last[0]] == 1, counts  # tried once, not 4 times


def test_a_worker_error_stops_the_cli_with_one_line(tmp_path, run_cli, small_scan, to_toml, rng):
    config = _focusing_inputs(tmp_path, small_scan, to_toml, rng)
    out = run_cli("simulate", config, "--out", tmp_path / "s.zarr", "--no-progress", process=True)
    assert out.code == 1, out.err
    print(out.err)  # shown with pytest -s: what a user sees
    # Only jscan's own lines: distributed's report of the failing task went to the log file.
    # (The speckle probe's far field is wider than the camera, which jscan warns about.)
    warning, last = out.err.strip().splitlines()
    assert warning.startswith("jscan: warning: the camera holds")
    assert last.startswith("jscan: error: the run stopped: ValueError") and "--resume" in last
    assert "more than uint32 holds" in last
    log = tmp_path / "s.zarr" / "jscan.log"
    assert last.endswith(f"(Dask's log: {log})")
    assert "more than uint32 holds" in log.read_text()  # the worker's traceback is kept there
