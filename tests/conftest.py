import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's id so a failure reproduces."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def random_field(rng, shape, dtype=np.complex64):
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)


def small_config(dose=0.0, block_size=16, shape=(12, 12), phantom="cells", seed=3):
    """A small raster scan's TOML (32x32 probe, 160x160 phantom): seconds per run."""
    return f"""
[probe]
kind = "gaussian"
size = 32
dx = 1.0e-6
wavelength = 500.0e-9
waist = 6.0e-6

[optics]
zoom_factor = 1.0
aperture_diameter = 24.0e-6
aperture_center = [1.0e-6, -0.5e-6]
travel_distance = 0.02
camera_pixel_size = 200.0e-6

[sample]
kind = "phantom"
phantom = "{phantom}"
shape = [160, 160]
dx = 1.0e-6
seed = {seed}

[scan]
kind = "raster"
shape = [{shape[0]}, {shape[1]}]
step = 7.3e-6

[detector]
dose = {dose}
seed = 11

[run]
block_size = {block_size}
"""


@pytest.fixture(scope="session")
def scan_config():
    """`small_config` as a fixture: scan_config(dose=..., block_size=...) -> TOML text."""
    return small_config


@pytest.fixture(scope="module")
def client():
    """One real LocalCluster (2 worker processes) per test module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture
def make_config():
    """`small_config` as a function fixture: make_config(dose, block_size, shape) -> TOML."""
    return small_config


def listing(path):
    """Every path under ``path``, relative and sorted (to show that nothing was written)."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def tree():
    """The `listing` function, for tests that check nothing was written."""
    return listing
