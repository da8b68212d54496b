"""`jscan export`: a store's done blocks to the files that reconstruction engines read.

Formats (h5py, the optional extra ``[export]``), streamed block by block (one block of
patterns in memory at a time), each block's CRC32 checked against ``block_checksum``:

- ``cxi``: one CXI 1.6 file (`write_cxi`);
- ``ptychodus``: a folder with ptychodus's ``diffraction.h5`` and ``product-in.h5``
  (`write_ptychodus`);
- ``ptylab``: one PtyLab CPM ``.h5`` file (`write_ptylab`).

Conventions, shared by every format (the README lists each engine's):

- patterns are written as stored: the zero frequency at pixel (H//2, W//2) (fftshifted),
  dtype as stored (uint32 counts, or float32 expected counts / intensities; PtyLab: float32);
- positions are the store's x, y: where the probe's axis pixel (H//2, W//2) sits on the
  sample, in the frame where sample pixel (r, c) is at y = r dx, x = c dx;
- the probe is scaled for an engine whose far field is an unnormalised FFT (``engine_probe``):
  |FFT(probe x object)|^2 equals the stored float patterns (the expected counts) at the
  natural sampling camera_pixel = lambda z / (N dx zoom).

A store with blocks not done is refused unless ``partial`` is set: then only the done blocks'
positions are written, and ``indexes`` / the index arrays say which positions they are.
"""

import json
import math
import os
import sys
import tomllib
from dataclasses import dataclass

import numpy as np
import zarr

from jscan.errors import StoreError, UsageError
from jscan.pipeline.chunks import DECODE_ERRORS
from jscan.pipeline.store import block_crc, blocks_done, check_store, location

FORMATS = ("cxi", "ptychodus", "ptylab")
PLANCK_J_S = 6.62607015e-34
LIGHT_M_S = 299792458.0
ELECTRON_VOLT_J = 1.602176634e-19


@dataclass(frozen=True)
class ExportReport:
    """What `export` wrote."""

    out: str
    format: str
    positions: int  # patterns written
    blocks: int  # blocks written
    skipped_blocks: int  # blocks not done (partial export)
    warnings: tuple[str, ...] = ()


