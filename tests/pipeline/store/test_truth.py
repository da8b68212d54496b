"""Ground truth in the store: the probe the kernel multiplies, the photon scale, the sample's
scanned region, expected counts without noise, and units that pint reads."""

import json

import numpy as np
import pytest
import zarr

from jscan.inputs import farfield
from jscan.inputs.config import parse_config
from jscan.inputs.samples import make_probe, sample_region
from jscan.pipeline.run.lazy import simulate_lazy
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import open_scan, truth


@pytest.fixture
def make_store(simulated_store, small_scan, to_toml):
    """make_store(name, dose, noise, shape) -> (path, config): the small scan (6x6 positions
    on whole sample pixels, camera at the natural sampling), simulated in this process."""

    def make(name="s.zarr", dose=0.0, noise=True, shape=(6, 6)):
        d = small_scan(dose=dose, shape=shape)
        d["optics"]["travel_distance"] = 0.0128  # camera pixel = lambda z / (N dx)
        d["scan"].update(step=7e-6, start=[40e-6, 41e-6])  # whole sample pixels
        d["detector"]["noise"] = noise
        return simulated_store(d, name), parse_config(to_toml(d))

    return make


def test_probe_is_the_kernels_illumination_with_its_aperture(make_store):
    store, cfg = make_store()
    ds = open_scan(store)
    probe = ds.probe.values
    assert probe.shape == (1, 32, 32) and probe.dtype == np.complex64
    o = cfg.optics
    y = (np.arange(32) - 16) * cfg.probe.dx * o.zoom_factor
    np.testing.assert_allclose(ds.probe_y.values, y)
    cx, cy = o.aperture_center
    r = np.hypot(y[:, None] - cy, y[None, :] - cx)
    inside = r <= o.aperture_diameter / 2
    expected = make_probe(cfg.probe) * inside
    assert np.all(probe[0][~inside] == 0)  # the aperture is in it
    np.testing.assert_allclose(probe[0], expected, atol=2e-7 * np.abs(expected).max())
    assert ds.attrs["photons_per_intensity"] == 0.0  # dose 0: no photon scale


@pytest.mark.reference
def test_patterns_are_the_far_field_of_probe_times_sample_truth(make_store):
    """Stored float patterns = photons_per_intensity (dx^2 / lambda z)^2 |FFT(P O)|^2,
    fftshifted, with O the sample_truth under the window at the stored x, y."""
    store, cfg = make_store(dose=1e6, noise=False)
    ds = open_scan(store)
    assert ds.diffraction.dtype == np.float32
    assert ds.diffraction.attrs["units"] == "count"
    factor = ds.attrs["photons_per_intensity"]
    assert factor == pytest.approx(farfield.noise_factor(cfg))
    probe, obj = ds.probe.values[0], ds.sample_truth.values
    dx, lz = cfg.sample.dx, cfg.probe.wavelength * cfg.optics.travel_distance
    for i in (0, 7, 35):
        r0 = round(float(ds.y[i]) / dx) - 16 - round(float(ds.sample_y[0]) / dx)
        c0 = round(float(ds.x[i]) / dx) - 16 - round(float(ds.sample_x[0]) / dx)
        window = obj[r0 : r0 + 32, c0 : c0 + 32].astype(np.complex128)
        far = np.fft.fftshift(np.abs(np.fft.fft2(probe * window)) ** 2) * (dx**2 / lz) ** 2
        stored = ds.diffraction.values[i]
        np.testing.assert_allclose(stored, factor * far, rtol=0, atol=1e-5 * stored.max())


def test_expected_counts_are_the_mean_of_the_poisson_counts(make_store):
    """noise = false stores what noise = true draws from: intensity x photons_per_intensity."""
    plain, _ = make_store("plain.zarr")
    expected, _ = make_store("expected.zarr", dose=1e6, noise=False)
    counts, _ = make_store("counts.zarr", dose=1e6)
    intensity = open_scan(plain).diffraction.values.astype(np.float64)
    mean = open_scan(expected)
    np.testing.assert_allclose(
        mean.diffraction.values, intensity * mean.attrs["photons_per_intensity"], rtol=1e-6
    )
    drawn = open_scan(counts).diffraction.values.astype(np.float64)
    assert drawn.sum() == pytest.approx(mean.diffraction.values.sum(), rel=1e-3)


