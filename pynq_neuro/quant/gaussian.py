"""MSE-optimal step sizes for Gaussian-distributed tensors (numpy only).

For a tensor whose values follow N(0, sigma^2), the step that minimises the mean squared
quantization error is ``c * sigma`` with a constant ``c`` that depends only on the bit width and
on the grid:

* ``signed``: the symmetric UniQ weight grid, levels ``(k + 1/2) * step`` for
  ``k in [-2^(b-1), 2^(b-1) - 1]`` (1 bit is binarization at ``+-step/2``);
* ``unsigned``: the post-ReLU activation grid, levels ``a * step`` for ``a in [0, 2^b - 1]``,
  applied to ``max(0, x)`` with ``x ~ N(0, sigma^2)`` (a rectified Gaussian).

The error of each quantization cell has a closed form in the Gaussian density and distribution
function, so the expected error is exact; the constants are then found numerically (a coarse scan,
then golden-section search) and cached.
"""

from __future__ import annotations

import functools
import math

import numpy as np

def quantize_signed(x: np.ndarray, step: float, bits: int) -> np.ndarray:
    """Round ``x`` to the symmetric grid ``(k + 1/2) * step`` with ``bits``-bit ``k``."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    k = np.floor(np.clip(x / step - 0.5, qmin, qmax) + 0.5)
    return (k + 0.5) * step


def quantize_unsigned(x: np.ndarray, step: float, bits: int) -> np.ndarray:
    """Round ``max(0, x)`` to the grid ``a * step`` with ``a in [0, 2^bits - 1]``."""
    a = np.floor(np.clip(x / step, 0, 2**bits - 1) + 0.5)
    return a * step


def _phi(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)


_erf = np.frompyfunc(math.erf, 1, 1)


def _cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(float))


def _cell_errors(lo: np.ndarray, hi: np.ndarray, level: np.ndarray) -> np.ndarray:
    """``integral_lo^hi (x - level)^2 phi(x) dx`` for each cell (closed form)."""
    x_phi = lambda x: np.where(np.isfinite(x), x, 0.0) * _phi(x)  # noqa: E731
    return ((1.0 + level**2) * (_cdf(hi) - _cdf(lo)) - (x_phi(hi) - x_phi(lo))
            + 2.0 * level * (_phi(hi) - _phi(lo)))


def gaussian_mse(step: float, bits: int, signed: bool) -> float:
    """Expected squared quantization error for unit-variance Gaussian input (exact)."""
    if signed:
        k = np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1), dtype=float)
        level = (k + 0.5) * step
        lo = np.concatenate([[-np.inf], k[1:] * step])
        hi = np.concatenate([k[1:] * step, [np.inf]])
    else:  # relu(x): x < 0 maps to 0 without error
        a = np.arange(0, 2**bits, dtype=float)
        level = a * step
        lo = np.concatenate([[0.0], (a[1:] - 0.5) * step])
        hi = np.concatenate([(a[1:] - 0.5) * step, [np.inf]])
    return float(np.sum(_cell_errors(lo, hi, level)))


def _golden_section(f, lo: float, hi: float, tol: float = 1e-8) -> float:
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
    candidates = np.geomspace(1e-3, 8.0, 160)
    values = [f(float(s)) for s in candidates]
    i = int(np.argmin(values))
    lo = float(candidates[max(i - 1, 0)])
    hi = float(candidates[min(i + 1, len(candidates) - 1)])
    return _golden_section(f, lo, hi)
