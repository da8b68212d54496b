"""Multislice and the near field against pty-chi's own propagator (the `[engines]` extra).

pty-chi's forward model (`forward_models.PlanarPtychographyForwardModel`) multiplies by
slice k, then propagates to slice k + 1 with `propagate.AngularSpectrumPropagator` over
the slice spacing, and propagates nothing after the last slice; in the near field it takes
the same propagator over the free-space distance. Both are run here, with its own
`WavefieldPropagatorParameters`, on the probe, slices and spacing given to jscan.
"""

import numpy as np
import pytest

from jscan.core.fresnel import make_thick_sample, multislice_interaction, near_field_prop_scaled
from jscan.core.types import make_optical_wavefront

torch = pytest.importorskip("torch")
propagate = pytest.importorskip("ptychi.propagate")

pytestmark = pytest.mark.reference

N, LAM, DX = 64, 1e-10, 10e-9


def ptychi_propagator(z):
    params = propagate.WavefieldPropagatorParameters.create_simple(
        wavelength_m=LAM,
        width_px=N,
        height_px=N,
        pixel_width_m=DX,
        pixel_height_m=DX,
        propagation_distance_m=z,
    )
    return propagate.AngularSpectrumPropagator(params)


def inputs():
    rng = np.random.default_rng(3)
    x = (np.arange(N) - N // 2) * DX
    probe = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (80e-9) ** 2 + 2j * x[None, :] / 1e-7)
    slices = np.exp(1j * 0.3 * rng.normal(size=(4, N, N)) - 0.05 * rng.uniform(size=(4, N, N)))
    return probe.astype(np.complex64), slices.astype(np.complex64)


def rel_max(ours, theirs):
    """Largest difference over the peak after one global complex scale: jscan holds the
    wavelength in float32 (1e-10 m is 1.0000000134e-10), which over z / lambda = 5e5 waves
    turns the common exp(ikz) by 0.04 rad; pty-chi keeps it in float64."""
    scale = np.vdot(ours, theirs) / np.vdot(ours, ours)
    return float(np.abs(scale * ours - theirs).max() / np.abs(theirs).max())


def test_multislice_matches_ptychi():
    """4 slices 2 um apart, complex64 in both: agreement to 1e-4 of the peak, the issue's
    bound, after one global scale (`rel_max`)."""
    probe, slices = inputs()
    wave = make_optical_wavefront(probe, LAM, DX)
    ours = np.asarray(multislice_interaction(make_thick_sample(slices, DX, 2e-6), wave).field)
    prop = ptychi_propagator(2e-6)
    psi = torch.from_numpy(probe)
    for k in range(len(slices)):  # pty-chi's propagate_through_object
        psi = torch.from_numpy(slices[k]) * psi
        if k < len(slices) - 1:
            psi = prop.propagate_forward(psi)
    assert rel_max(ours, psi.numpy()) <= 1e-4


def test_near_field_matches_ptychi():
    """A plane wave to a camera 50 um away at the sample pixel (pty-chi's near-field
    geometry): agreement to 1e-4 of the peak."""
    probe, _ = inputs()
    wave = make_optical_wavefront(probe, LAM, DX)
    ours = np.asarray(near_field_prop_scaled(wave, 50e-6, DX).field)
    theirs = ptychi_propagator(50e-6).propagate_forward(torch.from_numpy(probe)).numpy()
    assert rel_max(ours, theirs) <= 1e-4
