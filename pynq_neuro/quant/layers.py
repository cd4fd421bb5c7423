"""Layers that hold UniQ weight quantizers: a linear layer and a time-delay layer.

A time-delay layer is a 1-D convolution over image rows: the row is the time step, the pixels
(or the previous layer's units) of a row are the channels, ``taps`` consecutive frames form the
receptive field and ``stride`` frames separate two output frames. The weights are shared across
time. With ``weight_bits=None`` the layers are plain floating-point layers, so a full-precision
warm start and its quantized successor share one state-dict layout.

A layer may carry a pruning mask (``weight_mask``); pruned synapses are absent, not zero-valued
weights, since the weight grid has no zero level.

A layer whose output feeds the classifier directly may quantize its bias to the accumulator
grid (``bias_step``), which makes integer logits exactly proportional to the real ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .quantizers import SymmetricWeightQuantizer, round_ste


class _QuantWeightMixin(nn.Module):
    weight: torch.Tensor
    bias: torch.Tensor | None
    weight_quant: SymmetricWeightQuantizer | None

    def _init_quant(self, weight_bits: int | None, per_channel: bool) -> None:
        self.register_buffer("weight_mask", None)
        if weight_bits is None:
            self.weight_quant = None
        else:
            self.weight_quant = SymmetricWeightQuantizer(
                weight_bits, self.weight.shape[0], per_channel=per_channel
            )

    def set_mask(self, mask: torch.Tensor | None) -> None:
        """Keep only the synapses where ``mask`` is nonzero (``None``: dense again)."""
        if mask is not None:
            mask = mask.to(self.weight.dtype).reshape(self.weight.shape)
        self.weight_mask = mask

    def quantized_weight(self) -> torch.Tensor:
        w = self.weight if self.weight_quant is None else self.weight_quant(self.weight)
        return w if self.weight_mask is None else w * self.weight_mask

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a pruned checkpoint carries masks: create the buffer so that it loads
        if prefix + "weight_mask" in state_dict and self.weight_mask is None:
            self.weight_mask = torch.ones_like(self.weight)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def quantized_bias(self, bias_step: torch.Tensor | None) -> torch.Tensor | None:
        if self.bias is None or bias_step is None:
            return self.bias
        step = bias_step.detach()
        return round_ste(self.bias / step) * step


class QuantLinear(nn.Linear, _QuantWeightMixin):
    """``nn.Linear`` with an optional UniQ weight quantizer."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        weight_bits: int | None = None,
        per_channel: bool = True,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._init_quant(weight_bits, per_channel)

    def forward(self, x: torch.Tensor, bias_step: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.quantized_bias(bias_step))


class QuantTDConv(nn.Conv1d, _QuantWeightMixin):
    """Time-delay layer: ``nn.Conv1d`` over (batch, channels, frames) with UniQ weights."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        taps: int,
        stride: int = 1,
        bias: bool = True,
        weight_bits: int | None = None,
        per_channel: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, taps, stride=stride, bias=bias)
        self._init_quant(weight_bits, per_channel)

    @property
    def taps(self) -> int:
        return int(self.kernel_size[0])

    def forward(self, x: torch.Tensor, bias_step: torch.Tensor | None = None) -> torch.Tensor:
        return F.conv1d(
            x, self.quantized_weight(), self.quantized_bias(bias_step), stride=self.stride
        )
