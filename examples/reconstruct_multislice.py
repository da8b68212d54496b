"""A thick sample simulated by jscan, reconstructed with pty-chi's multislice LSQML.

The scan: two independent slices (band-passed random phase within +-0.5 rad, transmission
0.85 to 1) ``--spacing`` apart, 10 um by default, as a (2, H, W) .npy sample; a 64x64
probe of ``[probe] kind = "lens"`` (NA 0.2, 50 um past its focus: its spread of angles is
what tells the slices apart); a 16x16 raster of 4 px steps with +-1 px jitter on whole
sample pixels; 1e6 photons per pattern as expected counts; the camera at the natural pixel
lambda z / (N dx). `jscan.simulate_scan` writes the store (multislice: each slice's window,
the angular spectrum between them, the far field); everything after reads the store alone
(`store_inputs`, xarray), so ``--store`` takes any thick-sample store at the natural pixel.

pty-chi (LSQML) then recovers both slices from flat starts with the probe and positions
held fixed, and, for comparison, one slice (the projection approximation) from the same
data. It prints the error of each slice against the store's sample_truth over the
well-lit interior, after removing a global phase (small_scan's `object_error`), and both
reconstructions' projected object against the product of the true slices:

    min_phi || O exp(i phi) - O_true || / || O_true ||

Run it (pty-chi installed):

    python examples/reconstruct_multislice.py --out thick/          # 100 epochs
    python examples/reconstruct_multislice.py --out thick/ --small  # 30 epochs
    python examples/reconstruct_multislice.py --store scan.zarr
"""

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import small_scan

import jscan

WAVELENGTH, DX, N = 500e-9, 1e-6, 64
PHOTONS = 1e6


def make_slices(n_slices: int, size: int, seed: int = 0) -> np.ndarray:
    """(K, size, size) complex64, independent slices: random phase within +-0.5 rad and
    transmission 0.85 to 1, band-passed to 0.05-0.2 cycles per pixel (the depth information
    is in the fine detail: the low frequencies hardly change over the spacing)."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    band = np.exp(-k2 / (2 * 0.2**2)) * (1 - np.exp(-k2 / (2 * 0.05**2)))
    out = []
    for _ in range(n_slices):
        phase, absorb = (
            np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * band).real for _ in range(2)
        )
        transmission = 0.925 + 0.075 * absorb / np.abs(absorb).max()
        out.append(transmission * np.exp(0.5j * phase / np.abs(phase).max()))
    return np.asarray(out, np.complex64)


def scan_positions(steps: int, step: int, start: int, seed: int = 0) -> np.ndarray:
    """(steps^2, 2) x, y [m]: a raster with +-1 px jitter, on whole sample pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(steps), np.arange(steps), indexing="ij")
    px = start + step * np.stack([cols.ravel(), rows.ravel()], axis=1)
    return (px + rng.integers(-1, 2, size=px.shape)) * DX


