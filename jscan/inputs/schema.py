"""The config schema: every key's check, where it applies, its default, unit and meaning.

One table (`SPEC`) that parsing (`jscan.inputs.config`), the config guide's reference table and
`jscan init`'s template (`jscan.inputs.reference`) all read.
"""

from __future__ import annotations

import difflib
from typing import Any

from jscan.errors import ConfigError
from jscan.inputs.checkers import (
    _ALL,
    REQUIRED,
    Key,
    _boolean,
    _choice,
    _gaps,
    _integer,
    _non_negative,
    _pair,
    _path,
    _positive,
    _seed,
    _shape,
    _string,
)
from jscan.inputs.focused import ZERNIKE_KEYS
from jscan.inputs.probe_keys import PROBE_KEYS

# section -> key -> Key (a plain (check, kinds, default) tuple is read as a Key without docs)
SPEC: dict[str, dict[str, Any]] = {
    "probe": PROBE_KEYS,
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
            "file: a complex .npy, (H, W) or (K, H, W) for K slices; zarr: a Zarr store "
            "(relative to the config's folder); sample pixel (r, c) sits at y = r*dx, x = c*dx",
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
        "generator": Key(
            _choice("auto", "host", "device"),
            _ALL,
            "auto",
            "",
            'who draws the noise: "host" (numpy, Philox) or "device" (JAX on the workers\' '
            'devices); "auto": device when the workers\' JAX backend is a GPU or TPU. The two '
            "draw different counts; the store records which made its own",
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
        "generator",
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
