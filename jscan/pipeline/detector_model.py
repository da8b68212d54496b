"""The camera: a block's expected intensities -> the values the store holds (numpy only).

`detector_values` applies the ``[detector]`` model to each position, in this fixed order:

1. expected photons  lam = intensity x factor (`noise_factor`: ``dose`` photons per pattern);
2. ``background``: + mean photons per pixel;
3. ``psf_sigma``: Gaussian blur of lam (rms in camera pixels, separable, truncated at
   4 sigma and renormalised at the edges, so a uniform level stays uniform);
4. Poisson counts with mean lam;
5. ``gain``: x ADU per photon;
6. ``readout_noise``: + Gaussian noise, rms in ADU;
7. rounding to the nearest integer (half to even); values below 0 become 0;
8. ``saturation``: values above it become it (ADU);
9. ``bad_pixels`` and ``gaps``: those pixels become 0 (the store's ``mask`` marks them).

Random effects draw from separate streams: Philox keyed (seed, global position index), with
the counter's top word set to the stream id (Poisson 0, readout 1). A stream depends on
nothing but its own effect, so turning one effect on never changes another's draws, and no
draw depends on the block size, the worker or the order of completion. The Poisson stream
is the one jscan always used, so a config without the newer keys gives the same counts.

With dose 0 the store holds float32 intensities and only the blur (3) and the mask (9)
apply; the photon effects (2, 5-8) are refused by the config. With ``noise = false`` (and a
dose) the store holds the expected counts lam of steps 1-3 as float32, masked (9); the
effects on drawn counts (5, 6, 8) are refused by the config.

Stored dtype: float32 with dose 0 or noise false; with a dose, uint16 when ``saturation``
<= 65535, else uint32 (without a saturation the brightness check refuses a dose x gain whose
brightest pixel could pass uint32).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from jscan.errors import ConfigError
from jscan.inputs.config import Config

POISSON_STREAM = 0
READOUT_STREAM = 1
PSF_TRUNCATE = 4.0  # the blur kernel reaches this many sigma
UINT16_MAX = 2**16 - 1


class DetectorModel(NamedTuple):
    """A scan's camera (`detector_model`): the parameters of `detector_values`."""

    factor: float  # photons per unit intensity (0: dose 0, float intensities)
    seed: int
    background: float  # photons per pixel
    psf_sigma: float  # camera pixels
    gain: float  # ADU per photon
    readout_noise: float  # ADU rms
    saturation: int | None  # ADU
    mask: np.ndarray  # (H, W) bool, True = bad pixel or gap (written as 0)
    dtype: np.dtype  # stored dtype
    noise: bool = True  # False: store the expected counts lam (steps 1-3), float32


def stored_dtype(config: Config) -> np.dtype:
    """float32 (dose 0, or noise false); with a dose uint16 when saturation <= 65535, else
    uint32."""
    det = config.detector
    if det.dose <= 0 or not det.noise:
        return np.dtype("float32")
    if det.saturation is not None and det.saturation <= UINT16_MAX:
        return np.dtype("uint16")
    return np.dtype("uint32")


def stream(seed: int, index: int, stream_id: int) -> np.random.Generator:
    """The generator of one random effect at one position: Philox keyed (seed, index),
    counter top word = stream_id (stream 0 is Philox keyed (seed, index) from counter 0)."""
    counter = np.array([0, 0, 0, stream_id], np.uint64)
    key = np.array([seed, index], np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=counter))


def detector_model(config: Config, shape: tuple[int, int], factor: float) -> DetectorModel:
    """The `DetectorModel` of a config for patterns of ``shape`` (H, W).

    factor: photons per unit intensity (`jscan.inputs.farfield.noise_factor`); ignored with
    dose 0. Raises ConfigError (bad_pixels file, gap indices) as `check_detector` does.
    """
    det = config.detector
    return DetectorModel(
        factor=float(factor) if det.dose > 0 else 0.0,
        seed=det.seed,
        background=det.background,
        psf_sigma=det.psf_sigma,
        gain=det.gain,
        readout_noise=det.readout_noise,
        saturation=None if det.saturation is None else int(det.saturation),
        mask=detector_mask(config, shape),
        dtype=stored_dtype(config),
        noise=det.noise,
    )


def check_detector(config: Config, shape: tuple[int, int]) -> None:
    """ConfigError when the bad_pixels file or the gap indices do not fit patterns (H, W)."""
    detector_mask(config, shape)


