"""Ground truth that a store keeps beside its patterns: the probe, the photon scale and the
sample's scanned region (numpy and dask only; the probe itself comes from the kernel).

- ``probe`` (mode, probe_y, probe_x) complex64: the illumination exactly as it multiplies
  the sample window (`jscan.pipeline.microscope.ground_truth_probe`), pixel (H//2, W//2) on the
  stored position (x, y); coordinates probe_y, probe_x = (i - N//2) dx zoom [m].
- attribute ``photons_per_intensity`` (`jscan.inputs.farfield.noise_factor`, decided by the
  scan's `jscan.pipeline.run.spec.ScanSpec`): expected photons
  per unit of |U'|^2, the intensity of ``probe`` through jscan's far field; 0 when dose is 0.
- ``sample_truth`` (sample_y, sample_x) complex64: the sample's pixels under every window,
  pixel (r, c) at y = r sample_dx, x = c sample_dx (the frame of x, y), when it holds at most
  `SAMPLE_TRUTH_LIMIT` bytes; otherwise the attribute ``sample_truth_ref`` names the config's
  sample and the region (row0, col0, rows, cols) to read from it. A thick sample of K slices
  has ``sample_truth`` (slice, sample_y, sample_x), coordinate slice_z = k spacing [m] and
  the root attribute ``slice_spacing_m``.
"""

import json

import dask.array as da
import numpy as np
from dask.array.core import normalize_chunks
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from jscan.core.placement import placement
from jscan.inputs.samples import sample_region, slice_count
from jscan.pipeline.store.facts import ScanFacts

SAMPLE_TRUTH_LIMIT = 512 << 20  # bytes of complex64 stored as sample_truth; larger: a reference
TRUTH_ARRAYS = ("probe",)  # always written at creation (sample_truth only when small)
TILED_TRUTH = ("sample_truth",)  # dask arrays of `region_tiles`, written tile by tile


def scanned_region(plan) -> tuple[int, int, int, int]:
    """(row0, col0, rows, cols) of the sample pixels under every window of a `ScanPlan`.

    From the plan's extent (the extreme positions simulated): the window rule is monotonic
    in the position, so the extreme positions give the extreme windows. O(1).
    """
    (x0, x1), (y0, y1) = plan.extent_m
    corners = placement(np.array([[x0, y0], [x1, y1]]), plan.window, plan.sample_dx).origins
    low, high = corners[0], corners[1] + np.asarray(plan.window)
    return int(low[0]), int(low[1]), int(high[0] - low[0]), int(high[1] - low[1])


def truth_attrs(spec: ScanFacts) -> dict:
    """Root attributes: ``photons_per_intensity`` (expected photons per unit |U'|^2)."""
    return {
        "photons_per_intensity": spec.photons_per_intensity,
        "detector_noise": spec.config.detector.noise,
    }


def truth_variables(spec: ScanFacts, probe) -> tuple[dict, dict, dict]:
    """(variables, coordinates, attributes) of the ground truth for xarray.

    probe: (M, H, W) complex64 from `ground_truth_probe` (numpy, or a dask array for the
    lazy dataset). Variables: ``probe`` and, when it fits `SAMPLE_TRUTH_LIMIT`,
    ``sample_truth`` (`region_tiles`: read tile by tile when computed, never whole);
    coordinates: probe_y, probe_x and sample_y, sample_x [m]; attributes: `truth_attrs`
    and, for a large sample, ``sample_truth_ref`` (a JSON string).
    """
    config, plan = spec.config, spec.plan
    probe = probe.reshape((-1, *probe.shape[-2:])).astype(np.complex64)
    h, w = probe.shape[-2:]
    dxz = config.probe.dx * config.optics.zoom_factor
    coords = {
        "probe_y": ("probe_y", (np.arange(h) - h // 2) * dxz, _m("probe pixel centre y")),
        "probe_x": ("probe_x", (np.arange(w) - w // 2) * dxz, _m("probe pixel centre x")),
    }
    variables = {
        "probe": (
            ("mode", "probe_y", "probe_x"),
            probe,
            {
                "units": "1",
                "long_name": "illumination multiplying the sample window (probe x aperture, "
                "after the zoom; sum |probe|^2 = 1 before the aperture)",
            },
        )
    }
    attrs = truth_attrs(spec)
    r0, c0, rows, cols = spec.region
    dx, k = config.sample.dx, plan.slices
    dims = ("sample_y", "sample_x")
    if k > 1:
        dims = ("slice", *dims)
        attrs["slice_spacing_m"] = config.sample.spacing
        coords["slice_z"] = ("slice", np.arange(k) * config.sample.spacing, _m("slice depth"))
    if k * rows * cols * 8 <= SAMPLE_TRUTH_LIMIT:
        region = region_tiles(config.sample, r0, c0, rows, cols, config.probe.wavelength)
        coords["sample_y"] = ("sample_y", (r0 + np.arange(rows)) * dx, _m("sample pixel y"))
        coords["sample_x"] = ("sample_x", (c0 + np.arange(cols)) * dx, _m("sample pixel x"))
        variables["sample_truth"] = (
            dims,
            region,
            {"units": "1", "long_name": "sample transmission over the scanned region"},
        )
    else:
        ref = {
            "kind": config.sample.kind,
            "path": config.sample.path,
            "array": config.sample.array,
            "phantom": config.sample.phantom,
            "region": [r0, c0, rows, cols],
            "dx_m": dx,
            "slices": k,
        }
        attrs["sample_truth_ref"] = json.dumps(ref)
    return variables, coords, attrs


SAMPLE_CHUNK = 1024  # sample_truth chunk side: 8 MiB of complex64 per chunk and slice


def region_tiles(sample, row0: int, col0: int, rows: int, cols: int, wavelength=None):
    """`sample_region` as a dask array of SAMPLE_CHUNK x SAMPLE_CHUNK tiles (all K slices of
    a thick sample in each), one `sample_region` task per tile: a tile's pixels are the same
    bits as the whole region's (they depend on the global index only)."""
    k = slice_count(sample)
    row_chunks, col_chunks = normalize_chunks(SAMPLE_CHUNK, (rows, cols))
    name = "jscan-sample-truth-" + tokenize(sample, row0, col0, rows, cols, wavelength)
    lead = ((k,),) if k > 1 else ()
    graph = {}
    for i, h in enumerate(row_chunks):
        for j, w in enumerate(col_chunks):
            r, c = row0 + i * SAMPLE_CHUNK, col0 + j * SAMPLE_CHUNK
            key = (name, *((0,) if k > 1 else ()), i, j)
            graph[key] = (sample_region, sample, r, c, h, w, wavelength)
    chunks = (*lead, row_chunks, col_chunks)
    return da.Array(HighLevelGraph.from_collections(name, graph), name, chunks, np.complex64)


def truth_encoding(variables: dict, compressors) -> dict:
    """Zarr encoding of the truth variables with ``compressors``: the probe in one chunk,
    sample_truth in chunks of at most SAMPLE_CHUNK x SAMPLE_CHUNK (a 512 MiB region is read
    piece by piece)."""
    out = {}
    for name, (_, values, _) in variables.items():
        chunks = tuple(values.shape) if name == "probe" else None
        if name == "sample_truth":
            *slices, rows, cols = values.shape
            chunks = (*(1 for _ in slices), min(rows, SAMPLE_CHUNK), min(cols, SAMPLE_CHUNK))
        out[name] = {"compressors": compressors, "chunks": chunks}
    return out


def _m(long_name: str) -> dict:
    return {"units": "m", "long_name": long_name}
