"""`jscan preview`: one picture of a store, finished or not (needs matplotlib: jscan[plot])."""

import numpy as np

from jscan.analysis import position_done, virtual_bright_field
from jscan.pipeline.store import open_scan

MAX_MARKERS = 5000  # beyond this many positions the scan is drawn as an image only


def preview(store, out, n_patterns: int = 4, dpi: int = 110):
    """Write a PNG: virtual bright field at the scan positions, a few patterns, the optics.

    Positions of blocks not yet simulated are drawn grey. Returns the figure's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_scan(store)
    done = position_done(ds).values
    bf = np.full(ds.sizes["position"], np.nan)  # not simulated: NaN, drawn grey
    if done.any():
        bf[done] = virtual_bright_field(ds.isel(position=np.flatnonzero(done))).values
    x_um, y_um = ds.x.values * 1e6, ds.y.values * 1e6

    fig = plt.figure(figsize=(12, 6.2), layout="constrained")
    n_cols = (n_patterns + 1) // 2  # patterns on two rows beside the scan
    grid = fig.add_gridspec(2, 2 + n_cols, width_ratios=[2, 2] + [1.3] * n_cols)
    ax = fig.add_subplot(grid[:, :2])
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.75")
    if "scan_row" in ds.coords:
        rows, cols = int(ds.scan_row.max()) + 1, int(ds.scan_col.max()) + 1
        image = np.full((rows, cols), np.nan)
        image[ds.scan_row.values, ds.scan_col.values] = bf
        extent = [x_um.min(), x_um.max(), y_um.max(), y_um.min()]
        shown = ax.imshow(image, cmap=cmap, extent=extent, interpolation="nearest")
    else:
        shown = ax.scatter(x_um[done], y_um[done], c=bf[done], cmap=cmap, s=12)
        ax.scatter(x_um[~done], y_um[~done], c="0.75", s=12, label="not simulated yet")
        ax.invert_yaxis()
    if len(x_um) <= MAX_MARKERS:
        ax.plot(x_um, y_um, ".", ms=1.5, color="white", alpha=0.6)
    ax.set(
        xlabel="x (µm)",
        ylabel="y (µm)",
        aspect="equal",
        title=f"virtual bright field, r ≤ {ds.attrs['bright_field_radius_m'] * 1e3:.3g} mm\n"
        f"{int(done.sum())}/{done.size} positions simulated (grey: not yet)",
    )
    fig.colorbar(shown, ax=ax, shrink=0.8, label=ds.diffraction.attrs.get("units", ""))

    z = ds.attrs["travel_distance_m"]
    theta = np.concatenate([ds.det_x.values[[0, -1]], ds.det_y.values[[0, -1]]]) / z * 1e3
    picks = np.flatnonzero(done)
    picks = picks[np.linspace(0, len(picks) - 1, min(n_patterns, len(picks))).astype(int)]
    for k, i in enumerate(picks):
        pax = fig.add_subplot(grid[k // n_cols, 2 + k % n_cols])
        pattern = ds.diffraction.isel(position=int(i)).values.astype(np.float64)
        pax.imshow(np.log10(1 + np.maximum(pattern, 0)), cmap="magma", extent=theta, origin="lower")
        pax.set(
            title=f"position {i}\n({x_um[i]:.1f}, {y_um[i]:.1f}) µm",
            xlabel="θx (mrad)",
            ylabel="θy (mrad)",
        )
        pax.title.set_fontsize(9)
    a = ds.attrs
    text = "\n".join(
        [
            f"λ = {a['wavelength_m'] * 1e9:.4g} nm",
            f"probe dx = {a['probe_dx_m'] * 1e6:.4g} µm, zoom {a['zoom_factor']:.4g}",
            f"aperture D = {a['aperture_diameter_m'] * 1e6:.4g} µm",
            f"z = {z * 1e3:.4g} mm",
            f"camera pixel = {a['camera_pixel_size_m'] * 1e6:.4g} µm "
            f"({ds.sizes['det_y']}×{ds.sizes['det_x']})",
            f"dose = {a['dose_photons']:.3g} photons" if a["dose_photons"] else "noiseless",
            "log10(1 + I) patterns",
        ]
    )
    ax.text(
        0.01,
        0.99,
        text,
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
    )
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
