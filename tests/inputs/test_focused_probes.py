"""[probe] kind = "lens" | "zone_plate": the numpy twin of jscan.core.probes, the Airy
pattern and the zone plate's focus, the partially coherent modes against a brute-force
eigendecomposition, refusals, and a store's ground-truth probe."""

import dataclasses

import numpy as np
import pytest

from jscan.errors import ConfigError
from jscan.inputs import focused
from jscan.inputs.config import DEMO_CONFIG, ProbeConfig, parse_config
from jscan.inputs.samples import make_probe, probe_mode_count, probe_shape

LAM = 1e-9
ABERRATED = dict(
    zernike_defocus=0.02 * LAM,
    astigmatism_0=0.05 * LAM,
    astigmatism_45=-0.03 * LAM,
    coma_x=0.04 * LAM,
    coma_y=0.02 * LAM,
    spherical=0.06 * LAM,
)


def lens(**kw):
    base = dict(kind="lens", dx=12.5e-9, wavelength=LAM, size=128, focal_length=1e-3)
    return ProbeConfig(**{**base, "diameter": 20e-6, **kw})


def zone_plate(**kw):
    base = dict(kind="zone_plate", dx=50e-9, wavelength=LAM, size=128, outer_zone_width=100e-9)
    return ProbeConfig(**{**base, "diameter": 10e-6, **kw})


def rim_margin(cfg):
    """Smallest |rho - 1| and |rho - stop| over the frequency samples (float64)."""
    f, rim, stop = focused.optic(cfg)
    freq = np.fft.fftfreq(cfg.size, cfg.dx)
    rho = np.hypot(freq[:, None], freq[None, :]) * cfg.wavelength * 2 * f / rim
    return min(np.abs(rho - 1).min(), np.abs(rho - stop / rim).min())


def test_numpy_twin_agrees_with_jscan_core():
    """make_probe (numpy, float64, then complex64) against jscan.core.probes (JAX float32):
    a lens with all six aberrations, defocus and a central stop, and a zone plate with a
    central stop and an OSA that narrows its rim, to 1e-5 of the peak (measured 3.6e-7 and
    7e-8). The gap is float32 rounding: of rho, the Zernike phase (< 1 rad) and the FFT,
    ~1e-7 each; no frequency sample lies within 1e-4 of the rim or the stop, where float32
    could move it across (a whole pupil sample, ~1e-2 of the field)."""
    from jscan.core.probes import Aberrations, lens_probe, zone_plate_probe

    cfg = lens(diameter=19e-6, defocus=3e-5, central_stop=4.5e-6, **ABERRATED)
    assert rim_margin(cfg) > 1e-4
    ours = make_probe(cfg)
    aberrations = Aberrations(*ABERRATED.values())
    core = np.asarray(lens_probe((128, 128), cfg.dx, LAM, 1e-3, 19e-6, 3e-5, aberrations, 4.5e-6))
    assert ours.dtype == core.dtype == np.complex64
    assert np.abs(ours - core).max() <= 1e-5 * np.abs(core).max()

    cfg = zone_plate(central_stop=4e-6, osa_diameter=2e-6, osa_distance=3e-4, defocus=-2e-5)
    assert focused.optic(cfg)[1] < cfg.diameter  # the OSA narrows the rim
    assert rim_margin(cfg) > 1e-4
    ours = make_probe(cfg)
    core = np.asarray(
        zone_plate_probe((128, 128), 50e-9, LAM, 10e-6, 100e-9, 4e-6, 2e-6, 3e-4, -2e-5)
    )
    assert np.abs(ours - core).max() <= 1e-5 * np.abs(core).max()


LENS_TOML = """
[probe]
kind = "lens"
size = 512
dx = {dx!r}
wavelength = 1e-9
focal_length = 1e-3
diameter = 20e-6
[optics]
zoom_factor = 1.0
aperture_diameter = 4e-6
travel_distance = 1.0
camera_pixel_size = 1e-4
[sample]
kind = "phantom"
shape = [600, 600]
dx = {dx!r}
[scan]
kind = "raster"
shape = [2, 2]
step = 1e-7
"""


