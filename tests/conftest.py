import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's id so a failure reproduces."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def random_field(rng, shape, dtype=np.complex64):
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)


SMALL_CONFIG = """
[probe]
kind = "gaussian"
size = 32
dx = 1.0e-6
wavelength = 500.0e-9
waist = 6.0e-6

[optics]
zoom_factor = 1.0
aperture_diameter = 24.0e-6
travel_distance = 0.02
camera_pixel_size = 200.0e-6

[sample]
kind = "phantom"
phantom = "cells"
shape = [160, 160]
dx = 1.0e-6
seed = 3

[scan]
kind = "raster"
shape = [{rows}, {cols}]
step = 7.3e-6

[detector]
dose = {dose}
seed = 11

[run]
block_size = {block_size}
"""


@pytest.fixture
def make_config():
    """A function (dose, block_size, shape) -> the TOML text of a small 32x32-probe scan."""

    def make(dose=0.0, block_size=16, shape=(12, 12)):
        return SMALL_CONFIG.format(dose=dose, block_size=block_size, rows=shape[0], cols=shape[1])

    return make


def listing(path):
    """Every path under ``path``, relative and sorted (to show that nothing was written)."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def tree():
    """The `listing` function, for tests that check nothing was written."""
    return listing
