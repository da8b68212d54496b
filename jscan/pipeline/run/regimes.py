"""The propagation regimes a config relies on, checked before a run (numpy only).

- Multislice: the wave in a window of N dx is periodic, so what spreads out of one side
  comes back in on the other. Over the thickness T = (K - 1) spacing a window of pitch dx
  carries angles up to sin(theta) = lambda/(2 dx) (its Nyquist frequency), so the wave
  spreads laterally by at most T tan(theta); `thick_lines` warns when the probe's own
  radius plus that spread leaves the window.
- Near field: the angular spectrum's transfer function over z_eff is sampled without
  aliasing while z_eff <= N dxz^2/lambda (dxz = dx zoom), that is while the window's Fresnel
  number F = (N dxz)^2/(lambda z_eff) is at least N (Voelz & Roggemann, Appl. Opt. 48, 6132
  (2009)); the camera must span at most the window's period, N camera_pixel <= M N dxz.
  `check_near` refuses the config outside both.
"""

import math

import numpy as np

from jscan.errors import ConfigError
from jscan.inputs.farfield import fresnel_magnification, probe_of

PROBE_POWER = 0.99  # the probe's radius holds this share of its power


def window_fresnel_number(config, window) -> float:
    """(N dx zoom)^2/(lambda z_eff) of the window's larger side N seen by the camera."""
    p, o = config.probe, config.optics
    _, z_eff = fresnel_magnification(o)
    return (max(window) * p.dx * o.zoom_factor) ** 2 / (p.wavelength * z_eff)


def check_near(config, window) -> None:
    """ConfigError naming the key when the near field leaves its sampling conditions."""
    p, o = config.probe, config.optics
    if o.propagation != "near":
        return
    n = max(window)
    dxz = p.dx * o.zoom_factor
    m, z_eff = fresnel_magnification(o)
    fresnel = window_fresnel_number(config, window)
    if fresnel < n * (1 - 1e-9):
        raise ConfigError(
            f'"optics.travel_distance": the window\'s Fresnel number (N dx zoom)^2/(lambda '
            f"z_eff) = {fresnel:.4g} is below N = {n}, so the angular spectrum aliases; use "
            f"z_eff <= N (dx zoom)^2/lambda = {n * dxz**2 / p.wavelength:.4g} m (now "
            f'{z_eff:.4g} m), a larger probe.size, or optics.propagation = "far"'
        )
    if o.camera_pixel_size > m * dxz * (1 + 1e-9):
        raise ConfigError(
            f'"optics.camera_pixel_size" = {o.camera_pixel_size:.4g} m spans more than the '
            f"window's period on the camera (M dx zoom = {m * dxz:.4g} m per pixel), where "
            "the near field repeats; use a camera pixel at most that"
        )


def probe_radius(config) -> float:
    """Radius [m] around the window's axis pixel holding `PROBE_POWER` of the probe."""
    probe = probe_of(config)  # the checks' copy: the file is read once
    power = np.abs(probe.reshape((-1, *probe.shape[-2:]))) ** 2
    power = power.sum(axis=0)
    h, w = power.shape
    r = np.hypot(*np.meshgrid(np.arange(h) - h // 2, np.arange(w) - w // 2, indexing="ij"))
    order = np.argsort(r.ravel())
    held = np.cumsum(power.ravel()[order])
    k = int(np.searchsorted(held, PROBE_POWER * held[-1]))
    return float(r.ravel()[order][min(k, r.size - 1)]) * config.probe.dx


def lateral_spread(config, slices: int) -> float:
    """Largest lateral spread [m] over the thickness (slices - 1) spacing: T tan(theta),
    sin(theta) = lambda/(2 dx), the steepest angle the window carries."""
    if slices <= 1:
        return 0.0
    p = config.probe
    sine = min(p.wavelength / (2 * p.dx), 1.0)
    thickness = (slices - 1) * config.sample.spacing
    return math.inf if sine >= 1 else thickness * sine / math.sqrt(1 - sine**2)


def thick_lines(config, plan) -> list[str]:
    """The warning when the wave can spread out of the window over the sample's thickness."""
    if plan.slices <= 1:
        return []
    spread = lateral_spread(config, plan.slices)
    half = min(plan.window) // 2 * config.probe.dx
    radius = probe_radius(config)
    if radius + spread <= half:
        return []
    thickness = (plan.slices - 1) * config.sample.spacing
    return [
        f"sample.spacing: over the sample's thickness {thickness:.4g} m the wave can spread "
        f"{spread:.4g} m sideways (angles up to lambda/(2 dx)); with the probe's radius "
        f"{radius:.4g} m it leaves the {2 * half:.4g} m window, whose edges wrap around; "
        "enlarge probe.size, or thin the sample (fewer slices or a smaller spacing)"
    ]
