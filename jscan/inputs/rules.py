"""Refusals of a parsed config that read several keys at once (numpy only): the detector's
effects, float32's range in the kernel, the sample and probe grids, thick samples and the
near field's keys. Each raises a one-line ConfigError naming the key and the fix."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from jscan.errors import ConfigError
from jscan.inputs.focused import check_focused
from jscan.inputs.schema import SPEC

if TYPE_CHECKING:
    from jscan.inputs.config import Config, DetectorConfig, OpticsConfig, SampleConfig


# Detector effects that act on photons or ADU: meaningless for float intensities (dose 0).
_PHOTON_KEYS = ("background", "gain", "readout_noise", "saturation")
# Effects on the drawn counts (ADU): meaningless for expected counts (noise false).
_COUNT_KEYS = ("gain", "readout_noise", "saturation")


def _detector(det: DetectorConfig) -> None:
    """Refuse photon effects without photons, effects on counts without counts (noise false),
    and a saturation no stored integer holds."""
    if not det.noise and det.dose == 0:
        raise ConfigError(
            '"detector.noise" = false stores the expected counts of a dose, but "detector.dose" '
            "is 0; set dose = the photons per position (or remove noise = false)"
        )
    if not det.noise:
        for key in _COUNT_KEYS:
            if getattr(det, key) != SPEC["detector"][key][2]:
                raise ConfigError(
                    f'"detector.{key}" acts on drawn counts, but detector.noise = false stores '
                    f"the expected photon counts; remove detector.{key} or noise = false"
                )
    if det.dose == 0:
        for key in _PHOTON_KEYS:
            if getattr(det, key) != SPEC["detector"][key][2]:
                raise ConfigError(
                    f'"detector.{key}" needs photons, but detector.dose = 0 stores noiseless '
                    f"float intensities; set detector.dose > 0 or remove detector.{key}"
                )
    for key in ("gain", "background"):  # one photon, or the mean background, past uint32
        if getattr(det, key) > 2**32 - 1:
            raise ConfigError(
                f'"detector.{key}" = {getattr(det, key):g} puts a single pixel beyond uint32 '
                f"(4294967295), the widest stored integer; check detector.{key}"
            )
    if det.saturation is not None and det.saturation > 2**32 - 1:
        raise ConfigError(
            f'"detector.saturation" = {det.saturation:g} is beyond uint32 (4294967295), the '
            "widest stored integer; write a saturation <= 4294967295 or remove it"
        )


FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32
FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_outside(value: float) -> str | None:
    """ "overflows" or "underflows" when ``value`` is not in float32's normal range
    [`FLOAT32_TINY`, `FLOAT32_MAX`], else None."""
    if FLOAT32_TINY <= value <= FLOAT32_MAX:
        return None
    return "overflows" if value > FLOAT32_MAX else "underflows"


def _lengths(config: Config) -> dict[str, float]:
    p, o = config.probe, config.optics
    return {
        "probe.wavelength": p.wavelength,
        "probe.dx": p.dx,
        "optics.zoom_factor": o.zoom_factor,
        "optics.travel_distance": o.travel_distance,
        "optics.camera_pixel_size": o.camera_pixel_size,
        "optics.aperture_diameter": o.aperture_diameter,
    }


def _float32(config: Config) -> None:
    """Refuse optical values outside float32's normal range, which the kernel computes in,
    and any other number of the physics sections (0 allowed) beyond it."""
    for key, value in _lengths(config).items():
        if way := float32_outside(value):
            raise ConfigError(
                f'"{key}" = {value!r} {way} float32 (normal range {FLOAT32_TINY:.3g} to '
                f"{FLOAT32_MAX:.3g}), which the kernel computes in; give lengths in metres "
                "(e.g. wavelength = 500e-9)"
            )
    for key, value in _numbers(config):
        if value != 0 and (way := float32_outside(abs(value))):
            raise ConfigError(
                f'"{key}" = {value!r} {way} float32 (normal range {FLOAT32_TINY:.3g} to '
                f"{FLOAT32_MAX:.3g} in size, or 0), which the kernel computes in; give "
                "lengths in metres (e.g. waist = 12e-6)"
            )


def _numbers(config: Config):
    """(section.key[i], value) of every float of [probe], [optics], [sample] and [scan],
    list entries too."""
    for section in ("probe", "optics", "sample", "scan"):
        table = getattr(config, section)
        for field in dataclasses.fields(table):
            value = getattr(table, field.name)
            values = value if isinstance(value, tuple | list) else (value,)
            for i, v in enumerate(values):
                if isinstance(v, float):
                    suffix = f"[{i}]" if values is value else ""
                    yield f"{section}.{field.name}{suffix}", v


def check_float32_products(config: Config, window: tuple[int, int]) -> None:
    """Refuse lengths whose products the float32 kernel would overflow or flush to zero.

    window: the probe's (H, W) in pixels (N = the larger). Each quantity is computed as the
    kernel computes it, in float32: dx*zoom, lambda*z, the illumination scale
    (dx zoom)^2/(lambda z), the natural camera pixel lambda z/(N dx zoom), the sampling ratio
    alpha = N dx zoom camera_pixel/(lambda z), the chirp phase scale pi alpha/N and its
    largest phase pi alpha (N-1)^2/N, and the aperture radius^2. Each must be finite and,
    except the largest phase, a normal float32 (>= 1.2e-38).
    """
    n = np.float32(max(window))
    lam, dx, zoom, z, cam, diameter = (np.float32(v) for v in _lengths(config).values())
    with np.errstate(all="ignore"):
        dxz, lz = dx * zoom, lam * z
        alpha = n * dxz * cam / lz
        half = np.float32(np.pi) * alpha / n
        products = [
            ("the zoomed pixel dx*zoom", dxz, "probe.dx, optics.zoom_factor"),
            ("lambda*z", lz, "probe.wavelength, optics.travel_distance"),
            ("the illumination scale (dx zoom)^2/(lambda z)", dxz * dxz / lz, _SCALE_KEYS),
            ("the natural camera pixel lambda z/(N dx zoom)", lz / (n * dxz), _SCALE_KEYS),
            ("the sampling ratio N dx zoom camera_pixel/(lambda z)", alpha, _RATIO_KEYS),
            ("the chirp phase scale pi alpha/N", half, _RATIO_KEYS),
            ("the largest chirp phase", half * (n - 1) ** 2, _RATIO_KEYS),
            ("the aperture radius^2", (diameter / 2) ** 2, "optics.aperture_diameter"),
        ]
    for name, value, keys in products:
        low = not value >= FLOAT32_TINY and name != "the largest chirp phase"
        if low or not np.isfinite(value):
            way = "underflows" if low and np.isfinite(value) else "overflows"
            raise ConfigError(
                f"{name} = {float(value):.3g} {way} float32 (normal range {FLOAT32_TINY:.3g} to "
                f"{FLOAT32_MAX:.3g}), which the kernel computes in; check the units (metres) of "
                f"{keys}"
            )


MAX_CAMERA_SPAN = 10.0  # camera half-width / travel_distance: about 84 degrees off axis


def check_camera_span(config: Config, window: tuple[int, int]) -> None:
    """Refuse a far-field camera whose half-width N camera_pixel / 2 is more than
    MAX_CAMERA_SPAN times the travel distance (beyond about 84 degrees off axis, where no
    Fraunhofer far field holds): mostly a unit slip in one of the two lengths. The near field
    (angular spectrum) has its limits checked elsewhere (`jscan.pipeline.run.regimes`)."""
    o = config.optics
    half = max(window) * o.camera_pixel_size / 2
    if o.propagation == "far" and half > MAX_CAMERA_SPAN * o.travel_distance:
        raise ConfigError(
            f'"optics.camera_pixel_size" = {o.camera_pixel_size:g}: the camera ({max(window)} '
            f"pixels) would reach {half:.3g} m off axis at optics.travel_distance = "
            f"{o.travel_distance:g} m, beyond {MAX_CAMERA_SPAN:g} times that distance; check "
            "the units (metres) of both"
        )


_SCALE_KEYS = "probe.dx, optics.zoom_factor, probe.wavelength, optics.travel_distance"
_RATIO_KEYS = _SCALE_KEYS + ", optics.camera_pixel_size"


def _grids(config: Config) -> None:
    probe, sample = config.probe, config.sample
    if not math.isclose(sample.dx, probe.dx, rel_tol=1e-9, abs_tol=0.0):
        raise ConfigError(
            f'"sample.dx" ({sample.dx!r} m) must equal probe.dx ({probe.dx!r} m); '
            "set sample.dx = probe.dx"
        )


def _thick(sample: SampleConfig) -> None:
    """Refuse several phantom slices without a spacing, and a voxel depth without indices."""
    if (sample.slices or 1) > 1 and sample.spacing is None:
        raise ConfigError(
            f'"sample.spacing" is missing for sample.slices = {sample.slices}; add spacing = '
            "the distance between slices in metres"
        )
    index = sample.values == "refractive_index"
    if index and sample.voxel_depth is None:
        raise ConfigError(
            '"sample.voxel_depth" is missing for sample.values = "refractive_index"; add '
            "voxel_depth = the thickness of one slice in metres"
        )
    if not index and sample.voxel_depth is not None:
        raise ConfigError(
            '"sample.voxel_depth" applies to sample.values = "refractive_index" only; remove it '
            'or set values = "refractive_index"'
        )


def check_slices(sample: SampleConfig, slices: int) -> None:
    """Refuse a (K, H, W) sample array with K > 1 and no spacing (known once it is opened)."""
    if slices > 1 and sample.spacing is None:
        raise ConfigError(
            f'"sample.spacing" is missing: {sample.path} holds {slices} slices; add spacing = '
            "the distance between slices in metres"
        )


def _near_keys(optics: OpticsConfig) -> None:
    if optics.source_distance is not None and optics.propagation != "near":
        raise ConfigError(
            '"optics.source_distance" applies to the near field only; set optics.propagation = '
            '"near" or remove source_distance'
        )


MAX_PROBE_BYTES = 2**40  # a complex64 probe window beyond 1 TiB: no machine holds a block


def _probe_size(config: Config) -> None:
    """Refuse a probe window whose one complex64 copy passes `MAX_PROBE_BYTES`."""
    n = config.probe.size
    if n is not None and n * n * 8 > MAX_PROBE_BYTES:
        raise ConfigError(
            f'"probe.size" = {n}: one {n}x{n} complex64 window takes {n * n * 8 // 2**40} '
            "TiB, beyond what any machine holds for a block; give the probe's size in pixels"
        )


def check_config(config: Config) -> None:
    """Every cross-key refusal of a parsed config, cheapest first."""
    _probe_size(config)
    _float32(config)
    _grids(config)
    check_focused(config.probe)
    _thick(config.sample)
    _near_keys(config.optics)
    _detector(config.detector)
