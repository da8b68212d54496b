"""`--format nexus`: an NXcxi_ptycho file, validated by pynxtools against the definition it
ships and checked element by element against that definition's XML, then read back with
nexusformat (and as CXI by ptychodus) equal to the store."""

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from jscan.errors import UsageError
from jscan.export import export
from jscan.pipeline.store import open_scan

h5py = pytest.importorskip("h5py")

DET = "/entry_1/instrument_1/detector_1"
# What pynxtools 0.16 reports on any correct file (its NXcxi_ptycho and its validator):
KNOWN = {
    # NX_FLOAT in the definition; NXsource's closed enumeration of strings ("photon", "x-ray")
    ("/entry_1/instrument_1/source_1/probe", "InvalidType"),
    # NX_FLOAT in the definition; NXsource's open enumeration of strings (custom=True here)
    ("/entry_1/instrument_1/source_1/type", "InvalidType"),
    # a required <link>: the validator never matches one (soft or hard link alike)
    (f"{DET}/data_1", "MissingRequiredField"),
    # NXdetector's own pixel_mask, read as the "_mask" of a field "pixel"
    (f"{DET}/pixel_mask", "ReservedSuffixWithoutField"),
    # required by the definition, whose XML puts sample_1 outside the entry: in the entry (as
    # CXI has it) it is checked against NXtransformations, which has no group @vector
    ("/entry_1/sample_1/transformations/@vector", "MissingDocumentation"),
}


def problems(path) -> set[tuple[str, str]]:
    """(path, kind) of each problem pynxtools's validation of /entry_1 reports.

    `validate_hdf_group_against` roots its visitor at the definition's ENTRY, which
    NXcxi_ptycho names entry_1 (CXI's): the visitor is given that node instead."""
    validation = pytest.importorskip("pynxtools.dataconverter.validation")
    from pynxtools.dataconverter.helpers import ValidationProblem, collector

    class Visitor(validation.ValidationVisitor):
        def _update_required_concepts(self, rel, node):
            if node is None and rel == "":  # __init__'s ENTRY: none in NXcxi_ptycho
                node = self._tree = self._appdef_node.search_add_child_for("entry_1")
            super()._update_required_concepts(rel, node)

    validation.NexusFileHandler(str(path)).process(Visitor("NXcxi_ptycho", "/entry_1"))
    found = set()
    for message in collector.get():  # path + "ValidationProblem.Kind" + value
        where, _, rest = message.partition("ValidationProblem.")
        found.add(
            (where, max((k for k in ValidationProblem.__members__ if rest.startswith(k)), key=len))
        )
    return found


def unmet(path) -> list[str]:
    """What the definition's XML requires and the file lacks: each group (with its NX_class),
    field and link not minOccurs="0" (optional, recommended), and each attribute
    optional="false". Its NXdata, data_1 and sample_1 (after its entry closes) are looked for
    in /entry_1; a group without a name is the one of its NX_class."""
    pynxtools = pytest.importorskip("pynxtools")
    nxdl = Path(pynxtools.__file__).parent / "definitions/contributed_definitions"
    root = ET.parse(nxdl / "NXcxi_ptycho.nxdl.xml").getroot()
    out = []

    def walk(elements, node):
        for child in elements:
            tag, a = child.tag.rpartition("}")[2], child.attrib
            if tag == "attribute":
                if a.get("optional") == "false" and a["name"] not in node.attrs:
                    out.append(f"{node.name}/@{a['name']}")
                continue
            skip = a.get("minOccurs") == "0" or "true" in (a.get("optional"), a.get("recommended"))
            if tag not in ("group", "field", "link") or skip:
                continue
            name = a.get("name") or next(
                (k for k, v in node.items() if v.attrs.get("NX_class") == a["type"]), a["type"]
            )
            if name not in node or (
                tag == "group" and node[name].attrs.get("NX_class") != a["type"]
            ):
                out.append(f"{node.name}/{name}")
            elif tag == "link" and not isinstance(node.get(name, getlink=True), h5py.SoftLink):
                out.append(f"{node.name}/{name} (not a link)")
            elif tag != "link":
                walk(child, node[name])

    entry = next(c for c in root if c.attrib.get("name") == "entry_1")
    groups = [c for c in root if c.tag.endswith("}group") and c is not entry]
    with h5py.File(path, "r") as f:
        walk([*entry, *groups], f["entry_1"])
        every = []  # each group has an NX_class
        f.visititems(lambda k, v: every.append(v) if isinstance(v, h5py.Group) else None)
        out += [f"{g.name} (no NX_class)" for g in every if "NX_class" not in g.attrs]
    return out


