"""Stores for the export tests: the small scan at the natural sampling, with the features an
export must carry (probe modes, position errors, a bad-pixel mask, snap placement, a
partial run)."""

import pytest


@pytest.fixture
def natural_store(simulated_store, small_scan):
    """natural_store(dose=1e6, noise=False, modes=1, jitter=0.0, gaps=None, placement=None,
    step=7e-6, shape=(6, 6), blocks=None, name="natural.zarr", size=32) -> path: the small scan (3
    blocks of 16 for 6x6 positions) with the camera at the natural sampling lambda z / (N dx),
    simulated in this process. The default positions lie on whole sample pixels."""

    def make(
        dose=1e6,
        noise=False,
        modes=1,
        jitter=0.0,
        gaps=None,
        placement=None,
        step=7e-6,
        shape=(6, 6),
        blocks=None,
        name="natural.zarr",
        size=32,
    ):
        d = small_scan(dose=dose, shape=shape)
        d["scan"].update(step=step, start=[40e-6, 41e-6])
        d["detector"]["noise"] = noise
        d["probe"]["size"] = size
        d["optics"]["travel_distance"] = 0.0128 * size / 32  # natural: lambda z / (N dx)
        if modes > 1:
            d["probe"]["modes"] = modes
        if jitter:
            d["scan"].update(jitter=jitter, seed=5)
        if placement:
            d["scan"]["placement"] = placement
        if gaps:
            d["detector"]["gaps"] = gaps
        return simulated_store(d, name, blocks=blocks)

    return make
