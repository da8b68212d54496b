"""One NeXus file of the application definition NXcxi_ptycho (CXI 1.6 compatible), with the
ground truth beside it."""

import numpy as np

from jscan.errors import UsageError
from jscan.export.source import (
    ELECTRON_VOLT_J,
    Bar,
    ScanSource,
    energy_j,
    index_dataset,
    patterns_dataset,
    stream_blocks,
)

DETECTOR = "/entry_1/instrument_1/detector_1"


def check_nexus(src: ScanSource, out: str) -> None:
    if not out.endswith((".nxs", ".h5", ".hdf5")):
        raise UsageError(f"--out {out}: a NeXus file ends in .nxs, .h5 or .hdf5; name it PATH.nxs")


def nexus_warnings(src: ScanSource) -> list[str]:
    if src.diffraction.dtype.kind in "iu":
        return []
    return [
        f"NXcxi_ptycho's detector data is NX_INT: these {src.diffraction.dtype} patterns are not"
    ]


def _group(parent, name: str, nx_class: str, **attrs):
    group = parent.create_group(name)
    group.attrs["NX_class"] = nx_class
    for key, value in attrs.items():
        group.attrs[key] = value
    return group


def _field(group, name: str, value, units: str | None = None, **attrs):
    field = group.create_dataset(name, data=value)
    if units is not None:
        field.attrs["units"] = units
    for key, v in attrs.items():
        field.attrs[key] = v
    return field


def write_nexus(src: ScanSource, out: str, bar: Bar) -> None:
    """/cxi_version 160 and /entry_1 (NXentry, definition NXcxi_ptycho):

    - instrument_1/source_1 (NXsource: name, energy, probe, type), beam_1 (NXbeam: the
      photon energy in eV, no spread), detector_1 (NXdetector: data as stored, x/y_pixel_size,
      distance, translation (n, 3) = (x, y, 0) m as CXI, pixel_mask (1 = bad), the
      transformations of its axes);
    - data (NXdata: signal data, linked x, y), data_1 (CXI's links to data and translation);
    - sample_1 (NXsample: transformations x, y (n,) m; geometry_1 with the translation);
    - jscan_truth (NXcollection): probe (M, H, W) (`ScanSource.engine_probe`) with its pixel,
      object (1, R, C) sample_truth with its pixel and origin, the detector mask (1 = bad; the
      validator misreads NXdetector's pixel_mask) and jscan_index (n,).
    """
    import h5py

    n = src.n_rows
    ev = energy_j(src.wavelength) / ELECTRON_VOLT_J
    with h5py.File(out, "w") as f:
        f.attrs["default"] = "entry_1"
        f.create_dataset("cxi_version", data=160)
        entry = _group(f, "entry_1", "NXentry", default="data")
        _field(entry, "definition", "NXcxi_ptycho")
        _field(entry, "title", f"jscan simulation of {src.store}")
        instrument = _group(entry, "instrument_1", "NXinstrument")
        source = _group(instrument, "source_1", "NXsource")
        _field(source, "name", "jscan simulation")
        _field(source, "energy", ev, "eV")  # a simulated source: the photon energy
        _field(source, "probe", "x-ray")
        _field(source, "type", "Synchrotron X-ray Source")
        beam = _group(instrument, "beam_1", "NXbeam")
        _field(beam, "energy", ev, "eV")
        _field(beam, "incident_beam_energy", ev, "eV")
        _field(beam, "incident_energy_spread", 0.0, "eV")
        det = _group(instrument, "detector_1", "NXdetector", signal="data", axes="[, data]")
        data = patterns_dataset(det, "data", src)
        data.attrs.update(
            units="counts" if data.dtype.kind in "iu" else "1", target=f"{DETECTOR}/data"
        )
        camera = float(src.attrs["camera_pixel_size_m"])
        _field(det, "x_pixel_size", camera, "m")
        _field(det, "y_pixel_size", camera, "m")
        _field(det, "distance", float(src.attrs["travel_distance_m"]), "m")
        translation = det.create_dataset("translation", shape=(n, 3), dtype=np.float64)
        translation.attrs.update(
            units="m",
            axes="translation:y:x",
            interpretation="image",
            target=f"{DETECTOR}/translation",
        )
        det["data_1"] = h5py.SoftLink(f"{DETECTOR}/data")
        axes = _group(det, "transformations", "NXtransformations")
        _field(axes, "vector", np.eye(3), "m", transformation_type="translation")
        sample = _group(entry, "sample_1", "NXsample")
        moves = _group(sample, "transformations", "NXtransformations")
        x = moves.create_dataset("x", shape=(n,), dtype=np.float64)
        y = moves.create_dataset("y", shape=(n,), dtype=np.float64)
        for axis, vector in ((x, [1, 0, 0]), (y, [0, 1, 0])):
            axis.attrs.update(units="m", transformation_type="translation", vector=vector)
            axis.attrs["target"] = axis.name
        geometry = _group(sample, "geometry_1", "NXcollection")
        geometry["translation"] = h5py.SoftLink(f"{DETECTOR}/translation")
        nxdata = _group(entry, "data", "NXdata", signal="data", axes=["x", ".", "."])
        nxdata["data"] = h5py.SoftLink(f"{DETECTOR}/data")
        nxdata["x"] = h5py.SoftLink("/entry_1/sample_1/transformations/x")
        nxdata["y"] = h5py.SoftLink("/entry_1/sample_1/transformations/y")
        _field(nxdata, "x_indices", "0")
        _field(nxdata, "y_indices", "0")
        cxi = _group(entry, "data_1", "NXcollection")
        cxi["data"] = h5py.SoftLink(f"{DETECTOR}/data")
        cxi["translation"] = h5py.SoftLink(f"{DETECTOR}/translation")
        truth = _group(entry, "jscan_truth", "NXcollection")
        probe = _field(truth, "probe", src.engine_probe(), pixel_size_m=src.probe_dx)
        probe.attrs["long_name"] = "probe (mode, y, x), scaled for an unnormalised FFT"
        obj = src.object_array(truth, "object")
        r0, c0 = src.region[:2]
        obj.attrs.update(
            pixel_size_m=src.sample_dx, origin_m=[r0 * src.sample_dx, c0 * src.sample_dx]
        )
        obj.attrs["long_name"] = "sample transmission (1, y, x); pixel (r, c) at origin + (r, c) dx"
        _field(truth, "mask", src.mask.astype(np.uint32))  # as CXI's: 1 = invalid pixel
        index = index_dataset(truth, "jscan_index", src)

        def write(rows, patterns, xs, ys, positions):
            data[rows] = patterns
            translation[rows] = np.stack([xs, ys, np.zeros_like(xs)], axis=1)
            x[rows], y[rows] = xs, ys
            index[rows] = positions

        stream_blocks(src, bar, write)
