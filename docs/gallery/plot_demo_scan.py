"""
A scan, end to end
==================

The built-in demo (a Gaussian probe over a Siemens star, 64 x 64 positions): simulated by
`jscan.simulate_scan` on an embedded Dask cluster, stored in Zarr, opened with xarray. The
stored virtual bright field (one number per position, written by the workers with each
block) draws the sample without reading a single pattern; beside it, one diffraction
pattern in log scale.
"""

import tempfile

import matplotlib.pyplot as plt
import numpy as np

import jscan
from jscan.inputs.config import DEMO_CONFIG, parse_config

store = tempfile.mkdtemp() + "/demo.zarr"
ds = jscan.simulate_scan(parse_config(DEMO_CONFIG), store, progress=False)

image = ds.bright_field.values.reshape(64, 64)
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
left.imshow(image, cmap="gray")
left.set(title="stored bright field, 64 x 64 positions", xlabel="scan column", ylabel="scan row")
pattern = ds.diffraction.isel(position=2080).values
right.imshow(np.log10(pattern + 1), cmap="magma")
right.set(title="pattern 2080, log10(counts + 1)", xlabel="det_x pixel", ylabel="det_y pixel")
plt.show()
