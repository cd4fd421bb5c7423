"""UniQ quantizers: learnable step sizes with straight-through rounding (LSQ gradients).

Three quantizers, each a small ``nn.Module`` that layers hold (the layers never quantize by
themselves):

* :class:`SymmetricWeightQuantizer` - weights on the grid ``(k + 1/2) * step``,
  ``k in [-2^(b-1), 2^(b-1) - 1]``; 1 bit is binarization and every width shares one code path.
* :class:`UnsignedActQuantizer` - post-ReLU activations ``a * step``, ``a in [0, 2^b - 1]``
  (it applies the ReLU itself).
* :class:`PixelQuantizer` - 8-bit pixels reduced to ``bits`` bits by a right shift, exactly what
  the hardware does; nothing to learn.

Rounding is ``floor(x + 1/2)`` (half up) everywhere so that the integer thresholds of the golden
model reproduce it exactly. The step receives the LSQ gradient scaled by ``1/sqrt(N * Q_P)``.

The learnable ``step`` parameter is used through :func:`effective_step`, ``|step|`` bounded below
by ``MIN_STEP``: an optimiser update that carries a step across zero leaves it positive and
learning instead of clamped and without gradient. A state dict always stores the effective step
(``>= MIN_STEP``), and loading one bounds a stored step below by ``MIN_STEP``, so a stored value
``v`` means ``max(v, MIN_STEP)`` for files written before and after this rule alike (some
shipped zoo checkpoints store negative weight steps, which keep meaning ``MIN_STEP``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .gaussian import mse_optimal_step

MIN_STEP = 1e-8


def effective_step(step: torch.Tensor) -> torch.Tensor:
    """The step a quantizer computes with: ``|step|``, at least ``MIN_STEP``."""
    return step.abs().clamp_min(MIN_STEP)


class _StepMixin(nn.Module):
    """State-dict rules of a learnable ``step`` (see the module docstring)."""

    step: nn.Parameter

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if bool((self.step < MIN_STEP).any()):  # a healthy step is stored as it is
            destination[prefix + "step"] = effective_step(self.step.detach())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "step"
        if key in state_dict and isinstance(state_dict[key], torch.Tensor):
            state_dict = {**state_dict, key: state_dict[key].clamp_min(MIN_STEP)}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half up in the forward pass, identity gradient in the backward pass."""
    return (torch.floor(x + 0.5) - x).detach() + x


def grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass, gradient multiplied by ``scale`` in the backward pass."""
    y = x * scale
    return (x - y).detach() + y


class SymmetricWeightQuantizer(_StepMixin):
    """Learnable symmetric weight quantizer on the odd-multiple grid ``(2k + 1) * step / 2``.

    Args:
        bits: weight width, 1..8.
        channels: number of output channels; ``per_channel`` gives each its own step.
        per_channel: one step per output channel (dimension 0 of the weight) instead of one.
    """

    def __init__(self, bits: int, channels: int, per_channel: bool = True) -> None:
        super().__init__()
        if not 1 <= bits <= 8:
            raise ValueError(f"weight bits must be in 1..8, got {bits}")
        self.bits = bits
        self.per_channel = per_channel
        self.qmin = -(2 ** (bits - 1))
        self.qmax = 2 ** (bits - 1) - 1
        self.q_p = 2 ** (bits - 1)
        self.step = nn.Parameter(torch.ones(channels if per_channel else 1))

    def _step_view(self, w: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (w.dim() - 1)
        return effective_step(self.step).view(shape)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """Integer codes ``k`` (as a float tensor) of ``w``; the stored form of the weights."""
        with torch.no_grad():
            u = torch.clamp(w / self._step_view(w) - 0.5, self.qmin, self.qmax)
            return torch.floor(u + 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w[0].numel() if self.per_channel else w.numel()
        s = grad_scale(self._step_view(w), 1.0 / math.sqrt(n * self.q_p))
        k = round_ste(torch.clamp(w / s - 0.5, self.qmin, self.qmax))
        return (k + 0.5) * s

    @torch.no_grad()
    def init_from(self, w: torch.Tensor) -> None:
        """MSE-optimal initial step from the standard deviation of a full-precision weight."""
        c = mse_optimal_step(self.bits, signed=True)
        if self.per_channel:
            sigma = w.reshape(w.shape[0], -1).pow(2).mean(dim=1).sqrt()
        else:
            sigma = w.pow(2).mean().sqrt().reshape(1)
        self.step.copy_((c * sigma).clamp_min(1e-6))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"


class UnsignedActQuantizer(_StepMixin):
    """Learnable post-ReLU activation quantizer, codes ``0 .. 2^bits - 1``.

    The pre-activation ``x`` maps to ``floor(clamp(x / step, 0, Q_P) + 1/2) * step``.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        if not 1 <= bits <= 8:
            raise ValueError(f"activation bits must be in 1..8, got {bits}")
        self.bits = bits
        self.q_p = 2**bits - 1
        self.step = nn.Parameter(torch.ones(1))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            s = effective_step(self.step)
            return torch.floor(torch.clamp(x / s, 0, self.q_p) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x[0].numel()
        s = grad_scale(effective_step(self.step), 1.0 / math.sqrt(n * self.q_p))
        return round_ste(torch.clamp(x / s, 0, self.q_p)) * s

    @torch.no_grad()
    def init_from(self, pre_activation: torch.Tensor) -> None:
        """MSE-optimal initial step for ``relu(x)`` when ``x`` is taken as N(0, sigma^2).

        ``sigma`` is estimated as ``sqrt(2 E[relu(x)^2])``, exact for a zero-mean Gaussian.
        """
        c = mse_optimal_step(self.bits, signed=False)
        sigma = (2.0 * torch.relu(pre_activation).pow(2).mean()).sqrt()
        self.step.copy_((c * sigma).clamp_min(1e-6).reshape(1))

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class PixelQuantizer(nn.Module):
    """8-bit pixels to ``bits``-bit codes by ``pixel >> (8 - bits)``, scaled to about [0, 1].

    The hardware receives raw 8-bit pixels and applies the same shift, so no rounding differs.
    """

    def __init__(self, bits: int = 8) -> None:
        super().__init__()
        if not 1 <= bits <= 8:
            raise ValueError(f"input bits must be in 1..8, got {bits}")
        self.bits = bits
        self.shift = 8 - bits
        self.step = float(2**self.shift) / 255.0

    def codes(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.floor(pixels / float(2**self.shift))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.codes(pixels) * self.step

    def extra_repr(self) -> str:
        return f"bits={self.bits}, shift={self.shift}"