def reconstruct(patterns, positions, probe, wavelength, dx, n_slices, spacing, epochs, margin=2):
    """pty-chi LSQML from flat slices, the probe and positions held fixed.

    patterns: (n, H, W) with the zero frequency at (H//2, W//2), the camera at the natural
    pixel lambda z / (W dx); positions: (n, 2) x, y [m] of the probe's axis pixel (H//2, W//2),
    sample pixel (r, c) at y = r dx, x = c dx; probe: (M, H, W) scaled for an unnormalised
    FFT; spacing [m] between slices (unused for one slice). Returns (slices (n_slices, R, C)
    over the windows' union, corner): its pixel (0, 0) is sample pixel ``corner`` (row, col).
    The object buffer has ``margin`` more pixels on every side, which no window reaches.
    """
    import ptychi.api as api
    import torch
    from ptychi.api.task import PtychographyTask

    window = np.array(probe.shape[-2:])
    centre = positions[:, ::-1] / dx  # row, col of the probe's axis pixel
    first = np.floor(centre.min(0)).astype(int) - window // 2
    shape = np.ceil(centre.max(0)).astype(int) - window // 2 + window - first + 2 * margin
    # pty-chi puts a patch's middle (window - 1)/2 at position + round(shape/2) - 1/2
    middle = centre - (first - margin) - (window // 2 - (window - 1) / 2)
    rel = middle - (np.round(shape / 2) - 0.5)

    options = api.LSQMLOptions()
    options.data_options.fft_shift = True  # the zero frequency is centred in the patterns
    options.data_options.wavelength_m = wavelength
    options.object_options.pixel_size_m = dx
    options.object_options.optimizable = True
    if n_slices > 1:
        options.object_options.slice_spacings_m = np.full(n_slices - 1, spacing)
    # The probe is exact, photon scale included: nothing to trade between probe and object.
    options.object_options.remove_object_probe_ambiguity.enabled = False
    options.probe_options.optimizable = False
    options.probe_position_options.optimizable = False
    options.reconstructor_options.rescale_probe_intensity_in_first_epoch = False
    options.reconstructor_options.batch_size = 64
    options.reconstructor_options.num_epochs = epochs
    task = PtychographyTask(
        options,
        diffraction_data=patterns,
        object_data=np.ones((n_slices, *shape), np.complex64),
        probe_data=probe[None],
        probe_position_x_px=rel[:, 1],
        probe_position_y_px=rel[:, 0],
    )
    torch.manual_seed(0)
    task.run()
    out = task.get_data_to_cpu("object", as_numpy=True)
    return out[:, margin:-margin, margin:-margin], tuple(int(v) for v in first)


def store_inputs(store: str) -> dict:
    """A jscan store's patterns, positions, engine probe, geometry and truth (xarray only).

    The probe is scaled as `jscan.export.source.ScanSource.engine_probe`: sum_m |FFT(P_m O)|^2
    gives the stored patterns. truth: (K, R, C) ``sample_truth``, corner its first pixel.
    """
    import xarray as xr

    ds = xr.open_zarr(store)
    a = ds.attrs
    dx = float(a["probe_dx_m"]) * float(a["zoom_factor"])
    s = float(a.get("photons_per_intensity") or 0.0) or 1.0
    scale = np.sqrt(s) * dx**2 / (float(a["wavelength_m"]) * float(a["travel_distance_m"]))
    truth = ds.sample_truth.values
    truth = truth if truth.ndim == 3 else truth[None]
    corner = (round(float(ds.sample_y[0]) / dx), round(float(ds.sample_x[0]) / dx))
    out = {
        "patterns": ds.diffraction.values.astype(np.float32),
        "positions": np.stack([ds.x.values, ds.y.values], axis=1),
        "probe": (ds.probe.values * scale).astype(np.complex64),
        "wavelength": float(a["wavelength_m"]),
        "dx": dx,
        "spacing": float(a.get("slice_spacing_m", 0.0)),
        "truth": truth,
        "corner": corner,
    }
    ds.close()
    return out


CONFIG = """\
[probe]
kind = "lens"          # a lens of NA 0.2, 50 um past its focus
size = {n}
dx = {dx}
wavelength = {wavelength}
focal_length = 10.0e-3
diameter = 4.0e-3
defocus = 50.0e-6

[optics]
zoom_factor = 1.0
aperture_diameter = 1.0e-3   # far beyond the window: no aperture
travel_distance = {distance}
camera_pixel_size = {camera} # the natural pixel lambda z / (N dx)

[sample]
kind = "file"
path = "slices.npy"
dx = {dx}
spacing = {spacing}

[scan]
kind = "file"
path = "positions.npy"
placement = "snap"

[detector]
dose = {photons}
noise = false          # the expected counts

[run]
block_size = 64
"""


def own_store(folder: Path, spacing: float, n_slices: int = 2) -> Path:
    """The built-in thick scan simulated by jscan into ``folder``/scan.zarr: the slices and
    positions files, the config, `jscan.simulate_scan`."""
    steps, step, start = 16, 4, N // 2 + 4
    size = 2 * start + step * (steps - 1)
    np.save(folder / "slices.npy", make_slices(n_slices, size))
    np.save(folder / "positions.npy", scan_positions(steps, step, start))
    distance = 0.0128 * N / 32
    text = CONFIG.format(
        n=N,
        dx=DX,
        wavelength=WAVELENGTH,
        distance=distance,
        camera=WAVELENGTH * distance / (N * DX),
        spacing=spacing,
        photons=PHOTONS,
    )
    (folder / "scan.toml").write_text(text)
    store = folder / "scan.zarr"
    jscan.simulate_scan(
        str(folder / "scan.toml"), str(store), n_workers=1, overwrite=True, progress=False
    )
    return store


def on_grid(truth, corner, region_corner, shape):
    """truth (K, R, C) from sample pixel ``corner``, cut to ``shape`` at ``region_corner``."""
    r, c = (region_corner[i] - corner[i] for i in range(2))
    if r < 0 or c < 0 or r + shape[0] > truth.shape[-2] or c + shape[1] > truth.shape[-1]:
        raise ValueError("the reconstructed region is not inside sample_truth")
    return truth[:, r : r + shape[0], c : c + shape[1]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="30 epochs instead of 100")
    parser.add_argument("--spacing", type=float, default=10e-6, help="slice spacing [m]")
    parser.add_argument("--store", help="a jscan store of a thick sample instead of the own scan")
    parser.add_argument("--out", default=".", help="folder for the own scan's files and store")
    args = parser.parse_args()
    logging.getLogger("ptychi").setLevel(logging.WARNING)
    epochs = 30 if args.small else 100
    if args.store is None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        args.store = own_store(out, args.spacing)
    data = store_inputs(args.store)
    n_slices = len(data["truth"])
    patterns, window = data["patterns"], data["probe"].shape[-1]
    print(
        f"{len(patterns)} positions, {window}x{window} patterns, {n_slices} slices "
        f"{data['spacing'] * 1e6:.3g} um apart"
    )
    common = [data[k] for k in ("patterns", "positions", "probe", "wavelength", "dx")]

    t0 = time.perf_counter()
    recon, corner = reconstruct(*common, n_slices, data["spacing"], epochs)
    t1 = time.perf_counter()
    flat, _ = reconstruct(*common, 1, 0.0, epochs)
    t2 = time.perf_counter()
    truth = on_grid(data["truth"], data["corner"], corner, recon.shape[-2:])
    inner = small_scan.inset(window // 2)
    for k in range(n_slices):
        start = small_scan.object_error(np.ones_like(truth[k]), truth[k], inner)
        final = small_scan.object_error(recon[k], truth[k], inner)
        print(f"slice {k} error after {epochs} epochs: initial {start:.4f} final {final:.4f}")
    product = np.prod(truth, 0)
    thick = small_scan.object_error(np.prod(recon, 0), product, inner)
    thin = small_scan.object_error(flat[0], product, inner)
    print(f"projected object error: multislice {thick:.4f} single slice {thin:.4f}")
    print(f"time: multislice {t1 - t0:.1f} s, single slice {t2 - t1:.1f} s")


if __name__ == "__main__":
    main()
