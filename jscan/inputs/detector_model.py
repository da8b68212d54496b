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
ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")  # JAX platforms that draw on the device
SPARSE_BELOW = 0.5  # lam below this: the shared Poisson process of `host_poisson`


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


class PatternValues(NamedTuple):
    """What a store's patterns hold (`pattern_values`): one of `VALUES`, and their dtype."""

    label: str  # "intensity", "expected photons", "photons" or "ADU": what `jscan info` says
    units: str  # pint-readable: "count" for photons, "1" for ADU and for |U'|^2
    long_name: str  # the ``diffraction`` variable's long_name, which names the kind
    dtype: np.dtype


# label -> (units, long_name) of the stored patterns; a store names its kind by long_name
VALUES = {
    "intensity": ("1", "far-field intensity |U'|^2 of a probe with sum |probe|^2 = 1"),
    "expected photons": ("count", "expected photon counts (no noise drawn)"),
    "photons": ("count", "photon counts (Poisson draws)"),
    "ADU": ("1", "detector counts in ADU (gain x photons, readout)"),
}


def pattern_values(config: Config) -> PatternValues:
    """The stored patterns of a config: float32 intensities (dose 0) or expected photon
    counts (noise false); with a dose and noise, photon counts (gain 1, no readout) or ADU,
    uint16 when saturation <= 65535, else uint32."""
    det = config.detector
    if det.dose <= 0:
        label = "intensity"
    elif not det.noise:
        label = "expected photons"
    else:
        label = "photons" if det.gain == 1 and det.readout_noise == 0 else "ADU"
    if label in ("intensity", "expected photons"):
        dtype = np.dtype("float32")
    elif det.saturation is not None and det.saturation <= UINT16_MAX:
        dtype = np.dtype("uint16")
    else:
        dtype = np.dtype("uint32")
    return PatternValues(label, *VALUES[label], dtype)


def values_label(long_name: str) -> str:
    """The `VALUES` label of a store's ``diffraction`` long_name ("values" when unknown)."""
    return next((k for k, (_, name) in VALUES.items() if name == long_name), "values")


def overflow_error(index: int, peak: float, dtype) -> ValueError:
    """The refusal of a count past the stored integer type (it would wrap around)."""
    return ValueError(
        f"position {index}: a pixel counts {peak:.0f}, more than {dtype} holds; lower "
        "detector.dose (or gain), or set detector.saturation, and write a new store (a "
        "changed config cannot be resumed)"
    )


def resolve_generator(config: Config, platform: str) -> str:
    """Who draws a run's noise: "host" or "device" (`detector.generator`; "auto": device
    when the workers' JAX ``platform`` is an accelerator); "none" when nothing is drawn."""
    det = config.detector
    if det.dose <= 0 or not det.noise:
        return "none"
    if det.generator != "auto":
        return det.generator
    return "device" if platform in ACCELERATORS else "host"


def stream(seed: int, index: int, stream_id: int) -> np.random.Generator:
    """The generator of one random effect at one position: Philox keyed (seed, index),
    counter top word = stream_id (stream 0 is Philox keyed (seed, index) from counter 0)."""
    counter = np.array([0, 0, 0, stream_id], np.uint64)
    key = np.array([seed, index], np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=counter))


def detector_model(config: Config, shape: tuple[int, int], factor: float) -> DetectorModel:
    """The `DetectorModel` of a config for patterns of ``shape`` (H, W).

    factor: photons per unit intensity (`jscan.inputs.farfield.noise_factor`); ignored with
    dose 0. Raises ConfigError (bad_pixels file, gap indices) as `detector_mask` does.
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
        dtype=pattern_values(config).dtype,
        noise=det.noise,
    )


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


def blur_axis(image: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """``image`` (H, W) float64 blurred along ``axis`` by a Gaussian of rms ``sigma`` px.

    The kernel exp(-d^2 / (2 sigma^2)) reaches `PSF_TRUNCATE` sigma, and near an edge its
    weights are renormalised over the pixels inside, so a constant stays constant.
    """
    reach = math.ceil(PSF_TRUNCATE * sigma)
    offsets = np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    n = image.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (reach, reach)
    padded = np.pad(image, pad)
    ones = np.pad(np.ones(n), reach)
    acc = np.zeros(image.shape)
    norm = np.zeros(n)
    for k, weight in zip(offsets, kernel, strict=True):
        window = slice(reach + k, reach + k + n)
        acc += weight * (padded[window, :] if axis == 0 else padded[:, window])
        norm += weight * ones[window]
    return acc / (norm[:, None] if axis == 0 else norm[None, :])


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` (H, W) float64 blurred by `blur_axis` along rows, then columns."""
    if sigma <= 0:
        return image
    return blur_axis(blur_axis(image, sigma, 0), sigma, 1)


def blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) B with B @ image = `blur_axis` (image, sigma, 0) (the device path's blur)."""
    return blur_axis(np.eye(n), sigma, 0)


def host_poisson(gen: np.random.Generator, lam: np.ndarray, out: np.ndarray, cap) -> int:
    """out (lam's shape, zeros) = Poisson counts of mean ``lam`` (float >= 0), clipped at
    ``cap``; returns the largest count before clipping. Exact in distribution.

    Pixels with lam >= `SPARSE_BELOW` draw ``gen.poisson``. The dim rest share one Poisson
    process: N ~ Poisson(sum lam) arrivals, uniform over their lams laid end to end (a
    float64 running sum), each counted in the pixel whose interval it falls in (given N,
    the counts are multinomial, hence independent Poisson). A far field's dim pixels then
    cost no draw each, and the work is a few passes over lam.
    """
    flat, into = lam.reshape(-1), out.reshape(-1)
    dim = flat < SPARSE_BELOW
    ends = np.cumsum(np.where(dim, flat, 0), dtype=np.float64)
    peak = 0
    if ends[-1] > 0:
        arrivals = np.sort(gen.random(gen.poisson(ends[-1]))) * ends[-1]  # sorted: cache
        hit = np.minimum(np.searchsorted(ends, arrivals, side="right"), flat.size - 1)
        if hit.size:
            starts = np.flatnonzero(np.concatenate(([True], hit[1:] != hit[:-1])))  # sorted
            pixels, counts = hit[starts], np.diff(np.concatenate((starts, [hit.size])))
            into[pixels] = np.minimum(counts, cap)
            peak = int(counts.max())
    bright = np.flatnonzero(~dim)
    if bright.size:
        draws = gen.poisson(flat[bright].astype(np.float64))
        into[bright] = np.minimum(draws, cap)
        peak = max(peak, int(draws.max()))
    return peak


def detector_values(intensity: np.ndarray, indices, model: DetectorModel) -> np.ndarray:
    """A block's stored patterns (n, H, W) from its intensities (n, H, W) [|U'|^2].

    indices: the positions' global indices (n,), which key their random streams. Applies
    the model in the order of this module's docstring. Raises ValueError when a pixel would
    pass the stored integer type (no saturation set).
    """
    out = np.empty(intensity.shape, model.dtype)
    indices = [int(i) for i in indices]
    for k in range(len(indices)):
        _position(intensity, indices, model, out, k)
    if model.mask.any():
        out[:, model.mask] = 0
    return out


def _position(intensity, indices, model: DetectorModel, out, k: int) -> None:
    """out[k] = the stored values of position k (global index indices[k])."""
    value, i = intensity[k], indices[k]
    if model.factor == 0:  # dose 0: float intensities, blurred and masked only
        blurred = model.psf_sigma > 0
        out[k] = gaussian_blur(value.astype(np.float64), model.psf_sigma) if blurred else value
        return
    if model.psf_sigma > 0:
        lam = value.astype(np.float64) * model.factor + model.background
        lam = gaussian_blur(lam, model.psf_sigma)
    else:  # float32 is exact enough for a mean; the running sum of host_poisson is float64
        lam = value * np.float32(model.factor)
        if model.background > 0:
            lam += np.float32(model.background)
    if not model.noise:  # the expected counts themselves (noise = false)
        out[k] = lam
        return
    ceiling = np.iinfo(model.dtype).max
    plain = model.gain == 1 and model.readout_noise == 0  # counts straight into the store's dtype
    if plain:
        adu = out[k]
        adu[...] = 0
        cap = ceiling if model.saturation is None else min(model.saturation, ceiling)
        peak = host_poisson(stream(model.seed, i, POISSON_STREAM), lam, adu, cap)
        peak = peak if model.saturation is None else min(peak, model.saturation)
    else:
        adu = np.zeros(value.shape)
        host_poisson(stream(model.seed, i, POISSON_STREAM), lam, adu, np.inf)
        adu *= model.gain
        if model.readout_noise > 0:
            noise = stream(model.seed, i, READOUT_STREAM).standard_normal(adu.shape)
            noise *= model.readout_noise
            adu += noise
        np.rint(adu, out=adu)
        np.maximum(adu, 0, out=adu)
        if model.saturation is not None:
            np.minimum(adu, model.saturation, out=adu)
        peak = adu.max()
    if peak > ceiling:  # would wrap around in the stored integer
        raise overflow_error(i, peak, model.dtype)
    if not plain:
        out[k] = adu
