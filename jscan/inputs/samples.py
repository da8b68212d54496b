"""Probes and sample transmissions (complex64), evaluated region by region."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from jscan.inputs.focused import FOCUSED_KINDS, focused_probe

if TYPE_CHECKING:
    from jscan.inputs.config import ProbeConfig, SampleConfig

J1_FIRST_ZERO = 3.8317059702075125
STAR_SPOKES = 36
STAR_OUTER_RADIUS = 0.45  # fraction of the smaller sample side
STAR_DARK = np.complex64(0.3 * np.exp(1j * 1.0))
CELL_TILE = 24  # pixels per side of one cell tile
CELL_MARGIN = 2  # tiles; discs reach at most 1.5 tiles beyond their own tile


def bessel_j1(x: np.ndarray | float) -> np.ndarray:
    """Bessel function of the first kind, order 1.

    Args:
        x: real argument(s), any shape.

    Returns:
        float64 array of J1(x), same shape as x.
    """
    x = np.asarray(x, dtype=np.float64)
    x_max = float(np.max(np.abs(x))) if x.size else 0.0
    if not math.isfinite(x_max):
        raise ValueError("bessel_j1: x must be finite; remove NaN/inf from the argument")
    # J1(x) = (1/pi) int_0^pi cos(t - x sin t) dt. The integrand is even and 2*pi-periodic,
    # so the trapezoid rule with m intervals only aliases J_{2m +- 1}(x), negligible once
    # 2m exceeds |x| by several widths (|x|/2)^(1/3) of the Bessel turning region.
    m = max(64, math.ceil(x_max / 2 + 8 * np.cbrt(x_max / 2)) + 40)
    t = np.linspace(0.0, np.pi, m + 1)
    weights = np.full(m + 1, 1.0 / m)
    weights[[0, -1]] = 0.5 / m
    total = np.zeros_like(x)
    for t_k, w_k in zip(t, weights, strict=True):
        total += w_k * np.cos(t_k - x * np.sin(t_k))
    return total


def make_probe(cfg: ProbeConfig) -> np.ndarray:
    """Complex probe field in the sample plane, normalised so sum |probe|^2 == 1.

    With M mutually incoherent modes the result is (M, H, W) and the sum runs over every
    mode: the total power is that of one coherent probe. A (M, H, W) "file" probe gives its
    M modes with their saved relative powers; ``modes = M`` > 1 on the procedural kinds
    builds them with `probe_modes`.

    Pixel (i, j) sits at y = (i - N//2) * dx, x = (j - N//2) * dx, so pixel N//2 is on the
    optical axis. "gaussian": flat-phase amplitude exp(-r^2 / waist^2), i.e. `waist` (m) is the
    1/e^2 intensity radius. "airy": amplitude 2 J1(v) / v with v = 3.8317 r / radius, so the
    first dark ring lies at `radius` (m). "file": the 2-D array saved at `path`. "lens",
    "zone_plate": the focused probe of `jscan.inputs.focused` (with a source size, its
    ``modes`` strongest coherent modes).

    Args:
        cfg: the [probe] config.

    Returns:
        complex64 array (size, size) (or (modes, size, size)), or the file's shape for kind
        "file".
    """
    if cfg.kind == "file":
        field = _load_probe_file(cfg.path)
    elif cfg.kind in ("gaussian", "airy"):
        n = int(cfg.size)
        idx = np.arange(n, dtype=np.int64) - n // 2
        r2 = idx[:, None] ** 2 + idx[None, :] ** 2  # squared radius in pixels, exact
        if cfg.kind == "gaussian":
            field = np.exp(-r2 * (cfg.dx / cfg.waist) ** 2)
        else:
            # Evaluate J1 once per distinct squared radius (far fewer than N^2 values),
            # found by counting (O(N^2); a sort of N^2 values took seconds), then look up.
            r2_unique = np.flatnonzero(np.bincount(r2.ravel()))
            v = J1_FIRST_ZERO * np.sqrt(r2_unique) * (cfg.dx / cfg.radius)
            safe_v = np.where(v == 0, 1.0, v)
            table = np.zeros(r2_unique[-1] + 1)
            table[r2_unique] = np.where(v == 0, 1.0, 2.0 * bessel_j1(safe_v) / safe_v)
            field = table[r2]
        field = field.astype(np.complex128)
        if (cfg.modes or 1) > 1:
            field = probe_modes(field, cfg)
    elif cfg.kind in FOCUSED_KINDS:
        field = focused_probe(cfg)
    else:
        raise ValueError(
            f'probe.kind must be "gaussian", "airy", "file", "lens" or "zone_plate", got '
            f"{cfg.kind!r}"
        )
    with np.errstate(over="ignore"):  # a power beyond float64 is refused just below
        power = float(np.sum(np.abs(field) ** 2))
    if power == 0:
        raise ValueError("probe is zero everywhere; use a probe with non-zero amplitude")
    if not math.isfinite(power):  # |value|^2 beyond float64: normalising would give 0 or NaN
        raise ValueError(
            f"probe.path: {cfg.path}: sum |probe|^2 overflows float64; save the probe "
            "scaled down (it is normalised to sum |probe|^2 = 1 anyway)"
        )
    return (field / math.sqrt(power)).astype(np.complex64)


def probe_modes(base: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """M = cfg.modes mutually incoherent modes (M, H, W) complex128 grown from a probe (H, W).

    Mode (j, k) is the probe times Hermite polynomials, P_jk = P_0 H_j(sqrt2 x/w) H_k(sqrt2 y/w)
    (physicists' H), taken in order of j + k, then falling j: (0,0), (1,0), (0,1), (2,0), ...
    For a Gaussian probe (w = waist) these are its Hermite-Gaussian modes, the coherent modes
    of a Gaussian Schell-model beam (Mandel & Wolf, Optical Coherence and Quantum Optics,
    ch. 7; Thibault & Menzel, Nature 494, 68 (2013) for mixed states in ptychography). An Airy
    probe uses the Gaussian that matches its core, w = 2 sqrt2 radius / 3.8317. The modes are
    orthonormalised on the window (modified Gram-Schmidt in float64, so truncation by the
    window cannot correlate them) and mode m gets the power share
    r^m / sum_k r^k, r = cfg.mode_power_ratio.
    """
    n_modes = int(cfg.modes)
    w = cfg.waist if cfg.kind == "gaussian" else 2 * math.sqrt(2) * cfg.radius / J1_FIRST_ZERO
    h, wd = base.shape
    y = (np.arange(h) - h // 2) * (math.sqrt(2) * cfg.dx / w)
    x = (np.arange(wd) - wd // 2) * (math.sqrt(2) * cfg.dx / w)
    orders = [(j, s - j) for s in range(n_modes) for j in range(s, -1, -1)][:n_modes]
    modes = []
    for j, k in orders:
        mode = base * _hermite(k, y)[:, None] * _hermite(j, x)[None, :]
        for other in modes:  # modified Gram-Schmidt
            mode = mode - np.vdot(other, mode) * other
        norm = math.sqrt(float(np.sum(np.abs(mode) ** 2)))
        if not norm > 1e-12 * math.sqrt(float(np.sum(np.abs(base) ** 2))):
            raise ValueError(
                f"probe.modes = {n_modes}: mode {len(modes)} vanishes on the {h}x{wd} window; "
                "use fewer modes or a larger probe.size"
            )
        modes.append(mode / norm)
    share = float(cfg.mode_power_ratio) ** np.arange(n_modes)
    share /= share.sum()
    return np.stack(modes) * np.sqrt(share)[:, None, None]


def _hermite(order: int, t: np.ndarray) -> np.ndarray:
    """Physicists' Hermite polynomial H_order(t), float64, by the three-term recurrence."""
    prev, cur = np.zeros_like(t), np.ones_like(t)
    for n in range(order):
        prev, cur = cur, 2 * t * cur - 2 * n * prev
    return cur


def probe_shape(cfg: ProbeConfig) -> tuple[int, int]:
    """(H, W) of the probe window: size x size, or the last two axes of the probe file."""
    return probe_dims(cfg)[1:]


def probe_dims(cfg: ProbeConfig) -> tuple[int, int, int]:
    """(modes, H, W) of the probe; a probe file's from its header alone (its values are not
    read: the size arithmetic of a run comes before them)."""
    if cfg.kind != "file":
        return (cfg.modes or 1, cfg.size, cfg.size)
    try:
        shape = np.load(cfg.path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError):
        shape = ()
    if len(shape) not in (2, 3):
        shape = _load_probe_file(cfg.path).shape  # raises the file's own one-line error
    return ((1,) * (3 - len(shape))) + tuple(int(n) for n in shape)


def probe_mode_count(probe: np.ndarray) -> int:
    """Number of mutually incoherent modes of a `make_probe` field: 1 for (H, W)."""
    return 1 if probe.ndim == 2 else probe.shape[0]


def _stack_shape(cfg: SampleConfig) -> tuple[int, ...]:
    """The sample array's shape: (rows, cols), or (K, rows, cols) with K slices."""
    if cfg.kind == "phantom":
        rows, cols = cfg.shape
        k = int(cfg.slices or 1)
        return (int(rows), int(cols)) if k == 1 else (k, int(rows), int(cols))
    if cfg.kind == "file":
        return tuple(int(v) for v in open_npy(cfg.path).shape)
    if cfg.kind == "zarr":
        return tuple(int(v) for v in open_zarr(cfg).shape)
    raise ValueError(f'sample.kind must be "phantom", "file" or "zarr", got {cfg.kind!r}')


def sample_shape(cfg: SampleConfig) -> tuple[int, int]:
    """(rows, cols) of the sample in pixels (of every slice), from metadata only."""
    return _stack_shape(cfg)[-2:]


def slice_count(cfg: SampleConfig) -> int:
    """Slices along the beam: 1 for a thin sample, K for a (K, H, W) array or phantom."""
    shape = _stack_shape(cfg)
    return shape[0] if len(shape) == 3 else 1


def sample_region(
    cfg: SampleConfig, row0: int, col0: int, rows: int, cols: int, wavelength=None
) -> np.ndarray:
    """Complex transmission over sample pixels [row0:row0+rows, col0:col0+cols].

    Each pixel's value depends only on its global index (and the seed), never on the region,
    so a region equals, bitwise, the same slice of any larger region.

    Args:
        cfg: the [sample] config.
        row0, col0: top-left sample pixel of the region.
        rows, cols: region size in pixels.
        wavelength: m; needed (only) by a "refractive_index" sample.

    Returns:
        complex64 array (rows, cols), or (K, rows, cols) for K > 1 slices.
    """
    row0, col0, rows, cols = (
        _index(v, name)
        for v, name in ((row0, "row0"), (col0, "col0"), (rows, "rows"), (cols, "cols"))
    )
    total = sample_shape(cfg)
    inside = 0 <= row0 and 0 <= rows and row0 + rows <= total[0]
    if not (inside and 0 <= col0 and 0 <= cols and col0 + cols <= total[1]):
        raise ValueError(
            f"region rows {row0}:{row0 + rows}, cols {col0}:{col0 + cols} is outside the sample "
            f"of shape {total}; request a region inside 0:{total[0]}, 0:{total[1]}"
        )
    if cfg.kind == "phantom":
        k = int(cfg.slices or 1)
        if cfg.phantom not in ("siemens_star", "cells"):
            raise ValueError(
                f'sample.phantom must be "siemens_star" or "cells", got {cfg.phantom!r}'
            )
        if cfg.phantom == "siemens_star":
            layers = [_siemens_star(total, row0, col0, rows, cols, j / k) for j in range(k)]
        else:
            layers = [_cells(int(cfg.seed) + j, row0, col0, rows, cols) for j in range(k)]
        return layers[0] if k == 1 else np.stack(layers)
    box = (..., slice(row0, row0 + rows), slice(col0, col0 + cols))
    array = open_npy(cfg.path) if cfg.kind == "file" else open_zarr(cfg)
    region = np.asarray(array[box])
    if region.ndim == 3 and region.shape[0] == 1:
        region = region[0]
    if not np.isfinite(region).all():
        raise ValueError(
            f"sample.path: {cfg.path} holds NaN or inf in rows {row0}:{row0 + rows}, "
            f"cols {col0}:{col0 + cols}; save a finite transmission"
        )
    if cfg.values == "refractive_index":
        region = index_transmission(region, wavelength, cfg.voxel_depth)
    return region.astype(np.complex64)


def index_transmission(index, wavelength, voxel_depth) -> np.ndarray:
    """Transmission exp(-i k (delta - i beta) t) (complex128) of complex delta + i beta values
    (n = 1 - delta + i beta) over a voxel depth t [m], k = 2 pi / wavelength [m]."""
    if wavelength is None or voxel_depth is None:
        raise ValueError(
            'sample.values = "refractive_index" needs the wavelength and sample.voxel_depth'
        )
    k = 2 * np.pi / float(wavelength)
    return np.exp(-1j * k * float(voxel_depth) * np.conj(np.asarray(index, np.complex128)))


def _index(value: int, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer pixel index, got bool {value!r}")
    try:
        return int(value.__index__())
    except AttributeError:
        raise TypeError(
            f"{name} must be an integer pixel index, got {type(value).__name__} {value!r}"
        ) from None


def _siemens_star(
    total: tuple[int, int], row0: int, col0: int, rows: int, cols: int, turn: float = 0.0
):
    y = np.arange(row0, row0 + rows, dtype=np.float64)[:, None] - total[0] / 2
    x = np.arange(col0, col0 + cols, dtype=np.float64)[None, :] - total[1] / 2
    y, x = np.broadcast_arrays(y, x)
    theta = np.arctan2(np.ascontiguousarray(y), np.ascontiguousarray(x))
    # Rotating the sectors by half a sector keeps boundaries off the pixel diagonals and
    # axes, where an ulp of arctan2 could otherwise flip a pixel between spokes.
    n_sectors = 2 * STAR_SPOKES
    sector = np.floor((theta + np.pi) * (n_sectors / (2 * np.pi)) + 0.5 + turn).astype(np.int64)
    outer = STAR_OUTER_RADIUS * min(total)
    dark = (sector % 2 == 1) & (x * x + y * y <= outer * outer)
    return np.where(dark, STAR_DARK, np.complex64(1.0)).astype(np.complex64)


def _cells(seed: int, row0: int, col0: int, rows: int, cols: int) -> np.ndarray:
    phase = np.zeros((rows, cols), dtype=np.float64)
    absorb = np.zeros((rows, cols), dtype=np.float64)
    if rows == 0 or cols == 0:
        return np.ones((rows, cols), dtype=np.complex64)
    t_rows = range(
        max(0, row0 // CELL_TILE - CELL_MARGIN), (row0 + rows - 1) // CELL_TILE + CELL_MARGIN + 1
    )
    t_cols = range(
        max(0, col0 // CELL_TILE - CELL_MARGIN), (col0 + cols - 1) // CELL_TILE + CELL_MARGIN + 1
    )
    # Tiles and discs are visited in a fixed global order, so each pixel sums the same
    # contributions in the same order whatever the region.
    for ti in t_rows:
        for tj in t_cols:
            rng = np.random.default_rng([seed, ti, tj])
            n = int(rng.integers(1, 4))
            centre = (np.array([ti, tj]) + rng.random((n, 2))) * CELL_TILE
            radius = rng.uniform(0.25, 1.5, n) * CELL_TILE
            disc_phase = rng.uniform(0.2, 1.5, n)
            disc_absorb = disc_phase * rng.uniform(0.01, 0.05, n)
            for (cy, cx), rad, p, a in zip(centre, radius, disc_phase, disc_absorb, strict=True):
                r_lo = max(row0, math.floor(cy - rad))
                r_hi = min(row0 + rows, math.ceil(cy + rad) + 1)
                c_lo = max(col0, math.floor(cx - rad))
                c_hi = min(col0 + cols, math.ceil(cx + rad) + 1)
                if r_lo >= r_hi or c_lo >= c_hi:
                    continue
                dy = np.arange(r_lo, r_hi, dtype=np.float64) - cy
                dx = np.arange(c_lo, c_hi, dtype=np.float64) - cx
                inside = dy[:, None] ** 2 + dx[None, :] ** 2 <= rad * rad
                box = (slice(r_lo - row0, r_hi - row0), slice(c_lo - col0, c_hi - col0))
                phase[box][inside] += p
                absorb[box][inside] += a
    return np.exp(-absorb + 1j * phase).astype(np.complex64)


def open_npy(path: str) -> np.ndarray:
    """The 2-D (or (K, H, W) sliced) numeric array of a .npy file, memory-mapped."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"sample.path: cannot read {path} as .npy ({err}); check the file"
        ) from err
    if (
        not isinstance(array, np.ndarray)
        or array.ndim not in (2, 3)
        or array.dtype.kind not in "iufc"
        or 0 in array.shape
    ):
        raise ValueError(
            f"sample.path: {path} must hold one 2-D numeric array, or (K, H, W) for K slices, "
            f"got {getattr(array, 'shape', type(array).__name__)}; save one with np.save"
        )
    return array


def open_zarr(cfg: SampleConfig):
    """The 2-D (or (K, H, W) sliced) numeric Zarr array of a "zarr" sample, read-only."""
    import zarr  # deferred: zarr is only needed for zarr samples

    try:
        array = zarr.open_array(store=cfg.path, path=cfg.array, mode="r")
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(
            f'sample.array: no array "{cfg.array}" in zarr store {cfg.path} ({err}); '
            "set sample.array to the array's name in the group"
        ) from err
    if array.ndim not in (2, 3) or np.dtype(array.dtype).kind not in "iufc" or 0 in array.shape:
        raise ValueError(
            f'sample.array: "{cfg.array}" in {cfg.path} has shape {array.shape} and dtype '
            f"{array.dtype}; store a 2-D (or (K, H, W) sliced) numeric (ideally complex64) array"
        )
    return array


def _load_probe_file(path: str) -> np.ndarray:
    try:
        field = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"probe.path: cannot read {path} as .npy ({err}); check the file") from err
    if (
        not isinstance(field, np.ndarray)
        or field.ndim not in (2, 3)
        or field.dtype.kind not in "iufc"
    ):
        raise ValueError(
            f"probe.path: {path} must hold one 2-D complex array (H, W), or (M, H, W) for M "
            f"incoherent modes, got {getattr(field, 'shape', type(field).__name__)}; save one "
            "with np.save"
        )
    if field.size == 0 or not np.isfinite(field).all():
        raise ValueError(f"probe.path: {path} is empty or holds NaN/inf; save a finite probe")
    return field.astype(np.complex128)
