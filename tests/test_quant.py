"""UniQ quantizers: grids, straight-through gradients, LSQ step gradients, MSE-optimal init."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pynq_neuro.quant import (  # noqa: E402
    PixelQuantizer,
    SymmetricWeightQuantizer,
    UnsignedActQuantizer,
    mse_optimal_step,
)
from pynq_neuro.quant.gaussian import gaussian_mse, quantize_signed, quantize_unsigned  # noqa: E402

torch.set_num_threads(2)

# Optimal uniform quantizer steps for a unit Gaussian with 2, 4, 8, 16, 32 levels (J. Max, 1960).
MAX_1960 = {1: 1.596, 2: 0.9957, 3: 0.5860, 4: 0.3352, 5: 0.1881}


@pytest.mark.parametrize("bits", sorted(MAX_1960))
def test_signed_constants_match_published_table(bits):
    assert mse_optimal_step(bits, signed=True) == pytest.approx(MAX_1960[bits], abs=1.5e-3)


def test_binary_constant_is_mean_absolute_value():
    # 1-bit optimum: levels +-E|x| = +-sqrt(2/pi), so step = 2 sqrt(2/pi)
    assert mse_optimal_step(1, signed=True) == pytest.approx(2 * math.sqrt(2 / math.pi), rel=1e-4)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("signed", [True, False])
def test_constants_minimise_sampled_error(bits, signed):
    """Monte Carlo: the closed-form error matches sampled error, and (where the overload region
    holds enough samples to tell) the constant beats 3 % smaller and larger steps."""
    x = np.random.default_rng(bits).standard_normal(400_000)
    q = quantize_signed if signed else lambda v, s, b: quantize_unsigned(np.maximum(v, 0), s, b)
    ref = np.maximum(x, 0) if not signed else x
    c = mse_optimal_step(bits, signed)
    err = lambda s: np.mean((ref - q(x, s, bits)) ** 2)  # noqa: E731
    if bits <= 5:
        assert err(c) < err(c * 0.97) and err(c) < err(c * 1.03)
        assert err(c) == pytest.approx(gaussian_mse(c, bits, signed), rel=0.03)
    # the closed form equals a fine quadrature of the same integral
    grid = np.linspace(-12, 12, 2_400_001)
    pdf = np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    r = grid if signed else np.maximum(grid, 0)
    quad = np.sum((r - q(grid, c, bits)) ** 2 * pdf) * (grid[1] - grid[0])
    assert gaussian_mse(c, bits, signed) == pytest.approx(quad, rel=1e-3)


def test_unsigned_constants_decrease_with_bits():
    cs = [mse_optimal_step(b, signed=False) for b in range(1, 9)]
    assert all(a > b for a, b in zip(cs, cs[1:]))


@pytest.mark.parametrize("bits", range(1, 9))
def test_weight_levels_are_odd_multiples_of_half_step(bits):
    q = SymmetricWeightQuantizer(bits, 4, per_channel=False)
    with torch.no_grad():
        q.step.fill_(0.25)
    w = torch.randn(4, 5000) * 2 ** (bits - 1) * 0.3
    out = q(w)
    doubled = (out / (0.25 / 2)).detach().numpy()
    assert np.allclose(doubled, np.round(doubled))
    odd = np.round(doubled).astype(int)
    assert np.all(odd % 2 == 1)  # odd multiples only, no zero level
    assert set(np.unique(odd)) == set(range(-(2**bits) + 1, 2**bits, 2))
    assert np.array_equal(q.codes(w).numpy() * 2 + 1, odd)


def test_one_bit_is_binarization():
    q = SymmetricWeightQuantizer(1, 1, per_channel=False)
    with torch.no_grad():
        q.step.fill_(2.0)
    w = torch.tensor([[-3.0, -0.2, 0.0, 0.3, 7.0]])
    assert q(w).tolist() == [[-1.0, -1.0, 1.0, 1.0, 1.0]]


def test_weight_ste_and_lsq_step_gradient():
    bits = 3
    q = SymmetricWeightQuantizer(bits, 2, per_channel=True)
    with torch.no_grad():
        q.step.copy_(torch.tensor([0.5, 0.2]))
    w = torch.tensor([[0.1, 0.37, -5.0, 9.0], [0.05, -0.31, 0.2, 0.0]], requires_grad=True)
    q(w).sum().backward()
    # inside the clip range the gradient passes, outside it stops
    assert w.grad.tolist() == [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    # LSQ: d/ds of (k + 1/2) s = (k + 1/2) - w/s inside, (k_clip + 1/2) outside, times g
    g = 1.0 / math.sqrt(4 * 2 ** (bits - 1))
    expected = []
    for row, s in zip(w.detach().numpy(), [0.5, 0.2]):
        u = row / s - 0.5
        total = 0.0
        for ui, wi in zip(u, row):
            if ui < -4 or ui > 3:
                total += np.clip(ui, -4, 3) + 0.5
            else:
                total += np.floor(ui + 0.5) + 0.5 - wi / s
        expected.append(total * g)
    assert np.allclose(q.step.grad.numpy(), expected)


def test_activation_quantizer_is_relu_and_unsigned():
    q = UnsignedActQuantizer(2)
    with torch.no_grad():
        q.step.fill_(0.5)
    x = torch.tensor([[-1.0, 0.0, 0.24, 0.25, 0.76, 1.3, 9.0]], requires_grad=True)
    y = q(x)
    assert (y / 0.5).tolist() == [[0, 0, 0, 1, 2, 3, 3]]  # 0.25 rounds half up
    y.sum().backward()
    assert x.grad.tolist() == [[0, 1, 1, 1, 1, 1, 0]]
    g = 1 / math.sqrt(7 * 3)
    want = g * sum([0, 0, 0 - 0.48, 1 - 0.5, 2 - 1.52, 3 - 2.6, 3])
    assert q.step.grad.item() == pytest.approx(want, rel=1e-5)


def test_mse_initialisation_uses_gaussian_constants():
    w = torch.randn(3, 20000) * torch.tensor([[0.1], [1.0], [3.0]])
    q = SymmetricWeightQuantizer(2, 3, per_channel=True)
    q.init_from(w)
    assert np.allclose(q.step.detach().numpy(), 0.9957 * np.array([0.1, 1.0, 3.0]), rtol=0.03)
    a = UnsignedActQuantizer(3)
    a.init_from(torch.randn(200000) * 2.0)
    assert a.step.item() == pytest.approx(mse_optimal_step(3, False) * 2.0, rel=0.02)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pixel_quantizer_is_a_shift(bits):
    q = PixelQuantizer(bits)
    pixels = torch.arange(256).float()
    assert np.array_equal(q.codes(pixels).numpy().astype(int), np.arange(256) >> (8 - bits))


@pytest.mark.parametrize("cls", [SymmetricWeightQuantizer, UnsignedActQuantizer, PixelQuantizer])
def test_bit_width_is_checked(cls):
    with pytest.raises(ValueError):
        cls(9, 1) if cls is SymmetricWeightQuantizer else cls(9)
