"""A store opened for export (`ScanSource`) and what every format's writer shares: the
probe scaled for an FFT engine, the object's region, the warnings, and the HDF5 datasets
filled block by block.

Conventions every format starts from (each writer then applies its engine's own, and the
export guide lists them, docs/guide/export.md):

- patterns are written as stored: the zero frequency at pixel (H//2, W//2) (fftshifted);
- positions are the store's x, y: where the probe's axis pixel (H//2, W//2) sits on the
  sample, in the frame where sample pixel (r, c) is at y = r dx, x = c dx;
- the probe is scaled for an engine whose far field is an unnormalised FFT (`engine_probe`):
  |FFT(probe x object)|^2 equals the stored float patterns (the expected counts) at the
  natural sampling camera_pixel = lambda z / (N dx zoom).
"""

import json
import math
import tomllib

import numpy as np
import zarr

from jscan.errors import StoreError
from jscan.pipeline.live.progress import bar
from jscan.pipeline.store import block_crc, block_rows, blocks_done, check_store, location
from jscan.pipeline.store.chunks import DECODE_ERRORS

PLANCK_J_S = 6.62607015e-34
LIGHT_M_S = 299792458.0
ELECTRON_VOLT_J = 1.602176634e-19


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
        # (K, R, C) slices of a thick sample, their spacing [m]; a thin one: (R, C), None
        self.layer_spacing = self.attrs.get("slice_spacing_m")
        # the config's tables as the store holds them: read, not validated (`parse_config`
        # would refuse a probe or sample file that has moved since the run)
        self.tables = tomllib.loads(self.attrs["config"])
        self.far_field = self.tables.get("optics", {}).get("propagation", "far") == "far"
        self.sample_x = self.group["sample_x"][:] if self.sample is not None else None
        self.sample_y = self.group["sample_y"][:] if self.sample is not None else None
        self.mask = np.asarray(self.group["mask"][:]).astype(bool)  # True: a pixel not to use

    def block_range(self, b: int) -> tuple[int, int]:
        return block_rows(b, self.block_size, self.n_positions)

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

    @property
    def region(self) -> tuple[int, int, int, int]:
        """(row0, col0, rows, cols) of the scanned region in sample pixels: sample_truth's, or
        the region its ``sample_truth_ref`` names."""
        if self.sample is None:
            return tuple(json.loads(self.attrs["sample_truth_ref"])["region"])
        dx = self.sample_dx
        r0, c0 = (round(float(v[0]) / dx) for v in (self.sample_y, self.sample_x))
        return r0, c0, *self.sample.shape[-2:]

    @property
    def layers(self) -> int:
        """Slices of the sample (1: thin)."""
        if self.layer_spacing is None:
            return 1
        if self.sample is not None:
            return self.sample.shape[0]
        return int(json.loads(self.attrs["sample_truth_ref"])["slices"])

    def flat_sample(self) -> np.ndarray | None:
        """sample_truth as one (R, C) layer: a thick sample's slices multiplied (their
        projection)."""
        if self.sample is None or self.sample.ndim == 2:
            return self.sample
        return np.prod(self.sample, axis=0, dtype=np.complex64)

    @property
    def sample_dx(self) -> float:
        return float(self.attrs["sample_dx_m"])

    def object_centre(self) -> tuple[float, float]:
        """(x, y) [m] of the middle of the scanned region: ((C - 1)/2, (R - 1)/2) in its
        pixels."""
        r0, c0, rows, cols = self.region
        return (c0 + (cols - 1) / 2) * self.sample_dx, (r0 + (rows - 1) / 2) * self.sample_dx

    def axis_offset(self) -> tuple[float, float]:
        """(x, y) [m] from the window's middle pixel (W - 1)/2, (H - 1)/2 (where engines that
        centre a patch on its position put it) to jscan's axis pixel W//2, H//2: half a probe
        pixel along an even side, 0 along an odd one."""
        h, w = self.window
        return (w // 2 - (w - 1) / 2) * self.probe_dx, (h // 2 - (h - 1) / 2) * self.probe_dx

    def object_array(self, h5, path: str, truth: bool = True, margin: int = 0, layers=False):
        """Dataset ``path`` (L, R + 2 margin, C + 2 margin) complex64 over the scanned region
        and ``margin`` pixels around it (which no window reaches): ones, with sample_truth
        inside when ``truth`` and the store holds it. L: the sample's slices with
        ``layers``, else 1 (a thick sample's projection, `flat_sample`)."""
        rows, cols = self.region[2:]
        count = self.layers if layers else 1
        out = h5.create_dataset(
            path,
            shape=(count, rows + 2 * margin, cols + 2 * margin),
            dtype=np.complex64,
            fillvalue=np.complex64(1),
            chunks=True,
        )
        if truth and self.sample is not None:
            values = self.sample if count > 1 else self.flat_sample()
            out[:, margin : margin + rows, margin : margin + cols] = values
        return out

    def truth_warnings(self, layers: bool = False) -> list[str]:
        """When the store has no sample_truth (past its size limit), and when a thick
        sample's slices become one object (a format without ``layers``)."""
        out = []
        if self.sample is None:
            out.append(
                "the store holds no sample_truth (past its size limit): the object written is "
                "ones; the truth is the config's sample over sample_truth_ref's region"
            )
        if self.layers > 1 and not layers:
            out.append(
                f"the sample has {self.layers} slices, which this format's one object layer "
                "cannot hold: its object is their product (the projection approximation); "
                "the slices are the store's sample_truth (the ptychodus export keeps them)"
            )
        return out

    def sampling_warnings(self) -> list[str]:
        """Why an FFT engine's model differs from the store's: another camera sampling than
        the natural one, an odd window (pty-chi), or an object pixel other than the probe's."""
        out = []
        h, w = self.window
        lz = self.wavelength * float(self.attrs["travel_distance_m"])
        natural = [lz / (n * self.probe_dx) for n in (h, w)]  # rows, columns
        cam = float(self.attrs["camera_pixel_size_m"])
        off = [v for v in natural if abs(cam / v - 1) > 1e-6]
        if not self.far_field:
            out.append(
                "near-field patterns (optics.propagation = near): an engine's far-field "
                "model does not apply; reconstruct with its near-field (Fresnel) propagation"
            )
        elif off:
            out.append(
                f"camera pixel {cam:.6g} m is not the natural lambda z / (N dx zoom) = "
                f"{off[0]:.6g} m: an FFT engine's object pixel differs from the store's"
            )
        if h % 2 or w % 2:
            out.append(
                f"odd window {h}x{w}: pty-chi moves the zero frequency to the corner with "
                "fftshift, one pixel off for an odd side (ifftshift, as PtyLab's, is right)"
            )
        detector = self.tables.get("detector", {})
        effects = [k for k in ("background", "psf_sigma", "readout_noise") if detector.get(k)]
        effects += ["gain"] if detector.get("gain", 1) != 1 else []
        if effects:
            out.append(
                f"the detector model's {', '.join(effects)} are in the patterns, not in an "
                "engine's |FFT(probe x object)|^2 (the exported probe is scaled to photons)"
            )
        if abs(self.sample_dx / self.probe_dx - 1) > 1e-6:
            out.append("sample dx differs from probe dx x zoom: the probe and object grids differ")
        return out


def energy_j(wavelength: float) -> float:
    return PLANCK_J_S * LIGHT_M_S / wavelength


class Bar:
    """A progress line on a stream (stderr), redrawn per block on a terminal; elsewhere (a
    log file) the last line only, as a run's."""

    def __init__(self, stream, total: int, label: str):
        self.stream, self.total, self.label = stream, total, label
        self.tty = stream is not None and stream.isatty()

    def __call__(self, k: int) -> None:
        if self.stream is None or not (self.tty or k >= self.total):
            return
        end = "\n" if k >= self.total else ""
        line = f"{self.label} {bar(k, self.total)} {k}/{self.total} blocks"
        print(("\r" if self.tty else "") + line, end=end, file=self.stream)
        self.stream.flush()


def patterns_dataset(h5, path: str, src: ScanSource, dtype=None):
    n, (h, w) = src.n_rows, src.window
    dtype = np.dtype(dtype or src.diffraction.dtype)
    chunk = (max(1, min(n, src.block_size, (4 << 20) // (h * w * dtype.itemsize))), h, w)
    return h5.create_dataset(path, shape=(n, h, w), dtype=dtype, chunks=chunk)


def stream_blocks(src: ScanSource, bar: Bar, write) -> None:
    """write(rows, patterns, x, y, index) per done block (rows: its slice in the export)."""
    for k, (row, patterns, x, y, index) in enumerate(src.read()):
        write(slice(row, row + len(patterns)), patterns, x, y, index)
        bar(k + 1)


def index_dataset(h5, path: str, src: ScanSource):
    return h5.create_dataset(path, shape=(src.n_rows,), dtype=np.int64)
