"""Model families: a time-delay network over image rows (TDNN) and a multilayer perceptron.

Both take raw 8-bit pixels of shape (N, 28, 28), quantize them with a shift, run hidden blocks
``layer -> batch norm -> ReLU (quantized when abits is set)`` and end with a classifier layer that
produces 10 logits. With ``wbits``/``abits`` unset the model is the full-precision reference;
with them set it is the UniQ fake-quantized model whose integer form the golden model runs.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .golden.network import frame_chain, frame_drops, frames_used
from .quant import PixelQuantizer, QuantLinear, QuantTDConv, UnsignedActQuantizer
from .quant.quantizers import effective_step

IMAGE_ROWS = 28
IMAGE_COLS = 28
NUM_CLASSES = 10


def taps_reading_all_rows(taps: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, ...]:
    """Taps as close as possible to ``taps`` (layer by layer, more before fewer) with which
    layers of ``strides`` read all 28 rows: every layer consumes every frame it receives."""
    out, f = [], IMAGE_ROWS
    for k, s in zip(taps, strides):
        for d in range(IMAGE_ROWS):
            c = next((c for c in (k + d, k - d) if 1 <= c <= f and (f - c) % s == 0), None)
            if c is not None:
                break
        out.append(c)
        f = (f - c) // s + 1
    return tuple(out)


def rows_error(rows: int, taps: tuple[int, ...], strides: tuple[int, ...]) -> str:
    """Why ``taps`` and ``strides`` do not read exactly ``rows`` image rows, with a fix."""
    read = frames_used(taps, strides)[0]
    geometry = f"taps {taps} / strides {strides}"
    if rows < read:
        path = " -> ".join(map(str, frame_chain(taps, strides)))
        return (f"rows = {rows}, but {geometry} read rows 0..{read - 1} ({read} rows, "
                f"{path} frames); declare rows={read}")
    drops = []
    for i, f, d in frame_drops(taps, strides):
        src = "image rows" if i == 0 else f"frames layer {i - 1} emits"
        which = f"frame {f - 1}" if d == 1 else f"frames {f - d}..{f - 1}"
        drops.append(f"layer {i} (taps {taps[i]}, stride {strides[i]}) drops {which} of the "
                     f"{f} {src}")
    fix = taps_reading_all_rows(taps, strides)
    path = " -> ".join(map(str, frame_chain(fix, strides)))
    return (f"rows = {rows}, but {geometry} read only rows 0..{read - 1}: {', '.join(drops)}; "
            f"declare rows={read} to read only those, or read all {IMAGE_ROWS} rows with e.g. "
            f"taps {fix} strides {strides} ({path} frames)")


@dataclass
class ModelConfig:
    """Architecture and precision of a network.

    Attributes:
        family: ``"tdnn"`` (time-delay layers over the 28 row frames) or ``"mlp"``.
        channels: width of each hidden layer (units per frame for a TDNN).
        taps: frames each hidden time-delay layer sees (TDNN only).
        strides: frames between two outputs of each hidden layer (TDNN only).
        wbits: weight bits 1..8, ``None`` for floating point.
        abits: activation bits 1..8 (1..4 supported by the hardware), ``None`` for float.
        input_bits: pixel bits kept by the input shift (8 keeps them all).
        per_channel: one weight step per output unit in hidden layers (the classifier always
            uses one step so that its integer logits share one scale).
        rows: the image rows the model reads, top-down: rows ``0 .. rows - 1`` (1..28). The
            taps and strides must consume exactly these rows at every layer (no layer may drop
            frames of the layer before that would carry these rows); otherwise ``ValueError``
            names the layers that drop frames and taps that read all 28 rows. ``None``: the
            rows the taps and strides read (the default ones read all 28; configurations saved
            before ``rows`` existed load so, e.g. 25 for taps 3,3,3 and strides 1,2,2). An MLP
            reads all 28.
    """

    family: str = "tdnn"
    channels: tuple[int, ...] = (128, 128, 128)
    taps: tuple[int, ...] = (3, 4, 4)
    strides: tuple[int, ...] = (1, 2, 2)
    wbits: int | None = None
    abits: int | None = None
    input_bits: int = 8
    per_channel: bool = True
    rows: int | None = None

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.taps = tuple(int(t) for t in self.taps)
        self.strides = tuple(int(s) for s in self.strides)
        if self.family not in ("tdnn", "mlp"):
            raise ValueError(f"unknown model family {self.family!r} (tdnn or mlp)")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(f"channels must be positive, got {self.channels}")
        if (self.wbits is None) != (self.abits is None):
            raise ValueError("set both wbits and abits for a quantized model, or neither")
        if self.family == "tdnn":
            if not (len(self.channels) == len(self.taps) == len(self.strides)):
                raise ValueError("a TDNN needs one taps and one strides entry per hidden layer")
            self.frames()
        else:
            self.taps, self.strides = (), ()
        read = self.frames_used()[0]
        if self.rows is None:
            self.rows = read
            return
        if isinstance(self.rows, bool) or not isinstance(self.rows, numbers.Integral) \
                or not 1 <= self.rows <= IMAGE_ROWS:
            raise ValueError(f"rows must be an integer in 1..{IMAGE_ROWS} (the image rows the "
                             f"model reads), got {self.rows!r}")
        self.rows = int(self.rows)
        if self.rows != read:
            if self.family == "mlp":
                raise ValueError(f"rows = {self.rows}, but an MLP reads all {IMAGE_ROWS} rows")
            raise ValueError(rows_error(self.rows, self.taps, self.strides))

    @property
    def quantized(self) -> bool:
        return self.wbits is not None

    def frames(self) -> list[int]:
        """Frames entering each TDNN layer, ending with those entering the classifier."""
        frames = [IMAGE_ROWS]
        for k, s in zip(self.taps, self.strides):
            if k < 1 or s < 1:
                raise ValueError("taps and strides must be >= 1")
            t = (frames[-1] - k) // s + 1
            if t < 1:
                raise ValueError(f"taps {self.taps} / strides {self.strides} leave no frames")
            frames.append(t)
        return frames

    def frames_used(self) -> list[int]:
        """Frames of each layer's input that reach the classifier (TDNN; an MLP's one dense
        layer uses all 28 rows): ``frames_used()[0]`` image rows are read."""
        if self.family != "tdnn":
            return [IMAGE_ROWS]
        return frames_used(self.taps, self.strides)

    @property
    def name(self) -> str:
        prec = "float" if not self.quantized else f"w{self.wbits}a{self.abits}"
        return f"{self.family}-{prec}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**d)


def _activation(abits: int | None) -> nn.Module:
    return nn.ReLU() if abits is None else UnsignedActQuantizer(abits)


class NeuroNet(nn.Module):
    """The network of a :class:`ModelConfig` (TDNN or MLP), float or fake-quantized."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.input_quant = PixelQuantizer(config.input_bits)
        wb, pc = config.wbits, config.per_channel
        layers: list[nn.Module] = []
        norms: list[nn.Module] = []
        acts: list[nn.Module] = []
        if config.family == "tdnn":
            cin = IMAGE_COLS
            for c, k, s in zip(config.channels, config.taps, config.strides):
                layers.append(QuantTDConv(cin, c, k, s, bias=False, weight_bits=wb, per_channel=pc))
                cin = c
            self.classifier: nn.Module = QuantTDConv(
                cin, NUM_CLASSES, config.frames()[-1], 1, bias=True, weight_bits=wb,
                per_channel=False,
            )
        else:
            cin = IMAGE_ROWS * IMAGE_COLS
            for c in config.channels:
                layers.append(QuantLinear(cin, c, bias=False, weight_bits=wb, per_channel=pc))
                cin = c
            self.classifier = QuantLinear(cin, NUM_CLASSES, bias=True, weight_bits=wb,
                                          per_channel=False)
        for c in config.channels:
            norms.append(nn.BatchNorm1d(c))
            acts.append(_activation(config.abits))
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList(norms)
        self.acts = nn.ModuleList(acts)

    def frontend(self, pixels: torch.Tensor) -> torch.Tensor:
        """Quantized input in the layout of the first layer."""
        x = self.input_quant(pixels.to(self.classifier.weight.dtype))
        if self.config.family == "tdnn":
            return x.transpose(1, 2)  # (N, channels = columns, frames = rows)
        return x.reshape(x.shape[0], -1)

    def classifier_bias_step(self) -> torch.Tensor | None:
        """Accumulator step of the classifier, to which its bias is rounded when quantized."""
        if not self.config.quantized:
            return None
        q = self.classifier.weight_quant
        in_step = self.acts[-1].step if len(self.acts) else torch.tensor(self.input_quant.step)
        return effective_step(in_step) * effective_step(q.step) / 2

    def forward(self, pixels: torch.Tensor, return_hidden: bool = False):
        x = self.frontend(pixels)
        hidden = []
        for layer, norm, act in zip(self.layers, self.norms, self.acts):
            x = act(norm(layer(x)))
            hidden.append(x)
        logits = self.classifier(x, self.classifier_bias_step()).reshape(x.shape[0], NUM_CLASSES)
        return (logits, hidden) if return_hidden else logits

    def synapses(self) -> int:
        """Stored weights (synapses) of every layer, biases excluded; pruned ones do not count."""
        return sum(int(m.weight.numel() if m.weight_mask is None else m.weight_mask.count_nonzero())
                   for m in [*self.layers, self.classifier])
