"""TOML run configuration: parsing, validation and the physics hash."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from jscan.errors import ConfigError


@dataclass(frozen=True)
class ProbeConfig:
    """[probe]: kind "gaussian" | "airy" | "file"; lengths in metres."""

    kind: str
    dx: float
    wavelength: float
    size: int | None = None  # gaussian/airy: square window side in pixels
    waist: float | None = None  # gaussian: 1/e^2 intensity radius, amplitude exp(-r^2/waist^2)
    radius: float | None = None  # airy: radius of the first dark ring
    path: str | None = None  # file: absolute path of a (H, W) or (M, H, W) complex .npy
    modes: int | None = None  # gaussian/airy: mutually incoherent modes (samples.probe_modes)
    mode_power_ratio: float | None = None  # gaussian/airy: power of mode m+1 / mode m


@dataclass(frozen=True)
class OpticsConfig:
    """[optics]: lengths in metres; aperture_center is (x, y) or None for on-axis."""

    zoom_factor: float
    aperture_diameter: float
    travel_distance: float
    camera_pixel_size: float
    aperture_center: tuple[float, float] | None = None


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
                if not (key in _LATER_KEYS.get(name, ()) and value in (None, _SPEC[name][key][2]))
            }
            for name in ("probe", "optics", "sample", "scan", "detector")
        }
        canonical = json.dumps(physics, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# ---- value checkers: (full key, raw TOML value) -> validated value ----


def _number(key: str, value: Any, above: float = -math.inf, or_equal: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f'"{key}" must be a number, got {value!r} ({type(value).__name__}); '
            "write a TOML number such as 1.5e-6 (no quotes, not true/false)"
        )
    number = float(value) if abs(value) < 1e308 else math.inf
    if not math.isfinite(number):
        raise ConfigError(f'"{key}" must be finite, got {value!r}; write a finite number')
    if number < above or (number == above and not or_equal):
        bound = f"{'>=' if or_equal else '>'} {above:g}"
        raise ConfigError(f'"{key}" must be {bound}, got {value!r}; write a value {bound}')
    return number


def _positive(key: str, value: Any) -> float:
    return _number(key, value, above=0.0)


def _non_negative(key: str, value: Any) -> float:
    return _number(key, value, above=0.0, or_equal=True)


def _integer(key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f'"{key}" must be an integer, got {value!r} ({type(value).__name__}); '
            "write a whole number such as 64"
        )
    if value < minimum:
        raise ConfigError(f'"{key}" must be >= {minimum}, got {value}; write a larger integer')
    return value


def _seed(key: str, value: Any) -> int:
    seed = _integer(key, value, minimum=0)
    if seed >= 2**63:  # keys numpy's generators with the seed as a uint64
        raise ConfigError(f'"{key}" must be below 2**63, got {seed}; use a smaller seed')
    return seed


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f'"{key}" must be true or false, got {value!r}; write {key.rsplit(".", 1)[-1]} = true'
        )
    return value


def _fraction(key: str, value: Any) -> float:
    number = _positive(key, value)
    if number > 1:
        raise ConfigError(f'"{key}" must be in (0, 1], got {value!r}; write a ratio such as 0.5')
    return number


def _gaps(key: str, value: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not isinstance(value, dict) or not value or set(value) - {"rows", "cols"}:
        raise ConfigError(
            f'"{key}" must be a table of camera pixel indices, got {value!r}; write '
            f"{key.rsplit('.', 1)[-1]} = {{rows = [255, 256], cols = [511]}}"
        )
    lists = []
    for axis in ("rows", "cols"):
        items = value.get(axis, [])
        if not isinstance(items, list):
            raise ConfigError(f'"{key}.{axis}" must be a list of pixel indices, got {items!r}')
        lists.append(tuple(_integer(f"{key}.{axis}[{i}]", v, 0) for i, v in enumerate(items)))
    return lists[0], lists[1]


def _pair(key: str, value: Any, check=_number) -> tuple:
    if not isinstance(value, list) or len(value) != 2:
        leaf = key.rsplit(".", 1)[-1]
        raise ConfigError(
            f'"{key}" must be a list of two values, got {value!r}; write {leaf} = [a, b]'
        )
    return (check(f"{key}[0]", value[0]), check(f"{key}[1]", value[1]))


def _shape(key: str, value: Any) -> tuple[int, int]:
    return _pair(key, value, _integer)


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f'"{key}" must be a string, got {value!r}; write it in quotes')
    return value


def _path(key: str, value: Any) -> str:
    if not _string(key, value):
        raise ConfigError(f'"{key}" is empty; write the path of the file')
    return value


def _choice(*choices: str):
    def check(key: str, value: Any) -> str:
        if _string(key, value) not in choices:
            listed = " or ".join(f'"{c}"' for c in choices)
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"use {listed}"
            raise ConfigError(f'"{key}" must be {listed}, got "{value}"; {hint}')
        return value

    check.choices = choices
    return check


_REQUIRED = object()
_ALL = None  # a key allowed for every kind


class Key(NamedTuple):
    """One config key of the schema: how it is checked, where it applies, its documentation.

    check: (full key, raw TOML value) -> validated value; kinds: the section kinds the key
    is allowed for (None: every kind); default: its value when absent (`REQUIRED`: none);
    unit: its unit ("" for none); doc: one sentence for the reference table and the
    template (`jscan.inputs.reference`); example: a value for the template when it has
    no default (or a dict of one per kind).
    """

    check: Any
    kinds: tuple[str, ...] | None
    default: Any
    unit: str = ""
    doc: str = ""
    example: Any = None


# section -> key -> Key (a plain (check, kinds, default) tuple is read as a Key without docs)
_SPEC: dict[str, dict[str, Any]] = {
    "probe": {
        "kind": Key(
            _choice("gaussian", "airy", "file"),
            _ALL,
            _REQUIRED,
            "",
            "the probe field: a Gaussian, an Airy disc, or a complex .npy file; every probe "
            "is scaled to unit power, sum |probe|^2 = 1 over its pixels",
        ),
        "dx": Key(
            _positive,
            _ALL,
            _REQUIRED,
            "m",
            "pixel pitch of the probe window (and of the sample: sample.dx equals it)",
        ),
        "wavelength": Key(_positive, _ALL, _REQUIRED, "m", "wavelength of the illumination"),
        "size": Key(
            _integer, ("gaussian", "airy"), _REQUIRED, "px", "side of the square probe window"
        ),
        "waist": Key(
            _positive,
            ("gaussian",),
            _REQUIRED,
            "m",
            "1/e^2 intensity radius: amplitude exp(-r^2/waist^2)",
        ),
        "radius": Key(
            _positive,
            ("airy",),
            _REQUIRED,
            "m",
            "radius of the first dark ring: amplitude 2 J1(v)/v, v = 3.8317 r/radius",
            12.0e-6,
        ),
        "path": Key(
            _path,
            ("file",),
            _REQUIRED,
            "",
            "complex .npy of the probe field, (H, W) or (M, H, W) for M incoherent modes "
            "(relative to the config's folder); its window is the array's shape",
            "probe.npy",
        ),
        "modes": Key(
            _integer,
            ("gaussian", "airy"),
            1,
            "",
            "mutually incoherent probe modes (orthonormalised Hermite-Gaussian modes)",
        ),
        "mode_power_ratio": Key(
            _fraction,
            ("gaussian", "airy"),
            0.5,
            "",
            "power of mode m+1 over mode m, in (0, 1]: mode m gets r^m / sum_k r^k",
        ),
    },
    "optics": {
        "zoom_factor": Key(
            _positive,
            _ALL,
            _REQUIRED,
            "",
            "magnification between sample and aperture plane: the exit wave's pixel becomes "
            "dx*zoom_factor (the field itself is unchanged), so the natural camera pixel is "
            "wavelength*travel_distance/(N*dx*zoom_factor)",
        ),
        "aperture_diameter": Key(
            _positive,
            _ALL,
            _REQUIRED,
            "m",
            "diameter of the circular aperture in the zoomed plane, moving with the probe",
        ),
        "travel_distance": Key(
            _positive, _ALL, _REQUIRED, "m", "distance from the aperture to the camera"
        ),
        "camera_pixel_size": Key(
            _positive,
            _ALL,
            _REQUIRED,
            "m",
            "camera pixel pitch; the camera has the probe window's shape in pixels",
        ),
        "aperture_center": Key(
            _pair,
            _ALL,
            None,
            "m",
            "(x, y) of the aperture's centre relative to the probe's axis; absent: on axis",
            [0.0, 0.0],
        ),
    },
    "sample": {
        "kind": Key(
            _choice("phantom", "file", "zarr"),
            _ALL,
            _REQUIRED,
            "",
            "a built-in phantom, a complex .npy file, or a Zarr array read per block",
        ),
        "dx": Key(_positive, _ALL, _REQUIRED, "m", "sample pixel pitch; must equal probe.dx"),
        "phantom": Key(
            _choice("siemens_star", "cells"),
            ("phantom",),
            "siemens_star",
            "",
            'the phantom: "siemens_star" or "cells"',
        ),
        "shape": Key(_shape, ("phantom",), _REQUIRED, "px", "(rows, cols) of the phantom"),
        "seed": Key(_seed, ("phantom",), 0, "", 'seed of the "cells" phantom'),
        "path": Key(
            _path,
            ("file", "zarr"),
            _REQUIRED,
            "",
            "file: a 2-D complex .npy; zarr: a Zarr store (relative to the config's folder); "
            "sample pixel (r, c) sits at y = r*dx, x = c*dx",
            {"file": "sample.npy", "zarr": "sample.zarr"},
        ),
        "array": Key(
            _string, ("zarr",), "sample", "", 'array inside the Zarr store ("" = the root array)'
        ),
    },
    "scan": {
        "kind": Key(
            _choice("raster", "spiral", "file"),
            _ALL,
            _REQUIRED,
            "",
            "a row-major raster, a Fermat spiral, or positions from a file",
        ),
        "shape": Key(_shape, ("raster",), _REQUIRED, "", "(rows, cols) of raster positions"),
        "step": Key(
            _positive,
            ("raster", "spiral"),
            _REQUIRED,
            "m",
            "raster: the grid pitch; spiral: the radius scale, position k at r = step*sqrt(k), "
            "angle k*137.5 deg (golden angle), around the sample's centre",
        ),
        "start": Key(
            _pair,
            ("raster",),
            None,
            "m",
            "(x, y) of the first position; absent: the grid is centred on the sample",
            [100.0e-6, 100.0e-6],
        ),
        "n": Key(_integer, ("spiral",), _REQUIRED, "", "number of spiral positions", 1000),
        "path": Key(
            _path,
            ("file",),
            _REQUIRED,
            "",
            "(n, 2) .npy of positions, columns x, y in metres (relative to the config's folder)",
            "positions.npy",
        ),
        "placement": Key(
            _choice("exact", "snap"),
            _ALL,
            "exact",
            "",
            '"exact": positions between pixels are simulated there (Fourier shift); "snap": '
            "each position is moved onto its window's axis pixel",
        ),
        "jitter": Key(
            _non_negative,
            _ALL,
            0.0,
            "m",
            "rms Gaussian position error per axis, keyed by (scan.seed, position index); "
            "x, y store the true positions, x_nominal, y_nominal the commanded ones",
        ),
        "drift": Key(
            _pair,
            _ALL,
            (0.0, 0.0),
            "m/position",
            "(x, y) position error growing with the position index k: drift*k",
        ),
        "seed": Key(_seed, _ALL, 0, "", "seed of the jitter"),
    },
    "detector": {
        "dose": Key(
            _non_negative,
            _ALL,
            0.0,
            "photons",
            "0: float32 intensities |U'|^2 (sum over the camera x camera_pixel_size^2 = "
            "(dx*zoom)^2 x the share of the unit-power probe reaching it); > 0: Poisson "
            "counts (uint32) with this mean number of incident photons per position",
        ),
        "seed": Key(
            _seed,
            _ALL,
            0,
            "",
            "seed of the detector's noise, drawn per (seed, stream, position index)",
        ),
        "background": Key(
            _non_negative, _ALL, 0.0, "photons", "mean background per pixel, added before Poisson"
        ),
        "psf_sigma": Key(
            _non_negative, _ALL, 0.0, "camera px", "Gaussian blur (rms) of the expected intensity"
        ),
        "gain": Key(_positive, _ALL, 1.0, "ADU/photon", "conversion gain of the Poisson counts"),
        "readout_noise": Key(_non_negative, _ALL, 0.0, "ADU", "rms of the Gaussian readout noise"),
        "saturation": Key(
            _integer,
            _ALL,
            None,
            "ADU",
            "values clip here; <= 65535 stores uint16, else uint32",
            65535,
        ),
        "bad_pixels": Key(
            _path,
            _ALL,
            None,
            "",
            "(H, W) bool .npy, True = bad: written 0 and marked in the mask variable",
            "bad_pixels.npy",
        ),
        "gaps": Key(
            _gaps,
            _ALL,
            None,
            "camera px",
            "{rows = [...], cols = [...]}: module gap rows and columns, written 0 and masked",
            {"rows": [31, 32], "cols": []},
        ),
        "noise": Key(
            _boolean,
            _ALL,
            True,
            "",
            "false (with a dose): store the expected photon counts (float32: dose, background "
            "and blur applied, no Poisson draw) instead of counts",
        ),
    },
    "run": {
        "block_size": Key(
            _integer,
            _ALL,
            1024,
            "positions",
            "positions per Dask task and Zarr shard (cut to the scan length; --block-size "
            "overrides it); not part of the physics hash",
        )
    },
}
_OPTIONAL_SECTIONS = ("detector", "run")
REQUIRED = _REQUIRED  # the default of a key that must be given
SECTION_DOCS = {
    "probe": "the illumination in the sample plane",
    "optics": "zoom, aperture and the far-field camera",
    "sample": "the complex transmission the probe scans",
    "scan": "the probe positions, in metres on the sample",
    "detector": "noise and units of the stored patterns",
    "run": "execution settings (not physics)",
}


def schema() -> dict[str, dict[str, Key]]:
    """The config schema, section -> key -> `Key`, in file order (the reference table and
    the `jscan init` template are made from it)."""
    return {name: {k: Key(*e) for k, e in keys.items()} for name, keys in _SPEC.items()}


def optional_section(name: str) -> bool:
    """True when section ``name`` may be left out (all its keys have defaults)."""
    return name in _OPTIONAL_SECTIONS


# Keys added after stores of format jscan-scan/3 existed: hashed only when set away from
# their default, so such a store's config keeps its hash and can still be resumed.
_LATER_KEYS = {
    "probe": ("modes", "mode_power_ratio"),
    "scan": ("jitter", "drift", "seed"),
    "detector": (
        "background",
        "psf_sigma",
        "gain",
        "readout_noise",
        "saturation",
        "bad_pixels",
        "gaps",
    ),
}


def _unknown(what: str, name: str, valid) -> ConfigError:
    close = difflib.get_close_matches(name.rsplit(".", 1)[-1], list(valid), n=1, cutoff=0.5)
    hint = f'did you mean "{close[0]}"?' if close else "valid: " + ", ".join(sorted(valid))
    return ConfigError(f'unknown {what} "{name}"; {hint}')


def _parse_section(name: str, table: Any) -> dict[str, Any]:
    spec = {key: Key(*entry) for key, entry in _SPEC[name].items()}
    for key in table:
        if key not in spec:
            raise _unknown("key", f"{name}.{key}", spec)
    kind = None
    if "kind" in spec:
        if "kind" not in table:
            listed = " or ".join(f'"{c}"' for c in spec["kind"].check.choices)
            raise ConfigError(f'missing key "{name}.kind"; add kind = {listed} to [{name}]')
        kind = spec["kind"].check(f"{name}.kind", table["kind"])
    values: dict[str, Any] = {}
    for key, (check, kinds, default, *_) in spec.items():
        full = f"{name}.{key}"
        allowed = kinds is None or kind in kinds
        if key in table:
            if not allowed:
                raise ConfigError(
                    f'key "{full}" is not allowed when {name}.kind = "{kind}"; remove it '
                    f"(it applies to kind {' or '.join(kinds)})"
                )
            values[key] = check(full, table[key])
        elif allowed and default is _REQUIRED:
            where = f' when {name}.kind = "{kind}"' if kinds is not None else ""
            raise ConfigError(f'missing key "{full}"{where}; add {key} = ... to [{name}]')
        else:
            values[key] = default if allowed else None
    return values


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
        if name not in _SPEC:
            raise _unknown("section", name, _SPEC)
    sections = {}
    for name in _SPEC:
        if name not in data and name not in _OPTIONAL_SECTIONS:
            raise ConfigError(f"missing section [{name}]; add a [{name}] table")
        sections[name] = _parse_section(name, data.get(name, {}))

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
            if getattr(det, key) != _SPEC["detector"][key][2]:
                raise ConfigError(
                    f'"detector.{key}" acts on drawn counts, but detector.noise = false stores '
                    f"the expected photon counts; remove detector.{key} or noise = false"
                )
    if det.dose == 0:
        for key in _PHOTON_KEYS:
            if getattr(det, key) != _SPEC["detector"][key][2]:
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
        run = dataclasses.replace(run, block_size=_integer("run.block_size", block_size))
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
