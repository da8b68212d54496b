"""The config schema: every key's check, where it applies, its default, unit and meaning.

One table (`SPEC`) that parsing (`jscan.inputs.config`), the README's reference table and
`jscan init`'s template (`jscan.inputs.reference`) all read.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, NamedTuple

from jscan.errors import ConfigError
from jscan.inputs.focused import ZERNIKE_KEYS

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


check_integer = _integer  # for overrides from the command line and the API


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


REQUIRED = object()  # the default of a key that must be given
_ALL = None  # a key allowed for every kind
_FOCUSED = ("lens", "zone_plate")  # probe kinds made by jscan.inputs.focused
_PROCEDURAL = ("gaussian", "airy", *_FOCUSED)  # probe kinds made on a size x size window


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
SPEC: dict[str, dict[str, Any]] = {
    "probe": {
        "kind": Key(
            _choice("gaussian", "airy", "file", "lens", "zone_plate"),
            _ALL,
            REQUIRED,
            "",
            "the probe field: a Gaussian, an Airy disc, a complex .npy file, or the focus of a "
            "lens or a Fresnel zone plate (first order); every probe is scaled to unit power, "
            "sum |probe|^2 = 1 over its pixels",
        ),
        "dx": Key(
            _positive,
            _ALL,
            REQUIRED,
            "m",
            "pixel pitch of the probe window (and of the sample: sample.dx equals it)",
        ),
        "wavelength": Key(_positive, _ALL, REQUIRED, "m", "wavelength of the illumination"),
        "size": Key(_integer, _PROCEDURAL, REQUIRED, "px", "side of the square probe window"),
        "waist": Key(
            _positive,
            ("gaussian",),
            REQUIRED,
            "m",
            "1/e^2 intensity radius: amplitude exp(-r^2/waist^2)",
        ),
        "radius": Key(
            _positive,
            ("airy",),
            REQUIRED,
            "m",
            "radius of the first dark ring: amplitude 2 J1(v)/v, v = 3.8317 r/radius",
            12.0e-6,
        ),
        "path": Key(
            _path,
            ("file",),
            REQUIRED,
            "",
            "complex .npy of the probe field, (H, W) or (M, H, W) for M incoherent modes "
            "(relative to the config's folder); its window is the array's shape",
            "probe.npy",
        ),
        "modes": Key(
            _integer,
            _PROCEDURAL,
            1,
            "",
            "mutually incoherent probe modes: gaussian, airy: orthonormalised Hermite-Gaussian "
            "modes; lens, zone_plate: the strongest coherent modes of the source's partial "
            "coherence (needs source_size)",
        ),
        "mode_power_ratio": Key(
            _fraction,
            ("gaussian", "airy"),
            0.5,
            "",
            "power of mode m+1 over mode m, in (0, 1]: mode m gets r^m / sum_k r^k",
        ),
        "focal_length": Key(_positive, ("lens",), REQUIRED, "m", "focal length of the lens", 0.01),
        "diameter": Key(
            _positive,
            _FOCUSED,
            REQUIRED,
            "m",
            "diameter of the lens (NA = diameter/(2 focal_length)) or of the zone plate",
            1.0e-3,
        ),
        "outer_zone_width": Key(
            _positive,
            ("zone_plate",),
            REQUIRED,
            "m",
            "width dr of the outermost zone: focal length diameter*dr/wavelength, "
            "NA = wavelength/(2 dr); needs dx <= dr",
            2.0e-6,
        ),
        "defocus": Key(
            _number,
            _FOCUSED,
            0.0,
            "m",
            "distance from the focus to the sample plane, positive downstream (angular spectrum)",
        ),
        "central_stop": Key(
            _non_negative,
            _FOCUSED,
            0.0,
            "m",
            "diameter of the opaque disc at the centre of the pupil (0: none)",
        ),
        "osa_diameter": Key(
            _positive,
            ("zone_plate",),
            None,
            "m",
            "order-sorting aperture's diameter, smaller than central_stop; absent: no OSA",
            20.0e-6,
        ),
        "osa_distance": Key(
            _positive,
            ("zone_plate",),
            None,
            "m",
            "distance of the OSA upstream of the focus: it passes the pupil inside "
            "osa_diameter*focal_length/osa_distance; given with osa_diameter",
            1.0e-3,
        ),
        **{
            key: Key(_number, ("lens",), 0.0, "m rms", f"{what} (Noll Zernike {z}) of the lens")
            for key, (what, z) in zip(
                ZERNIKE_KEYS,
                (
                    ("defocus aberration", "Z4"),
                    ("astigmatism at 0 deg", "Z6"),
                    ("astigmatism at 45 deg", "Z5"),
                    ("coma along x", "Z8"),
                    ("coma along y", "Z7"),
                    ("spherical aberration", "Z11"),
                ),
                strict=True,
            )
        },
        "source_size": Key(
            _positive,
            _FOCUSED,
            None,
            "m",
            "rms size of a Gaussian source: partial coherence, coherence length "
            "wavelength*source_distance/(2 pi source_size) at the optic; absent: coherent",
            10.0e-6,
        ),
        "source_distance": Key(
            _positive,
            _FOCUSED,
            None,
            "m",
            "distance from the source to the lens or zone plate; given with source_size",
            30.0,
        ),
    },
    "optics": {
        "zoom_factor": Key(
            _positive,
            _ALL,
            REQUIRED,
            "",
            "magnification between sample and aperture plane: the exit wave's pixel becomes "
            "dx*zoom_factor (the field itself is unchanged), so the natural camera pixel is "
            "wavelength*travel_distance/(N*dx*zoom_factor)",
        ),
        "aperture_diameter": Key(
            _positive,
            _ALL,
            REQUIRED,
            "m",
            "diameter of the circular aperture in the zoomed plane, moving with the probe",
        ),
        "travel_distance": Key(
            _positive, _ALL, REQUIRED, "m", "distance from the aperture to the camera"
        ),
        "camera_pixel_size": Key(
            _positive,
            _ALL,
            REQUIRED,
            "m",
            "camera pixel pitch; the camera has the probe window's shape in pixels",
        ),
        "propagation": Key(
            _choice("far", "near"),
            _ALL,
            "far",
            "",
            '"far": the Fraunhofer far field at travel_distance; "near": the Fresnel near '
            "field (angular spectrum) of a camera at travel_distance, any camera pixel",
        ),
        "source_distance": Key(
            _positive,
            _ALL,
            None,
            "m",
            "near field: a beam diverging from a point this far upstream of the sample "
            "(Fresnel scaling: magnification (z1 + z)/z1); absent: a plane wave",
            0.1,
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
            REQUIRED,
            "",
            "a built-in phantom, a complex .npy file, or a Zarr array read per block",
        ),
        "dx": Key(_positive, _ALL, REQUIRED, "m", "sample pixel pitch; must equal probe.dx"),
        "phantom": Key(
            _choice("siemens_star", "cells"),
            ("phantom",),
            "siemens_star",
            "",
            'the phantom: "siemens_star" or "cells"',
        ),
        "shape": Key(_shape, ("phantom",), REQUIRED, "px", "(rows, cols) of the phantom"),
        "seed": Key(_seed, ("phantom",), 0, "", 'seed of the "cells" phantom'),
        "path": Key(
            _path,
            ("file", "zarr"),
            REQUIRED,
            "",
            "file: a 2-D complex .npy; zarr: a Zarr store (relative to the config's folder); "
            "sample pixel (r, c) sits at y = r*dx, x = c*dx",
            {"file": "sample.npy", "zarr": "sample.zarr"},
        ),
        "array": Key(
            _string, ("zarr",), "sample", "", 'array inside the Zarr store ("" = the root array)'
        ),
        "slices": Key(
            _integer,
            ("phantom",),
            1,
            "",
            'slices of a thick phantom along the beam, each its own ("cells": seed + k; '
            '"siemens_star": turned by k/slices of a sector); a (K, H, W) file or Zarr array '
            "has K slices",
        ),
        "spacing": Key(
            _non_negative,
            _ALL,
            None,
            "m",
            "distance from one slice to the next (multislice: the wave is multiplied by a "
            "slice, then propagated over the spacing); required with more than one slice",
            10.0e-6,
        ),
        "values": Key(
            _choice("transmission", "refractive_index"),
            ("file", "zarr"),
            "transmission",
            "",
            '"transmission": complex transmission per slice; "refractive_index": complex '
            "delta + i beta (n = 1 - delta + i beta) per voxel, each slice's transmission "
            "exp(-i k (delta - i beta) voxel_depth), k = 2 pi/wavelength",
        ),
        "voxel_depth": Key(
            _positive,
            ("file", "zarr"),
            None,
            "m",
            "the thickness each slice of a refractive-index sample stands for",
            10.0e-6,
        ),
    },
    "scan": {
        "kind": Key(
            _choice("raster", "spiral", "file"),
            _ALL,
            REQUIRED,
            "",
            "a row-major raster, a Fermat spiral, or positions from a file",
        ),
        "shape": Key(_shape, ("raster",), REQUIRED, "", "(rows, cols) of raster positions"),
        "step": Key(
            _positive,
            ("raster", "spiral"),
            REQUIRED,
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
        "n": Key(_integer, ("spiral",), REQUIRED, "", "number of spiral positions", 1000),
        "path": Key(
            _path,
            ("file",),
            REQUIRED,
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
OPTIONAL_SECTIONS = ("detector", "run")
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
    return {name: {k: Key(*e) for k, e in keys.items()} for name, keys in SPEC.items()}


def optional_section(name: str) -> bool:
    """True when section ``name`` may be left out (all its keys have defaults)."""
    return name in OPTIONAL_SECTIONS


# Keys added after stores of format jscan-scan/3 existed: hashed only when set away from
# their default, so such a store's config keeps its hash and can still be resumed.
LATER_KEYS = {
    "probe": (
        "modes",
        "mode_power_ratio",
        # lens and zone_plate
        "focal_length",
        "diameter",
        "outer_zone_width",
        "defocus",
        "central_stop",
        "osa_diameter",
        "osa_distance",
        *ZERNIKE_KEYS,
        "source_size",
        "source_distance",
    ),
    "optics": ("propagation", "source_distance"),
    "sample": ("slices", "spacing", "values", "voxel_depth"),
    "scan": ("jitter", "drift", "seed"),
    "detector": (
        "background",
        "psf_sigma",
        "gain",
        "readout_noise",
        "saturation",
        "bad_pixels",
        "gaps",
        "noise",
    ),
}


def unknown(what: str, name: str, valid) -> ConfigError:
    close = difflib.get_close_matches(name.rsplit(".", 1)[-1], list(valid), n=1, cutoff=0.5)
    hint = f'did you mean "{close[0]}"?' if close else "valid: " + ", ".join(sorted(valid))
    return ConfigError(f'unknown {what} "{name}"; {hint}')


def parse_section(name: str, table: Any) -> dict[str, Any]:
    spec = {key: Key(*entry) for key, entry in SPEC[name].items()}
    for key in table:
        if key not in spec:
            raise unknown("key", f"{name}.{key}", spec)
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
        elif allowed and default is REQUIRED:
            where = f' when {name}.kind = "{kind}"' if kinds is not None else ""
            raise ConfigError(f'missing key "{full}"{where}; add {key} = ... to [{name}]')
        else:
            values[key] = default if allowed else None
    return values
