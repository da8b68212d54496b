import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's id so a failure reproduces."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def random_field(rng, shape, dtype=np.complex64):
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
