"""TOML run configuration: parsing, validation and the physics hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass

import numpy as np

from jscan.errors import ConfigError
from jscan.inputs.focused import check_focused
from jscan.inputs.schema import (
    LATER_KEYS,
    OPTIONAL_SECTIONS,
    SPEC,
    check_integer,
    parse_section,
    unknown,
)


@dataclass(frozen=True)
class ProbeConfig:
    """[probe]: kind "gaussian" | "airy" | "file" | "lens" | "zone_plate"; lengths in metres."""

    kind: str
    dx: float
    wavelength: float
    size: int | None = None  # gaussian/airy: square window side in pixels
    waist: float | None = None  # gaussian: 1/e^2 intensity radius, amplitude exp(-r^2/waist^2)
    radius: float | None = None  # airy: radius of the first dark ring
    path: str | None = None  # file: absolute path of a (H, W) or (M, H, W) complex .npy
    modes: int | None = None  # gaussian/airy: mutually incoherent modes (samples.probe_modes)
    mode_power_ratio: float | None = None  # gaussian/airy: power of mode m+1 / mode m
    # lens and zone_plate (jscan.inputs.focused); None for the other kinds
    focal_length: float | None = None  # lens
    diameter: float | None = None
    outer_zone_width: float | None = None  # zone_plate: dr; focal length D dr / lambda
    defocus: float | None = None  # focus to sample plane, positive downstream
    central_stop: float | None = None  # diameter of the pupil's opaque disc
    osa_diameter: float | None = None  # zone_plate: order-sorting aperture, with osa_distance
    osa_distance: float | None = None  # zone_plate: OSA upstream of the focus
    zernike_defocus: float | None = None  # lens: Noll Zernike coefficients, m rms
    astigmatism_0: float | None = None
    astigmatism_45: float | None = None
    coma_x: float | None = None
    coma_y: float | None = None
    spherical: float | None = None
    source_size: float | None = None  # rms of a Gaussian source (partial coherence)
    source_distance: float | None = None  # source to the optic


@dataclass(frozen=True)
class OpticsConfig:
    """[optics]: lengths in metres; aperture_center is (x, y) or None for on-axis."""

    zoom_factor: float
    aperture_diameter: float
    travel_distance: float
    camera_pixel_size: float
    aperture_center: tuple[float, float] | None = None
    propagation: str = "far"  # "far": Fraunhofer; "near": Fresnel (angular spectrum)
    source_distance: float | None = None  # near: point source z1 upstream; None: plane wave


@dataclass(frozen=True)
class SampleConfig:
    """[sample]: kind "phantom" | "file" | "zarr"; dx in metres."""

    kind: str
    dx: float
    phantom: str | None = None  # phantom: "siemens_star" | "cells"
    shape: tuple[int, int] | None = None  # phantom: (rows, cols)
    seed: int | None = None  # phantom: seed of the "cells" phantom
    path: str | None = None  # file: absolute .npy path; zarr: absolute store path
    array: str | None = None  # zarr: array name inside the store ("" = root array)
    slices: int | None = 1  # phantom: slices along the beam (file/zarr: from the array)
    spacing: float | None = None  # m between slices (multislice)
    values: str | None = "transmission"  # file/zarr: "transmission" | "refractive_index"
    voxel_depth: float | None = None  # m: thickness of a refractive-index slice


@dataclass(frozen=True)
class ScanConfig:
    """[scan]: kind "raster" | "spiral" | "file"; lengths in metres."""

    kind: str
    shape: tuple[int, int] | None = None  # raster: (rows, cols) of positions
    step: float | None = None  # raster and spiral
    start: tuple[float, float] | None = None  # raster: first (x, y); None centres the grid
    n: int | None = None  # spiral: number of positions
    path: str | None = None  # file: absolute path of an (n, 2) .npy with columns x, y
    placement: str = "exact"  # "exact": sub-pixel positions simulated; "snap": on the pixel
    jitter: float = 0.0  # m: rms Gaussian error per axis of each position (keyed by seed, index)
    drift: tuple[float, float] = (0.0, 0.0)  # m per position index: x, y error growing along
    seed: int = 0  # key of the jitter


@dataclass(frozen=True)
class DetectorConfig:
    """[detector]: dose 0 = noiseless float32; dose > 0 = Poisson counts, with ``dose`` the mean
    number of photons in the incident probe per position (the pattern's total for a
    transparent sample whose far field the camera covers). The other keys are the detector
    model of `jscan.pipeline.detector_model` (applied in its documented order)."""

    dose: float = 0.0
    seed: int = 0
    background: float = 0.0  # mean photons per pixel added before Poisson
    psf_sigma: float = 0.0  # camera pixels, Gaussian blur of the expected intensity
    gain: float = 1.0  # ADU per photon
    readout_noise: float = 0.0  # ADU rms, Gaussian
    saturation: int | None = None  # ADU: values clip there
    bad_pixels: str | None = None  # absolute path of an (H, W) bool .npy (True = bad)
    gaps: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # (rows, cols) of module gaps
    noise: bool = True  # dose > 0 and false: float32 expected counts, no Poisson draw


@dataclass(frozen=True)
class RunConfig:
    """[run]: execution settings that do not change the simulated data."""

    block_size: int = 1024


@dataclass(frozen=True)
class Config:
    """A validated run configuration and the TOML text it was parsed from."""

    probe: ProbeConfig
    optics: OpticsConfig
    sample: SampleConfig
    scan: ScanConfig
    detector: DetectorConfig
    run: RunConfig
    text: str

    @property
    def hash(self) -> str:
        """sha256 hex of the physics (every section but [run]), stable across runs."""
        physics = {
            name: {
                key: value
                for key, value in dataclasses.asdict(getattr(self, name)).items()
                if not (key in LATER_KEYS.get(name, ()) and value in (None, SPEC[name][key][2]))
            }
            for name in ("probe", "optics", "sample", "scan", "detector")
        }
        canonical = json.dumps(physics, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _resolve(key: str, path: str, base_dir: str, want_dir: bool) -> str:
    resolved = os.path.abspath(os.path.join(base_dir, os.path.expanduser(path)))
    exists = os.path.isdir(resolved) if want_dir else os.path.isfile(resolved)
    if not exists:
        what = "directory (zarr store)" if want_dir else "file"
        raise ConfigError(
            f'"{key}": {what} not found: {resolved}; fix the path '
            f"(relative paths are resolved against {base_dir})"
        )
    return resolved


def parse_config(text: str, base_dir: str | os.PathLike | None = None) -> Config:
    """Parse and validate a TOML config.

    Args:
        text: the TOML text.
        base_dir: folder that relative `path` keys are resolved against (the config file's
            folder); None means the current directory. Paths are stored absolute.

    Returns:
        the validated Config.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be the TOML text as str, got {type(text).__name__}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}; fix the syntax there") from err
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f'top-level key "{name}" is outside any section; move it under one')
        if name not in SPEC:
            raise unknown("section", name, SPEC)
    sections = {}
    for name in SPEC:
        if name not in data and name not in OPTIONAL_SECTIONS:
            raise ConfigError(f"missing section [{name}]; add a [{name}] table")
        sections[name] = parse_section(name, data.get(name, {}))

    base = os.path.abspath(os.fspath(base_dir)) if base_dir is not None else os.getcwd()
    for name in ("probe", "sample", "scan"):
        if sections[name]["path"] is not None:
            is_store = sections[name]["kind"] == "zarr"
            sections[name]["path"] = _resolve(
                f"{name}.path", sections[name]["path"], base, is_store
            )
    if sections["detector"]["bad_pixels"] is not None:
        sections["detector"]["bad_pixels"] = _resolve(
            "detector.bad_pixels", sections["detector"]["bad_pixels"], base, False
        )

    config = Config(
        probe=ProbeConfig(**sections["probe"]),
        optics=OpticsConfig(**sections["optics"]),
        sample=SampleConfig(**sections["sample"]),
        scan=ScanConfig(**sections["scan"]),
        detector=DetectorConfig(**sections["detector"]),
        run=RunConfig(**sections["run"]),
        text=text,
    )
    _check_float32(config)
    _check_grids(config)
    check_focused(config.probe)
    _check_thick(config.sample)
    _check_near(config.optics)
    _check_detector(config.detector)
    return config


