"""`--format nexus`: an NXcxi_ptycho file validated by pynxtools against the application
definition it ships, and read back with nexusformat equal to the store."""

import numpy as np
import pytest

from jscan.errors import UsageError
from jscan.export import export
from jscan.pipeline.store import open_scan

h5py = pytest.importorskip("h5py")

# What pynxtools 0.16 reports on any correct file: the contributed NXcxi_ptycho types
# source_1/probe and type as NX_FLOAT (NXsource's are strings: "x-ray", the source type), and
# the validator does not count a soft link to a field of the same group (detector_1/data_1 ->
# detector_1/data) as present. Everything else must validate.
KNOWN = {
    "/entry_1/instrument_1/source_1/probe": "InvalidType",
    "/entry_1/instrument_1/source_1/type": "InvalidType",
    "/entry_1/instrument_1/detector_1/data_1": "MissingRequiredField",
}


def problems(path) -> set[str]:
    """pynxtools's validation of /entry_1 against NXcxi_ptycho: its problems, one string each.

    pynxtools's `validate_hdf_group_against` looks for a variadic ENTRY, and NXcxi_ptycho
    names its entry entry_1 (CXI's), so the visitor is rooted there instead."""
    validation = pytest.importorskip("pynxtools.dataconverter.validation")
    from pynxtools.dataconverter.helpers import collector

    class Visitor(validation.ValidationVisitor):
        def __init__(self):
            collector.clear()
            self._resolver = validation.NexusSchemaResolver()
            self._appdef_node = self._resolver.tree_for("NXcxi_ptycho")
            self._tree = self._appdef_node.search_add_child_for("entry_1")
            self._entry_name, self._ignore_undocumented = "/entry_1", False
            self._required_groups, self._required_entities = set(), set()
            self._update_required_concepts("", self._tree)
            self._data, self._symbol_registry = None, {}

    validation.NexusFileHandler(str(path)).process(Visitor())
    return set(collector.get())


def unexpected(found: set[str]) -> set[str]:
    known = {f"{path}ValidationProblem.{kind}" for path, kind in KNOWN.items()}
    return {p for p in found if not any(p.startswith(k) for k in known)}


@pytest.fixture
def counts_store(natural_store):
    """A store of uint32 counts with a bad-pixel row and column."""
    return natural_store(noise=True, gaps={"rows": [3], "cols": [20]})


def test_nexus_validates_against_nxcxi_ptycho(counts_store, tmp_path):
    out = tmp_path / "scan.nxs"
    report = export(counts_store, "nexus", str(out), stream=None)
    assert not any("NX_INT" in w for w in report.warnings)  # uint32 counts
    found = problems(out)
    assert unexpected(found) == set(), sorted(found)
    assert len(found) == len(KNOWN), sorted(found)
    # the check can fail: a file without a required field is named
    with h5py.File(out, "a") as f:
        del f["entry_1/instrument_1/detector_1/distance"]
    assert any("detector_1/distance" in p for p in unexpected(problems(out)))


def test_nexus_reads_back_with_nexusformat(counts_store, tmp_path):
    nexus = pytest.importorskip("nexusformat.nexus")
    out = tmp_path / "scan.nxs"
    export(counts_store, "nexus", str(out), stream=None)
    ds = open_scan(counts_store)
    root = nexus.nxload(str(out))
    entry = root["entry_1"]
    assert entry.nxclass == "NXentry" and entry["definition"].nxvalue == "NXcxi_ptycho"
    det = entry["instrument_1/detector_1"]
    assert det.nxclass == "NXdetector"
    np.testing.assert_array_equal(det["data"].nxvalue, ds.diffraction.values)
    np.testing.assert_array_equal(det["data_1"].nxvalue, ds.diffraction.values)
    assert det["distance"].nxvalue == ds.attrs["travel_distance_m"]
    assert det["x_pixel_size"].nxvalue == det["y_pixel_size"].nxvalue
    assert det["x_pixel_size"].nxvalue == ds.attrs["camera_pixel_size_m"]
    assert det["distance"].attrs["units"] == "m"
    xyz = np.stack([ds.x, ds.y, 0 * ds.x], axis=1)
    np.testing.assert_array_equal(det["translation"].nxvalue, xyz)
    moves = entry["sample_1/transformations"]
    np.testing.assert_array_equal(moves["x"].nxvalue, ds.x.values)
    np.testing.assert_array_equal(moves["y"].nxvalue, ds.y.values)
    np.testing.assert_array_equal(entry["data/data"].nxvalue, ds.diffraction.values)
    np.testing.assert_array_equal(entry["data_1/translation"].nxvalue, xyz)
    ev = entry["instrument_1/beam_1/incident_beam_energy"].nxvalue
    wavelength = 6.62607015e-34 * 299792458.0 / (ev * 1.602176634e-19)
    assert wavelength == pytest.approx(ds.attrs["wavelength_m"], rel=1e-12)
    truth = entry["jscan_truth"]
    np.testing.assert_array_equal(truth["mask"].nxvalue, ds.mask.values.astype(np.uint32))
    assert truth["mask"].nxvalue.sum() == 63
    np.testing.assert_array_equal(truth["object"].nxvalue[0], ds.sample_truth.values)
    scale = np.abs(truth["probe"].nxvalue).max() / np.abs(ds.probe.values).max()
    np.testing.assert_allclose(truth["probe"].nxvalue, ds.probe.values * scale, rtol=1e-6)
    np.testing.assert_array_equal(truth["jscan_index"].nxvalue, np.arange(36))


def test_nexus_partial_and_float_warning(natural_store, tmp_path):
    store = natural_store(blocks=[0, 2])
    out = tmp_path / "part.nxs"
    report = export(store, "nexus", str(out), partial=True, stream=None)
    assert any("NX_INT" in w for w in report.warnings)  # float32 expected counts
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["entry_1/jscan_truth/jscan_index"][:], np.r_[0:16, 32:36])
        ds = open_scan(store)
        rows = np.r_[0:16, 32:36]
        np.testing.assert_array_equal(
            f["entry_1/instrument_1/detector_1/data"][:], ds.diffraction.values[rows]
        )


def test_nexus_refuses_another_suffix(natural_store, tmp_path, tree, run_cli):
    store = natural_store()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError, match=r"^--out .*: a NeXus file ends in \.nxs"):
        export(store, "nexus", str(out / "scan.cxi"), stream=None)
    assert tree(out) == []
    code, text, err = run_cli("export", store, "--format", "nexus", "--out", out / "s.nxs")
    assert code == 0, err
    assert "36 patterns (nexus)" in text
