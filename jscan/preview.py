"""`jscan preview`: one picture of a store, finished or not (needs matplotlib: jscan[plot]).

It reads the virtual bright field that the workers stored with each block (a few bytes per
position) and the few patterns it draws, never every pattern, so a 10^7-position store
previews in seconds. Large scans are drawn as images of at most MAX_SIDE^2 pixels.
"""

import math
import os

import numpy as np
import xarray as xr

from jscan.pipeline.store import blocks_done, check_store, location, per_position
from jscan.pipeline.store.chunks import read_sound

MAX_MARKERS = 5000  # beyond this many positions the scan is drawn as an image only
MAX_SCATTER = 100_000  # beyond this many positions a scan that is not a raster is binned
MAX_SIDE = 1024  # pixels per side of the scan image at most (rasters and binned scans)


MAX_PATTERNS = 48  # patterns a preview draws at most (--patterns)


def pattern_grid(n_patterns: int) -> tuple[int, int]:
    """(rows, cols) of the pattern panels beside the scan: at least two rows, about twice as
    many columns as rows."""
    rows = max(2, math.ceil(math.sqrt(n_patterns / 2)))
    return rows, max(1, -(-n_patterns // rows))


def pattern_picks(done, n_patterns: int) -> np.ndarray:
    """Indices of the positions whose patterns the preview draws: n_patterns done positions
    spread evenly over the scan (fewer when fewer are done)."""
    picks = np.flatnonzero(done)
    return picks[np.linspace(0, len(picks) - 1, min(n_patterns, len(picks))).astype(int)]


def binned_raster(image, side: int = MAX_SIDE) -> np.ndarray:
    """A (rows, cols) image with NaN gaps, averaged over f x f cells so that no side
    exceeds ``side`` (f = ceil(max(rows, cols) / side)); NaN where a cell has no value."""
    f = -(-max(image.shape) // side)
    if f == 1:
        return image
    rows, cols = -(-image.shape[0] // f) * f, -(-image.shape[1] // f) * f
    padded = np.full((rows, cols), np.nan)
    padded[: image.shape[0], : image.shape[1]] = image
    cells = padded.reshape(rows // f, f, cols // f, f)
    counts = np.isfinite(cells).sum((1, 3))
    sums = np.nansum(cells, axis=(1, 3))
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def binned_scatter(x, y, values, done, side: int = MAX_SIDE):
    """Scattered positions binned onto a grid of at most ``side`` x ``side`` square-ish cells.

    x, y (n,): positions; values (n,): their values (used where done); done (n,) bool.
    Returns (mean of the done values per cell, NaN where none; True where a cell holds only
    positions not done; extent [x0, x1, y1, y0] for imshow).
    """
    span_x, span_y = np.ptp(x) or 1.0, np.ptp(y) or 1.0
    n_side = min(side, int(np.ceil(np.sqrt(len(x)))))
    scale = n_side / max(span_x, span_y)
    bins = (max(1, round(span_y * scale)), max(1, round(span_x * scale)))
    box = [[y.min(), y.min() + span_y], [x.min(), x.min() + span_x]]
    sums, _, _ = np.histogram2d(y[done], x[done], bins=bins, range=box, weights=values[done])
    count, _, _ = np.histogram2d(y[done], x[done], bins=bins, range=box)
    waiting, _, _ = np.histogram2d(y[~done], x[~done], bins=bins, range=box)
    mean = np.where(count > 0, sums / np.maximum(count, 1), np.nan)
    extent = [box[1][0], box[1][1], box[0][1], box[0][0]]
    return mean, (waiting > 0) & (count == 0), extent


def preview(store, out, n_patterns: int = 4, dpi: int = 110):
    """Write a PNG: virtual bright field at the scan positions, a few patterns, the optics
    (`preview_figure`); the folders of ``out`` are created. Returns the figure's path."""
    fig = preview_figure(store, n_patterns)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def preview_figure(store, n_patterns: int = 4):
    """The preview's matplotlib Figure: the scan's virtual bright field (first axes),
    ``n_patterns`` patterns beside it, the optics in one line below.

    Reads the stored ``bright_field`` (`jscan.analysis.stored_detectors`) and n_patterns
    patterns. Positions of blocks not yet simulated are drawn grey in a raster; other scans
    draw the positions simulated (a block writes its positions). A `matplotlib.figure.Figure`
    of its own: no pyplot, so the process's backend and figures are left alone.
    """
    import matplotlib
    from matplotlib.figure import Figure

    store = location(store)
    attrs = check_store(store)
    # One chunk per block makes 10^4 chunks of block_done and of bright_field for 10^7
    # positions: read whole, a file at a time, not chunk by chunk through zarr.
    ds = xr.open_zarr(store, chunks=None)
    done = per_position(blocks_done(store), attrs["block_size"], attrs["n_positions"])
    bf = np.where(done, read_sound(store, "bright_field"), np.nan)  # not done: NaN, grey
    raster = "scan_shape" in ds.attrs
    picks = pattern_picks(done, n_patterns)
    # A raster's image needs no positions: read them all only for other scans (NaN where
    # not simulated yet), else just those of the patterns drawn.
    if not raster or done.size <= MAX_MARKERS:
        x_um, y_um = read_sound(store, "x") * 1e6, read_sound(store, "y") * 1e6
    else:
        x_um, y_um = np.full(done.size, np.nan), np.full(done.size, np.nan)
        x_um[picks] = ds.x.isel(position=picks).values * 1e6
        y_um[picks] = ds.y.isel(position=picks).values * 1e6
    known = done & np.isfinite(x_um) & np.isfinite(y_um)  # a block writes its positions
    (x0, x1), (y0, y1) = np.asarray(ds.attrs["scan_extent_m"]) * 1e6

    n_rows, n_cols = pattern_grid(n_patterns)
    # Each pattern keeps about 1.7 in a side however many are drawn.
    size = (6.5 + 1.7 * n_cols, max(6.2, 1.75 * n_rows + 1.0))
    fig = Figure(figsize=size, layout="constrained")
    grid = fig.add_gridspec(n_rows, 2 + n_cols, width_ratios=[2, 2] + [1.3] * n_cols)
    ax = fig.add_subplot(grid[:, :2])
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.75")
    if raster:  # in scan order (row-major): the image needs no positions
        image = bf.reshape([int(v) for v in ds.attrs["scan_shape"]])
        extent = [x0, x1, y1, y0]
        shown = ax.imshow(binned_raster(image), cmap=cmap, extent=extent, interpolation="nearest")
        waiting = "grey: not yet"
    else:  # positions not simulated yet are not in the store: only those done are drawn
        waiting = "positions not simulated yet are not shown"
        if len(x_um) > MAX_SCATTER and known.any():
            mean, _, extent = binned_scatter(x_um[known], y_um[known], bf[known], known[known])
            clear = cmap.with_extremes(bad=(0, 0, 0, 0))  # empty cells: background
            shown = ax.imshow(mean, cmap=clear, extent=extent, interpolation="nearest")
        else:
            shown = ax.scatter(x_um[known], y_um[known], c=bf[known], cmap=cmap, s=12)
            ax.set(xlim=(x0, x1), ylim=(y1, y0))
    if len(x_um) <= MAX_MARKERS:
        ax.plot(x_um[known], y_um[known], ".", ms=1.5, color="white", alpha=0.6)
    ax.set(
        xlabel="x (µm)",
        ylabel="y (µm)",
        aspect="equal",
        title=f"virtual bright field, r ≤ {ds.attrs['bright_field_radius_m'] * 1e3:.3g} mm\n"
        f"{int(done.sum())}/{done.size} positions simulated"
        + ("" if done.all() else f" ({waiting})"),
    )
    fig.colorbar(shown, ax=ax, shrink=0.8, label=ds.bright_field.attrs.get("units", ""))

    z = ds.attrs["travel_distance_m"]
    theta = np.concatenate([ds.det_x.values[[0, -1]], ds.det_y.values[[0, -1]]]) / z * 1e3
    for k, i in enumerate(picks):
        row, col = divmod(k, n_cols)
        pax = fig.add_subplot(grid[row, 2 + col])
        pattern = ds.diffraction.isel(position=int(i)).values.astype(np.float64)
        pax.imshow(np.log10(1 + np.maximum(pattern, 0)), cmap="magma", extent=theta, origin="lower")
        pax.set_title(f"position {i}\n({x_um[i]:.1f}, {y_um[i]:.1f}) µm", fontsize=8)
        if col == 0:
            pax.set_ylabel("θy (mrad)")
        if row == n_rows - 1 or k + n_cols >= n_patterns:  # the lowest in its column
            pax.set_xlabel("θx (mrad)")
        pax.tick_params(labelsize=7)
    a = ds.attrs
    optics = [
        f"λ = {a['wavelength_m'] * 1e9:.4g} nm",
        f"probe dx = {a['probe_dx_m'] * 1e6:.4g} µm, zoom {a['zoom_factor']:.4g}",
        f"aperture D = {a['aperture_diameter_m'] * 1e6:.4g} µm",
        f"z = {z * 1e3:.4g} mm",
        f"camera pixel = {a['camera_pixel_size_m'] * 1e6:.4g} µm "
        f"({ds.sizes['det_y']}×{ds.sizes['det_x']})",
        f"dose = {a['dose_photons']:.3g} photons" if a["dose_photons"] else "noiseless",
        "patterns: log10(1 + I)",
    ]
    # Below the panels, where constrained layout leaves it room: it covers no data.
    fig.supxlabel("   ·   ".join(optics), fontsize=9)
    return fig


THUMBNAIL_PIXELS = 4096**2  # samples up to this size are drawn in `plot_dry_run`


def plot_dry_run(run, out, dpi: int = 110) -> str:
    """Write a PNG of a checked config (`jscan.pipeline.run.dryrun.DryRun`, `jscan check
    --plot`): the probe's amplitude with the aperture, and the sample's |O| with the scan's
    positions (their extent) and the area the probe windows cover. A sample of more than
    `THUMBNAIL_PIXELS` pixels is drawn as its outline only. Returns the path."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    from jscan.inputs.samples import sample_region
    from jscan.pipeline.run.dryrun import bounding_box

    config, plan = run.spec.config, run.spec.plan
    dx = config.sample.dx * 1e6  # µm
    fig = Figure(figsize=(11, 5.2), layout="constrained")
    pax, sax = fig.subplots(1, 2, width_ratios=[1, 1.3])
    h, w = plan.window
    probe = np.sqrt((np.abs(run.spec.probe) ** 2).reshape(-1, h, w).sum(axis=0))  # every mode
    zdx = config.probe.dx * config.optics.zoom_factor * 1e6
    box = [-(w // 2) * zdx, (w - w // 2) * zdx, (h - h // 2) * zdx, -(h // 2) * zdx]
    pax.imshow(probe, cmap="magma", extent=box)
    cx, cy = config.optics.aperture_center or (0.0, 0.0)
    radius = config.optics.aperture_diameter / 2 * 1e6
    pax.add_patch(Circle((cx * 1e6, cy * 1e6), radius, fill=False, color="cyan", lw=1.2))
    pax.set(title="probe |P| and the aperture (zoomed plane)", xlabel="x (µm)", ylabel="y (µm)")
    rows, cols = plan.sample_shape
    if rows * cols <= THUMBNAIL_PIXELS:
        step = max(1, -(-max(rows, cols) // 1024))
        region = sample_region(config.sample, 0, 0, rows, cols, config.probe.wavelength)
        if region.ndim == 3:  # slices: their projection (product)
            region = np.prod(region, axis=0)
        image = np.abs(region[::step, ::step])
        sax.imshow(image, cmap="gray", extent=[0, cols * dx, rows * dx, 0])
    else:
        sax.add_patch(Rectangle((0, 0), cols * dx, rows * dx, fill=False, color="k"))
        sax.set(xlim=(0, cols * dx), ylim=(rows * dx, 0))
    (x0, x1), (y0, y1) = (np.asarray(v) * 1e6 for v in plan.extent_m)
    (bx0, bx1), (by0, by1) = (np.asarray(v) * 1e6 for v in bounding_box(run))
    sax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="tab:orange", lw=1.5))
    sax.add_patch(
        Rectangle((bx0, by0), bx1 - bx0, by1 - by0, fill=False, color="tab:cyan", ls="--", lw=1.2)
    )
    sax.plot([], [], color="tab:orange", label="scan positions")
    sax.plot([], [], color="tab:cyan", ls="--", label="probe windows")
    sax.legend(loc="upper right", fontsize=8)
    sax.set(
        title=f"sample |O|, {plan.n_positions:,} positions ({config.scan.kind})",
        xlabel="x (µm)",
        ylabel="y (µm)",
        aspect="equal",
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return str(out)