# Detector effects that act on photons or ADU: meaningless for float intensities (dose 0).
_PHOTON_KEYS = ("background", "gain", "readout_noise", "saturation")
# Effects on the drawn counts (ADU): meaningless for expected counts (noise false).
_COUNT_KEYS = ("gain", "readout_noise", "saturation")


def _check_detector(det: DetectorConfig) -> None:
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


def _check_float32(config: Config) -> None:
    """Refuse optical values outside float32's normal range, which the kernel computes in."""
    for key, value in _lengths(config).items():
        if way := float32_outside(value):
            raise ConfigError(
                f'"{key}" = {value!r} {way} float32 (normal range {FLOAT32_TINY:.3g} to '
                f"{FLOAT32_MAX:.3g}), which the kernel computes in; give lengths in metres "
                "(e.g. wavelength = 500e-9)"
            )


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


_SCALE_KEYS = "probe.dx, optics.zoom_factor, probe.wavelength, optics.travel_distance"
_RATIO_KEYS = _SCALE_KEYS + ", optics.camera_pixel_size"


def _check_grids(config: Config) -> None:
    probe, sample = config.probe, config.sample
    if not math.isclose(sample.dx, probe.dx, rel_tol=1e-9, abs_tol=0.0):
        raise ConfigError(
            f'"sample.dx" ({sample.dx!r} m) must equal probe.dx ({probe.dx!r} m); '
            "set sample.dx = probe.dx"
        )


