"""Quickstart: simulate the built-in demo scan, open it with xarray, look at it.

Shows the shortest path from nothing to a picture:

1. `simulate_scan` runs the built-in demo config (a Gaussian probe raster-scanned over a
   Siemens star, Poisson noise) on an embedded LocalCluster and writes a Zarr store;
2. plain `xarray.open_zarr` opens the store lazily (no jscan needed to read it);
3. `jscan.analysis.virtual_bright_field` builds a lazy virtual bright-field image, which is
   computed only when plotted with matplotlib;
4. `jscan.preview.preview` draws jscan's own one-page summary of the store.

Run it:

    python examples/quickstart.py --out quickstart-out           # the full 64x64 demo
    python examples/quickstart.py --out quickstart-out --small   # 12x12 positions, seconds

It writes DIR/scan.zarr, DIR/bright_field.png and DIR/preview.png (DIR must not hold a
scan.zarr already).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import xarray as xr

from jscan import simulate_scan
from jscan.analysis import virtual_bright_field
from jscan.inputs.config import DEMO_CONFIG, parse_config
from jscan.preview import preview


def demo_config(small: bool):
    """The demo config; with small=True a 12x12 scan over a 160x160 sample, blocks of 48."""
    text = DEMO_CONFIG
    if small:
        for old, new in [
            ("shape = [64, 64]", "shape = [12, 12]"),  # [scan]
            ("shape = [512, 512]", "shape = [160, 160]"),  # [sample]
            ("block_size = 512", "block_size = 48"),  # [run]
        ]:
            assert old in text, f"the demo config no longer contains {old!r}"
            text = text.replace(old, new)
    return parse_config(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="quickstart-out", help="output directory")
    parser.add_argument("--small", action="store_true", help="a 12x12 scan (seconds)")
    parser.add_argument("--workers", type=int, default=1, help="LocalCluster worker processes")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "scan.zarr"
    config = demo_config(args.small)
    simulate_scan(config, store, n_workers=args.workers, progress=True).close()

    # Any xarray user can read the store: nothing is loaded until it is needed.
    ds = xr.open_zarr(store)
    print(ds)
    bf = virtual_bright_field(ds)  # lazy: a dask-backed DataArray over `position`
    print(f"virtual bright field: {bf.sizes['position']} positions, dask chunks {bf.chunks}")

    # Raster scans carry scan_row / scan_col: unstack the positions onto the grid.
    image = bf.compute().set_index(position=["scan_row", "scan_col"]).unstack("position")
    x_um, y_um = ds.x.values * 1e6, ds.y.values * 1e6
    fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    shown = ax.imshow(
        image.values,
        extent=[x_um.min(), x_um.max(), y_um.max(), y_um.min()],
        interpolation="nearest",
    )
    ax.set(xlabel="x (µm)", ylabel="y (µm)", title="virtual bright field")
    fig.colorbar(shown, ax=ax, label=ds.diffraction.attrs.get("units", ""))
    fig.savefig(out / "bright_field.png", dpi=100)
    plt.close(fig)
    print(
        f"bright field: min {float(image.min()):.4g}, max {float(image.max()):.4g}, "
        f"mean {float(image.mean()):.4g} {ds.diffraction.attrs.get('units', '')}"
    )
    ds.close()

    print(f"wrote {out / 'bright_field.png'}")
    print(f"wrote {preview(store, out / 'preview.png')}")


if __name__ == "__main__":
    main()
