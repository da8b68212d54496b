"""Worker helpers that need no cluster."""

import numpy as np
import pytest

from jscan.inputs.detectors import masked_sums


@pytest.mark.parametrize("dtype", [np.float32, np.uint32])
@pytest.mark.reference
def test_masked_sums_match_a_float64_dot(rng, dtype):
    """A disk (one run per row) and a ring (two runs on middle rows) give the float64 dot."""
    patterns = (rng.uniform(0, 1000, (9, 31, 24))).astype(dtype)
    yy, xx = np.mgrid[:31, :24]
    r = np.hypot(yy - 15.3, xx - 11.7)
    for mask in (r <= 9.5, (r > 4) & (r <= 9.5), np.zeros((31, 24), bool)):
        expected = np.tensordot(patterns.astype(np.float64), mask.astype(np.float64), axes=2)
        got = masked_sums(patterns, mask)
        assert got.dtype == np.float64 and got.shape == (9,)
        np.testing.assert_allclose(got, expected, rtol=1e-13)
