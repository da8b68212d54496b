"""ptychodus's standard folder: ``diffraction.h5`` and ``product.h5``, the files
`ptychodus.api.io.load_diffraction_data` and `load_product` read (and its batch
reconstruction, ``ptychodus-reconstruct-subprocess -i FOLDER``), and ``truth.h5``: the same
product with the true object."""

import os

import numpy as np

from jscan.export.source import (
    ELECTRON_VOLT_J,
    Bar,
    ScanSource,
    energy_j,
    index_dataset,
    patterns_dataset,
    stream_blocks,
)

DIFFRACTION, PRODUCT, TRUTH = "diffraction.h5", "product.h5", "truth.h5"
# Object pixels around the scanned region: pty-chi's patch extraction reads one past each
# window's edge (it warns and pads otherwise).
MARGIN = 2


def ptychodus_centre(src: ScanSource) -> tuple[float, float]:
    """(center_x_m, center_y_m) of the object for ptychodus's mapping of a position to the
    object pixel (x - center_x)/dx + (C - 1)/2, which it hands pty-chi as the centre (W - 1)/2
    of the probe's window: the scanned region's middle moved by `ScanSource.axis_offset`, so
    that the stored x, y (jscan's axis pixel W//2) are written unchanged."""
    (cx, cy), (ox, oy) = src.object_centre(), src.axis_offset()
    return cx + ox, cy + oy


def ptychodus_warnings(src: ScanSource) -> list[str]:
    """ptychodus 1.7's hand-over to pty-chi on an even window."""
    if all(n % 2 for n in src.window):
        return []
    return [
        "even window: through ptychodus 1.7 (position origin 0) pty-chi models each pattern "
        "half a pixel off its position; with pty-chi's own origin it is exact"
    ]


def write_ptychodus(src: ScanSource, out: str, bar: Bar) -> None:
    """A folder ``out`` with:

    - ``diffraction.h5``: patterns (n, H, W) as stored, with detector_pixel_width_m /
      detector_pixel_height_m; indexes (n,), the store's position indexes; bad_pixels (H, W);
    - ``product.h5``, the reconstruction's start: probe_position_indexes, _x_m, _y_m (the
      store's x, y); probe (M, H, W), which ptychodus reads as M incoherent modes, with
      pixel_width_m / pixel_height_m; a flat object (1, R + 2 MARGIN, C + 2 MARGIN) at
      `ptychodus_centre`; the metadata attributes;
    - ``truth.h5``: the same product with sample_truth in the object.
    """
    import h5py

    os.makedirs(out, exist_ok=True)
    with (
        h5py.File(os.path.join(out, DIFFRACTION), "w") as f,
        h5py.File(os.path.join(out, PRODUCT), "w") as p,
    ):
        patterns = patterns_dataset(f, "patterns", src)
        camera = float(src.attrs["camera_pixel_size_m"])
        patterns.attrs["detector_pixel_width_m"] = camera
        patterns.attrs["detector_pixel_height_m"] = camera
        indexes = index_dataset(f, "indexes", src)
        f.create_dataset("bad_pixels", data=src.mask)
        xs = p.create_dataset("probe_position_x_m", shape=(src.n_rows,), dtype=np.float64)
        ys = p.create_dataset("probe_position_y_m", shape=(src.n_rows,), dtype=np.float64)
        position_indexes = index_dataset(p, "probe_position_indexes", src)

        def write(rows, block, x, y, positions):
            patterns[rows] = block
            indexes[rows] = positions
            xs[rows], ys[rows] = x, y
            position_indexes[rows] = positions

        stream_blocks(src, bar, write)
        _product(p, src, truth=False)
        with h5py.File(os.path.join(out, TRUTH), "w") as t:
            for name in ("probe_position_indexes", "probe_position_x_m", "probe_position_y_m"):
                p.copy(p[name], t, name)
            _product(t, src, truth=True)


def _product(f, src: ScanSource, truth: bool) -> None:
    """A product file's attributes, probe and object (`ptychodus.api.io.save_product`'s
    names)."""
    f.attrs["name"] = os.path.basename(os.path.normpath(src.store))
    f.attrs["comments"] = f"exported by jscan from {src.store}" + (" (truth)" if truth else "")
    f.attrs["detector_object_distance_m"] = float(src.attrs["travel_distance_m"])
    f.attrs["photon_energy_eV"] = energy_j(src.wavelength) / ELECTRON_VOLT_J
    f.attrs["probe_photon_count"] = float(src.attrs.get("dose_photons", 0.0))
    f.attrs["exposure_time_s"] = 0.0
    f.attrs["mass_attenuation_m2_per_kg"] = 0.0
    f.attrs["tomography_angle_deg"] = 0.0
    f.attrs["far_field"] = src.far_field
    probe = f.create_dataset("probe", data=src.engine_probe())
    probe.attrs["pixel_width_m"] = src.probe_dx
    probe.attrs["pixel_height_m"] = src.probe_dx
    obj = src.object_array(f, "object", truth=truth, margin=MARGIN, layers=True)
    cx, cy = ptychodus_centre(src)
    obj.attrs["center_x_m"] = cx
    obj.attrs["center_y_m"] = cy
    obj.attrs["pixel_width_m"] = src.sample_dx
    obj.attrs["pixel_height_m"] = src.sample_dx
    f.create_dataset(
        "object_layer_spacing_m", data=np.full(src.layers - 1, src.layer_spacing or 0.0)
    )
    f.create_dataset("loss_epochs", data=np.zeros(0, np.int64))
    f.create_dataset("loss_values", data=np.zeros(0))
