"""The [probe] section of the config schema (`jscan.inputs.schema.SPEC`)."""

from jscan.inputs.checkers import (
    _ALL,
    _FOCUSED,
    _PROCEDURAL,
    REQUIRED,
    Key,
    _choice,
    _fraction,
    _integer,
    _non_negative,
    _number,
    _path,
    _positive,
)
from jscan.inputs.focused import ZERNIKE_KEYS

PROBE_KEYS = {
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
}
