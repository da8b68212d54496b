"""Lens and zone-plate probes of the config ([probe] kind "lens" | "zone_plate"), in numpy.

The numpy twin of `jscan.core.probes` for the client, which runs no JAX: the same pupil on
the window's frequency grid f = fftfreq(N, dx) (pupil radius rho = |f| lambda / NA), Noll
Zernike phase, central stop, the OSA's narrower rim and the angular-spectrum defocus with
its evanescent cut-off, in float64; the field is fftshifted (pixel N//2 on the axis) and
scaled to unit power by `jscan.inputs.samples.make_probe`. A zone plate's first order is a
lens of focal length D dr / lambda and NA = lambda / (2 dr).

With a Gaussian source of rms size sigma_s at L upstream of the optic (source_size,
source_distance) the pupil is partially coherent: its cross-spectral density is
W(r1, r2) = P(r1) P*(r2) exp(-|r1 - r2|^2 / (2 xi^2)), xi = lambda L / (2 pi sigma_s) (van
Cittert-Zernike), at pupil positions r = lambda f_l f. `coherent_modes` gives its strongest
eigenmodes; each is propagated to the sample plane as the coherent probe is.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from jscan.errors import ConfigError

if TYPE_CHECKING:
    from jscan.inputs.config import ProbeConfig

FOCUSED_KINDS = ("lens", "zone_plate")
# [probe] keys of the Zernike coefficients (m rms, Noll), in `wavefront_error`'s order
ZERNIKE_KEYS = (
    "zernike_defocus",
    "astigmatism_0",
    "astigmatism_45",
    "coma_x",
    "coma_y",
    "spherical",
)
KEPT_POWER = 1 - 1e-9  # share of W's trace held by the kernel products the SVD sees
MAX_COLUMNS = 512  # at most this many kernel products (the SVD costs pupil px x columns^2)


def zone_plate_focus(diameter: float, outer_zone_width: float, wavelength: float) -> float:
    """First-order focal length f = D dr / lambda [m] of a Fresnel zone plate."""
    return diameter * outer_zone_width / wavelength


def optic(cfg: ProbeConfig) -> tuple[float, float, float]:
    """(focal length, pupil diameter, central stop) [m] of the config's lens or zone plate.

    An OSA of diameter d at distance s upstream of the focus passes the cone inside the
    pupil diameter d f / s: the zone plate's rim is the smaller of that and its diameter.
    """
    stop = cfg.central_stop or 0.0
    if cfg.kind == "lens":
        return cfg.focal_length, cfg.diameter, stop
    f = zone_plate_focus(cfg.diameter, cfg.outer_zone_width, cfg.wavelength)
    rim = cfg.diameter
    if cfg.osa_diameter is not None:
        rim = min(rim, cfg.osa_diameter * f / cfg.osa_distance)
    return f, rim, stop


def wavefront_error(rho, theta, zernike) -> np.ndarray:
    """Wavefront error [m] of Zernike coefficients (`ZERNIKE_KEYS` order) at (rho, theta)."""
    z4, z6, z5, z8, z7, z11 = zernike
    r2 = rho**2
    return (
        z4 * math.sqrt(3) * (2 * r2 - 1)
        + z6 * math.sqrt(6) * r2 * np.cos(2 * theta)
        + z5 * math.sqrt(6) * r2 * np.sin(2 * theta)
        + (3 * r2 - 2) * rho * math.sqrt(8) * (z8 * np.cos(theta) + z7 * np.sin(theta))
        + z11 * math.sqrt(5) * (6 * r2**2 - 6 * r2 + 1)
    )


def pupil(shape, dx, wavelength, focal_length, diameter, central_stop=0.0, zernike=(0.0,) * 6):
    """Pupil (H, W) complex128 in FFT frequency order: exp(2 pi i W / lambda) on the annulus
    central_stop / diameter <= rho <= 1, else 0 (NA = diameter / (2 focal_length))."""
    na = diameter / (2 * focal_length)
    fy = np.fft.fftfreq(shape[0], dx)[:, None]
    fx = np.fft.fftfreq(shape[1], dx)[None, :]
    rho = np.hypot(fy, fx) * (wavelength / na)
    inside = (rho <= 1) & (rho >= central_stop / diameter)
    phase = 2 * np.pi / wavelength * wavefront_error(rho, np.arctan2(fy, fx), zernike)
    return np.where(inside, np.exp(1j * phase), 0)


def transfer(shape, dx, wavelength, z) -> np.ndarray:
    """Angular-spectrum transfer function over z (as `jscan.core.fresnel`'s, float64):
    exp(2 pi i [frac(z/lambda) - (z/lambda) u / (1 + sqrt(1 - u))]), u = lambda^2 |f|^2 < 1,
    else 0 (evanescent)."""
    ratio = z / wavelength
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    u = (fy**2 + fx**2) * (wavelength / dx) ** 2
    root = np.sqrt(np.clip(1 - u, 0.0, None))
    phase = 2 * np.pi * ((ratio - math.floor(ratio)) - ratio * u / (1 + root))
    return np.where(u < 1, np.exp(1j * phase), 0)


def to_sample_plane(pupils, dx, wavelength, defocus) -> np.ndarray:
    """Fields (..., H, W) in the plane ``defocus`` [m] beyond the focus, centred (fftshift)."""
    field = np.fft.ifft2(pupils * transfer(pupils.shape[-2:], dx, wavelength, defocus))
    return np.fft.fftshift(field, axes=(-2, -1))


def coherence_length(cfg: ProbeConfig) -> float:
    """xi = lambda L / (2 pi sigma_s) [m] at the optic (inf without a source size)."""
    if cfg.source_size is None:
        return math.inf
    return cfg.wavelength * cfg.source_distance / (2 * np.pi * cfg.source_size)


def coherent_modes(p: np.ndarray, spacing: float, xi: float, n_modes: int) -> np.ndarray:
    """The n_modes strongest eigenmodes (M, H, W) of W(r1, r2) = P(r1) P*(r2) mu(r1 - r2),
    mu(d) = exp(-|d|^2 / (2 xi^2)), each scaled by the square root of its power.

    p: the pupil (H, W) in FFT order, pupil positions fftfreq(N) N spacing [m]. mu is
    separable: with the 1-D kernels' eigenpairs K_y = sum l_j v_j v_j^T (and K_x), W = A A^H
    with columns a_ji = sqrt(l_j l_i) P v_j(y) v_i(x); the left singular vectors of A are W's
    eigenmodes, the singular values squared their powers (from the Gram matrix A^H A). A
    holds the products with the largest powers, up to `KEPT_POWER` of the trace (at most
    `MAX_COLUMNS`). Each mode's phase makes its overlap with P real and positive (its
    largest pixel where they are orthogonal).
    """
    axes = []
    for n in p.shape:
        r = np.fft.fftfreq(n) * n * spacing
        kernel = np.exp(-((r[:, None] - r[None, :]) ** 2) / (2 * xi**2))
        values, vectors = np.linalg.eigh(kernel)
        axes.append((np.clip(values, 0.0, None), vectors))
    (ly, vy), (lx, vx) = axes
    inside = np.nonzero(p)
    modes = np.zeros((n_modes, *p.shape), complex)
    if not inside[0].size:
        return modes  # an empty pupil: make_probe refuses the zero probe
    power = ly[:, None] * lx[None, :] * ((vy**2).T @ np.abs(p) ** 2 @ vx**2)
    order = np.argsort(power, axis=None)[::-1]
    total = np.cumsum(power.flat[order])
    keep = int(np.searchsorted(total, KEPT_POWER * total[-1])) + 1
    j, i = np.unravel_index(
        order[: min(max(keep, n_modes), MAX_COLUMNS, inside[0].size)], power.shape
    )
    columns = (
        p[inside][:, None] * vy[inside[0]][:, j] * vx[inside[1]][:, i] * np.sqrt(ly[j] * lx[i])
    )
    # A's right singular vectors are the eigenvectors of its Gram matrix A^H A (K x K):
    # mode m is A v_m = s_m u_m (a BLAS product, not an SVD of the tall A)
    powers, right = np.linalg.eigh(columns.conj().T @ columns)
    for m in range(min(n_modes, powers.size)):
        mode = columns @ right[:, -1 - m]
        ref = np.vdot(p[inside], mode)
        if not abs(ref) > 1e-9 * np.linalg.norm(mode) * np.linalg.norm(p[inside]):
            ref = mode[np.argmax(np.abs(mode))]
        modes[m][inside] = mode * (abs(ref) / ref)
    return modes


@functools.lru_cache(maxsize=4)
def focused_probe(cfg: ProbeConfig) -> np.ndarray:
    """The config's lens or zone-plate probe, complex128, read-only: (size, size) coherent,
    or (modes, size, size) with a source size; not yet scaled to unit power."""
    check_focused(cfg)
    f, rim, stop = optic(cfg)
    shape = (int(cfg.size), int(cfg.size))
    zernike = (
        tuple(getattr(cfg, k) or 0.0 for k in ZERNIKE_KEYS) if cfg.kind == "lens" else (0.0,) * 6
    )
    p = pupil(shape, cfg.dx, cfg.wavelength, f, rim, stop, zernike)
    if cfg.source_size is not None:
        spacing = cfg.wavelength * f / (shape[0] * cfg.dx)  # pupil pitch lambda f_l df
        p = coherent_modes(p, spacing, coherence_length(cfg), int(cfg.modes or 1))
        p = p[0] if (cfg.modes or 1) == 1 else p
    field = to_sample_plane(p, cfg.dx, cfg.wavelength, cfg.defocus or 0.0)
    field.flags.writeable = False
    return field


def _fail(key: str, message: str):
    raise ConfigError(f'"probe.{key}" {message}')


def check_focused(cfg: ProbeConfig) -> None:
    """ConfigError naming the key for a lens or zone plate jscan cannot make (cheap: no FFT).

    Refused: osa_diameter / osa_distance or source_size / source_distance not together, a
    central stop not smaller than the diameter, a zone plate whose outermost zone the grid
    cannot resolve (dx > dr), an OSA not smaller than the central stop (the zero order
    passes it) or passing nothing, a pupil cut-off NA / lambda at or beyond the window's
    Nyquist frequency 1 / (2 dx), and modes > 1 without a source size.
    """
    if cfg.kind not in FOCUSED_KINDS:
        return
    for a, b in (("osa_diameter", "osa_distance"), ("source_size", "source_distance")):
        if (getattr(cfg, a) is None) != (getattr(cfg, b) is None):
            missing = a if getattr(cfg, a) is None else b
            _fail(missing, f"is missing: give probe.{a} and probe.{b} together (or neither)")
    stop = cfg.central_stop or 0.0
    if stop >= cfg.diameter:
        _fail(
            "central_stop",
            f"= {stop:g} m is not smaller than probe.diameter = {cfg.diameter:g} m; "
            "use a smaller central stop",
        )
    if cfg.kind == "zone_plate":
        dr = cfg.outer_zone_width
        if cfg.dx > dr:
            _fail(
                "dx",
                f"= {cfg.dx:g} m: the probe grid cannot resolve the outermost zone "
                f"(probe.outer_zone_width = {dr:g} m); use dx <= outer_zone_width",
            )
        if cfg.osa_diameter is not None and cfg.osa_diameter >= stop:
            _fail(
                "osa_diameter",
                f"= {cfg.osa_diameter:g} m is not smaller than probe.central_stop = {stop:g} m, "
                "so the zero order passes it; use a smaller OSA or a larger central stop",
            )
    f, rim, stop = optic(cfg)
    if rim <= stop:
        _fail(
            "osa_diameter",
            f"passes nothing: its cone at the zone plate (osa_diameter f / osa_distance = "
            f"{rim:g} m) lies inside the central stop; use a larger OSA or a shorter distance",
        )
    cut_off = rim / (2 * f) / cfg.wavelength  # NA / lambda
    if cut_off >= 0.5 / cfg.dx:
        _fail(
            "dx",
            f"= {cfg.dx:g} m is too coarse: the pupil's cut-off NA/lambda = {cut_off:.4g} /m "
            f"is at or beyond the window's Nyquist frequency 1/(2 dx); use dx < "
            f"lambda/(2 NA) = {0.5 / cut_off:.4g} m",
        )
    if (cfg.modes or 1) > 1 and cfg.source_size is None:
        _fail(
            "modes",
            f"= {cfg.modes} needs a partially coherent source: add probe.source_size and "
            "probe.source_distance (or remove modes)",
        )
