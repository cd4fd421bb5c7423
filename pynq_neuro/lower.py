"""Integer lowering: a fake-quantized :class:`NeuroNet` to an :class:`IntegerNetwork` (torch).

Batch norm, step sizes and biases fold into per-neuron integer thresholds. For hidden unit
``o`` with accumulator ``acc`` (integer, weights ``2k + 1``) the real pre-activation is
``y = s * acc + c`` with

    s = g * in_step * w_step[o] / 2,   c = beta - g * mean,   g = gamma / sqrt(var + eps),

and the activation quantizer outputs ``a = #{ j in 1..Q : y >= (j - 1/2) * out_step }``. For
``s > 0`` that is ``acc >= ceil(((j - 1/2) * out_step - c) / s)``. A neuron with ``s < 0`` has
its codes mapped ``k -> -k - 1`` (which negates ``2k + 1`` and stays in range), turning it into
the ``s > 0`` case; a neuron with ``s = 0`` gets thresholds that are always or never reached.
The arithmetic is done in float64. The network records the rows the model reads
(``ModelConfig.rows``). A hidden layer none of whose units can ever output a nonzero
code (a dead layer: the network then predicts one class for every digit) is reported with a
:class:`DeadLayerWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .golden.network import IMAGE_COLS, IMAGE_ROWS, IntegerNetwork, IntLayer, single_frame_stride
from .models import NeuroNet
from .quant import QuantLinear
from .quant.quantizers import effective_step


class DeadLayerWarning(UserWarning):
    """A hidden layer outputs zero for every input (its units can never reach a threshold)."""


def silent_units(layer: IntLayer, in_max: int) -> np.ndarray:
    """Bool (out_channels,): units of a hidden layer whose first threshold exceeds the largest
    accumulator their weights can reach with inputs in ``0..in_max``, i.e. that always output 0."""
    w = layer.weights().reshape(layer.out_channels, -1)
    reachable = np.clip(w, 0, None).sum(axis=1) * int(in_max)
    return layer.thresholds[:, 0] > reachable


def _td_layout(t: np.ndarray, layer: torch.nn.Module, in_frames: int,
               in_channels: int) -> np.ndarray:
    """A weight-shaped array in (out, taps, in) order for a time-delay or a linear layer."""
    if isinstance(layer, QuantLinear):  # a dense layer over all input frames
        return t.reshape(t.shape[0], in_frames, in_channels).copy()
    return t.transpose(0, 2, 1).copy()  # conv weight is (out, in, taps)


def _td_codes(layer: torch.nn.Module, in_frames: int,
              in_channels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer codes and the synapse mask (``None`` when dense), both (out, taps, in)."""
    k = layer.weight_quant.codes(layer.weight.double()).numpy().astype(np.int64)
    codes = _td_layout(k, layer, in_frames, in_channels)
    if layer.weight_mask is None:
        return codes, None
    mask = _td_layout(layer.weight_mask.numpy() != 0, layer, in_frames, in_channels)
    codes[~mask] = 0
    return codes, mask


def _thresholds(s: np.ndarray, c: np.ndarray, out_step: float, levels: int,
                bound: int) -> np.ndarray:
    """Integer thresholds (out, levels) for ``y = s * acc + c`` with ``s >= 0``."""
    targets = (np.arange(1, levels + 1) - 0.5) * out_step  # (levels,)
    th = np.empty((len(s), levels), dtype=np.int64)
    pos = s > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        th[pos] = np.ceil((targets[None, :] - c[pos, None]) / s[pos, None]).clip(-bound, bound + 1)
    reached = c[~pos, None] >= targets[None, :]
    th[~pos] = np.where(reached, -bound, bound + 1)
    return th


@torch.no_grad()
def lower(model: NeuroNet, meta: dict | None = None) -> IntegerNetwork:
    """The integer network that computes exactly what ``model`` computes in evaluation mode."""
    cfg = model.config
    if not cfg.quantized:
        raise ValueError("only a quantized model (wbits and abits set) has an integer form")
    model = model.eval()
    in_step = float(model.input_quant.step)
    frames, channels = IMAGE_ROWS, IMAGE_COLS
    layers: list[IntLayer] = []
    in_max = 2**cfg.input_bits - 1
    for layer, norm, act in zip(model.layers, model.norms, model.acts):
        codes, mask = _td_codes(layer, frames, channels)
        taps = codes.shape[1]
        stride = 1 if isinstance(layer, QuantLinear) else int(layer.stride[0])
        if (frames - taps) // stride == 0:  # one output frame: the one form of its stride
            stride = single_frame_stride(taps, frames)
        g = (norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)).numpy()
        c = (norm.bias.double() - norm.weight.double() * norm.running_mean.double()
             / torch.sqrt(norm.running_var.double() + norm.eps)).numpy()
        w_step = effective_step(layer.weight_quant.step.double()).numpy()
        s = g * in_step * w_step / 2.0
        neg = s < 0
        codes[neg] = -codes[neg] - 1
        if mask is not None:
            codes[~mask] = 0
        out_step = float(effective_step(act.step.double()))
        tmp = IntLayer(channels, codes.shape[0], taps, stride, frames, layer.weight_quant.bits,
                       codes, act.bits, mask=mask)
        bound = tmp.accumulator_bound(in_max)
        tmp.thresholds = _thresholds(np.abs(s), c, out_step, 2**act.bits - 1, bound)
        layers.append(tmp)
        frames, channels, in_step, in_max = tmp.out_frames, tmp.out_channels, out_step, act.q_p
    clf = model.classifier
    codes, mask = _td_codes(clf, frames, channels)
    bias_step = model.double().classifier_bias_step()
    model.float()
    bias = torch.floor(clf.bias.double() / bias_step.double() + 0.5).numpy().astype(np.int64)
    layers.append(IntLayer(channels, codes.shape[0], codes.shape[1], 1, frames,
                           clf.weight_quant.bits, codes, None, None, bias, mask))
    for i, layer in enumerate(layers[:-1]):
        if bool(silent_units(layer, 2**cfg.input_bits - 1 if i == 0
                             else 2 ** layers[i - 1].act_bits - 1).all()):
            warnings.warn(f"{cfg.name}: hidden layer {i} outputs 0 for every input (dead "
                          "layer); the network predicts one class for every digit",
                          DeadLayerWarning, stacklevel=2)
    info = {"name": cfg.name, "family": cfg.family, "wbits": cfg.wbits, "abits": cfg.abits,
            "input_bits": cfg.input_bits, **(meta or {})}
    net = IntegerNetwork(cfg.input_bits, layers, meta=info, rows=int(cfg.rows))
    net.validate()
    if net.frames_used()[0] != net.rows:  # ModelConfig guarantees it; the compiler relies on it
        raise ValueError(f"{cfg.name}: rows = {net.rows}, but the lowered layers read "
                         f"{net.frames_used()[0]} rows")
    return net
