"""One NeXus file of the application definition NXcxi_ptycho (CXI 1.6 compatible), with the
ground truth beside it in an NXcollection (`write_nexus`)."""

import numpy as np

from jscan.errors import UsageError
from jscan.export.source import (
    Bar,
    ScanSource,
    energy_j,
    index_dataset,
    patterns_dataset,
    stream_blocks,
)

DETECTOR = "/entry_1/instrument_1/detector_1"
MOTORS = "/entry_1/sample_1/transformations"


def check_nexus(src: ScanSource, out: str) -> None:
    if not out.endswith((".nxs", ".h5", ".hdf5")):
        raise UsageError(f"--out {out}: a NeXus file ends in .nxs, .h5 or .hdf5; name it PATH.nxs")


def nexus_warnings(src: ScanSource) -> list[str]:
    if src.diffraction.dtype.kind in "iu":
        return []
    return [
        f"NXcxi_ptycho's detector data is NX_INT: these {src.diffraction.dtype} patterns are not"
    ]


def pixel_mask(src: ScanSource) -> np.ndarray:
    """(H, W) int32 as NXdetector's pixel_mask: bit 0 (1) a module gap (the config's
    ``detector.gaps``), bit 1 (2) another bad pixel of the store's mask, 0 a good one."""
    gaps = src.tables.get("detector", {}).get("gaps", {})
    gap = np.zeros(src.window, bool)
    gap[np.asarray(gaps.get("rows", []), dtype=np.int64), :] = True
    gap[:, np.asarray(gaps.get("cols", []), dtype=np.int64)] = True
    return np.where(src.mask, np.where(gap, 1, 2), 0).astype(np.int32)


def _group(parent, name: str, nx_class: str, **attrs):
    group = parent.create_group(name)
    group.attrs.update(NX_class=nx_class, **attrs)
    return group


def _field(group, name: str, value, units: str | None = None, **attrs):
    field = group.create_dataset(name, data=value)
    field.attrs.update(attrs if units is None else dict(units=units, **attrs))
    return field