class ScanSource:
    """A store opened for export: attributes, ground truth and its done blocks, read block by
    block. StoreError when the store is not a whole jscan store of the current format."""

    def __init__(self, store: str, partial: bool = False):
        self.store = location(store)
        self.attrs = check_store(self.store)
        self.group = zarr.open_group(self.store, mode="r")
        self.diffraction = self.group["diffraction"]
        self.x, self.y = self.group["x"], self.group["y"]  # written per block, with the patterns
        self.block_size = int(self.attrs["block_size"])
        self.n_positions = int(self.attrs["n_positions"])
        done = blocks_done(self.store)
        self.blocks = [int(b) for b in np.flatnonzero(done)]
        self.skipped = len(done) - len(self.blocks)
        if self.skipped and not partial:
            raise StoreError(
                f"{self.store} has {self.skipped} of {len(done)} blocks not done; finish it with "
                "jscan simulate CONFIG --out STORE --resume, or export the done blocks only "
                "with --partial"
            )
        if not self.blocks:
            raise StoreError(f"{self.store} has no block done yet: nothing to export")
        self.checksums = self.group["block_checksum"][:]
        self.n_rows = sum(np.diff(self.block_range(b))[0] for b in self.blocks)  # rows written
        self.window = tuple(int(v) for v in self.diffraction.shape[1:])
        self.probe = self.group["probe"][:]  # (M, H, W)
        names = set(self.group.array_keys())
        self.sample = self.group["sample_truth"][:] if "sample_truth" in names else None
        self.sample_x = self.group["sample_x"][:] if self.sample is not None else None
        self.sample_y = self.group["sample_y"][:] if self.sample is not None else None
        mask = self.group["mask"][:] if "mask" in names else np.zeros(self.window, bool)
        self.mask = np.asarray(mask).astype(bool)  # True: a pixel not to use

    def block_range(self, b: int) -> tuple[int, int]:
        start = b * self.block_size
        return start, min(start + self.block_size, self.n_positions)

    def read(self):
        """Yield (row, patterns, x, y, index) per done block: row is its first row in the
        export, index (n,) int64 the store positions of its rows."""
        row = 0
        for b in self.blocks:
            start, stop = self.block_range(b)
            try:
                patterns = self.diffraction[start:stop]
                x, y = self.x[start:stop], self.y[start:stop]
            except DECODE_ERRORS as err:
                raise StoreError(
                    f"{self.store}: block {b} cannot be read ({type(err).__name__}); run jscan "
                    f"verify {self.store}"
                ) from None
            if block_crc(patterns, x, y) != int(self.checksums[b]):
                raise StoreError(
                    f"{self.store}: block {b} differs from its checksum; run jscan verify "
                    f"{self.store}"
                )
            yield row, patterns, x, y, np.arange(start, stop, dtype=np.int64)
            row += stop - start

    @property
    def wavelength(self) -> float:
        return float(self.attrs["wavelength_m"])

    @property
    def probe_dx(self) -> float:
        """Probe (and object) pixel [m]: probe dx x zoom."""
        return float(self.attrs["probe_dx_m"]) * float(self.attrs["zoom_factor"])

    def engine_probe(self, norm: str = "backward") -> np.ndarray:
        """(M, H, W) complex64 probe for an FFT engine: sum_m |FFT(P_m O)|^2 gives the stored
        float patterns (expected counts when dose > 0).

        stored = s |DFT(P O)|^2 ((dx zoom)^2 / (lambda z))^2 with s = photons_per_intensity
        (1 when dose is 0): P_engine = P sqrt(s) (dx zoom)^2 / (lambda z); norm "ortho"
        (a unitary FFT, PtyLab's fft2c) also multiplies by sqrt(H W).
        """
        s = float(self.attrs.get("photons_per_intensity") or 0.0) or 1.0
        lz = self.wavelength * float(self.attrs["travel_distance_m"])
        scale = math.sqrt(s) * self.probe_dx**2 / lz
        if norm == "ortho":
            scale *= math.sqrt(self.window[0] * self.window[1])
        return (self.probe.astype(np.complex128) * scale).astype(np.complex64)

    def object_centre(self) -> tuple[float, float]:
        """(x, y) [m] of the middle of the scanned region (of sample_truth, when stored)."""
        if self.sample is not None:
            return float(self.sample_x.mean()), float(self.sample_y.mean())
        ref = json.loads(self.attrs["sample_truth_ref"])
        r0, c0, rows, cols = ref["region"]
        dx = float(ref["dx_m"])
        return (c0 + (cols - 1) / 2) * dx, (r0 + (rows - 1) / 2) * dx

    def sampling_warnings(self) -> list[str]:
        """Why an FFT engine's model differs from the store's: another camera sampling than
        the natural one, an odd window, or an object pixel other than the probe's."""
        out = []
        h, w = self.window
        natural = self.wavelength * float(self.attrs["travel_distance_m"]) / (w * self.probe_dx)
        cam = float(self.attrs["camera_pixel_size_m"])
        if abs(cam / natural - 1) > 1e-6:
            out.append(
                f"camera pixel {cam:.6g} m is not the natural lambda z / (N dx zoom) = "
                f"{natural:.6g} m: an FFT engine's object pixel differs from the store's"
            )
        if h % 2 or w % 2:
            out.append(f"odd window {h}x{w}: engines that fftshift (not ifftshift) move DC")
        detector = tomllib.loads(self.attrs["config"]).get("detector", {})
        effects = [k for k in ("background", "psf_sigma", "readout_noise") if detector.get(k)]
        effects += ["gain"] if detector.get("gain", 1) != 1 else []
        if effects:
            out.append(
                f"the detector model's {', '.join(effects)} are in the patterns, not in an "
                "engine's |FFT(probe x object)|^2 (the exported probe is scaled to photons)"
            )
        if abs(float(self.attrs["sample_dx_m"]) / self.probe_dx - 1) > 1e-6:
            out.append("sample dx differs from probe dx x zoom: the probe and object grids differ")
        return out


def _energy_j(wavelength: float) -> float:
    return PLANCK_J_S * LIGHT_M_S / wavelength


