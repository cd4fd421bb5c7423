"""Hardware mapping: neurons to processing elements, synapses to memory words (numpy only).

Every layer runs on a *neuron array* with a folding ``(groups G, lanes P)``:

* input channel ``c`` belongs to event group ``g = c mod G`` (local channel ``c // G``); the G
  groups process their events in parallel, each with its own synapse memory and its own bank of
  partial accumulators;
* output unit ``o`` lives on lane (processing element) ``j = o mod P`` at local index
  ``i = o // P``; a synapse word feeds all P lanes at once.

For each group, the synapses of column ``(k, c)`` (tap ``k``, input channel ``c``) are packed into
``words(k, c) = max_j n_j`` consecutive words, where ``n_j`` counts the present synapses of the
column on lane ``j``. A lane entry is ``{code, local index, valid}`` (valid in bit 0). An index
table per group gives each column's first word and word count. Absent (pruned) synapses occupy no
entry, so sparsity saves both memory and cycles.

Thresholds (hidden layers) or biases (classifier) are stored per lane, one entry per local index.
See ``docs/artifact-format.md`` for the bit layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..golden.network import IntegerNetwork, IntLayer
from ..util import ceil_div, clog2
from .limits import index_stride


def signed_bits(lo: int, hi: int) -> int:
    """Two's complement width that holds every integer in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class Folding:
    """How a layer is spread over hardware: ``groups`` event groups x ``lanes`` PEs."""

    groups: int
    lanes: int

    def __post_init__(self) -> None:
        if self.groups < 1 or self.lanes < 1:
            raise ValueError(f"groups and lanes must be >= 1, got {self.groups}, {self.lanes}")


@dataclass
class LayerMap:
    """The memory images and geometry of one layer on its neuron array."""

    index: int
    layer: IntLayer
    folding: Folding
    frames_used: int            # input frames that feed some output frame
    frames_emitted: int         # output frames the next layer consumes
    acc_bits: int               # signed accumulator (and threshold) width
    local_bits: int             # bits of the local output index in a lane entry
    words: np.ndarray           # (groups, taps, local channels): words per column
    base: np.ndarray            # (groups, taps, local channels): first word of each column
    synapse_words: list[list[int]]  # per group: packed words (Python ints, word_bits wide)
    param_words: list[list[int]]    # per lane: thresholds or bias, one word per local index
    depth_override: int | None = None   # synapse memory depth of the target hardware
    count_bits_override: int | None = None

    @property
    def groups(self) -> int:
        return self.folding.groups

    @property
    def lanes(self) -> int:
        return self.folding.lanes

    @property
    def locals(self) -> int:
        """Output units per lane (local indices)."""
        return ceil_div(self.layer.out_channels, self.lanes)

    @property
    def local_channels(self) -> int:
        """Input channels per group."""
        return ceil_div(self.layer.in_channels, self.groups)

    @property
    def entry_bits(self) -> int:
        return 1 + self.local_bits + self.layer.weight_bits

    @property
    def word_bits(self) -> int:
        return self.lanes * self.entry_bits

    @property
    def levels(self) -> int:
        """Thresholds per neuron (hidden) or 1 bias (classifier)."""
        return 1 if self.layer.is_classifier else 2**self.layer.act_bits - 1

    @property
    def param_bits(self) -> int:
        return self.levels * self.acc_bits

    @property
    def synapse_depth(self) -> int:
        """Words of each group's synapse memory (the largest group's need, or more when the
        network is mapped onto hardware built for a larger one)."""
        need = max(1, int(self.words.reshape(self.groups, -1).sum(axis=1).max()))
        return max(need, self.depth_override or 0)

    @property
    def addr_bits(self) -> int:
        return max(1, clog2(self.synapse_depth))

    @property
    def count_bits(self) -> int:
        need = max(1, clog2(int(self.words.max()) + 1))
        return max(need, self.count_bits_override or 0)

    @property
    def index_bits(self) -> int:
        """Index-table entry: ``{count, base}``."""
        return self.count_bits + self.addr_bits

    @property
    def index_stride(self) -> int:
        """Index entries per tap (:func:`~pynq_neuro.compiler.limits.index_stride`)."""
        return index_stride(self.local_channels)

    @property
    def index_depth(self) -> int:
        return self.layer.taps * self.index_stride

    def index_words(self, group: int) -> list[int]:
        """Index table of a group: entry ``k * index_stride + c_local`` is ``{count, base}``;
        the entries past the last local channel of each tap are 0."""
        table = np.zeros((self.layer.taps, self.index_stride), np.int64)
        table[:, :self.local_channels] = (self.words[group] << self.addr_bits) | self.base[group]
        return table.reshape(-1).tolist()