@pytest.mark.reference
def test_config_lens_is_the_airy_pattern():
    """A lens config (NA = 0.01 at 1 nm, dx = lambda/(20 NA)): the first dark ring, by a
    parabola through the three pixels around it, at 1.22 lambda f / D = 12.2 px to 1 %
    (measured 0.08 px off), and pixel N//2 on the axis."""
    cfg = parse_config(LENS_TOML.format(dx=5e-9)).probe
    probe = make_probe(cfg)
    assert probe.shape == probe_shape(cfg) == (512, 512)
    assert np.sum(np.abs(probe.astype(complex)) ** 2) == pytest.approx(1, abs=1e-6)
    line = np.abs(probe[256, 256:].astype(complex)) ** 2
    assert np.argmax(np.abs(probe)) == 256 * 512 + 256
    zero = 1.22 * LAM * 1e-3 / 20e-6 / 5e-9
    k = round(zero)
    a, b, c = line[k - 1 : k + 2]
    found = k + 0.5 * (a - c) / (a - 2 * b + c)
    assert found == pytest.approx(zero, rel=0.01)


@pytest.mark.reference
def test_zone_plate_focus_is_d_dr_over_lambda():
    """D = 10 um, dr = 100 nm at 1 nm: f = D dr / lambda = 1 mm, NA = lambda/(2 dr), so the
    first dark ring is at 1.22 dr (to 1 %, measured 0.7 %); along defocus (21 planes over
    +-0.2 of the depth of focus lambda/NA^2 = 40 um) the on-axis intensity peaks, by a
    parabola, at the focus to 1 % of the depth of focus (measured 0)."""
    cfg = zone_plate(size=512, dx=10e-9)  # the pupil 25.6 frequency samples in radius
    assert focused.optic(cfg)[0] == pytest.approx(10e-6 * 100e-9 / LAM)
    line = np.abs(make_probe(cfg)[256, 256:].astype(complex)) ** 2
    zero = 1.22 * 100e-9 / 10e-9
    k = round(zero)
    a, b, c = line[k - 1 : k + 2]
    assert k + 0.5 * (a - c) / (a - 2 * b + c) == pytest.approx(zero, rel=0.01)
    dof = LAM / (LAM / (2 * 100e-9)) ** 2
    zs = np.linspace(-0.2, 0.2, 21) * dof
    axis = [abs(make_probe(dataclasses.replace(cfg, defocus=z))[256, 256]) ** 2 for z in zs]
    k = int(np.argmax(axis))
    a, b, c = axis[k - 1 : k + 2]
    peak = zs[k] + 0.5 * (a - c) / (a - 2 * b + c) * (zs[1] - zs[0])
    assert abs(peak) <= 0.01 * dof


def brute_force_modes(p, spacing, xi, n_modes):
    """The n_modes largest eigenpairs of the full W = P P^H mu (H W x H W), float64 eigh."""
    h, w = p.shape
    y, x = np.meshgrid(
        np.fft.fftfreq(h) * h * spacing, np.fft.fftfreq(w) * w * spacing, indexing="ij"
    )
    d2 = (y.ravel()[:, None] - y.ravel()[None, :]) ** 2 + (
        x.ravel()[:, None] - x.ravel()[None, :]
    ) ** 2
    flat = p.ravel()
    values, vectors = np.linalg.eigh(np.outer(flat, flat.conj()) * np.exp(-d2 / (2 * xi**2)))
    return values[::-1], vectors[:, ::-1][:, :n_modes].T.reshape(n_modes, h, w) * np.sqrt(
        values[::-1][:n_modes, None, None]
    )


