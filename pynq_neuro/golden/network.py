"""The integer network: the one definition of what the compiler, the RTL and the board compute.

Numpy only. See ``docs/integer-semantics.md`` for the semantics in words; in short, for every
layer ``l`` (a time-delay layer; a dense layer is the case of one output frame):

* ``acc[t, o] = sum_{k < taps} sum_{c < in_channels} (2 * codes[o, k, c] + 1) * a[t * stride + k, c]``
* hidden layers: ``a_next[t, o] = #{ j : acc[t, o] >= thresholds[o, j] }``
* the classifier (the last layer, one output frame): ``logits[o] = acc[0, o] + bias[o]``; the
  class is the lowest index among the largest logits.

The input activations are ``pixel >> (8 - input_bits)``, with rows as frames and columns as
channels.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "pynq-neuro-integer-network"
VERSION = 1
IMAGE_ROWS = 28
IMAGE_COLS = 28


class NetworkError(ValueError):
    """An integer network (or its file) is inconsistent or unreadable."""


@dataclass
class IntLayer:
    """One time-delay layer in integer form.

    Attributes:
        in_channels, out_channels: units per frame entering and leaving the layer.
        taps: consecutive input frames that form one output frame's receptive field.
        stride: input frames between two output frames.
        in_frames: frames entering the layer.
        weight_bits: width ``b`` of the stored codes ``k``, ``-2^(b-1) <= k < 2^(b-1)``.
        codes: int array (out_channels, taps, in_channels); the weight is ``2k + 1``.
        act_bits: output activation width of a hidden layer; ``None`` for the classifier.
        thresholds: int64 (out_channels, 2^act_bits - 1), nondecreasing along each row.
        bias: int64 (out_channels,), classifier only.
        mask: optional bool (out_channels, taps, in_channels); a synapse exists where True.
            ``None`` means dense. Codes of absent synapses are stored as 0.
    """

    in_channels: int
    out_channels: int
    taps: int
    stride: int
    in_frames: int
    weight_bits: int
    codes: np.ndarray
    act_bits: int | None = None
    thresholds: np.ndarray | None = None
    bias: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def out_frames(self) -> int:
        return (self.in_frames - self.taps) // self.stride + 1

    @property
    def is_classifier(self) -> bool:
        return self.act_bits is None

    @property
    def synapses(self) -> int:
        """Stored synapses: present connections (weights are shared across frames)."""
        return int(self.codes.size if self.mask is None else np.count_nonzero(self.mask))

    def weights(self) -> np.ndarray:
        """Integer weights, int64 (out_channels, taps, in_channels): ``2k + 1`` where a synapse
        exists, 0 where it was pruned."""
        w = 2 * self.codes.astype(np.int64) + 1
        return w if self.mask is None else w * self.mask

    def accumulator_bound(self, in_max: int) -> int:
        """Largest ``|acc|`` over all inputs with activations in ``0..in_max``."""
        w = np.abs(self.weights()).reshape(self.out_channels, -1).sum(axis=1)
        return int(w.max()) * int(in_max)

    def validate(self, in_max: int) -> None:
        """Raise :class:`NetworkError` if any field is out of range or inconsistent."""
        for name in ("in_channels", "out_channels", "taps", "stride", "in_frames"):
            if int(getattr(self, name)) < 1:
                raise NetworkError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.taps > self.in_frames:
            raise NetworkError(f"taps {self.taps} exceed the {self.in_frames} input frames")
        if not 1 <= self.weight_bits <= 8:
            raise NetworkError(f"weight_bits must be in 1..8, got {self.weight_bits}")
        shape = (self.out_channels, self.taps, self.in_channels)
        if self.codes.shape != shape:
            raise NetworkError(f"codes have shape {self.codes.shape}, expected {shape}")
        if not np.issubdtype(self.codes.dtype, np.integer):
            raise NetworkError(f"codes must be integers, got {self.codes.dtype}")
        if self.mask is not None:
            if self.mask.shape != shape or self.mask.dtype != np.bool_:
                raise NetworkError(f"mask must be bool of shape {shape}, got "
                                   f"{self.mask.dtype} {self.mask.shape}")
        lo, hi = -(2 ** (self.weight_bits - 1)), 2 ** (self.weight_bits - 1) - 1
        if self.codes.size and (self.codes.min() < lo or self.codes.max() > hi):
            raise NetworkError(f"codes outside [{lo}, {hi}] for {self.weight_bits}-bit weights")
        if self.is_classifier:
            if self.thresholds is not None:
                raise NetworkError("the classifier has no thresholds")
            if self.bias is None or self.bias.shape != (self.out_channels,):
                raise NetworkError(f"classifier bias must have shape ({self.out_channels},)")
            if self.out_frames != 1:
                raise NetworkError(f"the classifier must produce one frame, not {self.out_frames}")
            return
        if not 1 <= self.act_bits <= 8:
            raise NetworkError(f"act_bits must be in 1..8, got {self.act_bits}")
        if self.bias is not None:
            raise NetworkError("hidden layers fold their bias into the thresholds")
        tshape = (self.out_channels, 2**self.act_bits - 1)
        if self.thresholds is None or self.thresholds.shape != tshape:
            got = None if self.thresholds is None else self.thresholds.shape
            raise NetworkError(f"thresholds have shape {got}, expected {tshape}")
        if not np.issubdtype(self.thresholds.dtype, np.integer):
            raise NetworkError(f"thresholds must be integers, got {self.thresholds.dtype}")
        if np.any(np.diff(self.thresholds.astype(np.int64), axis=1) < 0):
            raise NetworkError("thresholds must be nondecreasing for every neuron")
        bound = self.accumulator_bound(in_max)
        if self.thresholds.size and np.abs(self.thresholds).max() > bound + 1:
            raise NetworkError(f"thresholds exceed the accumulator range +-{bound + 1}")


@dataclass
class IntegerNetwork:
    """A whole network in integer form, plus free-form metadata (name, bits, provenance)."""

    input_bits: int
    layers: list[IntLayer]
    num_classes: int = 10
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shift(self) -> int:
        return 8 - self.input_bits

    @property
    def synapses(self) -> int:
        return sum(layer.synapses for layer in self.layers)

    @property
    def weight_bits(self) -> int:
        return max(layer.weight_bits for layer in self.layers)

    @property
    def act_bits(self) -> int:
        return max(layer.act_bits for layer in self.layers if not layer.is_classifier)

    def in_max(self, index: int) -> int:
        """Largest activation code entering layer ``index``."""
        if index == 0:
            return 2**self.input_bits - 1
        return 2 ** self.layers[index - 1].act_bits - 1

    def validate(self) -> None:
        """Raise :class:`NetworkError` unless the layers chain into a valid classifier."""
        if not 1 <= self.input_bits <= 8:
            raise NetworkError(f"input_bits must be in 1..8, got {self.input_bits}")
        if not self.layers:
            raise NetworkError("a network needs at least one layer")
        channels, frames = IMAGE_COLS, IMAGE_ROWS
        for i, layer in enumerate(self.layers):
            if (layer.in_channels, layer.in_frames) != (channels, frames):
                raise NetworkError(
                    f"layer {i} expects {layer.in_channels} channels x {layer.in_frames} frames, "
                    f"but receives {channels} x {frames}"
                )
            if layer.is_classifier != (i == len(self.layers) - 1):
                raise NetworkError("exactly the last layer must be the classifier")
            layer.validate(self.in_max(i))
            channels, frames = layer.out_channels, layer.out_frames
        if channels != self.num_classes:
            raise NetworkError(f"the classifier has {channels} outputs, not {self.num_classes}")

    def save(self, path: str | Path) -> None:
        """Write the network as ``.npz`` (arrays plus a JSON header)."""
        self.validate()
        header = {
            "format": FORMAT,
            "version": VERSION,
            "input_bits": self.input_bits,
            "num_classes": self.num_classes,
            "meta": self.meta,
            "layers": [
                {k: getattr(l, k) for k in ("in_channels", "out_channels", "taps", "stride",
                                             "in_frames", "weight_bits", "act_bits")}
                for l in self.layers
            ],
        }
        arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
        for i, layer in enumerate(self.layers):
            arrays[f"codes{i}"] = layer.codes.astype(np.int8)
            if layer.thresholds is not None:
                arrays[f"thresholds{i}"] = layer.thresholds.astype(np.int64)
            if layer.bias is not None:
                arrays[f"bias{i}"] = layer.bias.astype(np.int64)
            if layer.mask is not None:
                arrays[f"mask{i}"] = layer.mask.astype(np.bool_)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> IntegerNetwork:
        """Read and validate a network written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise NetworkError(f"{path}: not a readable integer network ({e})") from e
        try:
            header = json.loads(arrays["header"].tobytes().decode())
        except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise NetworkError(f"{path}: missing or corrupt header") from e
        if header.get("format") != FORMAT:
            raise NetworkError(f"{path}: not a {FORMAT} file")
        if header.get("version") != VERSION:
            raise NetworkError(f"{path}: unsupported version {header.get('version')}")
        try:
            layers = [
                IntLayer(
                    **spec,
                    codes=arrays[f"codes{i}"].astype(np.int64),
                    thresholds=arrays.get(f"thresholds{i}"),
                    bias=arrays.get(f"bias{i}"),
                    mask=arrays.get(f"mask{i}"),
                )
                for i, spec in enumerate(header["layers"])
            ]
            net = cls(header["input_bits"], layers, header["num_classes"], header.get("meta", {}))
        except (KeyError, TypeError) as e:
            raise NetworkError(f"{path}: incomplete network ({e})") from e
        net.validate()
        return net
