"""`ScanSpec`: the facts about a scan that follow from its config, decided once.

`describe` builds it after the run's checks (`prepare`, `dry_run`, `simulate_lazy`). It
travels to the workers in the `ScanJob`, and store creation, the block runner, the lazy
dataset and `jscan check` read it: none of them goes back to the config for a derived fact.
Like zarr's ``ArraySpec`` it is immutable. It holds what costs something to decide: the
probe (its file read once), the detector model (photon factor, bad-pixel mask, stored
dtype) and the bright-field radius. What follows from these in O(1) is a property: the
camera axes, the natural pixel, the scanned region, the codec and the store's attributes.
It is the `jscan.pipeline.store.facts.ScanFacts` the store layer reads.
"""

import dataclasses
import functools
from typing import NamedTuple

import numpy as np

from jscan.core.axes import AxisSpec, choose_axis
from jscan.inputs.config import Config
from jscan.inputs.detector_model import DetectorModel, PatternValues, detector_model, pattern_values
from jscan.inputs.digest import inputs_hash
from jscan.inputs.farfield import bright_field_radius, camera_axes, noise_factor, probe_of
from jscan.pipeline.run.plan import ScanPlan
from jscan.pipeline.store.coords import scan_attrs
from jscan.pipeline.store.format import codec_for
from jscan.pipeline.store.truth import scanned_region


class CameraAxis(NamedTuple):
    """One camera axis as the kernel computes it (`kernel_axes`)."""

    name: str  # "det_y" (rows) or "det_x" (columns)
    n: int  # pixels (the probe window's side)
    natural: float  # lambda z / (n dx zoom) [m]
    alpha: float  # camera_pixel_size / natural
    spec: AxisSpec  # the kernel's path (`jscan.core.axes.choose_axis`)
    centres: np.ndarray  # (n,) pixel centres [m], (i - n//2) camera_pixel_size


def kernel_axes(config: Config, window) -> tuple[CameraAxis, CameraAxis]:
    """The camera's rows and columns: natural pixel lambda z/(N dx zoom), alpha = camera
    pixel / natural, the path `choose_axis` picks ("fft" at alpha = 1, "pad" at 1/k for
    k <= 4, else "czt") and the pixel centres (`farfield.camera_axes`). Arithmetic only: the
    memory check reads it before the probe is."""
    p, o = config.probe, config.optics
    centres = camera_axes(window, o.camera_pixel_size)
    axes = []
    for name, n, at in zip(("det_y", "det_x"), window, centres, strict=True):
        at.flags.writeable = False
        span = n * p.dx * o.zoom_factor
        natural = p.wavelength * o.travel_distance / span
        alpha = span * o.camera_pixel_size / (p.wavelength * o.travel_distance)
        axes.append(CameraAxis(name, int(n), natural, alpha, choose_axis(int(n), alpha), at))
    return tuple(axes)


@dataclasses.dataclass(frozen=True, eq=False)
class ScanSpec:
    """A checked scan: its config, plan and every fact derived from them (`describe`)."""

    config: Config
    plan: ScanPlan
    probe: np.ndarray  # `make_probe`: (H, W) or (M, H, W), unit power, read-only
    detector: DetectorModel  # photons per intensity, mask, stored dtype (`detector_model`)
    values: PatternValues  # what the patterns hold: label, units, long_name, dtype
    bright_field_radius: float  # m on the camera: the live page's virtual detector
    inputs: str = ""  # fingerprint of the probe, positions, sample and bad-pixel files

    @property
    def window(self) -> tuple[int, int]:
        return self.plan.window

    @property
    def modes(self) -> int:
        """Mutually incoherent probe modes (1 for an (H, W) probe)."""
        return int(np.prod(self.probe.shape[:-2], dtype=int))

    @property
    def photons_per_intensity(self) -> float:
        """Expected photons per unit far-field intensity (`farfield.noise_factor`); 0 when dose
        is 0."""
        return self.detector.factor

    @functools.cached_property
    def camera(self) -> tuple[CameraAxis, CameraAxis]:
        return kernel_axes(self.config, self.window)

    @property
    def natural_pixel(self) -> tuple[float, float]:
        """(rows, cols) natural camera pixel lambda z / (N dx zoom) [m]."""
        return self.camera[0].natural, self.camera[1].natural

    @functools.cached_property
    def bright_field(self) -> np.ndarray:
        """(H, W) bool: the camera pixels within `bright_field_radius` of the axis."""
        y, x = (axis.centres for axis in self.camera)
        mask = np.hypot(y[:, None], x[None, :]) <= self.bright_field_radius
        mask.flags.writeable = False
        return mask

    @property
    def region(self) -> tuple[int, int, int, int]:
        """(row0, col0, rows, cols) of the sample pixels under every window."""
        return scanned_region(self.plan)

    @property
    def codec(self):
        """The patterns' Blosc codec (`format.codec_for` their dtype)."""
        return codec_for(self.values.dtype)

    @property
    def attrs(self) -> dict:
        """The attributes a store and the lazy dataset share (`coords.scan_attrs`)."""
        return scan_attrs(self)

    def resumed(self, attrs: dict) -> "ScanSpec":
        """This spec with the bright-field radius of the store it resumes (``attrs``)."""
        radius = float(attrs["bright_field_radius_m"])
        return dataclasses.replace(self, bright_field_radius=radius)


def describe(config: Config, plan: ScanPlan, inputs: str | None = None) -> ScanSpec:
    """The `ScanSpec` of a checked config and its plan (`plan_scan`); inputs: the files'
    fingerprint (`inputs_hash`; None: taken here). Reads the probe once in this process
    (`probe_of`: the checks' copy) and a bad-pixel file; ConfigError when that file does not
    fit the camera. Its arrays are read-only: the workers simulate with them."""
    probe = probe_of(config)
    detector = detector_model(config, plan.window, noise_factor(config, probe))
    detector.mask.flags.writeable = False
    return ScanSpec(
        config,
        plan,
        probe,
        detector,
        pattern_values(config),
        bright_field_radius(config),
        inputs_hash(config) if inputs is None else inputs,
    )