def _accumulator_bits(net: IntegerNetwork, i: int) -> int:
    layer = net.layers[i]
    bound = layer.accumulator_bound(net.in_max(i))
    lo, hi = -bound - 1, bound + 1
    if layer.is_classifier:
        b = layer.bias.astype(np.int64)
        lo, hi = lo + int(b.min()), hi + int(b.max())
    else:
        lo = min(lo, int(layer.thresholds.min()))
        hi = max(hi, int(layer.thresholds.max()))
    return signed_bits(lo, hi)


def frames_needed(net: IntegerNetwork) -> list[int]:
    """Input frames each layer handles: those its windows over the frames the next layer's
    windows reach need (the rest feed no output frame). One layer ahead only: layer 0 may
    handle a few rows more than the network reads (:meth:`IntegerNetwork.frames_used`), never
    fewer."""
    used = []
    for i, layer in enumerate(net.layers):
        emitted = layer.out_frames
        if i + 1 < len(net.layers):
            nxt = net.layers[i + 1]
            emitted = min(emitted, (nxt.out_frames - 1) * nxt.stride + nxt.taps)
        used.append((emitted - 1) * layer.stride + layer.taps)
    return used


def column_words(layer: IntLayer, fold: Folding) -> tuple[np.ndarray, np.ndarray]:
    """Words per column and column bases, both (groups, taps, local channels)."""
    G, P = fold.groups, fold.lanes
    O, K, C = layer.codes.shape
    locals_, cl = ceil_div(O, P), ceil_div(C, G)
    mask = np.ones((O, K, C), bool) if layer.mask is None else layer.mask
    padded = np.zeros((locals_ * P, K, cl * G), np.int64)
    padded[:O, :, :C] = mask
    per_lane = padded.reshape(locals_, P, K, cl, G).sum(axis=0)  # (P, K, cl, G)
    words = per_lane.max(axis=0).transpose(2, 0, 1)  # (G, K, cl)
    flat = words.reshape(G, -1)
    base = (np.cumsum(flat, axis=1) - flat).reshape(G, K, cl)
    return words, base


def _pack_synapses(layer: IntLayer, fold: Folding, local_bits: int):
    """Words per column, column bases and packed words for every group."""
    G, P = fold.groups, fold.lanes
    O, K, C = layer.codes.shape
    cl = ceil_div(C, G)
    mask = np.ones(layer.codes.shape, bool) if layer.mask is None else layer.mask
    codes = layer.codes.astype(np.int64) & ((1 << layer.weight_bits) - 1)
    entry_bits = 1 + local_bits + layer.weight_bits
    words = np.zeros((G, K, cl), dtype=np.int64)
    base = np.zeros((G, K, cl), dtype=np.int64)
    packed: list[list[int]] = [[] for _ in range(G)]
    lane_of = np.arange(O) % P
    local_of = np.arange(O) // P
    for g in range(G):
        for k in range(K):
            for c_local in range(cl):
                c = c_local * G + g
                base[g, k, c_local] = len(packed[g])
                if c >= C:
                    continue
                present = np.flatnonzero(mask[:, k, c])
                if present.size == 0:
                    continue
                lanes = lane_of[present]
                counts = np.bincount(lanes, minlength=P)
                n = int(counts.max())
                words[g, k, c_local] = n
                # rank of each synapse within its lane (outputs in increasing order)
                order = np.argsort(lanes, kind="stable")
                starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
                rank = np.empty_like(order)
                rank[order] = np.arange(order.size) - starts[lanes[order]]
                entries = (1 | (local_of[present] << 1)
                           | (codes[present, k, c] << (1 + local_bits)))
                block = [0] * n
                for r, j, e in zip(rank.tolist(), lanes.tolist(), entries.tolist()):
                    block[r] |= e << (j * entry_bits)
                packed[g].extend(block)
    return words, base, packed


def _pack_params(layer: IntLayer, fold: Folding, acc_bits: int) -> list[list[int]]:
    """Per lane, one word per local index: thresholds (level j at bits j*acc_bits) or bias."""
    P = fold.lanes
    locals_ = ceil_div(layer.out_channels, P)
    m = (1 << acc_bits) - 1
    rows = layer.bias[:, None] if layer.is_classifier else layer.thresholds
    out: list[list[int]] = []
    for j in range(P):
        lane = []
        for i in range(locals_):
            o = i * P + j
            word = 0
            if o < layer.out_channels:
                for lvl, v in enumerate(rows[o].tolist()):
                    word |= (int(v) & m) << (lvl * acc_bits)
            lane.append(word)
        out.append(lane)
    return out