def detector_mask(config: Config, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool, True where a pixel is bad (``bad_pixels``) or in a module gap (``gaps``).

    Raises ConfigError naming the key: a file that is not an (H, W) bool (or 0/1) array, or
    a gap row/column outside the camera.
    """
    det = config.detector
    h, w = (int(v) for v in shape)
    mask = np.zeros((h, w), bool)
    if det.bad_pixels is not None:
        mask |= load_bad_pixels(det.bad_pixels, (h, w))
    if det.gaps is not None:
        for axis, (name, size) in enumerate((("rows", h), ("cols", w))):
            indices = np.asarray(det.gaps[axis], dtype=np.int64)
            outside = indices[indices >= size]
            if outside.size:
                raise ConfigError(
                    f'"detector.gaps.{name}" holds {int(outside[0])}, outside the camera\'s '
                    f"{size} {name} (0 .. {size - 1}); give indices inside the pattern"
                )
            if axis == 0:
                mask[indices, :] = True
            else:
                mask[:, indices] = True
    return mask


def load_bad_pixels(path: str, shape: tuple[int, int]) -> np.ndarray:
    """The (H, W) bool array of a bad_pixels .npy (True = bad); ConfigError when it is not
    (H, W), not bool or 0/1 numbers, or holds NaN/inf."""
    key = "detector.bad_pixels"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f'"{key}": cannot read {path} as .npy ({err}); check the file') from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        got = getattr(array, "shape", type(array).__name__)
        raise ConfigError(
            f'"{key}": {path} has shape {got}, but the patterns are {shape[0]}x{shape[1]}; '
            "save an (H, W) bool array, True at the bad pixels"
        )
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf":
        raise ConfigError(
            f'"{key}": {path} has dtype {array.dtype}; save a bool array, True at the bad pixels'
        )
    if not np.isfinite(array).all() or not np.isin(array, (0, 1)).all():
        raise ConfigError(
            f'"{key}": {path} holds values other than 0 and 1 (or NaN/inf); save a bool '
            "array, True at the bad pixels"
        )
    return array.astype(bool)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` (H, W) float64 blurred by a Gaussian of rms ``sigma`` pixels.

    Separable; the kernel exp(-d^2 / (2 sigma^2)) reaches `PSF_TRUNCATE` sigma, and near
    an edge its weights are renormalised over the pixels inside, so a constant stays constant.
    """
    if sigma <= 0:
        return image
    reach = math.ceil(PSF_TRUNCATE * sigma)
    offsets = np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    out = image
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0), (0, 0)]
        pad[axis] = (reach, reach)
        padded = np.pad(out, pad)
        ones = np.pad(np.ones(n), reach)
        acc = np.zeros_like(out)
        norm = np.zeros(n)
        for k, weight in zip(offsets, kernel, strict=True):
            window = slice(reach + k, reach + k + n)
            acc += weight * (padded[window, :] if axis == 0 else padded[:, window])
            norm += weight * ones[window]
        out = acc / (norm[:, None] if axis == 0 else norm[None, :])
    return out


def photon_counts(intensity: np.ndarray, indices, seed: int, factor: float) -> np.ndarray:
    """Poisson counts (n, H, W) uint32 with mean intensity x factor: `detector_values` with
    no effect but Poisson (stream 0 keyed (seed, global index))."""
    h, w = intensity.shape[-2:]
    model = DetectorModel(
        float(factor), seed, 0.0, 0.0, 1.0, 0.0, None, np.zeros((h, w), bool), np.dtype("uint32")
    )
    return detector_values(intensity, indices, model)


def detector_values(intensity: np.ndarray, indices, model: DetectorModel) -> np.ndarray:
    """A block's stored patterns (n, H, W) from its intensities (n, H, W) [|U'|^2].

    indices: the positions' global indices (n,), which key their random streams. Applies
    the model in the order of this module's docstring. Raises ValueError when a pixel would
    pass the stored integer type (no saturation set).
    """
    out = np.empty(intensity.shape, model.dtype)
    ceiling = np.iinfo(model.dtype).max if model.dtype.kind == "u" else None
    for k, i in enumerate(indices):
        value = intensity[k]
        if model.factor == 0:  # dose 0: float intensities, blurred and masked only
            if model.psf_sigma > 0:
                value = gaussian_blur(value.astype(np.float64), model.psf_sigma)
            out[k] = value
            continue
        lam = value.astype(np.float64) * model.factor
        if model.background > 0:
            lam = lam + model.background
        lam = gaussian_blur(lam, model.psf_sigma)
        if not model.noise:  # the expected counts themselves (noise = false)
            out[k] = lam
            continue
        adu = stream(model.seed, i, POISSON_STREAM).poisson(lam)
        if model.gain != 1 or model.readout_noise > 0:
            adu = adu * model.gain  # float64, then in place (a block is 10^5-10^7 pixels)
            if model.readout_noise > 0:
                noise = stream(model.seed, i, READOUT_STREAM).standard_normal(adu.shape)
                noise *= model.readout_noise
                adu += noise
            np.rint(adu, out=adu)
            np.maximum(adu, 0, out=adu)
        if model.saturation is not None:
            adu = np.minimum(adu, model.saturation)
        peak = adu.max()
        if peak > ceiling:  # would wrap around in the stored integer
            raise ValueError(
                f"position {i}: a pixel counts {peak:.0f}, more than {model.dtype} holds; "
                "lower detector.dose (or gain), or set detector.saturation, and write a new "
                "store (a changed config cannot be resumed)"
            )
        out[k] = adu
    if model.mask.any():
        out[:, model.mask] = 0
    return out
