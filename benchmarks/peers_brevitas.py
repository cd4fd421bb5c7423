"""Brevitas versions of the pynq-neuro TDNN and MLP, with FINN-style quantizers (benchmark only).

The network mirrors :class:`pynq_neuro.models.NeuroNet` layer for layer (same input shift,
same time-delay or fully connected layers, batch norm, the same classifier), so that a float
checkpoint of pynq-neuro warm-starts it, and it exposes ``acts`` so that the training loop of
:func:`pynq_neuro.train.fit` runs it unchanged. The quantizers are Brevitas' own:

* W1A1 (BNN-PYNQ / FINN binary): weights ``SignedBinaryWeightPerTensorConst`` (+-1),
  activations ``SignedBinaryActPerTensorConst`` (bipolar +-1, a ``QuantIdentity`` after batch
  norm);
* W2A2: weights ``Int8WeightPerChannelFloat`` at 2 bits for hidden layers and
  ``Int8WeightPerTensorFloat`` at 2 bits for the classifier (narrow range {-1, 0, +1} times a
  max-statistics scale; per channel where pynq-neuro uses per-channel steps), activations
  ``Uint8ActPerTensorFloat`` at 2 bits (``QuantReLU``, learned scale initialised from
  statistics);
* the classifier ends with BNN-PYNQ's ``TensorNorm`` (a learned per-tensor affine that FINN
  absorbs into the final thresholds).

Needs ``brevitas`` (``pip install -e .[peers]``); pynq-neuro itself never imports it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pynq_neuro.models import IMAGE_COLS, IMAGE_ROWS, NUM_CLASSES, ModelConfig
from pynq_neuro.quant import PixelQuantizer

SUPPORTED_BITS = (1, 2)


def quantizers(bits: int) -> dict[str, Any]:
    """Names and classes of the Brevitas quantizers used at ``bits`` (1 or 2)."""
    import brevitas.quant as bq

    if bits == 1:
        return {"weight": bq.SignedBinaryWeightPerTensorConst,
                "classifier_weight": bq.SignedBinaryWeightPerTensorConst,
                "act": bq.SignedBinaryActPerTensorConst}
    if bits == 2:
        return {"weight": bq.Int8WeightPerChannelFloat,
                "classifier_weight": bq.Int8WeightPerTensorFloat,
                "act": bq.Uint8ActPerTensorFloat}
    raise ValueError(f"Brevitas peers are defined for {SUPPORTED_BITS} bits, got {bits}")


def quantizer_names(bits: int, per_channel: bool = True) -> dict[str, str]:
    q = quantizers(bits)
    names = {k: v.__name__ for k, v in q.items()}
    if bits == 2 and not per_channel:
        names["weight"] = "Int8WeightPerTensorFloat"
    if bits > 1:  # the 8-bit quantizers, with the bit width overridden
        names = {k: f"{v} at {bits} bits" for k, v in names.items()}
    names["head"] = "TensorNorm (brevitas_examples.bnn_pynq)"
    return names


class BrevitasNet(nn.Module):
    """A :class:`ModelConfig` network (TDNN or MLP, ``wbits == abits`` in 1..2) in Brevitas."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        import brevitas.nn as qnn
        from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

        if not config.quantized or config.wbits != config.abits:
            raise ValueError("a Brevitas peer needs wbits == abits")
        bits = config.wbits
        q = quantizers(bits)
        wq = q["weight"] if config.per_channel else q["classifier_weight"]
        wargs = {} if bits == 1 else {"weight_bit_width": bits}
        self.config = config
        self.input_quant = PixelQuantizer(config.input_bits)  # exact codes, as in NeuroNet
        layers: list[nn.Module] = []
        if config.family == "tdnn":
            cin = IMAGE_COLS
            for c, k, s in zip(config.channels, config.taps, config.strides):
                layers.append(qnn.QuantConv1d(cin, c, k, stride=s, bias=False,
                                              weight_quant=wq, **wargs))
                cin = c
            self.classifier: nn.Module = qnn.QuantConv1d(
                cin, NUM_CLASSES, config.frames()[-1], bias=True,
                weight_quant=q["classifier_weight"], **wargs)
        else:
            cin = IMAGE_ROWS * IMAGE_COLS
            for c in config.channels:
                layers.append(qnn.QuantLinear(cin, c, bias=False, weight_quant=wq, **wargs))
                cin = c
            self.classifier = qnn.QuantLinear(cin, NUM_CLASSES, bias=True,
                                              weight_quant=q["classifier_weight"], **wargs)
        if bits == 1:
            acts = [qnn.QuantIdentity(act_quant=q["act"]) for _ in config.channels]
        else:
            acts = [qnn.QuantReLU(act_quant=q["act"], bit_width=bits) for _ in config.channels]
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in config.channels)
        self.acts = nn.ModuleList(acts)
        self.head = TensorNorm()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(pixels.float())
        x = x.transpose(1, 2) if self.config.family == "tdnn" else x.reshape(x.shape[0], -1)
        for layer, norm, act in zip(self.layers, self.norms, self.acts):
            x = act(norm(layer(x)))
        return self.head(self.classifier(x).reshape(x.shape[0], NUM_CLASSES))


def warm_start(model: BrevitasNet, state_dict: dict[str, torch.Tensor]) -> None:
    """Load the weights and batch norms of a float pynq-neuro model; every key must be used."""
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # tensor shapes differ
        raise ValueError(f"float model does not fit the Brevitas network: "
                         f"{str(e).splitlines()[-1].strip()}") from None
    if unexpected:
        raise ValueError(f"float model does not fit the Brevitas network: {unexpected}")
    own = {k for k in model.state_dict() if not k.startswith("head.")}
    not_loaded = sorted(own & set(missing) - {k for k in missing if "quant" in k})
    if not_loaded:
        raise ValueError(f"float model lacks {not_loaded}")
