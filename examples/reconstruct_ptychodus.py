"""Simulate a small scan, export it for ptychodus, and reconstruct it with ptychodus's own batch
reconstruction (pty-chi as its engine), from the exported files alone.

The scan is `reconstruct_ptychi.py`'s: a Gaussian probe behind a 24 um aperture over a
smooth random object, a raster on whole sample pixels, the camera at the natural sampling,
1e6 photons per position as expected counts. `jscan export --format ptychodus` writes
diffraction.h5, product.h5 (the start: the exact probe, the positions, a flat object) and
truth.h5. Then, as a ptychodus user would:

    ptychodus-reconstruct-subprocess -i FOLDER -o OUT --ptychi-options options.yaml

with pty-chi's LSQML options (printed by ptychodus's --print-ptychi-options) edited to hold
the probe and positions fixed. The result, OUT/product.h5, and truth.h5 are read with
ptychodus's `load_product`; the relative object error over the well-lit interior, after
removing the global phase, is printed:

    min_phi || O exp(i phi) - O_true || / || O_true ||

Run it (ptychodus, pty-chi and h5py installed, the [readers] and [engines] extras):

    python examples/reconstruct_ptychodus.py --out ptychodus-out             # 200 epochs
    python examples/reconstruct_ptychodus.py --out ptychodus-out --small     # 20 epochs
    python examples/reconstruct_ptychodus.py --out ptychodus-out --size 33   # odd window
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import small_scan

import jscan
from jscan.export import export


def ptychi_options(path: Path, epochs: int) -> None:
    """ptychodus's printed LSQML options, with the probe and positions fixed (the exported
    probe is exact, photon scale included), on the CPU, seeded."""
    import yaml

    tool = Path(sys.executable).with_name("ptychodus-reconstruct-subprocess")
    printed = subprocess.run(
        [str(tool), "--print-ptychi-options"], capture_output=True, text=True, check=True
    )
    options = yaml.safe_load(printed.stdout)
    recon = options["reconstructor_options"]
    recon.update(num_epochs=epochs, batch_size=49, default_device="cpu", random_seed=0)
    recon["rescale_probe_intensity_in_first_epoch"] = False
    options["probe_options"]["optimizable"] = False
    options["probe_position_options"]["optimizable"] = False
    options["object_options"]["remove_object_probe_ambiguity"]["enabled"] = False
    path.write_text(yaml.safe_dump(options))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the store and the export")
    parser.add_argument("--small", action="store_true", help="20 epochs instead of 200")
    parser.add_argument("--size", type=int, default=32, help="probe window side (32)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    small_scan.make_sample(out / "sample.npy")
    config = out / "scan.toml"
    config.write_text(small_scan.config(args.size))
    store = out / "scan.zarr"
    jscan.simulate_scan(str(config), str(store), n_workers=1, overwrite=True, progress=False)
    folder = out / "ptychodus"
    export(str(store), "ptychodus", str(folder))
    epochs = 20 if args.small else 200
    ptychi_options(out / "options.yaml", epochs)
    tool = Path(sys.executable).with_name("ptychodus-reconstruct-subprocess")
    command = [str(tool), "-i", str(folder), "-o", str(out / "result")]
    command += ["--ptychi-options", str(out / "options.yaml"), "--event-file", str(out / "ev")]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{' '.join(command)} exited {run.returncode}:\n{run.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    from ptychodus.api.io import load_product

    result = load_product(out / "result" / "product.h5").object_.get_array()[0]
    truth = load_product(folder / "truth.h5").object_.get_array()[0]
    margin = 2 + args.size // 2
    initial = small_scan.object_error(np.ones_like(truth), truth, small_scan.inset(margin))
    final = small_scan.object_error(result, truth, small_scan.inset(margin))
    print(f"ptychodus batch reconstruction: {seconds:.1f} s")
    print(f"object error after {epochs} epochs: initial {initial:.4f} final {final:.4f}")


if __name__ == "__main__":
    main()