class _Bar:
    """A progress line on a stream (stderr), redrawn per block."""

    def __init__(self, stream, total: int, label: str):
        self.stream, self.total, self.label = stream, total, label

    def __call__(self, k: int) -> None:
        if self.stream is None:
            return
        width = 30
        filled = int(width * k / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if k >= self.total else ""
        print(f"\r{self.label} [{bar}] {k}/{self.total} blocks", end=end, file=self.stream)
        self.stream.flush()


def _patterns_dataset(h5, path: str, src: ScanSource, dtype=None):
    n, (h, w) = src.n_rows, src.window
    dtype = np.dtype(dtype or src.diffraction.dtype)
    chunk = (max(1, min(n, src.block_size, (4 << 20) // (h * w * dtype.itemsize))), h, w)
    return h5.create_dataset(path, shape=(n, h, w), dtype=dtype, chunks=chunk)


def _stream(src: ScanSource, bar: _Bar, write) -> None:
    """write(rows, patterns, x, y, index) per done block (rows: its slice in the export)."""
    for k, (row, patterns, x, y, index) in enumerate(src.read()):
        write(slice(row, row + len(patterns)), patterns, x, y, index)
        bar(k + 1)


def _index_dataset(h5, path: str, src: ScanSource):
    return h5.create_dataset(path, shape=(src.n_rows,), dtype=np.int64)


def write_cxi(src: ScanSource, out: str, bar: _Bar) -> None:
    """CXI 1.6: /cxi_version 160; /entry_1/instrument_1/detector_1/{data, distance,
    x_pixel_size, y_pixel_size, mask}; /entry_1/instrument_1/source_1/{energy [J],
    illumination (`engine_probe`)}; /entry_1/sample_1/geometry_1/translation (n, 3) [m]
    = (x, y, 0), the probe position on the sample (as ptychodus reads it); /entry_1/data_1/
    data and translation are soft links to them."""
    import h5py

    with h5py.File(out, "w") as f:
        f.create_dataset("cxi_version", data=160)
        entry = f.create_group("entry_1")
        det = entry.create_group("instrument_1/detector_1")
        data = _patterns_dataset(det, "data", src)
        det.create_dataset("distance", data=float(src.attrs["travel_distance_m"]))
        det.create_dataset("x_pixel_size", data=float(src.attrs["camera_pixel_size_m"]))
        det.create_dataset("y_pixel_size", data=float(src.attrs["camera_pixel_size_m"]))
        det.create_dataset("mask", data=src.mask.astype(np.uint32))  # non-zero: invalid pixel
        source = entry.create_group("instrument_1/source_1")
        source.create_dataset("energy", data=_energy_j(src.wavelength))
        source.create_dataset("wavelength", data=src.wavelength)
        source.create_dataset("illumination", data=src.engine_probe())
        geometry = entry.create_group("sample_1/geometry_1")
        translation = geometry.create_dataset(
            "translation", shape=(src.n_rows, 3), dtype=np.float64
        )
        if src.sample is not None:
            entry.create_dataset("sample_1/transmission", data=src.sample)
        entry.create_group("data_1")
        entry["data_1/data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        entry["data_1/translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
        index = _index_dataset(entry, "jscan_index", src)

        def write(rows, patterns, x, y, positions):
            data[rows] = patterns
            translation[rows] = np.stack([x, y, np.zeros_like(x)], axis=1)
            index[rows] = positions

        _stream(src, bar, write)


def write_ptychodus(src: ScanSource, out: str, bar: _Bar) -> None:
    """A folder ``out`` with ptychodus's batch layout: ``diffraction.h5`` (patterns (n, H, W)
    as stored, indexes (n,), bad_pixels (H, W) bool) and ``product-in.h5`` (the product file:
    probe_position_indexes, probe_position_x_m, probe_position_y_m; probe (M, H, W) with
    pixel_width_m / pixel_height_m; object (1, R, C): sample_truth, or ones over the scanned
    region, with center_x_m / center_y_m at the region's middle; the geometry attributes)."""
    import h5py

    os.makedirs(out, exist_ok=True)
    with (
        h5py.File(os.path.join(out, "diffraction.h5"), "w") as f,
        h5py.File(os.path.join(out, "product-in.h5"), "w") as p,
    ):
        patterns = _patterns_dataset(f, "patterns", src)
        indexes = _index_dataset(f, "indexes", src)
        f.create_dataset("bad_pixels", data=src.mask)
        xs = p.create_dataset("probe_position_x_m", shape=(src.n_rows,), dtype=np.float64)
        ys = p.create_dataset("probe_position_y_m", shape=(src.n_rows,), dtype=np.float64)
        position_indexes = _index_dataset(p, "probe_position_indexes", src)

        def write(rows, block, x, y, positions):
            patterns[rows] = block
            indexes[rows] = positions
            xs[rows], ys[rows] = x, y
            position_indexes[rows] = positions

        _stream(src, bar, write)
        _product_metadata(p, src)


def _product_metadata(f, src: ScanSource) -> None:
    """The product file's attributes, probe and object (ptychodus's H5ProductFileIO)."""
    f.attrs["name"] = os.path.basename(os.path.normpath(src.store))
    f.attrs["comments"] = f"exported by jscan from {src.store}"
    f.attrs["detector_object_distance_m"] = float(src.attrs["travel_distance_m"])
    f.attrs["probe_energy_eV"] = _energy_j(src.wavelength) / ELECTRON_VOLT_J
    f.attrs["probe_photon_count"] = float(src.attrs.get("dose_photons", 0.0))
    f.attrs["exposure_time_s"] = 0.0
    f.attrs["mass_attenuation_m2_kg"] = 0.0
    f.attrs["tomography_angle_deg"] = 0.0
    probe = f.create_dataset("probe", data=src.engine_probe())
    probe.attrs["pixel_width_m"] = src.probe_dx
    probe.attrs["pixel_height_m"] = src.probe_dx
    if src.sample is not None:
        obj = f.create_dataset("object", data=src.sample[None])
    else:  # a sample past the store's limit: ones over the region, never held in memory
        rows, cols = json.loads(src.attrs["sample_truth_ref"])["region"][2:]
        obj = f.create_dataset(
            "object",
            shape=(1, rows, cols),
            dtype=np.complex64,
            fillvalue=np.complex64(1),
            chunks=True,
        )
    cx, cy = src.object_centre()
    obj.attrs["center_x_m"] = cx
    obj.attrs["center_y_m"] = cy
    obj.attrs["pixel_width_m"] = float(src.attrs["sample_dx_m"])
    obj.attrs["pixel_height_m"] = float(src.attrs["sample_dx_m"])
    f.create_dataset("object_layer_spacing_m", data=np.zeros(0))
    f.create_dataset("loss_epochs", data=np.zeros(0, np.int64))
    f.create_dataset("loss_values", data=np.zeros(0))


def write_ptylab(src: ScanSource, out: str, bar: _Bar) -> None:
    """PtyLab CPM file: ptychogram (n, H, W) float32 as stored; encoder (n, 2) (y, x) [m]
    relative to the middle of the scanned region (PtyLab puts the window's top-left at
    round(encoder / dxo) + No//2 - Np//2); wavelength, dxd (camera pixel), zo (distance),
    entrancePupilDiameter (the aperture); also probe (`engine_probe`, unitary FFT) and
    object (sample_truth) for reference, which PtyLab's reader does not read."""
    import h5py

    if not out.endswith((".h5", ".hdf5")):
        raise UsageError(f"--out {out}: PtyLab reads .h5 or .hdf5 files; name it PATH.h5")
    cx, cy = src.object_centre()
    with h5py.File(out, "w") as f:
        data = _patterns_dataset(f, "ptychogram", src, dtype=np.float32)
        encoder = f.create_dataset("encoder", shape=(src.n_rows, 2), dtype=np.float64)
        f.create_dataset("wavelength", data=src.wavelength)
        f.create_dataset("dxd", data=float(src.attrs["camera_pixel_size_m"]))
        f.create_dataset("zo", data=float(src.attrs["travel_distance_m"]))
        f.create_dataset("entrancePupilDiameter", data=float(src.attrs["aperture_diameter_m"]))
        f.create_dataset("probe", data=src.engine_probe(norm="ortho"))
        if src.sample is not None:
            f.create_dataset("object", data=src.sample)
        index = _index_dataset(f, "jscan_index", src)

        def write(rows, patterns, x, y, positions):
            data[rows] = patterns.astype(np.float32)
            encoder[rows] = np.stack([y - cy, x - cx], axis=1)
            index[rows] = positions

        _stream(src, bar, write)


WRITERS = {"cxi": write_cxi, "ptychodus": write_ptychodus, "ptylab": write_ptylab}


_STDERR = object()  # sys.stderr as it is when export runs


def export(store: str, fmt: str, out: str, partial: bool = False, stream=_STDERR):
    """Export a store's done blocks as ``fmt`` ("cxi", "ptychodus", "ptylab") to ``out``;
    return an `ExportReport`.

    partial: allow a store with blocks not done (only the done ones are written; without it
    StoreError); stream: where the progress bar and warnings go (None: silent). UsageError
    when h5py is missing or the format is unknown.
    """
    if stream is _STDERR:
        stream = sys.stderr
    if fmt not in WRITERS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise UsageError("jscan export needs h5py: pip install 'jscan[export]'") from None
    src = ScanSource(store, partial=partial)
    warnings = src.sampling_warnings()
    if src.skipped:
        warnings.insert(0, f"{src.skipped} blocks not done are left out (--partial)")
    for line in warnings:
        if stream is not None:
            print(f"jscan export: warning: {line}", file=stream)
    WRITERS[fmt](src, out, _Bar(stream, len(src.blocks), f"export {fmt}"))
    return ExportReport(out, fmt, src.n_rows, len(src.blocks), src.skipped, tuple(warnings))
