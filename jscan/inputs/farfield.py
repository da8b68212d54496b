"""The probe's own camera pattern (far or near field) in float64 numpy, and the camera
discs read from it.

Used before a run (dose and brightness checks, the bright-field radius) and by the workers
(the live page's virtual bright field): numpy only, so no JAX backend starts on the client.
"""

import functools
import os

import numpy as np

from jscan.inputs.samples import make_probe

BRIGHT_FIELD_FRACTION = 0.9  # the bright-field disc holds this share of the probe's pattern


def bright_field_radius(config) -> float:
    """Radius [m] on the camera of the disc holding 90 % of the probe's own pattern
    (`probe_pattern`): the pixel radius at which the pattern's sum, taken outwards from the
    axis, reaches 90 %. Pixels are grouped by their squared radius in pixels, an integer
    (a histogram: O(N^2), no sort)."""
    image = probe_pattern(config)
    h, w = image.shape
    y, x = np.arange(h) - h // 2, np.arange(w) - w // 2
    r2 = (y[:, None] ** 2 + x[None, :] ** 2).ravel()
    cumulative = np.cumsum(np.bincount(r2, weights=image.ravel()))
    # the first squared radius whose disc holds 90 % (an empty one never comes first)
    k = min(int(np.searchsorted(cumulative, BRIGHT_FIELD_FRACTION * cumulative[-1])), r2.max())
    return float(config.optics.camera_pixel_size * np.sqrt(k))


def probe_pattern(config) -> np.ndarray:
    """The probe's own far-field pattern (transparent sample), float64 (H, W), read-only, in
    the units of the float32 patterns: |DFT(probe x aperture)|^2 ((dx zoom)^2 / (lambda z))^2
    with sum |probe|^2 = 1; a probe of M incoherent modes gives sum_m |DFT(P_m x aperture)|^2
    (the modes' total power is 1).

    Evaluated in float64 at the camera pixel centres by a chirp-z transform along each axis
    (`centred_dft`), in numpy: the client never starts a JAX backend (on a GPU node it would
    take the card's memory before the workers do). It costs O(N^2 log N) (seconds for
    N = 8192), and the last two are kept, keyed
    by the probe and optics configs and the probe file's size, inode and modification time:
    a run's dose check and bright-field radius compute it once.
    """
    stamp = _stamp(config.probe.path)
    return _probe_pattern(config.probe, config.optics, stamp)


def probe_of(config) -> np.ndarray:
    """`make_probe` of the config, read-only; the last one is kept (keyed as
    `probe_pattern`'s), so that a run's checks make the probe once."""
    return _probe(config.probe, _stamp(config.probe.path))


