"""The integer network: the one definition of what the compiler, the RTL and the board compute.

Numpy only. See ``docs/integer-semantics.md`` for the semantics in words; in short, for every
layer ``l`` (a time-delay layer; a dense layer is the case of one output frame):

* ``acc[t, o] = sum_{k < taps} sum_{c < in_channels} (2 * codes[o, k, c] + 1) * a[t * stride + k, c]``
* hidden layers: ``a_next[t, o] = #{ j : acc[t, o] >= thresholds[o, j] }``
* the classifier (the last layer, one output frame): ``logits[o] = acc[0, o] + bias[o]``; the
  class is the lowest index among the largest logits.

The input activations are ``pixel >> (8 - input_bits)``, with rows as frames and columns as
channels. A network records the image rows its output depends on (``rows``: rows
``0 .. rows - 1``, the input frames of layer 0 that reach the classifier); the golden model
does not need it, the compiler checks it against the layers (:func:`frames_used`).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import PynqNeuroError
from ..fileio import UnsafeFileError, atomic_write_bytes, check_zip, read_regular, sha256_file

FORMAT = "pynq-neuro-integer-network"
VERSION = 1
LAYER_FIELDS = ("in_channels", "out_channels", "taps", "stride", "in_frames", "weight_bits",
                "act_bits")
MAX_FILE_BYTES = 64 << 20  # an .npz larger than this is refused before it is read
MAX_UNPACKED_BYTES = 512 << 20  # and so is one whose arrays unpack to more
MAX_MEMBERS = 4 * 64 + 1  # arrays of up to 64 layers plus the header
# meta key of the SHA-256 of the checkpoint (meta["checkpoint"], a file name beside the .npz)
# that the network was lowered from; the checkpoint is hashed only up to this size
CHECKPOINT_DIGEST_KEY = "checkpoint_sha256"
CHECKPOINT_MAX_BYTES = 1 << 30
IMAGE_ROWS = 28
IMAGE_COLS = 28


def single_frame_stride(taps: int, in_frames: int) -> int:
    """The stride of a layer that produces one frame: the smallest that does, so that a
    network has one form (any larger stride computes the same)."""
    return max(1, int(in_frames) - int(taps) + 1)


def frame_chain(taps: Sequence[int], strides: Sequence[int],
                frames: int = IMAGE_ROWS) -> list[int]:
    """Frames entering each layer of ``taps`` and ``strides`` (``frames`` enter the first),
    ending with the frames the last layer emits."""
    out = [int(frames)]
    for k, s in zip(taps, strides):
        out.append((out[-1] - int(k)) // int(s) + 1)
    return out


def frames_used(taps: Sequence[int], strides: Sequence[int],
                frames: int = IMAGE_ROWS) -> list[int]:
    """Input frames of each layer that reach the output of the last one: layer ``i`` with
    ``taps[i]`` and ``strides[i]`` uses frames ``0 .. used[i] - 1`` of the frames entering it
    (``frames`` enter the first; the last layer emits all of its output frames). ``used[0]`` is
    the number of image rows a network reads; later frames feed no output."""
    ins = frame_chain(taps, strides, frames)
    used = [0] * len(ins[:-1])
    emitted = ins[-1]
    for i in reversed(range(len(used))):
        used[i] = (emitted - 1) * int(strides[i]) + int(taps[i])
        emitted = used[i]
    return used


def frame_drops(taps: Sequence[int], strides: Sequence[int],
                frames: int = IMAGE_ROWS) -> list[tuple[int, int, int]]:
    """The layers whose windows miss the last frames entering them: ``(layer, in_frames,
    dropped)``, the last ``dropped = (in_frames - taps) % stride`` frames reaching no output."""
    out = []
    for i, (k, s, f) in enumerate(zip(taps, strides, frame_chain(taps, strides, frames))):
        d = (f - int(k)) % int(s) if f >= k else 0
        if d:
            out.append((i, f, d))
    return out


class NetworkError(PynqNeuroError, ValueError):
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
        if self.out_frames == 1 and self.stride != single_frame_stride(self.taps, self.in_frames):
            raise NetworkError(f"a layer that produces one frame has stride "
                               f"{single_frame_stride(self.taps, self.in_frames)} (every stride "
                               f"gives the same frame), got {self.stride}")
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
    """A whole network in integer form, plus free-form metadata (name, bits, provenance).

    ``rows`` declares the image rows the network reads (rows ``0 .. rows - 1``: the input frames
    of layer 0 that reach the classifier); ``None`` for a network written before it was
    recorded, which then reads what its layers use (:attr:`input_rows`). The compiler refuses a
    network whose declared rows differ from what its taps and strides consume.
    """

    input_bits: int
    layers: list[IntLayer]
    num_classes: int = 10
    meta: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None

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

    def frames_used(self) -> list[int]:
        """Input frames of each layer that reach the classifier (:func:`frames_used`)."""
        return frames_used([l.taps for l in self.layers], [l.stride for l in self.layers],
                           self.layers[0].in_frames)

    @property
    def input_rows(self) -> int:
        """The image rows the network reads: the declared ``rows``, else what the layers use."""
        return self.frames_used()[0] if self.rows is None else self.rows

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
        if self.rows is not None and (not _is_int(self.rows)
                                      or not 1 <= self.rows <= IMAGE_ROWS):
            raise NetworkError(f"rows must be an integer in 1..{IMAGE_ROWS} (the image rows the "
                               f"network reads), got {self.rows!r}")
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

    def to_bytes(self) -> bytes:
        """The ``.npz`` file content of the network (arrays plus a JSON header)."""
        self.validate()
        header = {
            "format": FORMAT,
            "version": VERSION,
            "input_bits": self.input_bits,
            "num_classes": self.num_classes,
            "meta": self.meta,
            "layers": [{k: getattr(l, k) for k in LAYER_FIELDS} for l in self.layers],
        }
        if self.rows is not None:  # absent in files written before rows were recorded
            header["rows"] = int(self.rows)
        arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
        for i, layer in enumerate(self.layers):
            arrays[f"codes{i}"] = layer.codes.astype(np.int8)
            if layer.thresholds is not None:
                arrays[f"thresholds{i}"] = layer.thresholds.astype(np.int64)
            if layer.bias is not None:
                arrays[f"bias{i}"] = layer.bias.astype(np.int64)
            if layer.mask is not None:
                arrays[f"mask{i}"] = layer.mask.astype(np.bool_)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        """Write the network as ``.npz`` atomically: ``path`` is afterwards the old file or the
        new one, whole, never a mixture."""
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | Path, check_checkpoint: bool = True) -> IntegerNetwork:
        """Read and validate a network written by :meth:`save`.

        Only a regular file of at most ``MAX_FILE_BYTES`` is read, and every zip member is
        checked (CRC, size, no unknown arrays). If the network records the SHA-256 of the
        checkpoint it was lowered from and that checkpoint lies beside it with other content,
        the network is stale and refused (``check_checkpoint=False`` skips this).
        """
        try:
            data = read_regular(path, MAX_FILE_BYTES)
        except (OSError, UnsafeFileError) as e:
            raise NetworkError(f"{path}: cannot read the integer network "
                               f"({getattr(e, 'strerror', None) or e})") from e
        net = cls.from_bytes(data, str(path))
        if check_checkpoint:
            _check_checkpoint(net.meta, Path(path))
        return net

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "network") -> IntegerNetwork:
        """Parse and validate the ``.npz`` content written by :meth:`to_bytes`."""
        try:
            check_zip(data, MAX_MEMBERS, MAX_UNPACKED_BYTES)
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - whatever the readers raise, the file is corrupt
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise NetworkError(f"{name}: not a readable integer network ({msg})") from None
        try:
            header = json.loads(arrays["header"].tobytes().decode())
        except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise NetworkError(f"{name}: missing or corrupt header") from e
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise NetworkError(f"{name}: not a {FORMAT} file")
        if header.get("version") != VERSION or type(header.get("version")) is not int:
            raise NetworkError(f"{name}: unsupported version {header.get('version')}")
        _check_header(header, name)
        expected = {"header"}
        for i, spec in enumerate(header["layers"]):
            expected.add(f"codes{i}")
            expected.add(f"bias{i}" if spec["act_bits"] is None else f"thresholds{i}")
            expected.add(f"mask{i}")
        unknown = sorted(set(arrays) - expected)
        if unknown:
            raise NetworkError(f"{name}: unexpected arrays {unknown}")
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
            net = cls(header["input_bits"], layers, header["num_classes"], header["meta"],
                      header.get("rows"))
        except (KeyError, TypeError) as e:
            raise NetworkError(f"{name}: incomplete network ({e})") from e
        try:
            net.validate()
        except NetworkError as e:
            raise NetworkError(f"{name}: {e}") from None
        return net


def _is_int(v: Any) -> bool:
    return type(v) is int


def _check_header(header: dict[str, Any], name: str) -> None:
    """Exact JSON types of the header (the values are checked by ``validate``)."""
    keys = {"format", "version", "input_bits", "num_classes", "meta", "layers"}
    if set(header) not in (keys, keys | {"rows"}):
        raise NetworkError(f"{name}: header keys {sorted(header)}, expected {sorted(keys)} "
                           f"and optionally rows")
    if "rows" in header and not _is_int(header["rows"]):
        raise NetworkError(f"{name}: header rows must be an integer, got "
                           f"{json.dumps(header['rows'])}")
    if not (_is_int(header["input_bits"]) and _is_int(header["num_classes"])
            and isinstance(header["meta"], dict) and isinstance(header["layers"], list)):
        raise NetworkError(f"{name}: header fields have the wrong JSON types")
    for i, spec in enumerate(header["layers"]):
        if not isinstance(spec, dict) or set(spec) != set(LAYER_FIELDS):
            raise NetworkError(f"{name}: layer {i} needs exactly the fields {list(LAYER_FIELDS)}")
        if not all(_is_int(spec[k]) for k in LAYER_FIELDS if k != "act_bits") or not (
                spec["act_bits"] is None or _is_int(spec["act_bits"])):
            raise NetworkError(f"{name}: layer {i} fields must be integers")


def _check_checkpoint(meta: dict[str, Any], path: Path) -> None:
    """Refuse a network whose recorded checkpoint lies beside it with other content."""
    digest = meta.get(CHECKPOINT_DIGEST_KEY)
    if digest is None:
        return  # written without a digest (e.g. the shipped zoo): nothing to compare
    ckpt = meta.get("checkpoint")
    if not (isinstance(digest, str) and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)):
        raise NetworkError(f"{path}: meta {CHECKPOINT_DIGEST_KEY} is not a SHA-256 digest")
    if not isinstance(ckpt, str) or ckpt in ("", ".", "..") or Path(ckpt).name != ckpt \
            or "\\" in ckpt:
        raise NetworkError(f"{path}: meta checkpoint must be a plain file name, got {ckpt!r}")
    beside = path.parent / ckpt
    if not os.path.lexists(beside):
        return  # the network travels alone
    try:
        actual = sha256_file(beside, CHECKPOINT_MAX_BYTES)
    except (OSError, UnsafeFileError) as e:
        raise NetworkError(f"{path}: cannot read its checkpoint {beside} "
                           f"({getattr(e, 'strerror', None) or e})") from e
    if actual != digest:
        raise NetworkError(
            f"{path} was written from another checkpoint than {beside} (SHA-256 {actual[:12]}, "
            f"recorded {digest[:12]}); use the checkpoint itself or re-lower it with "
            f"pynq_neuro.train.lower_checkpoint('{beside}')")
