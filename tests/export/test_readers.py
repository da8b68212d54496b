"""Every export opened by its engine's own reader (the ``[readers]`` extra: ptychodus, PtyLab),
called as the engine calls it, and each loaded value compared with the store after that
reader's documented convention.

- ptychodus folder: `ptychodus.api.io.load_diffraction_data` and `load_product` (what its
  batch reconstruction reads), then `prepare_reconstruct_input`;
- CXI: ptychodus's `CXIDiffractionFileReader` and `CXIProductFileIO`;
- PtyLab: `ExperimentalData(path, "CPM")`, `Reconstruction(data, Params())`, `load_probe` and
  `load_object`.

The geometry is checked through each engine's own mapping: the window it cuts from the loaded
object at a loaded position, times the loaded probe, through its FFT convention, gives the
stored expected counts.
"""

from pathlib import Path

import numpy as np
import pytest

from jscan.export import export
from jscan.pipeline.store import open_scan

pytest.importorskip("h5py")

pytestmark = pytest.mark.reference

# Stores: (natural_store keywords, blocks). Positions on whole sample pixels unless jitter.
STORES = {
    "plain": {},
    "modes": {"modes": 2},
    "errors": {"jitter": 0.4e-6},
    "mask": {"gaps": {"rows": [3], "cols": [20]}},
    "snap": {"placement": "snap", "step": 7.3e-6},
    "partial": {"blocks": [0, 2]},
}


@pytest.fixture(params=list(STORES))
def store(request, natural_store):
    """(name, path, rows): each kind of store; rows are the store positions exported."""
    kw = STORES[request.param]
    path = natural_store(**kw)
    n = 36
    rows = np.arange(n) if "blocks" not in kw else np.r_[0:16, 32:36]
    return request.param, path, rows


def truth_window(ds, x, y):
    """The sample window under a whole-pixel position, rows/cols of sample_truth."""
    h, w = ds.probe.shape[1:]
    dx = ds.attrs["sample_dx_m"]
    r = round((y - float(ds.sample_y[0])) / dx) - h // 2
    c = round((x - float(ds.sample_x[0])) / dx) - w // 2
    return ds.sample_truth.values[r : r + h, c : c + w]


def engine_scale(ds):
    """The probe scale an unnormalised-FFT engine needs (`ScanSource.engine_probe`)."""
    s = ds.attrs["photons_per_intensity"]
    dx = ds.attrs["probe_dx_m"]
    return np.sqrt(s) * dx**2 / (ds.attrs["wavelength_m"] * ds.attrs["travel_distance_m"])


def test_ptychodus_folder_loads_with_ptychodus(store, tmp_path):
    pytest.importorskip("ptychodus")
    from ptychodus.api.io import load_diffraction_data, load_product
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    name, path, rows = store
    folder = tmp_path / "ptychodus"
    export(path, "ptychodus", str(folder), partial=name == "partial", stream=None)
    ds = open_scan(path)
    data = load_diffraction_data(folder / "diffraction.h5")
    product = load_product(folder / "product.h5")
    truth = load_product(folder / "truth.h5")
    np.testing.assert_array_equal(data.get_patterns(), ds.diffraction.values[rows])
    np.testing.assert_array_equal(data.get_indexes(), rows)
    assert data.get_pixel_geometry().width_m == ds.attrs["camera_pixel_size_m"]
    assert data.get_pixel_geometry().height_m == ds.attrs["camera_pixel_size_m"]
    np.testing.assert_array_equal(data.get_bad_pixels(), ds.mask.values.astype(bool))
    meta = product.metadata
    assert meta.detector_distance_m == ds.attrs["travel_distance_m"]
    assert meta.photon_wavelength_m == pytest.approx(ds.attrs["wavelength_m"], rel=1e-12)
    assert meta.probe_photon_count == ds.attrs["dose_photons"]
    assert meta.far_field
    positions = product.probe_positions
    np.testing.assert_array_equal(positions.get_indexes(), rows)
    np.testing.assert_array_equal(positions.get_coordinates_x_m(), ds.x.values[rows])
    np.testing.assert_array_equal(positions.get_coordinates_y_m(), ds.y.values[rows])
    probe = product.probes.get_array()  # (OPR modes, incoherent modes, H, W)
    assert probe.shape == (1, *ds.probe.shape)
    np.testing.assert_allclose(probe[0], ds.probe.values * engine_scale(ds), rtol=1e-6)
    assert product.probes.get_pixel_geometry().width_m == ds.attrs["probe_dx_m"]
    obj = product.object_  # the reconstruction's start: flat
    assert np.all(obj.get_array() == 1)
    assert obj.get_pixel_geometry().width_m == ds.attrs["sample_dx_m"]
    assert_ptychodus_geometry(obj.get_geometry(), positions, ds, rows)
    assert_truth(truth.object_.get_array(), ds)
    assert truth.object_.get_geometry() == obj.get_geometry()
    np.testing.assert_array_equal(truth.probes.get_array(), product.probes.get_array())
    np.testing.assert_array_equal(truth.probe_positions.get_indexes(), rows)
    # the engine pairs every pattern with its position
    recon = prepare_reconstruct_input(data, product)
    assert recon.diffraction_patterns.shape[0] == len(rows)