def map_layer(net: IntegerNetwork, index: int, fold: Folding, pack: bool = True,
              acc_bits: int | None = None, depth: int | None = None,
              count_bits: int | None = None) -> LayerMap:
    """Memory images of layer ``index`` under folding ``fold``.

    ``pack=False`` computes only the geometry (words per column, depths), which is enough for
    the cycle and resource models. ``acc_bits``, ``depth`` and ``count_bits`` map the layer onto
    hardware built with those (larger or equal) values.
    """
    layer = net.layers[index]
    if fold.lanes > layer.out_channels:
        raise ValueError(f"layer {index}: {fold.lanes} lanes exceed its "
                         f"{layer.out_channels} output units")
    if fold.groups > layer.in_channels:
        raise ValueError(f"layer {index}: {fold.groups} groups exceed its "
                         f"{layer.in_channels} input channels")
    local_bits = clog2(ceil_div(layer.out_channels, fold.lanes))
    need = _accumulator_bits(net, index)
    if acc_bits is not None and acc_bits < need:
        raise ValueError(f"layer {index} needs {need}-bit accumulators, the hardware has "
                         f"{acc_bits}")
    acc_bits = acc_bits or need
    used = frames_needed(net)
    emitted = layer.out_frames if index + 1 == len(net.layers) else (
        min(layer.out_frames, used[index + 1]))
    if pack:
        words, base, packed = _pack_synapses(layer, fold, local_bits)
        params = _pack_params(layer, fold, acc_bits)
    else:
        (words, base), packed, params = column_words(layer, fold), [], []
    lm = LayerMap(index, layer, fold, used[index], emitted, acc_bits, local_bits, words,
                  base, packed, params, depth, count_bits)
    if depth is not None and lm.synapse_depth > depth:
        raise ValueError(f"layer {index} needs {lm.synapse_depth} synapse words per group, the "
                         f"hardware has {depth}")
    if count_bits is not None and lm.count_bits > count_bits:
        raise ValueError(f"layer {index} needs {lm.count_bits}-bit word counts, the hardware "
                         f"has {count_bits}")
    return lm


def map_network(net: IntegerNetwork, foldings: list[Folding]) -> list[LayerMap]:
    """Map every layer; ``foldings`` has one entry per layer."""
    if len(foldings) != len(net.layers):
        raise ValueError(f"{len(foldings)} foldings for {len(net.layers)} layers")
    return [map_layer(net, i, f) for i, f in enumerate(foldings)]


def hardware_maps(net: IntegerNetwork, layers: list[dict]) -> list[LayerMap]:
    """The layer maps of ``net`` on a compile's hardware (the manifest's
    ``hardware.layers``), without packing the memory words: what the cycle model needs."""
    return [map_layer(net, i, Folding(h["groups"], h["lanes"]), pack=False,
                      acc_bits=h["acc_bits"], depth=h["synapse_depth"],
                      count_bits=h["count_bits"])
            for i, h in enumerate(layers)]


def unpack_layer(lm: LayerMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes, mask and thresholds/bias recovered from the memory images alone.

    Returns ``(codes (O, K, C), mask (O, K, C), params (O, levels))``.
    """
    layer, G, P = lm.layer, lm.groups, lm.lanes
    O, K, C = layer.out_channels, layer.taps, layer.in_channels
    b, E = layer.weight_bits, lm.entry_bits
    codes = np.zeros((O, K, C), np.int64)
    mask = np.zeros((O, K, C), bool)
    for g in range(G):
        for k in range(K):
            for c_local in range(lm.local_channels):
                c = c_local * G + g
                start, n = int(lm.base[g, k, c_local]), int(lm.words[g, k, c_local])
                for word in lm.synapse_words[g][start:start + n]:
                    for j in range(P):
                        e = (word >> (j * E)) & ((1 << E) - 1)
                        if not e & 1:
                            continue
                        local = (e >> 1) & ((1 << lm.local_bits) - 1)
                        code = e >> (1 + lm.local_bits)
                        code -= (1 << b) if code >> (b - 1) else 0
                        o = local * P + j
                        if o >= O or c >= C or mask[o, k, c]:
                            raise ValueError(f"layer {lm.index}: corrupt synapse entry")
                        codes[o, k, c] = code
                        mask[o, k, c] = True
    A = lm.acc_bits
    params = np.zeros((O, lm.levels), np.int64)
    for j in range(P):
        for i, word in enumerate(lm.param_words[j]):
            o = i * P + j
            if o >= O:
                continue
            for lvl in range(lm.levels):
                v = (word >> (lvl * A)) & ((1 << A) - 1)
                params[o, lvl] = v - (1 << A) if v >> (A - 1) else v
    return codes, mask, params
