"""TOML run configuration: parsing, validation and the physics hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass

from jscan.errors import ConfigError
from jscan.inputs.checkers import check_integer
from jscan.inputs.rules import check_config
from jscan.inputs.schema import (
    LATER_KEYS,
    OPTIONAL_SECTIONS,
    SPEC,
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
    model of `jscan.inputs.detector_model` (applied in its documented order)."""

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
    generator: str = "auto"  # "host", "device" or "auto" (device on GPU/TPU workers)


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
    check_config(config)
    return config


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
