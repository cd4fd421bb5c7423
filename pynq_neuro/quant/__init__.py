"""UniQ quantization-aware training building blocks (needs torch)."""

from .gaussian import mse_optimal_step
from .layers import QuantLinear, QuantTDConv
from .quantizers import (
    PixelQuantizer,
    SymmetricWeightQuantizer,
    UnsignedActQuantizer,
    effective_step,
    grad_scale,
    round_ste,
)

__all__ = [
    "PixelQuantizer",
    "QuantLinear",
    "QuantTDConv",
    "SymmetricWeightQuantizer",
    "UnsignedActQuantizer",
    "effective_step",
    "grad_scale",
    "mse_optimal_step",
    "round_ste",
]
