"""`jscan check CONFIG`: what a run of a config would do, without a cluster or a store.

It runs the refusals of a run that need no store (the config, a block's memory against the
embedded cluster's workers, the sample's values, the brightness) and describes the run: the
camera against its natural pixel and the propagation path of each axis, the scan on the
sample, the blocks, the store's size, a block's memory and whether the camera covers the
bright-field disc. Its cost does not grow with the number of positions beyond the plan's
own: it reads the plan's sizes and its extent (`ScanPlan.extent_m`) only.
"""

from dataclasses import dataclass

from jscan.inputs.config import Config, load_config, with_overrides
from jscan.inputs.farfield import (
    BRIGHT_FIELD_FRACTION,
    camera_coverage,
    fresnel_magnification,
)
from jscan.pipeline.run import checks, regimes
from jscan.pipeline.run.prepare import plan_config
from jscan.pipeline.run.spec import ScanSpec, describe

PATHS = {
    "fft": "plain FFT (the natural pixel)",
    "pad": "padded FFT",
    "czt": "chirp-z transform",
    "matrix": "DFT matrix",
}


@dataclass(frozen=True)
class DryRun:
    """A checked config's `ScanSpec`, and the warnings a run would print."""

    spec: ScanSpec
    warnings: tuple[str, ...]


def dry_run(config, block_size: int | None = None, workers=None) -> DryRun:
    """Check ``config`` (a TOML path or a Config) as `simulate_scan` would before starting
    its cluster, and plan it. Nothing is written. workers: the `cluster.WorkerMemory` a
    block must fit (`cluster.embedded_workers`), or None.

    Raises ConfigError (with the fix) for what a run would refuse; the warnings of
    `checks.quiet_mistakes` are returned, not issued.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    config = checks.cap_block_size(with_overrides(config, block_size=block_size))
    plan = plan_config(config)  # arithmetic on the config before the sample is read
    if workers:
        checks.check_block_memory(workers, config, plan)
    sample = checks.check_inputs(config)
    checks.check_brightness(config, sample, plan.slices)
    spec = describe(config, plan, inputs="")  # no store: its files need no fingerprint
    return DryRun(spec, tuple(checks.quiet_mistakes(config, plan)))


def length(metres: float) -> str:
    """A length with a readable unit: 390.6 µm, 1.2 mm, 500 nm."""
    size = abs(metres)
    for unit, scale in (("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9)):
        if size >= scale or unit == "nm":
            return f"{metres / scale:.4g} {unit}"
    return f"{metres:g} m"  # unreachable


def bounding_box(run: DryRun) -> tuple[tuple[float, float], tuple[float, float]]:
    """((x0, x1), (y0, y1)) [m] on the sample that the probe windows cover: the positions'
    extent grown by the window around its axis pixel (H//2, W//2)."""
    (x0, x1), (y0, y1) = run.spec.plan.extent_m
    h, w = run.spec.window
    dx = run.spec.config.sample.dx
    return (x0 - (w // 2) * dx, x1 + (w - w // 2) * dx), (
        y0 - (h // 2) * dx,
        y1 + (h - h // 2) * dx,
    )


def report(run: DryRun) -> list[str]:
    """The lines `jscan check` prints."""
    config, plan = run.spec.config, run.spec.plan
    p, o, s, sc = config.probe, config.optics, config.sample, config.scan
    h, w = plan.window
    rows, cols = plan.sample_shape
    lines = [
        f"probe: {p.kind}, {h}×{w} px of {length(p.dx)}, wavelength {length(p.wavelength)}",
        f"sample: {s.kind}, {rows}×{cols} px ({length(cols * s.dx)} × {length(rows * s.dx)})",
    ]
    if plan.slices > 1:
        spread = regimes.lateral_spread(config, plan.slices)
        lines.append(
            f"  {plan.slices} slices {length(s.spacing)} apart (multislice, angular spectrum): "
            f"the wave spreads at most {length(spread)} sideways through them"
        )
    lines.append(
        f"camera: {h}×{w} px of {length(o.camera_pixel_size)} at {length(o.travel_distance)}"
    )
    if o.propagation == "near":
        m, z_eff = fresnel_magnification(o)
        fresnel = regimes.window_fresnel_number(config, plan.window)
        lines.append(
            f"  near field: magnification {m:.4g}, effective distance {length(z_eff)}, the "
            f"window's Fresnel number (N dx zoom)^2/(λ z_eff) = {fresnel:.4g} (sampled: >= "
            f"N = {max(h, w)}); camera pixel "
            f"{o.camera_pixel_size / (m * p.dx * o.zoom_factor):.4g}× M dx zoom"
        )
    for axis in run.spec.camera if o.propagation == "far" else ():
        how = PATHS.get(axis.spec.method, axis.spec.method)
        if axis.spec.method == "pad":
            how += f" (×{axis.spec.m // axis.n}, length {axis.spec.m})"
        elif axis.spec.method == "czt":
            how += f" (FFT length {axis.spec.m})"
        lines.append(
            f"  {axis.name}: natural pixel {length(axis.natural)} (λz/(N·dx·zoom)), camera "
            f"pixel {axis.alpha:.4g}× natural -> {how}"
        )
    (x0, x1), (y0, y1) = plan.extent_m
    (bx0, bx1), (by0, by1) = bounding_box(run)
    shape = f" {sc.shape[0]}×{sc.shape[1]}" if sc.kind == "raster" else ""
    lines += [
        f"scan: {sc.kind}{shape}, {plan.n_positions:,} positions, placement {sc.placement}",
        f"  positions: x {length(x0)} to {length(x1)}, y {length(y0)} to {length(y1)}",
        f"  probe windows cover x {length(bx0)} to {length(bx1)}, y {length(by0)} to "
        f"{length(by1)} of the sample (0 to {length(cols * s.dx)}, 0 to {length(rows * s.dx)})",
    ]
    last = plan.n_positions - (plan.n_blocks - 1) * plan.block_size
    tail = f", the last of {last}" if last != plan.block_size else ""
    region = "×".join(str(v) for v in plan.region_shape)
    lines += [
        f"blocks: {plan.n_blocks:,} of {plan.block_size:,} positions{tail}; each reads a "
        f"{region} px sample region",
        f"store: at most {checks.human(checks.store_bytes(config, plan))} (uncompressed "
        f"patterns); memory per block about {checks.human(checks.block_memory(config, plan))} "
        "(a worker holds one per thread)",
    ]
    radius = run.spec.bright_field_radius
    covered = camera_coverage(config)
    half = min(h // 2, w // 2) * o.camera_pixel_size
    verdict = "covers" if covered >= BRIGHT_FIELD_FRACTION else "does NOT cover"
    lines.append(
        f"bright field: the camera (half-width {length(half)}) holds {100 * covered:.4g} % of "
        f"the probe's own pattern: it {verdict} the bright-field disc "
        f"({100 * BRIGHT_FIELD_FRACTION:g} %, radius {length(radius)} on the camera)"
    )
    return lines
