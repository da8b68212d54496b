"""Thick samples and the near field through the pipeline: real stores, a real LocalCluster.

The reference of a stored pattern is the one-position chain of the public propagators
(`multislice_interaction`, `optical_zoom`, `circular_aperture`, `fraunhofer_prop_scaled` or
`near_field_prop_scaled`), each tested against closed forms in tests/core. Tolerance 2e-5
of the peak: float32 rounding of two chains of a few FFTs ordered differently.
"""

import numpy as np
import pytest

import jscan
from jscan.core.optics import circular_aperture, field_intensity, optical_zoom
from jscan.core.propagation import fraunhofer_prop_scaled
from jscan.errors import ConfigError
from jscan.inputs.config import parse_config
from jscan.inputs.samples import make_probe, sample_region
from jscan.pipeline.run.dryrun import dry_run
from jscan.pipeline.run.simulate import simulate_scan
from jscan.pipeline.store import open_scan

TOL = 2e-5


def _thick(small_scan, **sample):
    data = small_scan(shape=(5, 5), block_size=8)
    data["scan"]["placement"] = "snap"
    data["sample"].update(sample)
    return data


def _reference(config, ds, i):
    """The pattern of stored position i from the public one-position chain."""
    p, o, s = config.probe, config.optics, config.sample
    x, y = float(ds.x[i]), float(ds.y[i])
    h, w = ds.sizes["det_y"], ds.sizes["det_x"]
    r0, c0 = round(y / s.dx) - h // 2, round(x / s.dx) - w // 2
    cut = sample_region(s, r0, c0, h, w, p.wavelength)
    cut = cut if cut.ndim == 3 else cut[None]
    light = jscan.make_optical_wavefront(make_probe(p), p.wavelength, p.dx)
    spacing = s.spacing or 0.0
    exit_wave = jscan.multislice_interaction(jscan.make_thick_sample(cut, s.dx, spacing), light)
    wave = circular_aperture(
        optical_zoom(exit_wave, o.zoom_factor), o.aperture_diameter, np.asarray(o.aperture_center)
    )
    if o.propagation == "near":
        out = jscan.near_field_prop_scaled(
            wave, o.travel_distance, o.camera_pixel_size, o.source_distance
        )
    else:
        out = fraunhofer_prop_scaled(wave, o.travel_distance, o.camera_pixel_size)
    return np.asarray(field_intensity(out.field))


def _check_patterns(config, ds, picks=(0, 7, 24)):
    for i in picks:
        want = _reference(config, ds, i)
        got = ds.diffraction.values[i]
        assert np.max(np.abs(got - want)) <= TOL * want.max(), i


def test_one_slice_gives_todays_patterns_bit_for_bit(
    small_scan, simulated_store, tmp_path, to_toml
):
    base = small_scan(shape=(6, 6))
    cfg = parse_config(to_toml(base))
    stack = sample_region(cfg.sample, 0, 0, 160, 160)
    np.save(tmp_path / "thin.npy", stack)
    np.save(tmp_path / "one.npy", stack[None])
    variants = {"phantom": base, "explicit": _thick(small_scan, slices=1)}
    variants["explicit"]["scan"] = base["scan"]
    variants["explicit"]["run"] = base["run"]
    for name in ("thin", "one"):
        data = small_scan(shape=(6, 6))
        data["sample"] = {"kind": "file", "path": str(tmp_path / f"{name}.npy"), "dx": 1e-6}
        variants[name] = data
    stores = {k: open_scan(simulated_store(v, name=f"{k}.zarr")) for k, v in variants.items()}
    first = stores["phantom"].diffraction.values
    for name, ds in stores.items():
        np.testing.assert_array_equal(ds.diffraction.values, first, err_msg=name)
        assert ds.sample_truth.dims == ("sample_y", "sample_x")
        assert "slice_spacing_m" not in ds.attrs
    assert parse_config(to_toml(variants["explicit"])).hash == cfg.hash


def test_thick_phantom_run_is_multislice_with_its_truth(small_scan, tmp_path, client, to_toml):
    data = _thick(small_scan, slices=3, spacing=6e-6)
    (tmp_path / "thick.toml").write_text(to_toml(data))
    ds = simulate_scan(tmp_path / "thick.toml", tmp_path / "a.zarr", client=client, progress=False)
    _check_patterns(parse_config(to_toml(data)), ds)
    assert ds.sample_truth.dims == ("slice", "sample_y", "sample_x")
    assert ds.sample_truth.shape[0] == 3 and ds.attrs["slice_spacing_m"] == 6e-6
    np.testing.assert_allclose(ds.slice_z.values, [0, 6e-6, 12e-6])
    cfg = parse_config(to_toml(data))
    r0, c0 = (round(float(v[0]) / 1e-6) for v in (ds.sample_y, ds.sample_x))
    rows, cols = ds.sample_truth.shape[1:]
    np.testing.assert_array_equal(
        ds.sample_truth.values, sample_region(cfg.sample, r0, c0, rows, cols)
    )
    assert not np.array_equal(ds.sample_truth.values[0], ds.sample_truth.values[1])
    # the slices matter: the projection (one slice, their product) gives other patterns
    thin = data | {"sample": {"kind": "file", "path": str(tmp_path / "p.npy"), "dx": 1e-6}}
    np.save(tmp_path / "p.npy", np.prod(sample_region(cfg.sample, 0, 0, 160, 160), axis=0))
    (tmp_path / "thin.toml").write_text(to_toml(thin))
    proj = simulate_scan(tmp_path / "thin.toml", tmp_path / "p.zarr", client=client, progress=False)
    change = np.abs(proj.diffraction.values - ds.diffraction.values).max()
    assert change > 1e-3 * ds.diffraction.values.max()