@pytest.mark.parametrize("tile", [1024, 7])
def test_sample_truth_is_the_scanned_region_with_its_coordinates(make_store, monkeypatch, tile):
    monkeypatch.setattr(truth, "SAMPLE_CHUNK", tile)  # 7: written and stored in 7x7 tiles
    store, cfg = make_store()
    ds = open_scan(store)
    r0, c0, rows, cols = truth.scanned_region(plan_scan(cfg))
    np.testing.assert_array_equal(
        ds.sample_truth.values, sample_region(cfg.sample, r0, c0, rows, cols)
    )
    np.testing.assert_allclose(ds.sample_y.values, (r0 + np.arange(rows)) * cfg.sample.dx)
    # every window lies inside it
    assert float(ds.x.min()) - 16 * cfg.sample.dx >= float(ds.sample_x[0]) - 1e-12
    assert float(ds.y.max()) + 15 * cfg.sample.dx <= float(ds.sample_y[-1]) + 1e-12


def test_sample_truth_is_written_tile_by_tile_in_bounded_memory(tmp_path, small_scan, to_toml):
    """A 3000^2 region (72 MB of complex64) is created with a traced peak below those 72 MB:
    one 1024^2 tile at a time, never the whole region (whose float64 phantom temporaries
    come to about 32 bytes a pixel)."""
    import tracemalloc

    from jscan.pipeline import store as store_mod

    d = small_scan(shape=(2, 2))
    d["sample"].update(phantom="siemens_star", shape=[3100, 3100])
    d["scan"].update(step=2.97e-3, start=[2e-5, 2e-5])
    cfg = parse_config(to_toml(d))
    plan = plan_scan(cfg)
    r0, c0, rows, cols = truth.scanned_region(plan)
    assert rows * cols >= 3000**2
    probe = np.ones((1, *plan.window), np.complex64)
    tracemalloc.start()
    try:
        store_mod.create(str(tmp_path / "big.zarr"), describe(cfg, plan), probe=probe)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < rows * cols * 8, f"{peak / 2**20:.0f} MiB"
    got = zarr.open_array(str(tmp_path / "big.zarr"), path="sample_truth", mode="r")
    corner = (slice(rows - 1500, rows), slice(cols - 1500, cols))  # across tile edges
    want = sample_region(cfg.sample, r0 + rows - 1500, c0 + cols - 1500, 1500, 1500)
    np.testing.assert_array_equal(got[corner], want)


def test_large_sample_is_a_reference(make_store, monkeypatch):
    monkeypatch.setattr(truth, "SAMPLE_TRUTH_LIMIT", 1000)
    store, cfg = make_store()
    ds = open_scan(store)
    assert "sample_truth" not in ds
    ref = json.loads(ds.attrs["sample_truth_ref"])
    assert ref["kind"] == "phantom" and ref["region"] == list(truth.scanned_region(plan_scan(cfg)))


def test_truth_arrays_carry_crc32c(make_store):
    store, _ = make_store()
    for name in ("probe", "sample_truth"):
        codecs = zarr.open_array(store, path=name, mode="r").metadata.codecs
        assert any(type(c).__name__ == "Crc32cCodec" for c in codecs), name


def test_lazy_dataset_has_the_stores_truth(make_store, small_scan, to_toml):
    store, cfg = make_store(dose=1e6, noise=False)
    lazy = simulate_lazy(cfg)
    ds = open_scan(store)
    np.testing.assert_array_equal(lazy.probe.values, ds.probe.values)
    np.testing.assert_array_equal(lazy.sample_truth.values, ds.sample_truth.values)
    np.testing.assert_array_equal(lazy.diffraction.values, ds.diffraction.values)
    assert lazy.attrs["photons_per_intensity"] == ds.attrs["photons_per_intensity"]