def _check_thick(sample: SampleConfig) -> None:
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


def _check_near(optics: OpticsConfig) -> None:
    if optics.source_distance is not None and optics.propagation != "near":
        raise ConfigError(
            '"optics.source_distance" applies to the near field only; set optics.propagation = '
            '"near" or remove source_distance'
        )


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a TOML config file.

    Args:
        path: the .toml file; relative `path` keys inside resolve against its folder.

    Returns:
        the validated Config.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {path}; check the path") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"cannot read config file {path} ({err}); pass a UTF-8 TOML file"
        ) from err
    return parse_config(text, base_dir=os.path.dirname(os.path.abspath(path)))


def with_overrides(config: Config, block_size: int | None = None) -> Config:
    """Copy of config with [run] values replaced (command-line flags override [run]).

    Args:
        config: the parsed Config.
        block_size: positions per block, or None to keep config.run.block_size.

    Returns:
        a new Config; its hash is unchanged because [run] is not physics.
    """
    run = config.run
    if block_size is not None:
        run = dataclasses.replace(run, block_size=check_integer("run.block_size", block_size))
    return dataclasses.replace(config, run=run)


# Built-in demo: far-field geometry (Fresnel number ~0.04), camera at half the natural
# pixel lambda * z / (N * dx * zoom) = 390.625 um so patterns are 2x oversampled.
DEMO_CONFIG = """\
# jscan built-in demo: a Gaussian probe raster-scanned over a Siemens star.
[probe]
kind = "gaussian"
size = 64              # pixels
dx = 1.0e-6            # m
wavelength = 500.0e-9  # m
waist = 12.0e-6        # m, 1/e^2 intensity radius

[optics]
zoom_factor = 1.0
aperture_diameter = 48.0e-6     # m, four waists: passes 99.97% of the probe power
travel_distance = 0.05          # m
camera_pixel_size = 195.3125e-6 # m, half of lambda * z / (N * dx * zoom)

[sample]
kind = "phantom"
phantom = "siemens_star"
dx = 1.0e-6            # m, equal to probe.dx
shape = [512, 512]     # pixels

[scan]
kind = "raster"
shape = [64, 64]
step = 7.0e-6          # m; below the probe's 12 um waist, so the star's spokes do not alias

[detector]
dose = 1.0e5           # mean incident photons per position
seed = 0

[run]
block_size = 512
"""
