"""`ScanSpec`: a checked scan's facts, decided once (`describe`) and carried to the workers."""

import dataclasses

import numpy as np
import pytest
import zarr

from jscan.inputs.config import parse_config
from jscan.inputs.detector_model import VALUES
from jscan.inputs.digest import inputs_hash
from jscan.inputs.farfield import bright_field_radius, camera_axes, noise_factor
from jscan.inputs.samples import make_probe
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import check_store
from jscan.pipeline.store.facts import ScanFacts
from jscan.pipeline.store.integrity import verify


def test_a_spec_cannot_change(scan_config):
    config = parse_config(scan_config())
    spec = describe(config, plan_scan(config))
    assert isinstance(spec, ScanFacts)  # all the store reads of it
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.probe = np.zeros_like(spec.probe)
    with pytest.raises(ValueError, match="read-only"):
        spec.probe[0, 0] = 0


def test_the_store_holds_the_facts_of_its_spec(tmp_path, client, scan_config):
    """What a store holds is what the spec decided, each fact as its own rule states it."""
    text = scan_config(dose=1e4, block_size=48)
    (tmp_path / "scan.toml").write_text(text)
    ds = simulate_scan(tmp_path / "scan.toml", tmp_path / "s.zarr", client=client, progress=False)
    config = parse_config(text)
    spec = describe(config, plan_scan(config))
    attrs = check_store(str(tmp_path / "s.zarr"))
    # counts of a noisy dose, gain 1, no saturation: uint32 photons (pattern_values' rule)
    assert ds.diffraction.dtype == spec.values.dtype == np.uint32
    assert ds.diffraction.attrs["long_name"] == spec.values.long_name == VALUES["photons"][1]
    assert attrs["bright_field_radius_m"] == spec.bright_field_radius == bright_field_radius(config)
    factor = noise_factor(config, make_probe(config.probe))
    assert attrs["photons_per_intensity"] == spec.photons_per_intensity == factor
    assert attrs["inputs_hash"] == spec.inputs == inputs_hash(config)
    det_y, det_x = camera_axes(spec.window, config.optics.camera_pixel_size)
    np.testing.assert_array_equal(ds.det_y.values, det_y)
    np.testing.assert_array_equal(ds.det_x.values, det_x)
    np.testing.assert_array_equal([a.centres for a in spec.camera], [det_y, det_x])


FILE_PROBE = {"kind": "file", "path": "probe.npy", "dx": 1.0e-6, "wavelength": 500.0e-9}


def _gaussian(n: int, width: float) -> np.ndarray:
    """(n, n) exp(-r^2 / width^2), r in pixels from the axis pixel n//2."""
    r2 = ((np.arange(n) - n // 2)[:, None] ** 2 + (np.arange(n) - n // 2)[None, :] ** 2) * 1.0
    return np.exp(-r2 / width**2)


def test_the_workers_never_read_the_probe_file(tmp_path, client, small_scan, to_toml, rng):
    """The checks read the probe file in the client, once: removed as soon as they are
    done, the run still finishes, to the same bits as a run that keeps it (the workers get
    the probe in their `ScanJob`)."""
    probe = _gaussian(32, 6.0) * np.exp(0.3j * rng.standard_normal((32, 32)))
    cfg = small_scan(shape=(6, 6))
    cfg["probe"] = dict(FILE_PROBE)
    runs = {}
    for name in ("kept", "removed"):
        folder = tmp_path / name
        folder.mkdir()
        np.save(folder / "probe.npy", probe.astype(np.complex64))
        (folder / "scan.toml").write_text(to_toml(cfg))

        def checks(work, folder=folder, remove=name == "removed"):
            out = work()
            if remove:
                (folder / "probe.npy").unlink()
            return out

        runs[name] = simulate_scan(
            folder / "scan.toml",
            folder / "s.zarr",
            client=client,
            progress=False,
            run_checks=checks,
        )
    assert not (tmp_path / "removed" / "probe.npy").exists()
    assert bool(runs["removed"].done.all())
    for var in ("diffraction", "probe"):
        np.testing.assert_array_equal(runs["removed"][var].values, runs["kept"][var].values)


def test_a_large_probe_travels_outside_the_graph(tmp_path, client, small_scan, to_toml):
    """Two 1024 x 1024 modes (16 MiB): the run sends its spec outside task graphs, so Dask's
    large-graph warning (an error here) never fires, and the store holds both modes."""
    n = 1024
    mode = _gaussian(n, 60.0)
    np.save(tmp_path / "probe.npy", np.stack([mode, 0.5j * mode]).astype(np.complex64))
    cfg = small_scan(shape=(1, 2), block_size=2)
    cfg["probe"] = dict(FILE_PROBE)
    cfg["sample"]["shape"] = [1100, 1100]
    cfg["optics"].update(aperture_diameter=400e-6, camera_pixel_size=500e-9 * 0.02 / 1024e-6)
    del cfg["optics"]["aperture_center"]
    (tmp_path / "scan.toml").write_text(to_toml(cfg))
    ds = simulate_scan(tmp_path / "scan.toml", tmp_path / "s.zarr", client=client, progress=False)
    assert bool(ds.done.all()) and ds.probe.shape == (2, n, n)


def test_a_resumed_run_keeps_the_store_s_bright_field_radius(partial_store, client, scan_config):
    """`ScanSpec.resumed`: the blocks a resume adds sum the bright field inside the store's
    own radius (here halved after two blocks were made), which a full verify checks against
    the patterns."""
    store = partial_store([0, 1])
    group = zarr.open_group(store, mode="r+")
    radius = group.attrs["bright_field_radius_m"] / 2
    group.attrs["bright_field_radius_m"] = radius
    simulate_scan(parse_config(scan_config()), store, client=client, resume=True, progress=False)
    assert check_store(store)["bright_field_radius_m"] == radius
    report = verify(store, full=True)
    # blocks 0 and 1 were summed inside the old radius; the seven the resume ran, the new
    assert report.checked == 9 and report.bad_blocks == [0, 1], report.line()
    assert {f.reason for f in report.faults} == {"bright_field differs from the patterns"}