@pytest.fixture
def counts_store(simulated_store, small_scan, tmp_path):
    """The small scan (6x6 positions) as uint32 counts, a gap row 3 and two bad pixels (one in
    the gap)."""
    bad = np.zeros((32, 32), bool)
    bad[10, 20] = bad[3, 5] = True
    np.save(tmp_path / "bad.npy", bad)
    d = small_scan(dose=1e6, shape=(6, 6))
    d["scan"]["start"] = [40e-6, 61e-6]  # the region's origin differs in x and y
    d["detector"].update(
        noise=True, gaps={"rows": [3], "cols": []}, bad_pixels=str(tmp_path / "bad.npy")
    )
    return simulated_store(d, "counts.zarr")


def test_nexus_validates_against_nxcxi_ptycho(counts_store, tmp_path):
    out = tmp_path / "scan.nxs"
    report = export(counts_store, "nexus", str(out), stream=None)
    assert not any("NX_INT" in w for w in report.warnings)  # uint32 counts
    assert problems(out) == KNOWN
    assert unmet(out) == []
    # both checks can fail: a file without a required field, link or attribute names it
    broken = tmp_path / "broken.nxs"
    shutil.copy(out, broken)
    with h5py.File(broken, "a") as f:
        del f[f"{DET}/distance"], f["entry_1/data_1/translation"]
        del f[f"{DET}/translation"].attrs["interpretation"]
    assert problems(broken) - KNOWN == {(f"{DET}/distance", "MissingRequiredField")}
    assert unmet(broken) == [
        f"{DET}/translation/@interpretation",
        f"{DET}/distance",
        "/entry_1/data_1/translation",
    ]


@pytest.mark.reference
def test_nexus_reads_back_with_nexusformat(counts_store, tmp_path):
    nexus = pytest.importorskip("nexusformat.nexus")
    out = tmp_path / "scan.nxs"
    export(counts_store, "nexus", str(out), stream=None)
    ds = open_scan(counts_store)
    entry = nexus.nxload(str(out))["entry_1"]
    classes = {
        "": "NXentry",
        "instrument_1": "NXinstrument",
        "instrument_1/source_1": "NXsource",
        "instrument_1/beam_1": "NXbeam",
        "instrument_1/detector_1": "NXdetector",
        "instrument_1/detector_1/transformations": "NXtransformations",
        "data": "NXdata",
        "data_1": "NXcollection",
        "sample_1": "NXsample",
        "sample_1/transformations": "NXtransformations",
        "sample_1/geometry_1": "NXcollection",
        "jscan_truth": "NXcollection",
    }
    assert {k: (entry[k] if k else entry).nxclass for k in classes} == classes
    assert entry["definition"].nxvalue == "NXcxi_ptycho"
    det = entry["instrument_1/detector_1"]
    patterns = ds.diffraction.values
    assert det["data"].nxvalue.dtype == patterns.dtype == np.uint32
    for linked in (det["data"], det["data_1"], entry["data/data"], entry["data_1/data"]):
        np.testing.assert_array_equal(linked.nxvalue, patterns)
    assert det["distance"].nxvalue == ds.attrs["travel_distance_m"]
    for side in ("x_pixel_size", "y_pixel_size"):
        assert det[side].nxvalue == ds.attrs["camera_pixel_size_m"]
        assert det[side].attrs["units"] == "m"
    xyz = np.stack([ds.x, ds.y, 0 * ds.x], axis=1)
    for linked in (det["translation"], entry["data_1/translation"]):
        np.testing.assert_array_equal(linked.nxvalue, xyz)
    np.testing.assert_array_equal(entry["sample_1/geometry_1/translation"].nxvalue, xyz)
    for axis in ("x", "y"):
        np.testing.assert_array_equal(entry[f"sample_1/transformations/{axis}"].nxvalue, ds[axis])
        np.testing.assert_array_equal(entry[f"data/{axis}"].nxvalue, ds[axis])
    mask = det["pixel_mask"].nxvalue
    assert mask.dtype == np.int32
    np.testing.assert_array_equal(mask != 0, ds.mask.values)
    assert (mask[3] == 1).all() and mask[10, 20] == 2 and np.count_nonzero(mask) == 33
    beam = entry["instrument_1/beam_1"]
    for energy in (
        beam["energy"],
        beam["incident_beam_energy"],
        entry["instrument_1/source_1/energy"],
    ):
        assert energy.attrs["units"] == "J"
        wavelength = 6.62607015e-34 * 299792458.0 / energy.nxvalue
        assert wavelength == pytest.approx(ds.attrs["wavelength_m"], rel=1e-12)
    assert beam["incident_energy_spread"].nxvalue == 0
    source = entry["instrument_1/source_1"]
    assert (source["probe"].nxvalue, source["type"].nxvalue) == ("photon", "simulation")  # 500 nm
    truth = entry["jscan_truth"]
    s = ds.attrs["photons_per_intensity"]
    dx = ds.attrs["probe_dx_m"] * ds.attrs["zoom_factor"]
    scale = np.sqrt(s) * dx**2 / (ds.attrs["wavelength_m"] * ds.attrs["travel_distance_m"])
    assert truth["probe"].nxvalue.dtype == np.complex64
    np.testing.assert_allclose(truth["probe"].nxvalue, ds.probe.values * scale, rtol=1e-6)
    assert truth["probe_pixel_size"].nxvalue == dx
    np.testing.assert_array_equal(truth["object"].nxvalue, ds.sample_truth.values[None])
    assert truth["object_pixel_size"].nxvalue == ds.attrs["sample_dx_m"]
    origin = truth["object_origin"].nxvalue
    np.testing.assert_allclose(origin, [ds.sample_x[0], ds.sample_y[0]], rtol=1e-12)
    np.testing.assert_array_equal(truth["jscan_index"].nxvalue, np.arange(36))