@pytest.mark.reference
def test_partially_coherent_modes_are_the_eigenmodes_of_w():
    """A 24 x 24 window (a coma-aberrated lens pupil of 161 samples, coherence length 0.4 of
    the diameter), against eigh of the full 576 x 576 W in float64: the separable
    construction's six mode powers equal W's eigenvalues to 1e-9 of the largest (measured
    1.3e-11), and the cross-spectral density of the first 3 modes in the sample plane,
    sum_m psi_m psi_m^H, equals that of the brute-force eigenmodes to 1e-9 of its largest
    entry (measured 6e-12; the sum is blind to the modes' phases and to rotations within
    the degenerate pair 2, 3, which a gap follows). make_probe's complex64 modes give it,
    at total power 1, to 1e-6 (measured 2.5e-8)."""
    cfg = lens(size=24, dx=100e-9, diameter=6e-6, coma_x=0.05 * LAM, defocus=2e-6)
    f, rim, stop = focused.optic(cfg)
    p = focused.pupil((24, 24), cfg.dx, LAM, f, rim, stop, (0, 0, 0, 0.05 * LAM, 0, 0))
    spacing = LAM * f / (24 * cfg.dx)
    xi = 0.4 * rim
    n = 3
    values, brute = brute_force_modes(p, spacing, xi, n)
    assert values[n] < 0.8 * values[n - 1]  # a gap after mode n
    ours = focused.coherent_modes(p, spacing, xi, 6)
    powers = np.sum(np.abs(ours) ** 2, axis=(1, 2))
    assert np.abs(powers - values[:6]).max() <= 1e-9 * values[0]

    def csd(modes):
        psi = focused.to_sample_plane(modes, cfg.dx, LAM, 2e-6).reshape(len(modes), -1)
        return psi.T @ psi.conj()

    expected = csd(brute)
    assert np.abs(csd(ours[:n]) - expected).max() <= 1e-9 * np.abs(expected).max()
    # make_probe: the same modes propagated, total power 1, mode 0 the strongest
    cfg = dataclasses.replace(
        cfg, source_size=LAM * 30 / (2 * np.pi * xi), source_distance=30.0, modes=n
    )
    assert focused.coherence_length(cfg) == pytest.approx(xi)
    probe = make_probe(cfg).astype(complex)
    assert probe.shape == (n, 24, 24) and probe_mode_count(probe) == n
    assert np.sum(np.abs(probe) ** 2) == pytest.approx(1, abs=1e-6)
    model = csd(brute)
    model /= np.trace(model).real
    got = probe.reshape(n, -1).T @ probe.reshape(n, -1).conj()
    assert np.abs(got - model).max() <= 1e-6 * np.abs(model).max()


def test_a_point_source_gives_the_coherent_probe():
    """A consistency check between two jscan paths, not against an independent reference:
    make_probe with a near-point source (1 pm, 30 m away at 1 nm: coherence length xi =
    4.8 km over a 20 um pupil, the coherent limit) gives one mode, equal to make_probe's
    coherent probe of the same lens to 1e-6 of the peak (measured 0: the mode is the pupil
    times a positive number, the same after complex64 rounding). The modes themselves are
    checked against a brute-force eigendecomposition in
    test_partially_coherent_modes_are_the_eigenmodes_of_w."""
    coherent = make_probe(lens(defocus=3e-5, **ABERRATED))
    one = make_probe(lens(defocus=3e-5, source_size=1e-12, source_distance=30.0, **ABERRATED))
    assert one.shape == coherent.shape
    assert np.abs(one - coherent).max() <= 1e-6 * np.abs(coherent).max()


GOOD_LENS = {"kind": "lens", "size": 64, "dx": 1e-6, "wavelength": 5e-7}