MARGIN = 2  # object pixels around the scanned region in ptychodus's files


def assert_truth(obj, ds):
    """A ptychodus object (1, R + 4, C + 4): sample_truth inside a margin of ones."""
    assert obj.shape == (1, *(n + 2 * MARGIN for n in ds.sample_truth.shape))
    np.testing.assert_array_equal(obj[0, MARGIN:-MARGIN, MARGIN:-MARGIN], ds.sample_truth)
    obj[0, MARGIN:-MARGIN, MARGIN:-MARGIN] = 1
    assert np.all(obj == 1)


def assert_ptychodus_geometry(geometry, positions, ds, rows):
    """ptychodus puts the window's middle pixel (W - 1)/2 at object pixel
    (x - center_x)/dx + (C - 1)/2 (`ObjectGeometry.map_probe_positions_to_object_x_px`):
    that is jscan's axis pixel W//2 at the store's x, on sample_truth inside the margin."""
    h, w = ds.probe.shape[1:]
    dx = ds.attrs["sample_dx_m"]
    col = geometry.map_probe_positions_to_object_x_px(positions)
    row = geometry.map_probe_positions_to_object_y_px(positions)
    axis_col = (ds.x.values[rows] - float(ds.sample_x[0])) / dx + MARGIN
    axis_row = (ds.y.values[rows] - float(ds.sample_y[0])) / dx + MARGIN
    np.testing.assert_allclose(col + (w // 2 - (w - 1) / 2), axis_col, atol=1e-9)
    np.testing.assert_allclose(row + (h // 2 - (h - 1) / 2), axis_row, atol=1e-9)


def test_cxi_loads_with_ptychodus(store, tmp_path):
    pytest.importorskip("ptychodus")
    from ptychodus.plugins.cxi_file import CXIDiffractionFileReader, CXIProductFileIO

    name, path, rows = store
    out = tmp_path / "scan.cxi"
    export(path, "cxi", str(out), partial=name == "partial", stream=None)
    ds = open_scan(path)
    dataset = CXIDiffractionFileReader().read(out)
    meta = dataset.get_metadata()
    patterns = np.concatenate([array.get_patterns() for array in dataset])
    np.testing.assert_array_equal(patterns, ds.diffraction.values[rows])
    assert meta.detector_distance_m == ds.attrs["travel_distance_m"]
    assert meta.detector_pixel_geometry.width_m == ds.attrs["camera_pixel_size_m"]
    wavelength = 6.62607015e-34 * 299792458.0 / (meta.photon_energy_eV * 1.602176634e-19)
    assert wavelength == pytest.approx(ds.attrs["wavelength_m"], rel=1e-12)
    np.testing.assert_array_equal(dataset.get_bad_pixels(), ds.mask.values.astype(bool))
    product = CXIProductFileIO().read(out)
    positions = product.probe_positions
    np.testing.assert_array_equal(positions.get_indexes(), np.arange(len(rows)))
    np.testing.assert_array_equal(positions.get_coordinates_x_m(), ds.x.values[rows])
    np.testing.assert_array_equal(positions.get_coordinates_y_m(), ds.y.values[rows])
    probe = product.probes.get_array()
    assert probe.shape == (1, *ds.probe.shape)
    np.testing.assert_allclose(probe[0], ds.probe.values * engine_scale(ds), rtol=1e-6)
    assert product.probes.get_pixel_geometry().width_m == ds.attrs["probe_dx_m"]
    assert_truth(product.object_.get_array(), ds)  # image_2: the ground truth
    assert product.object_.get_pixel_geometry().height_m == ds.attrs["sample_dx_m"]
    assert_ptychodus_geometry(product.object_.get_geometry(), positions, ds, rows)
    assert product.metadata.probe_photon_count == ds.attrs["dose_photons"]


def ptylab_open(out: Path, modes: int):
    """PtyLab as its own scripts start: data, reconstruction, then its probe and object
    loaded from the file (``npsm`` set to the file's probe modes first)."""
    from PtyLab import ExperimentalData, Params, Reconstruction

    data = ExperimentalData(out, "CPM")
    recon = Reconstruction(data, Params())
    recon.npsm = modes
    recon.initializeObjectProbe()
    recon.load_probe(out)
    recon.load_object(out)
    return data, recon


def test_ptylab_file_loads_with_ptylab(store, tmp_path, capsys):
    pytest.importorskip("PtyLab")
    from PtyLab.utils.utils import fft2c

    name, path, rows = store
    out = tmp_path / "scan.h5"
    report = export(path, "ptylab", str(out), partial=name == "partial", stream=None)
    ds = open_scan(path)
    data, recon = ptylab_open(out, len(ds.probe))
    np.testing.assert_array_equal(data.ptychogram, ds.diffraction.values[rows])
    assert data.wavelength == ds.attrs["wavelength_m"]
    assert data.dxd == ds.attrs["camera_pixel_size_m"]
    assert data.zo == ds.attrs["travel_distance_m"]
    assert recon.dxo == pytest.approx(ds.attrs["sample_dx_m"], rel=1e-12)
    assert recon.probe.shape == (1, 1, len(ds.probe), 1, 32, 32)
    ortho = engine_scale(ds) * 32
    np.testing.assert_allclose(recon.probe[0, 0, :, 0], ds.probe.values * ortho, rtol=1e-6)
    # PtyLab's window for each position, from its own positions (top-left, row-col)
    xs, ys = ds.x.values[rows], ds.y.values[rows]
    good = ~ds.mask.values.astype(bool)  # PtyLab has no mask: masked pixels are 0
    for k, (r, c) in enumerate(recon.positions):
        window = recon.object[0, 0, 0, 0, r : r + 32, c : c + 32]
        if name != "errors":  # whole pixels: PtyLab's window is the truth's
            np.testing.assert_array_equal(window, truth_window(ds, xs[k], ys[k]))
            model = (np.abs(fft2c(recon.probe[0, 0, :, 0] * window)) ** 2).sum(0)
            peak = data.ptychogram.max()
            np.testing.assert_allclose(model[good], data.ptychogram[k][good], atol=2e-5 * peak)
    if name == "errors":
        assert any("PtyLab rounds positions to whole pixels" in w for w in report.warnings)
    if name == "mask":
        assert any("no bad-pixel mask: 63" in w for w in report.warnings), report.warnings
    capsys.readouterr()  # PtyLab prints the encoder's shape


# pty-chi's own patch extractor converts a tensor that requires grad (its warning, not ours)
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad:UserWarning")
@pytest.mark.parametrize(
    "kind, size", [("plain", 32), ("modes", 32), ("mask", 32), ("plain", 33), ("mask", 33)]
)
def test_ptychodus_and_ptychi_give_the_patterns(kind, size, natural_store, tmp_path):
    """ptychodus's loaders (the true object from truth.h5), its pty-chi options alignment and
    its position mapping (as `reconstruct_with_ptychi` builds the task), then pty-chi's own
    forward model: the stored expected counts, with no scale fitted.

    pty-chi snaps a position to a whole pixel plus its origin's fraction and shifts the probe
    by the rest. ptychodus 1.7 sets that origin to 0, right for an odd window; on an even one
    the positions are handed over in pty-chi's own convention (origin round(N/2) - 1/2, its
    default), as the export's warning says."""
    pytest.importorskip("ptychodus")
    pytest.importorskip("ptychi")
    torch = pytest.importorskip("torch")
    import ptychi.api as api
    from ptychi.api.task import PtychographyTask
    from ptychodus.api.io import load_diffraction_data, load_product
    from ptychodus.api.reconstruct import prepare_reconstruct_input
    from ptychodus.model.ptychi.task import align_task_options_with_product

    folder = tmp_path / "p"
    report = export(natural_store(size=size, **STORES[kind]), "ptychodus", str(folder), stream=None)
    assert any("even window" in w for w in report.warnings) == (size % 2 == 0)
    product = load_product(folder / "truth.h5")
    recon = prepare_reconstruct_input(load_diffraction_data(folder / "diffraction.h5"), product)
    options = align_task_options_with_product(api.LSQMLOptions(), recon.product)
    geometry = recon.product.object_.get_geometry()
    positions = recon.product.probe_positions
    px = geometry.map_probe_positions_to_object_x_px(positions)
    py = geometry.map_probe_positions_to_object_y_px(positions)
    if size % 2 == 0:
        options.object_options.determine_position_origin_coords_by = (
            api.ObjectPosOriginCoordsMethods.SUPPORT
        )
        options.object_options.position_origin_coords = None
        origin = np.round(np.array([geometry.height_px, geometry.width_px]) / 2) - 0.5
        px, py = px - origin[1], py - origin[0]
    task = PtychographyTask(
        options,
        diffraction_data=recon.diffraction_patterns,
        object_data=recon.product.object_.get_array(),
        probe_data=recon.product.probes.get_array(),
        probe_position_x_px=px,
        probe_position_y_px=py,
        valid_pixel_mask=np.logical_not(recon.bad_pixels),
    )
    with torch.no_grad():
        model = task.reconstructor.forward_model(torch.arange(len(recon.diffraction_patterns)))
    model = np.fft.fftshift(model.cpu().numpy(), axes=(-2, -1))
    data = recon.diffraction_patterns
    good = ~recon.bad_pixels
    # float32 FFTs of 32x32 windows: 1e-6 of the peak measured; 1e-5 leaves room
    assert np.abs(model - data)[:, good].max() <= 1e-5 * data.max()