@pytest.mark.reference
def test_nexus_partial_writes_the_done_blocks(partial_store, tmp_path):
    nexus = pytest.importorskip("nexusformat.nexus")
    store = partial_store([0, 2])  # 9 blocks of 16: positions 0-15 and 32-47
    out = tmp_path / "part.nxs"
    report = export(store, "nexus", str(out), partial=True, stream=None)
    assert report.positions == 32 and report.skipped_blocks == 7
    assert any("NX_INT" in w for w in report.warnings)  # float32 intensities: dose 0
    assert problems(out) == KNOWN | {(f"{DET}/data", "InvalidType")}
    assert unmet(out) == []
    rows = np.r_[0:16, 32:48]
    ds = open_scan(store)
    entry = nexus.nxload(str(out))["entry_1"]
    np.testing.assert_array_equal(entry["jscan_truth/jscan_index"].nxvalue, rows)
    det = entry["instrument_1/detector_1"]
    np.testing.assert_array_equal(det["data"].nxvalue, ds.diffraction.values[rows])
    xyz = np.stack([ds.x[rows], ds.y[rows], 0 * ds.x[rows]], axis=1)
    np.testing.assert_array_equal(det["translation"].nxvalue, xyz)
    np.testing.assert_array_equal(entry["sample_1/transformations/y"].nxvalue, ds.y[rows])
    np.testing.assert_array_equal(det["pixel_mask"].nxvalue, 0)


@pytest.mark.reference
def test_nexus_reads_as_cxi_with_ptychodus(counts_store, tmp_path):
    pytest.importorskip("ptychodus")
    from ptychodus.plugins.cxi_file import CXIDiffractionFileReader

    out = tmp_path / "scan.nxs"
    export(counts_store, "nexus", str(out), stream=None)
    ds = open_scan(counts_store)
    dataset = CXIDiffractionFileReader().read(out)
    meta = dataset.get_metadata()
    patterns = np.concatenate([array.get_patterns() for array in dataset])
    np.testing.assert_array_equal(patterns, ds.diffraction.values)
    assert meta.detector_distance_m == ds.attrs["travel_distance_m"]
    wavelength = 6.62607015e-34 * 299792458.0 / (meta.photon_energy_eV * 1.602176634e-19)
    assert wavelength == pytest.approx(ds.attrs["wavelength_m"], rel=1e-12)  # CXI's J


def test_nexus_refuses_another_suffix_and_runs_from_the_cli(natural_store, tmp_path, tree, run_cli):
    store = natural_store()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError, match=r"^--out .*: a NeXus file ends in \.nxs, \.h5 or "):
        export(store, "nexus", str(out / "scan.cxi"), stream=None)
    assert tree(out) == []
    code, text, err = run_cli("export", store, "--format", "nexus", "--out", out / "s.nxs")
    assert code == 0, err
    assert f"{out / 's.nxs'}: 36 patterns (nexus)" in text
    assert tree(out) == ["s.nxs"]
    with h5py.File(out / "s.nxs", "r") as f:
        assert f["entry_1/definition"][()] == b"NXcxi_ptycho" and f["cxi_version"][()] == 160
        assert f[f"{DET}/data"].shape == (36, 32, 32)