def _stamp(path):
    """What changes when a probe file is replaced: its size, inode and modification time."""
    if path is None:
        return None
    st = os.stat(path)
    return (st.st_size, st.st_ino, st.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _probe(probe_config, stamp) -> np.ndarray:
    probe = make_probe(probe_config)
    probe.flags.writeable = False
    return probe


def aperture(optics, shape: tuple[int, int], dxz: float) -> np.ndarray:
    """(H, W) bool: the pixels of the zoomed plane (pixel dx zoom) inside the aperture, the
    numpy twin of `jscan.core.optics.aperture_mask` for the checks."""
    cx, cy = optics.aperture_center or (0.0, 0.0)
    h, w = shape
    y = (np.arange(h) - h // 2) * dxz - cy
    x = (np.arange(w) - w // 2) * dxz - cx
    return y[:, None] ** 2 + x[None, :] ** 2 <= (optics.aperture_diameter / 2) ** 2


@functools.lru_cache(maxsize=2)
def _probe_pattern(probe_config, o, stamp) -> np.ndarray:
    probe = _probe(probe_config, stamp).astype(np.complex128)
    if probe.ndim == 2:
        probe = probe[None]
    dxz = probe_config.dx * o.zoom_factor
    lz = probe_config.wavelength * o.travel_distance
    inside = aperture(o, probe.shape[-2:], dxz)
    if o.propagation == "near":
        image = _near_pattern(probe * inside, dxz, probe_config.wavelength, o)
        image.flags.writeable = False
        return image
    # exp(-2 pi i x u) with x = (n - N//2) dxz, u = (m - N//2) camera_pixel / (lambda z)
    alpha = o.camera_pixel_size * dxz / lz
    field = centred_dft(centred_dft(probe * inside, alpha, axis=-1), alpha, axis=-2)
    image = np.sum(np.abs(field * (dxz**2 / lz)) ** 2, axis=0)
    image.flags.writeable = False
    return image


ROWS_AT_ONCE = 256  # lines of a chirp-z transform taken together (bounded memory)


def centred_dft(x: np.ndarray, alpha: float, axis: int) -> np.ndarray:
    """X[m] = sum_n x[n] exp(-2 pi i alpha (m - N//2)(n - N//2)) along ``axis`` (complex128).

    Bluestein's chirp-z: (m - c)(n - c) = ((m - c)^2 + (n - c)^2 - (m - n)^2) / 2 turns the
    sum into a convolution with the chirp exp(i pi alpha k^2), done by FFTs of length >=
    2N - 1: O(N log N) per line instead of the N^2 of the direct sum, whatever alpha (the
    camera pixel need not be the natural one). Lines are taken `ROWS_AT_ONCE` at a time.
    """
    x = np.moveaxis(np.asarray(x, np.complex128), axis, -1)
    n = x.shape[-1]
    c = n // 2
    size = 1 << (2 * n - 2).bit_length()  # a power of two >= 2n - 1
    k = np.arange(n) - c
    pre = np.exp(-1j * np.pi * alpha * k.astype(np.float64) ** 2)  # also the post-chirp
    lags = np.arange(-(n - 1), n).astype(np.float64)
    kernel = np.zeros(size, np.complex128)
    kernel[: 2 * n - 1] = np.exp(1j * np.pi * alpha * lags**2)
    spectrum = np.fft.fft(kernel)
    lines = x.reshape(-1, n)
    out = np.empty_like(lines)
    for s in range(0, len(lines), ROWS_AT_ONCE):
        part = np.fft.fft(lines[s : s + ROWS_AT_ONCE] * pre, size)
        full = np.fft.ifft(part * spectrum)
        out[s : s + ROWS_AT_ONCE] = full[:, n - 1 : 2 * n - 1] * pre  # lag m - n >= -(n - 1)
    return np.moveaxis(out.reshape(x.shape), -1, axis)


def fresnel_magnification(optics) -> tuple[float, float]:
    """(M, z_eff) of the near field: M = (z1 + z)/z1, z_eff = z1 z/(z1 + z) for a point
    source z1 = optics.source_distance upstream of the sample; (1, z) for a plane wave."""
    z, z1 = optics.travel_distance, optics.source_distance
    return (1.0, z) if z1 is None else ((z1 + z) / z1, z1 * z / (z1 + z))


def _near_pattern(field, dxz, wavelength, o) -> np.ndarray:
    """sum over modes of |U|^2 on the camera: the angular spectrum over z_eff (evanescent
    waves dropped), evaluated at X/M by the window's trigonometric interpolation, / M^2."""
    m, z_eff = fresnel_magnification(o)
    h, w = field.shape[-2:]
    fy = np.fft.fftfreq(h, dxz)[:, None]
    fx = np.fft.fftfreq(w, dxz)[None, :]
    u = (fy**2 + fx**2) * wavelength**2
    ratio = z_eff / wavelength
    phase = (
        2 * np.pi * ((ratio - np.floor(ratio)) - ratio * u / (1 + np.sqrt(np.clip(1 - u, 0, None))))
    )
    spectrum = np.fft.fftshift(
        np.fft.fft2(field) * np.where(u < 1, np.exp(1j * phase), 0), axes=(-2, -1)
    )
    beta = o.camera_pixel_size / (m * dxz)
    ay, ax = (
        np.exp(
            2j
            * np.pi
            * np.outer((np.arange(n) - n // 2) * beta + n // 2, np.arange(n) - n // 2)
            / n
        )
        / n
        for n in (h, w)
    )
    return np.sum(np.abs(ay @ spectrum @ ax.T) ** 2, axis=0) / m**2


def noise_factor(config, probe=None) -> float:
    """Expected photons per unit of the kernel's intensity |U'|^2:
    dose * camera_pixel^2 / (sum|probe|^2 (dx zoom)^2); 0 when dose is 0.

    probe: the (H, W) or (M, H, W) field of `make_probe` (`probe_of` the config when None);
    its power sums over the modes. By Parseval a transparent sample sends the whole dose into
    a detector that covers the far field, so ``dose`` is the mean total count per pattern of
    such a sample. numpy only: a store's ``photons_per_intensity`` needs no worker.
    """
    if probe is None:
        probe = probe_of(config)
    dxz = config.probe.dx * config.optics.zoom_factor
    energy = float(np.sum(np.abs(np.asarray(probe).astype(np.complex128)) ** 2)) * dxz**2
    return config.detector.dose * config.optics.camera_pixel_size**2 / energy


def camera_axes(shape, pixel) -> tuple[np.ndarray, np.ndarray]:
    """Camera pixel centres (det_y (H,), det_x (W,)) [m]: (i - N//2) * pixel, the store's."""
    h, w = shape
    return (np.arange(h) - h // 2) * pixel, (np.arange(w) - w // 2) * pixel


def camera_radius(shape, pixel):
    """Distance [m] of each camera pixel centre (`camera_axes`) from the optical axis."""
    y, x = camera_axes(shape, pixel)
    return np.hypot(y[:, None], x[None, :])


def camera_coverage(config) -> float:
    """Share (0 to 1) of the probe's own far field (transparent sample, after the aperture)
    that falls on the camera.

    By Parseval the far field's power is that of probe x aperture, sum |U|^2 (dx zoom)^2;
    the camera holds sum(`probe_pattern`) camera_pixel^2 of it (a Riemann sum, sound when
    the camera pixel is at most about the natural one). A camera pixel at or above the
    natural one on both axes spans the whole far field (one period of the DFT): 1.
    """
    p, o = config.probe, config.optics
    dxz = p.dx * o.zoom_factor
    unit = probe_of(config)  # the checks' copy: no file read
    h, w = unit.shape[-2:]
    natural = p.wavelength * o.travel_distance / (np.asarray([h, w]) * dxz)
    if o.propagation == "near":  # the camera spans the window's period at M dx zoom
        natural = np.full(2, fresnel_magnification(o)[0] * dxz)
    if (o.camera_pixel_size >= natural * (1 - 1e-9)).all():
        return 1.0
    probe = unit.astype(np.complex128)  # (H, W), or (M, H, W) modes
    inside = aperture(o, (h, w), dxz)
    passed = float((np.abs(probe) ** 2 * inside).sum()) * dxz**2  # over every mode
    if passed <= 0:
        return 1.0  # nothing passes the aperture: nothing to cover
    held = float(probe_pattern(config).sum()) * o.camera_pixel_size**2
    return min(held / passed, 1.0)