def write_nexus(src: ScanSource, out: str, bar: Bar) -> None:
    """/cxi_version 160 and /entry_1 (NXentry, definition NXcxi_ptycho), SI units as CXI's:

    - instrument_1/source_1 (NXsource: name, energy = the photon energy [J] as CXI reads it,
      probe, type), beam_1 (NXbeam: energy, incident_beam_energy [J], spread 0);
    - instrument_1/detector_1 (NXdetector): data as stored (and data_1, a link), x/y_pixel_size,
      distance [m], translation (n, 3) = (x, y, 0) [m], pixel_mask (`pixel_mask`), and
      transformations/vector: the detector at ``distance`` along z;
    - data (NXdata: signal data, axes x along the rows), data_1 (NXcollection: CXI's
      links data, translation);
    - sample_1 (NXsample): transformations/x, y (n,) [m] (x on y), geometry_1/translation;
    - jscan_truth (NXcollection): probe (M, H, W) (`ScanSource.engine_probe`) and its pixel,
      object (1, R, C) (`ScanSource.object_array`), its pixel and origin (x, y) [m] of its
      pixel (0, 0), jscan_index (n,): the store position of each row.

    The NXdata, data_1 and sample_1 groups are in the entry, as CXI has them and the
    definition's link targets say (its XML closes the entry before them).
    """
    import h5py

    n, joule = src.n_rows, energy_j(src.wavelength)
    with h5py.File(out, "w") as f:
        f.attrs.update(
            NX_class="NXroot",
            default="entry_1",
            creator="jscan",
            creator_version=str(src.attrs.get("jscan_version", "")),
        )
        f.create_dataset("cxi_version", data=160)
        entry = _group(f, "entry_1", "NXentry", default="data")
        _field(entry, "definition", "NXcxi_ptycho")
        _field(entry, "title", f"jscan simulation of {src.store}")
        instrument = _group(entry, "instrument_1", "NXinstrument")
        source = _group(instrument, "source_1", "NXsource")
        _field(source, "name", "jscan simulation")
        _field(source, "energy", joule, "J")  # a simulation has no machine: CXI's photon energy
        _field(source, "probe", "x-ray" if src.wavelength < 10e-9 else "photon")
        _field(source, "type", "simulation", custom=True)  # NXsource's open enumeration
        beam = _group(instrument, "beam_1", "NXbeam")
        _field(beam, "energy", joule, "J")
        _field(beam, "incident_beam_energy", joule, "J")
        _field(beam, "incident_energy_spread", 0.0, "J")
        det = _group(instrument, "detector_1", "NXdetector", signal="data", axes="[, data]")
        data = patterns_dataset(det, "data", src)
        photons = data.dtype.kind in "iu" or src.attrs.get("photons_per_intensity")
        data.attrs.update(units="counts" if photons else "1", target=f"{DETECTOR}/data")
        det["data_1"] = h5py.SoftLink(f"{DETECTOR}/data")
        camera, distance = float(src.attrs["camera_pixel_size_m"]), src.attrs["travel_distance_m"]
        _field(det, "x_pixel_size", camera, "m")
        _field(det, "y_pixel_size", camera, "m")
        _field(det, "distance", float(distance), "m")
        translation = det.create_dataset("translation", shape=(n, 3), dtype=np.float64)
        translation.attrs.update(
            units="m", axes="translation:y:x", interpretation="image", target=translation.name
        )
        _field(det, "pixel_mask", pixel_mask(src))
        _field(det, "depends_on", f"{DETECTOR}/transformations/vector")
        axes = _group(det, "transformations", "NXtransformations")
        _field(axes, "vector", float(distance), "m", transformation_type="translation")
        axes["vector"].attrs.update(vector=[0.0, 0.0, 1.0], depends_on=".")
        sample = _group(entry, "sample_1", "NXsample")
        _field(sample, "depends_on", f"{MOTORS}/x")
        moves = _group(sample, "transformations", "NXtransformations", vector=np.eye(3)[:2])
        x, y = (moves.create_dataset(k, shape=(n,), dtype=np.float64) for k in "xy")
        for axis, vector, on in ((x, [1.0, 0, 0], f"{MOTORS}/y"), (y, [0, 1.0, 0], ".")):
            axis.attrs.update(units="m", transformation_type="translation", vector=vector)
            axis.attrs.update(depends_on=on, target=axis.name)
        geometry = _group(sample, "geometry_1", "NXcollection")
        geometry["translation"] = h5py.SoftLink(translation.name)
        nxdata = _group(entry, "data", "NXdata", signal="data", axes=["x", ".", "."])
        nxdata["data"] = h5py.SoftLink(data.name)
        nxdata["x"], nxdata["y"] = h5py.SoftLink(x.name), h5py.SoftLink(y.name)
        _field(nxdata, "x_indices", "0")  # the definition's NX_CHAR fields
        _field(nxdata, "y_indices", "0")
        cxi = _group(entry, "data_1", "NXcollection")
        cxi["data"], cxi["translation"] = h5py.SoftLink(data.name), h5py.SoftLink(translation.name)
        truth = _group(entry, "jscan_truth", "NXcollection")
        _field(truth, "probe", src.engine_probe(), long_name="probe (mode, y, x), unnormalised FFT")
        _field(truth, "probe_pixel_size", src.probe_dx, "m")
        obj = src.object_array(truth, "object")
        obj.attrs["long_name"] = "sample transmission (1, y, x): a thick sample's projection"
        _field(truth, "object_pixel_size", src.sample_dx, "m")
        r0, c0 = src.region[:2]
        _field(truth, "object_origin", [c0 * src.sample_dx, r0 * src.sample_dx], "m")
        index = index_dataset(truth, "jscan_index", src)

        def write(rows, patterns, xs, ys, positions):
            data[rows] = patterns
            translation[rows] = np.stack([xs, ys, np.zeros_like(xs)], axis=1)
            x[rows], y[rows] = xs, ys
            index[rows] = positions

        stream_blocks(src, bar, write)
