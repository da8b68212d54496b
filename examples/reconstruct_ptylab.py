"""Simulate a small scan, export it for PtyLab, and reconstruct it with PtyLab's mPIE.

The scan: a 32x32 Gaussian probe behind a 24 um aperture over a smooth random object (phase
within +-1 rad, transmission 0.8 to 1, saved as the scan's .npy sample), a raster on whole
sample pixels (PtyLab rounds positions to whole pixels), the camera at the natural sampling
lambda z / (N dx) (so PtyLab's object pixel is the sample's), 1e6 photons per position stored
as expected counts (``[detector] noise = false``). `jscan export --format ptylab` writes one
CPM file, scan.h5, with the true probe (scaled for PtyLab's unitary FFT) and the true object
on PtyLab's own object grid. PtyLab's mPIE then recovers the object from PtyLab's flat start
("ones") with that probe loaded by `Reconstruction.load_probe` and held fixed (betaProbe = 0).
It prints the relative error of the object against the file's ``object`` over the well-lit
interior of the scan (the area the windows cover, N//2 pixels in from its edges), after
removing the global phase:

    min_phi || O exp(i phi) - O_true || / || O_true ||

PtyLab's own prints and progress bars go to FOLDER/ptylab.log. Run it (PtyLab and h5py
installed; CPU only):

    python examples/reconstruct_ptylab.py --out ptylab-out             # 500 iterations
    python examples/reconstruct_ptylab.py --out ptylab-out --small     # 50 iterations, seconds
"""

import argparse
import contextlib
from pathlib import Path

import h5py
import numpy as np
import small_scan

import jscan
from jscan.export import export


def reconstruct(path: Path, iterations: int, seed: int = 0):
    """PtyLab's mPIE on an exported CPM file, the probe loaded from it and held fixed:
    (flat start, result, truth, interior) with the objects (No, No) and the interior a pair
    of slices."""
    import PtyLab

    # PtyLab's initial guess, position order and momentum draw from the legacy global state.
    np.random.seed(seed)  # noqa: NPY002
    data = PtyLab.ExperimentalData(path, "CPM")
    params = PtyLab.Params()
    params.gpuSwitch = False
    params.positionOrder = "random"
    params.propagatorType = "Fraunhofer"  # PtyLab's far field: its unitary, centred fft2c
    reconstruction = PtyLab.Reconstruction(data, params)
    reconstruction.npsm = 1  # one probe mode, as exported
    reconstruction.initialObject = "ones"  # PtyLab's flat start (ones + 1e-3 noise)
    reconstruction.initializeObjectProbe()
    reconstruction.load_probe(path)  # the exact probe, photon scale included
    start = reconstruction.object[0, 0, 0, 0].copy()

    engine = PtyLab.Engines.mPIE(reconstruction, data, params, PtyLab.DummyMonitor())
    engine.numIterations = iterations
    # PtyLab 0.3.7 defines params.probeUpdateStart but no engine reads it: a zero probe step
    # is what keeps the probe (and its momentum) fixed.
    engine.betaProbe = 0.0
    engine.betaObject = 0.25  # mPIE's defaults: alphaObject 0.1, feedbackM 0.3, frictionM 0.7
    engine.reconstruct()

    with h5py.File(path, "r") as f:
        truth = f["object"][0, 0, 0, 0]
    # The covered area: every window's top-left pixel (row, col) plus Np; N//2 in from it.
    low = reconstruction.positions.min(axis=0) + reconstruction.Np // 2
    high = reconstruction.positions.max(axis=0) + reconstruction.Np - reconstruction.Np // 2
    interior = (slice(low[0], high[0]), slice(low[1], high[1]))
    return start, reconstruction.object[0, 0, 0, 0], truth, interior


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the store and the export")
    parser.add_argument("--small", action="store_true", help="50 iterations instead of 500")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    small_scan.make_sample(out / "sample.npy")
    config = out / "scan.toml"
    config.write_text(small_scan.config())
    store = out / "scan.zarr"
    jscan.simulate_scan(str(config), str(store), n_workers=1, overwrite=True, progress=False)
    export(str(store), "ptylab", str(out / "scan.h5"), stream=None)
    iterations = 50 if args.small else 500
    # PtyLab prints (the encoder it found, the engine it starts) and draws progress bars on
    # stdout: keep them, out of the way, in a log.
    with open(out / "ptylab.log", "w") as log, contextlib.redirect_stdout(log):
        start, recon, truth, interior = reconstruct(out / "scan.h5", iterations)
    initial = small_scan.object_error(start, truth, interior)
    final = small_scan.object_error(recon, truth, interior)
    print(f"object error after {iterations} iterations: initial {initial:.3g} final {final:.3g}")


if __name__ == "__main__":
    main()
