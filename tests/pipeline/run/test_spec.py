"""`ScanSpec`: a checked scan's facts, decided once (`describe`) and carried to the workers."""

import dataclasses

import numpy as np
import pytest

from jscan.inputs.config import parse_config
from jscan.pipeline import simulate_scan
from jscan.pipeline.run.plan import plan_scan
from jscan.pipeline.run.spec import describe
from jscan.pipeline.store import check_store


def test_a_spec_cannot_change(scan_config):
    config = parse_config(scan_config())
    spec = describe(config, plan_scan(config))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.probe = np.zeros_like(spec.probe)
    with pytest.raises(ValueError, match="read-only"):
        spec.probe[0, 0] = 0


def test_the_store_holds_the_facts_of_its_spec(tmp_path, client, scan_config):
    """What store creation writes is what the spec decided: one source for both."""
    (tmp_path / "scan.toml").write_text(scan_config(dose=1e4, block_size=48))
    ds = simulate_scan(tmp_path / "scan.toml", tmp_path / "s.zarr", client=client, progress=False)
    config = parse_config(scan_config(dose=1e4, block_size=48))
    spec = describe(config, plan_scan(config))
    attrs = check_store(str(tmp_path / "s.zarr"))
    for key, value in spec.attrs.items():
        if key != "jscan_version":
            assert attrs[key] == value, key
    assert ds.diffraction.dtype == spec.values.dtype
    assert ds.diffraction.attrs["long_name"] == spec.values.long_name
    assert float(attrs["photons_per_intensity"]) == spec.photons_per_intensity
    np.testing.assert_array_equal(ds.det_y.values, spec.camera[0].centres)
    np.testing.assert_array_equal(ds.det_x.values, spec.camera[1].centres)


def test_the_workers_never_read_the_probe_file(tmp_path, client, small_scan, to_toml, rng):
    """The checks read the probe file in the client, once: removed as soon as they are
    done, the run still finishes, to the same bits as a run that keeps it (the workers get
    the probe in their `ScanJob`)."""
    n = 32
    r2 = ((np.arange(n) - n // 2)[:, None] ** 2 + (np.arange(n) - n // 2)[None, :] ** 2) * 1.0
    probe = np.exp(-r2 / 6.0**2 + 0.3j * rng.standard_normal((n, n)))
    cfg = small_scan(shape=(6, 6))
    cfg["probe"] = {"kind": "file", "path": "probe.npy", "dx": 1.0e-6, "wavelength": 500.0e-9}
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
