"""The small scan the reconstruction examples share: its config, its sample, and the object
error they report (imported by reconstruct_ptychi.py, reconstruct_ptychodus.py and
reconstruct_ptylab.py, which run beside it).

A Gaussian probe behind a 24 um aperture over a smooth random object, a 14x14 raster on
whole sample pixels (PtyLab rounds positions to pixels), the camera at the natural sampling
lambda z / (N dx) (so an FFT engine's object pixel is the sample's), 1e6 photons per
position stored as expected counts (``[detector] noise = false``).

Run it to write the scan's inputs, then simulate them:

    python examples/small_scan.py --out small
    jscan simulate small/scan.toml --out small/scan.zarr
"""

import argparse
from pathlib import Path

import numpy as np

CONFIG = """
[probe]
kind = "gaussian"
size = {size}
dx = 1.0e-6
wavelength = 500.0e-9
waist = 6.0e-6

[optics]
zoom_factor = 1.0
aperture_diameter = 24.0e-6
travel_distance = {distance}  # camera pixel = lambda z / (N dx): the natural sampling
camera_pixel_size = 200.0e-6

[sample]
kind = "file"
path = "sample.npy"
dx = 1.0e-6

[scan]
kind = "raster"
shape = [14, 14]
step = 5.0e-6
start = [30.0e-6, 30.0e-6]    # whole sample pixels

[detector]
dose = 1.0e6
noise = false                 # float32 expected photon counts

[run]
block_size = 64
"""


def config(size: int = 32) -> str:
    """The scan's TOML for a size x size probe window, the camera at the natural pixel."""
    return CONFIG.format(size=size, distance=0.0128 * size / 32)


def make_sample(path: Path, seed: int = 0) -> None:
    """A smooth random 128x128 object: phase within +-1 rad, transmission 0.8 to 1."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(128)
    low_pass = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.06**2))
    phase, absorb = (
        np.fft.ifft2(np.fft.fft2(rng.normal(size=(128, 128))) * low_pass).real for _ in range(2)
    )
    transmission = 0.9 + 0.1 * absorb / np.abs(absorb).max()
    np.save(path, (transmission * np.exp(1j * phase / np.abs(phase).max())).astype(np.complex64))


def inset(margin: int) -> tuple[slice, slice]:
    """The interior ``margin`` pixels in from every edge."""
    return slice(margin, -margin), slice(margin, -margin)


def object_error(recon, truth, interior: tuple[slice, slice]) -> float:
    """min_phi || O exp(i phi) - O_true || / || O_true || over ``interior``."""
    a, b = recon[interior], truth[interior]
    phase = np.vdot(a, b) / abs(np.vdot(a, b))
    return float(np.linalg.norm(a * phase - b) / np.linalg.norm(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for scan.toml and sample.npy")
    parser.add_argument("--size", type=int, default=32, help="probe window side (px)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    make_sample(out / "sample.npy")
    (out / "scan.toml").write_text(config(args.size))
    print(f"wrote {out / 'scan.toml'} and {out / 'sample.npy'}")


if __name__ == "__main__":
    main()
