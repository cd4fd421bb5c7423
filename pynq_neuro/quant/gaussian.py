"""MSE-optimal step sizes for Gaussian-distributed tensors (numpy only).

For a tensor whose values follow N(0, sigma^2), the step that minimises the mean squared
quantization error is ``c * sigma`` with a constant ``c`` that depends only on the bit width and
on the grid:

* ``signed``: the symmetric UniQ weight grid, levels ``(k + 1/2) * step`` for
  ``k in [-2^(b-1), 2^(b-1) - 1]`` (1 bit is binarization at ``+-step/2``);
* ``unsigned``: the post-ReLU activation grid, levels ``a * step`` for ``a in [0, 2^b - 1]``,
  applied to ``max(0, x)`` with ``x ~ N(0, sigma^2)`` (a rectified Gaussian).

The constants are found numerically (quadrature over a fine grid, then golden-section search)
and cached.
"""

from __future__ import annotations

import functools
import math

import numpy as np

_GRID = np.linspace(-11.0, 11.0, 44_001)
_PDF = np.exp(-0.5 * _GRID**2) / math.sqrt(2.0 * math.pi)
_DX = _GRID[1] - _GRID[0]


def quantize_signed(x: np.ndarray, step: float, bits: int) -> np.ndarray:
    """Round ``x`` to the symmetric grid ``(k + 1/2) * step`` with ``bits``-bit ``k``."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    k = np.floor(np.clip(x / step - 0.5, qmin, qmax) + 0.5)
    return (k + 0.5) * step


def quantize_unsigned(x: np.ndarray, step: float, bits: int) -> np.ndarray:
    """Round ``max(0, x)`` to the grid ``a * step`` with ``a in [0, 2^bits - 1]``."""
    a = np.floor(np.clip(x / step, 0, 2**bits - 1) + 0.5)
    return a * step


def gaussian_mse(step: float, bits: int, signed: bool) -> float:
    """Expected squared quantization error for unit-variance Gaussian input."""
    if signed:
        err = _GRID - quantize_signed(_GRID, step, bits)
    else:
        x = np.maximum(_GRID, 0.0)
        err = x - quantize_unsigned(x, step, bits)
    return float(np.sum(err**2 * _PDF) * _DX)


def _golden_section(f, lo: float, hi: float, tol: float = 1e-6) -> float:
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return 0.5 * (a + b)


@functools.lru_cache(maxsize=None)
def mse_optimal_step(bits: int, signed: bool) -> float:
    """Constant ``c`` such that ``c * sigma`` is the MSE-optimal step for N(0, sigma^2) data."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    f = functools.partial(gaussian_mse, bits=bits, signed=signed)
    # Coarse scan first so the golden-section search starts in the basin of the global minimum.
    candidates = np.geomspace(1e-3, 8.0, 120)
    values = [f(float(s)) for s in candidates]
    i = int(np.argmin(values))
    lo = float(candidates[max(i - 1, 0)])
    hi = float(candidates[min(i + 1, len(candidates) - 1)])
    return _golden_section(f, lo, hi)