@pytest.mark.parametrize(
    "probe, key, words",
    [
        ({**GOOD_LENS, "focal_length": 1e-3, "diameter": 1e-3}, "probe.dx", "Nyquist"),
        ({**GOOD_LENS, "focal_length": 0.01, "diameter": 1e-3, "central_stop": 1e-3},
         "probe.central_stop", "not smaller"),
        ({**GOOD_LENS, "focal_length": 0.01, "diameter": 1e-3, "source_size": 1e-5},
         "probe.source_distance", "together"),
        ({**GOOD_LENS, "focal_length": 0.01, "diameter": 1e-3, "modes": 2}, "probe.modes",
         "source_size"),
        ({**GOOD_LENS, "diameter": 1e-3}, "probe.focal_length", "missing"),
        ({**GOOD_LENS, "kind": "zone_plate", "diameter": 1e-3, "outer_zone_width": 5e-7},
         "probe.dx", "cannot resolve the outermost zone"),
        ({**GOOD_LENS, "kind": "zone_plate", "diameter": 1e-3, "outer_zone_width": 2e-6,
          "osa_diameter": 2e-5}, "probe.osa_distance", "together"),
        ({**GOOD_LENS, "kind": "zone_plate", "diameter": 1e-3, "outer_zone_width": 2e-6,
          "central_stop": 1e-5, "osa_diameter": 2e-5, "osa_distance": 1e-3},
         "probe.osa_diameter", "zero order"),
        ({**GOOD_LENS, "kind": "zone_plate", "diameter": 1e-3, "outer_zone_width": 2e-6,
          "central_stop": 3e-4, "osa_diameter": 2e-5, "osa_distance": 1e-3},
         "probe.osa_diameter", "passes nothing"),
        ({**GOOD_LENS, "kind": "zone_plate", "diameter": 1e-3, "outer_zone_width": 2e-6,
          "coma_x": 1e-9}, "probe.coma_x", "not allowed"),
    ],
)  # fmt: skip
def test_bad_focused_probes_are_refused_in_one_line(demo_scan, to_toml, probe, key, words):
    data = demo_scan()
    data["probe"] = probe
    with pytest.raises(ConfigError) as err:
        parse_config(to_toml(data))
    message = str(err.value)
    assert f'"{key}"' in message and words in message and "\n" not in message


def test_new_keys_keep_the_hash_of_existing_stores():
    """The demo's hash as jscan computed it before the lens keys existed."""
    assert parse_config(DEMO_CONFIG).hash == (
        "49b2af48b43a4d7e62561397018ab52c9b5c87480e8f9c8be68fd47e4983523b"
    )


def test_a_lens_store_holds_make_probes_field_times_the_aperture(tmp_path, demo_scan, to_toml):
    """A 32 px lens probe (NA = 0.05, coma, 2 um defocus, two modes of a partially coherent
    source) through `jscan.simulate_scan` in this process: the store's probe is make_probe's
    field times the aperture (to 2e-7 of its peak, complex64 rounding)."""
    distributed = pytest.importorskip("distributed")
    import jscan

    data = demo_scan()
    data["probe"] = {
        **GOOD_LENS,
        "size": 32,
        "focal_length": 0.01,
        "diameter": 1e-3,
        "defocus": 2e-6,
        "coma_x": 5e-8,
        "source_size": 5e-3,
        "source_distance": 30.0,
        "modes": 2,
    }
    data["optics"].update(aperture_diameter=24e-6, camera_pixel_size=781.25e-6)
    data["sample"]["shape"] = [96, 96]
    data["scan"].update(shape=[3, 3], step=7e-6)
    data["detector"]["dose"] = 0.0
    cfg = parse_config(to_toml(data))
    with distributed.Client(processes=False, n_workers=1, dashboard_address=":0") as client:
        ds = jscan.simulate_scan(cfg, tmp_path / "lens.zarr", client=client, progress=False)
    probe = ds.probe.values
    assert probe.shape == (2, 32, 32)
    y = (np.arange(32) - 16) * 1e-6
    inside = np.hypot(y[:, None], y[None, :]) <= 12e-6
    expected = make_probe(cfg.probe) * inside
    np.testing.assert_allclose(probe, expected, atol=2e-7 * np.abs(expected).max())
    assert np.isfinite(ds.diffraction.values).all() and ds.diffraction.values.max() > 0
