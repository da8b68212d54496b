"""One PtyLab CPM ``.h5`` file, as `PtyLab.ExperimentalData(path, "CPM")` reads it and
`Reconstruction.load_probe` / `load_object` load its probe and object."""

import numpy as np

from jscan.errors import UsageError
from jscan.export.source import Bar, ScanSource, index_dataset, patterns_dataset, stream_blocks


def check_ptylab(src: ScanSource, out: str) -> None:
    """UsageError for what PtyLab's reader cannot take, before anything is written."""
    if not out.endswith((".h5", ".hdf5")):
        raise UsageError(f"--out {out}: PtyLab reads .h5 or .hdf5 files; name it PATH.h5")
    h, w = src.window
    if h != w:
        raise UsageError(f"--format ptylab: PtyLab takes square patterns, these are {h}x{w}")
    if src.n_rows < 2:  # its reader transposes an encoder with fewer rows than columns
        raise UsageError("--format ptylab: PtyLab's reader needs at least 2 positions")


def ptylab_warnings(src: ScanSource) -> list[str]:
    """What a PtyLab CPM file cannot carry."""
    bad = int(src.mask.sum())
    if not bad:
        return []
    return [f"PtyLab's CPM file has no bad-pixel mask: {bad} masked pixels are 0 in ptychogram"]


def encoder_origin(src: ScanSource) -> tuple[float, float]:
    """(x, y) [m] that the encoder is measured from: the sample pixel (R//2, C//2) of the
    scanned region, so that a whole-pixel position has a whole-pixel encoder (PtyLab rounds
    encoder / dxo)."""
    r0, c0, rows, cols = src.region
    return (c0 + cols // 2) * src.sample_dx, (r0 + rows // 2) * src.sample_dx


def write_ptylab(src: ScanSource, out: str, bar: Bar) -> list[str]:
    """ptychogram (n, N, N) float32 as stored; encoder (n, 2) (y, x) [m] from
    `encoder_origin`; wavelength, dxd (camera pixel), zo (distance), entrancePupilDiameter
    (the aperture); probe (1, 1, M, 1, N, N) (nlambda, nosm, npsm, nslice, Np, Np) scaled for
    PtyLab's unitary fft2c; object (1, 1, 1, 1, No, No), the ground truth placed where
    PtyLab puts each window (top-left round(encoder / dxo) + No//2 - Np//2, with PtyLab's
    own No); jscan_index (n,). Returns the warning for positions PtyLab rounds."""
    import h5py

    ox, oy = encoder_origin(src)
    n = src.window[0]
    dxd = float(src.attrs["camera_pixel_size_m"])
    zo = float(src.attrs["travel_distance_m"])
    dxo = src.wavelength * zo / (n * dxd)  # PtyLab's dxp = wavelength zo / Ld, Ld = Nd dxd
    low, high, off = np.full(2, np.inf), np.full(2, -np.inf), []
    with h5py.File(out, "w") as f:
        data = patterns_dataset(f, "ptychogram", src, dtype=np.float32)
        encoder = f.create_dataset("encoder", shape=(src.n_rows, 2), dtype=np.float64)
        f.create_dataset("wavelength", data=src.wavelength)
        f.create_dataset("dxd", data=dxd)
        f.create_dataset("zo", data=zo)
        f.create_dataset("entrancePupilDiameter", data=float(src.attrs["aperture_diameter_m"]))
        probe = src.engine_probe(norm="ortho")
        f.create_dataset("probe", data=probe[None, None, :, None])
        index = index_dataset(f, "jscan_index", src)

        def write(rows, patterns, x, y, positions):
            enc = np.stack([y - oy, x - ox], axis=1)
            data[rows] = patterns.astype(np.float32)
            encoder[rows] = enc
            index[rows] = positions
            pixels = enc / dxo
            low[:], high[:] = np.minimum(low, pixels.min(0)), np.maximum(high, pixels.max(0))
            off.append(np.abs(pixels - np.round(pixels)).max())

        stream_blocks(src, bar, write)
        size = object_size(np.round(low), np.round(high), n)
        _object(f, src, size)
    worst = max(off)
    if worst > 1e-6:
        return [f"PtyLab rounds positions to whole pixels: up to {worst:.2f} px off here"]
    return []


def object_size(low: np.ndarray, high: np.ndarray, n: int) -> int:
    """PtyLab's No (`Reconstruction.computeParameters`): the widest range of the rounded
    pixel positions plus 2 Np, made even, at least Np."""
    span = int(np.max(high - low)) + 2 * n
    return max(n, span + span % 2)


def _object(f, src: ScanSource, size: int) -> None:
    """object (1, 1, 1, 1, No, No): ones, with sample_truth where PtyLab's pixels fall on it
    (its pixel No//2 is encoder 0, the region's pixel (R//2, C//2))."""
    obj = f.create_dataset(
        "object", shape=(1, 1, 1, 1, size, size), dtype=np.complex64, fillvalue=np.complex64(1)
    )
    sample = src.flat_sample()
    if sample is None:
        return
    rows, cols = sample.shape
    top, left = size // 2 - rows // 2, size // 2 - cols // 2
    r, c = slice(max(0, -top), min(rows, size - top)), slice(max(0, -left), min(cols, size - left))
    obj[0, 0, 0, 0, r.start + top : r.stop + top, c.start + left : c.stop + left] = sample[r, c]
