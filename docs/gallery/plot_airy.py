"""
The forward model against a closed form
=======================================

A uniform circular aperture illuminated by a plane wave gives the Airy pattern in the far
field. `jscan.simple_microscope` at a camera pixel a third of the natural one (the exact
chirp-z path) is compared here with the closed form 2 J1(x) / x, squared, along one row
(x = pi D u / (lambda z) for a camera offset u, the paraxial far field). The aperture is a
disc 40 pixels across on the probe's grid, not an ideal disc: its far sidelobes, below
1e-3 of the peak, differ from the closed form's by the pixels of its edge.
"""

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import j1

import jscan

n, dx, wavelength, z = 128, 1e-6, 500e-9, 0.05
diameter = 40e-6
probe = jscan.make_optical_wavefront(jnp.ones((n, n), jnp.complex64), wavelength, dx)
sample = jscan.make_sample_function(jnp.ones((2 * n, 2 * n), jnp.complex64), dx)
pixel = wavelength * z / (n * dx) / 3  # a third of the natural camera pixel
out = jscan.simple_microscope(sample, jnp.array([[n * dx, n * dx]]), probe, 1.0, diameter, z, pixel)
row = np.asarray(out.image_data[0, n // 2])
u = (np.arange(n) - n // 2) * pixel  # m on the camera
theta = u / z  # rad
x = np.pi * diameter * u / (wavelength * z)
airy = np.where(x == 0, 1.0, (2 * j1(x) / np.where(x == 0, 1, x)) ** 2)
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
ax.semilogy(theta * 1e3, row / row.max(), label="jscan.simple_microscope")
ax.semilogy(theta * 1e3, airy, "--", label="Airy, closed form")
ax.set(xlabel="angle (mrad)", ylabel="intensity / peak", ylim=(1e-6, 1.5))
ax.legend()
plt.show()