def test_exact_placement_thick_blocks_are_bit_identical_whatever_the_block_size(
    small_scan, simulated_store
):
    data = _thick(small_scan, slices=2, spacing=4e-6)
    data["scan"].update(placement="exact", step=7.3e-6, jitter=0.3e-6)
    a = open_scan(simulated_store(data, name="a.zarr")).diffraction.values
    data["run"]["block_size"] = 5
    b = open_scan(simulated_store(data, name="b.zarr")).diffraction.values
    np.testing.assert_array_equal(a, b)


def test_refractive_index_file_sets_each_slice(small_scan, simulated_store, tmp_path, rng, to_toml):
    delta = rng.uniform(0, 2e-6, (2, 160, 160))
    beta = rng.uniform(0, 1e-7, (2, 160, 160))
    np.save(tmp_path / "index.npy", (delta + 1j * beta).astype(np.complex64))
    data = _thick(small_scan, spacing=5e-6)
    data["sample"] = {
        "kind": "file",
        "path": str(tmp_path / "index.npy"),
        "dx": 1e-6,
        "spacing": 5e-6,
        "values": "refractive_index",
        "voxel_depth": 5e-6,
    }
    ds = open_scan(simulated_store(data))
    k = 2 * np.pi / 500e-9
    index = np.load(tmp_path / "index.npy").astype(np.complex128)
    r0, c0 = (round(float(v[0]) / 1e-6) for v in (ds.sample_y, ds.sample_x))
    rows, cols = ds.sample_truth.shape[1:]
    window = index[:, r0 : r0 + rows, c0 : c0 + cols]
    want = np.exp(-1j * k * 5e-6 * window.real) * np.exp(-k * 5e-6 * window.imag)
    np.testing.assert_allclose(ds.sample_truth.values, want, rtol=0, atol=1e-6)
    _check_patterns(parse_config(to_toml(data)), ds)


@pytest.mark.parametrize("source", [None, 2e-3])
@pytest.mark.parametrize("pixel", [1.0, 0.8])
def test_near_field_run_is_the_near_field_propagator(
    small_scan, simulated_store, source, pixel, to_toml
):
    data = _thick(small_scan, slices=2, spacing=3e-6)
    z = 40e-6  # F = (32 um)^2 / (lambda z_eff) >= 32: the transfer function is sampled
    m = 1.0 if source is None else (source + z) / source
    data["optics"].update(propagation="near", travel_distance=z, camera_pixel_size=pixel * m * 1e-6)
    if source is not None:
        data["optics"]["source_distance"] = source
    ds = open_scan(simulated_store(data))
    _check_patterns(parse_config(to_toml(data)), ds)


@pytest.mark.parametrize(
    ("sample", "optics", "key"),
    [
        ({"slices": 2}, {}, "sample.spacing"),
        ({"slices": 2, "spacing": -1e-6}, {}, "sample.spacing"),
        ({}, {"source_distance": 0.1}, "optics.source_distance"),
        ({}, {"propagation": "near"}, "optics.travel_distance"),  # F = 0.1 < N
        ({}, {"propagation": "near", "travel_distance": 40e-6}, "optics.camera_pixel_size"),
    ],
)
def test_bad_thick_or_near_input_is_refused_in_one_line(
    small_scan, tmp_path, sample, optics, key, to_toml
):
    data = _thick(small_scan, **sample)
    data["optics"].update(optics)
    (tmp_path / "bad.toml").write_text(to_toml(data))
    with pytest.raises(ConfigError, match=f'"{key}"') as err:
        simulate_scan(tmp_path / "bad.toml", tmp_path / "out.zarr", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out.zarr").exists()


def test_a_slice_stack_of_the_wrong_shape_is_refused(small_scan, tmp_path, to_toml):
    for name, array in (("four.npy", np.ones((2, 2, 40, 40))), ("two.npy", np.ones((2, 40, 40)))):
        np.save(tmp_path / name, array.astype(np.complex64))
        data = small_scan()
        data["sample"] = {"kind": "file", "path": str(tmp_path / name), "dx": 1e-6}
        (tmp_path / "bad.toml").write_text(to_toml(data))
        want = "sample.path" if name == "four.npy" else "sample.spacing"
        with pytest.raises(ConfigError, match=want):
            dry_run(tmp_path / "bad.toml")


def test_check_warns_when_the_wave_spreads_out_of_the_window(small_scan, tmp_path, to_toml):
    data = _thick(small_scan, slices=4, spacing=100e-6)
    (tmp_path / "s.toml").write_text(to_toml(data))
    lines = dry_run(tmp_path / "s.toml").warnings
    assert any(line.startswith("sample.spacing: over the sample's thickness") for line in lines)
    data["sample"]["spacing"] = 1e-6
    (tmp_path / "s.toml").write_text(to_toml(data))
    assert not dry_run(tmp_path / "s.toml").warnings
