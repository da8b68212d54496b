"""Simulate a small scan, export it for ptychodus, and reconstruct it with pty-chi.

The scan: a 32x32 Gaussian probe behind a 24 um aperture over a smooth random object (phase
within +-1 rad, transmission 0.8 to 1, saved as the scan's .npy sample), a raster on whole
sample pixels, the camera at the natural sampling lambda z / (N dx) (so an FFT
engine's object pixel is the sample's), 1e6 photons per position stored as expected counts
(``[detector] noise = false``). `jscan export --format ptychodus` writes diffraction.h5,
product.h5 and truth.h5; pty-chi (LSQML) then recovers the object from a flat start with the
exported probe and positions held fixed. It prints the relative error of the recovered
object against ``sample_truth`` over the well-lit interior of the scan, after removing the
global phase:

    min_phi || O exp(i phi) - O_true || / || O_true ||

Run it (pty-chi and h5py installed):

    python examples/reconstruct_ptychi.py --out ptychi-out             # 200 epochs
    python examples/reconstruct_ptychi.py --out ptychi-out --small     # 20 epochs, seconds
"""

import argparse
import logging
from pathlib import Path

import h5py
import numpy as np
import small_scan

import jscan
from jscan.export import export


def reconstruct(folder: Path, epochs: int, algorithm: str = "LSQML", start=None):
    """pty-chi (LSQML by default) on an exported ptychodus folder from a flat object (or
    ``start``, on the object's grid): (object, truth, margin) on that grid."""
    import ptychi.api as api
    import torch
    from ptychi.api.task import PtychographyTask

    with h5py.File(folder / "diffraction.h5", "r") as f:
        data = f["patterns"][:]
    with h5py.File(folder / "truth.h5", "r") as f:  # product.h5 with the true object
        x, y = f["probe_position_x_m"][:], f["probe_position_y_m"][:]
        probe, truth = f["probe"][:], f["object"][0]
        dx = float(f["object"].attrs["pixel_width_m"])
        cx, cy = f["object"].attrs["center_x_m"], f["object"].attrs["center_y_m"]
    rows, cols = truth.shape  # the scanned region and a margin of 2 pixels
    # ptychodus's convention: the window's middle at object pixel (x - center_x)/dx + (C-1)/2;
    # pty-chi takes positions from its origin round(C/2) - 1/2 (exact for an even window)
    origin = np.round(np.array([rows, cols]) / 2) - 0.5
    py = (y - cy) / dx + (rows - 1) / 2 - origin[0]
    px = (x - cx) / dx + (cols - 1) / 2 - origin[1]

    options = getattr(api, f"{algorithm}Options")()
    options.data_options.fft_shift = True  # exported patterns have the zero frequency centred
    options.data_options.wavelength_m = 500e-9
    options.object_options.pixel_size_m = dx
    options.object_options.optimizable = True
    options.probe_options.optimizable = False
    options.probe_position_options.optimizable = False
    # The exported probe is exact, photon scale included: nothing to rescale or trade between
    # probe and object.
    if algorithm == "LSQML":
        options.object_options.remove_object_probe_ambiguity.enabled = False
        options.reconstructor_options.rescale_probe_intensity_in_first_epoch = False
    options.reconstructor_options.batch_size = 49 if algorithm == "LSQML" else 1
    options.reconstructor_options.num_epochs = epochs
    task = PtychographyTask(
        options,
        diffraction_data=data,
        object_data=(np.ones((rows, cols)) if start is None else start)[None].astype(np.complex64),
        probe_data=probe[None],
        probe_position_x_px=px,
        probe_position_y_px=py,
    )
    torch.manual_seed(0)
    task.run()
    return task.get_data_to_cpu("object", as_numpy=True)[0], truth, 2 + probe.shape[-1] // 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the store and the export")
    parser.add_argument("--small", action="store_true", help="20 epochs instead of 200")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    small_scan.make_sample(out / "sample.npy")
    config = out / "scan.toml"
    config.write_text(small_scan.config())
    store = out / "scan.zarr"
    jscan.simulate_scan(str(config), str(store), n_workers=1, overwrite=True, progress=False)
    export(str(store), "ptychodus", str(out / "ptychodus"), stream=None)
    logging.getLogger("ptychi").setLevel(logging.WARNING)
    epochs = 20 if args.small else 200
    recon, truth, margin = reconstruct(out / "ptychodus", epochs)
    start = small_scan.object_error(np.ones_like(truth), truth, small_scan.inset(margin))
    final = small_scan.object_error(recon, truth, small_scan.inset(margin))
    print(f"object error after {epochs} epochs: initial {start:.4f} final {final:.4f}")


if __name__ == "__main__":
    main()