@pytest.mark.parametrize("dose", [0.0, 1e6])
def test_every_variable_has_units_pint_reads_and_a_long_name(make_store, dose):
    pint = pytest.importorskip("pint")
    units = pint.UnitRegistry()
    store, cfg = make_store(dose=dose)
    for ds in (open_scan(store), simulate_lazy(cfg)):
        for name, var in ds.variables.items():
            assert "long_name" in var.attrs, name
            units.parse_units(var.attrs["units"])  # raises when pint cannot read it


@pytest.mark.parametrize("damage", ["delete", "flip"])
def test_verify_names_a_damaged_ground_truth(make_store, damage):
    from pathlib import Path

    from jscan.pipeline.store.integrity import verify

    store, _ = make_store()
    assert verify(store).ok
    chunks = [
        p for p in (Path(store) / "probe").rglob("*") if p.is_file() and p.name != "zarr.json"
    ]
    assert len(chunks) == 1
    if damage == "delete":
        chunks[0].unlink()
    else:
        raw = bytearray(chunks[0].read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        chunks[0].write_bytes(bytes(raw))
    report = verify(store)
    assert not report.ok and report.faults == ()
    assert "probe" in report.line() and "--overwrite" in report.line()


@pytest.mark.reference
def test_probe_modes_are_stored_and_their_patterns_add(simulated_store, small_scan):
    """Two incoherent modes: probe (2, H, W), and the stored expected counts are
    sum_m |FFT(P_m O)|^2 scaled like one mode's."""
    d = small_scan(dose=1e6, shape=(6, 6))
    d["optics"]["travel_distance"] = 0.0128
    d["scan"].update(step=7e-6, start=[40e-6, 41e-6])
    d["probe"]["modes"] = 2
    d["detector"]["noise"] = False
    ds = open_scan(simulated_store(d, "modes.zarr"))
    probe, obj = ds.probe.values, ds.sample_truth.values
    assert probe.shape == (2, 32, 32)
    factor, dx, lz = ds.attrs["photons_per_intensity"], 1e-6, 500e-9 * 0.0128
    i = 9
    r0 = round(float(ds.y[i]) / dx) - 16 - round(float(ds.sample_y[0]) / dx)
    c0 = round(float(ds.x[i]) / dx) - 16 - round(float(ds.sample_x[0]) / dx)
    window = obj[r0 : r0 + 32, c0 : c0 + 32].astype(np.complex128)
    far = (np.abs(np.fft.fft2(probe * window)) ** 2).sum(axis=0)
    expected = factor * np.fft.fftshift(far) * (dx**2 / lz) ** 2
    stored = ds.diffraction.values[i]
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-5 * stored.max())


def test_expected_counts_follow_the_detector_model(make_store, simulated_store, small_scan):
    """noise = false: background, blur and mask apply to the expected counts (steps 1-3, 9)."""
    from jscan.inputs.detector_model import gaussian_blur

    plain, _ = make_store("plain.zarr")
    d = small_scan(dose=1e6, shape=(6, 6))
    d["optics"]["travel_distance"] = 0.0128
    d["scan"].update(step=7e-6, start=[40e-6, 41e-6])
    d["detector"].update(noise=False, background=3.0, psf_sigma=1.5, gaps={"rows": [16]})
    ds = open_scan(simulated_store(d, "model.zarr"))
    assert ds.diffraction.dtype == np.float32 and ds.diffraction.attrs["units"] == "count"
    intensity = open_scan(plain).diffraction.values[5].astype(np.float64)
    lam = gaussian_blur(intensity * ds.attrs["photons_per_intensity"] + 3.0, 1.5)
    lam[16, :] = 0
    np.testing.assert_allclose(ds.diffraction.values[5], lam, rtol=1e-6)
    assert ds.mask.values[16].all()


@pytest.mark.parametrize("key, value", [("gain", 2.0), ("readout_noise", 1.0), ("saturation", 9)])
def test_count_effects_are_refused_without_noise(small_scan, to_toml, key, value):
    from jscan.errors import ConfigError

    d = small_scan(dose=1e6)
    d["detector"].update(noise=False, **{key: value})
    with pytest.raises(ConfigError, match=f"detector.{key}.*noise = false"):
        parse_config(to_toml(d))
