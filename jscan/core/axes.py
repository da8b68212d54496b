"""Which exact DFT each axis of a scaled Fraunhofer propagation takes (numpy only).

The rule that `jscan.core.propagation` follows, here without JAX so that a client can say
which path a config takes (and size its memory) without starting JAX.
"""

from dataclasses import dataclass

import numpy as np

METHODS = ("auto", "fft", "pad", "czt", "matrix")
_MAX_PAD = 4  # beyond k N = 4 N a padded FFT costs more than the chirp-z transform


@dataclass(frozen=True)
class AxisSpec:
    """Static description of the scaled DFT along one axis."""

    method: str  # "fft" | "pad" | "czt" | "matrix"
    n: int  # samples in and out
    m: int  # FFT length ("fft", "pad": k n; "czt": >= 2n - 1; "matrix": n)


def choose_axis(n: int, alpha, method: str = "auto") -> AxisSpec:
    """The method for one axis of n samples at alpha = N dx output_dx / (lambda z).

    "auto" picks "fft" at alpha = 1, "pad" at alpha = 1/k (k <= 4), else "czt"; alpha None
    (not known: traced) gets "czt". "fft" and "pad" need a concrete alpha.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    czt_len = int(2 ** np.ceil(np.log2(2 * n - 1)))
    if method == "czt":
        return AxisSpec("czt", n, czt_len)
    if method == "matrix":
        return AxisSpec("matrix", n, n)
    if alpha is None:
        if method != "auto":
            raise ValueError(
                f"method={method!r} needs a concrete output pixel size; inside jit use "
                "method='czt' or 'matrix' (or 'auto', which picks 'czt')"
            )
        return AxisSpec("czt", n, czt_len)
    a = float(alpha)
    k = round(1.0 / a) if a > 0 else 0
    # float32 inputs carry a relative error of ~6e-8; below 1e-6 alpha is 1/k to that precision
    exact_pad = k >= 1 and abs(k * a - 1.0) < 1e-6
    if method == "fft" or (method == "auto" and exact_pad and k == 1):
        if not (exact_pad and k == 1):
            raise ValueError(f"method='fft' needs the natural pixel (alpha = 1), got {a:.6g}")
        return AxisSpec("fft", n, n)
    if method == "pad" or (method == "auto" and exact_pad and k <= _MAX_PAD):
        if not exact_pad:
            raise ValueError(f"method='pad' needs alpha = 1/k for an integer k, got {a:.6g}")
        return AxisSpec("pad", n, k * n)
    return AxisSpec("czt", n, czt_len)
