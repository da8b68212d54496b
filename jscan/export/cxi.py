"""One CXI 1.6 file, laid out as ptychodus's `CXIDiffractionFileReader` and
`CXIProductFileIO` read it (``ptychodus/plugins/cxi_file.py``)."""

import numpy as np

from jscan.export.ptychodus import MARGIN, ptychodus_centre
from jscan.export.source import (
    Bar,
    ScanSource,
    energy_j,
    index_dataset,
    patterns_dataset,
    stream_blocks,
)


def write_cxi(src: ScanSource, out: str, bar: Bar) -> None:
    """/cxi_version 160 and, under /entry_1:

    - instrument_1/detector_1/{data, distance, x_pixel_size, y_pixel_size, mask} (mask 1 =
      invalid pixel);
    - instrument_1/source_1/{energy [J], wavelength}, and illumination: a link to the probe;
    - sample_1/geometry_1/translation (n, 3) [m] = (x, y, 0), the probe position on the
      sample (as ptychodus reads it);
    - data_1/{data, translation}: soft links to them;
    - image_1/data: the probe (M, H, W) (`ScanSource.engine_probe`), image_2/data: the
      ground truth object (1, R + 2 MARGIN, C + 2 MARGIN), ones around the scanned region;
      each with image_size [m];
    - ptychodus/{probe_pixel_*, object_pixel_*, object_center_*_m, probe_position_indexes,
      probe_photon_count, tomography_angle_deg}: ptychodus's own extension for what CXI does
      not name (its position indexes are the file's rows, as its diffraction reader numbers
      the patterns);
    - jscan_index: the store's position index of each row.
    """
    import h5py

    with h5py.File(out, "w") as f:
        f.create_dataset("cxi_version", data=160)
        entry = f.create_group("entry_1")
        det = entry.create_group("instrument_1/detector_1")
        data = patterns_dataset(det, "data", src)
        det.create_dataset("distance", data=float(src.attrs["travel_distance_m"]))
        det.create_dataset("x_pixel_size", data=float(src.attrs["camera_pixel_size_m"]))
        det.create_dataset("y_pixel_size", data=float(src.attrs["camera_pixel_size_m"]))
        det.create_dataset("mask", data=src.mask.astype(np.uint32))  # CXI: bit 1 = invalid
        source = entry.create_group("instrument_1/source_1")
        source.create_dataset("energy", data=energy_j(src.wavelength))
        source.create_dataset("wavelength", data=src.wavelength)
        geometry = entry.create_group("sample_1/geometry_1")
        translation = geometry.create_dataset(
            "translation", shape=(src.n_rows, 3), dtype=np.float64
        )
        entry.create_group("data_1")
        entry["data_1/data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        entry["data_1/translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
        _images(entry, src)
        source["illumination"] = h5py.SoftLink("/entry_1/image_1/data")
        index = index_dataset(entry, "jscan_index", src)

        def write(rows, patterns, x, y, positions):
            data[rows] = patterns
            translation[rows] = np.stack([x, y, np.zeros_like(x)], axis=1)
            index[rows] = positions

        stream_blocks(src, bar, write)


def _images(entry, src: ScanSource) -> None:
    """image_1 (probe), image_2 (object) and ptychodus's extension group."""
    probe = entry.create_group("image_1")
    probe.create_dataset("data", data=src.engine_probe())
    probe.create_dataset("data_type", data="probe")
    h, w = src.window
    probe.create_dataset("image_size", data=[w * src.probe_dx, h * src.probe_dx, 0.0])
    obj = entry.create_group("image_2")
    src.object_array(obj, "data", margin=MARGIN)
    obj.create_dataset("data_type", data="transmission (ground truth)")
    rows, cols = (n + 2 * MARGIN for n in src.region[2:])
    obj.create_dataset("image_size", data=[cols * src.sample_dx, rows * src.sample_dx, 0.0])
    ext = entry.create_group("ptychodus")
    cx, cy = ptychodus_centre(src)
    for name, value in (
        ("probe_pixel_width_m", src.probe_dx),
        ("probe_pixel_height_m", src.probe_dx),
        ("object_pixel_width_m", src.sample_dx),
        ("object_pixel_height_m", src.sample_dx),
        ("object_center_x_m", cx),
        ("object_center_y_m", cy),
        ("probe_photon_count", float(src.attrs.get("dose_photons", 0.0))),
        ("tomography_angle_deg", 0.0),
    ):
        ext.create_dataset(name, data=value)
    ext.create_dataset("probe_position_indexes", data=np.arange(src.n_rows, dtype=np.int64))
