"""Resource model of the neuron arrays for the xc7z020 (numpy only).

An estimate for choosing the folding and for the budget check; ``pynq-neuro estimate``
synthesizes the real design with Yosys. Synapse memories are block RAM (RAMB36/RAMB18 in their
legal aspect ratios); index tables too when they hold more than ``LUTRAM_MAX_BITS``, else
distributed RAM (about 48 bits per LUT in RAM32M/RAM64M); thresholds and biases are
single-port distributed RAM (loaded and read through one address), or registers when a lane
holds one neuron.

The coefficients are fitted to Yosys 0.23 (``synth_xilinx -family xc7 -flatten``) of the whole
core for the zoo's models as ``benchmarks/hardware.py`` compiles them (the rows of
``benchmarks/results/hardware.json``, 1-, 2- and 4-bit weights), keeping every row at or
above its measurement, since the budget refuses designs by this model and a design it passes
must fit: on the current Verilog it gives 1.010 (``tdnn-w2a2``) to 1.091 (the default
``tdnn-w2a2-sparse-in4``) times the Yosys LUTs. ``python benchmarks/resource_fit.py`` prints
the comparison; ``tests/test_resources.py`` keeps every row within 1.0 to 1.12.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..util import ceil_div
from .cycles import ROW_BUFFERS, frame_buffers
from .mapping import LayerMap

# an index table of 1,728 bits (192 x 9) stays distributed RAM in Yosys 0.23, one of 3,840
# (384 x 10) goes to block RAM
LUTRAM_MAX_BITS = 2048
LUTRAM_BITS_PER_LUT = 48
# (depth, width) aspect ratios of simple-dual-port block RAMs
RAMB36_SHAPES = [(32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72)]
RAMB18_SHAPES = [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)]


# Per-unit costs. LUTs and FFs are per instance of what the comment names; the products,
# selects and comparators are counted per bit of the operand they handle.
PE_FIXED_LUTS = 2.5       # per processing element: entry decode, accumulator address select
ACC_LUTS_PER_BIT = 1.0    # per processing element and accumulator bit: the add/subtract
SELECT_LUTS = 1.0         # per processing element and magnitude bit: the 2:1 (2-bit weights)
                          # or 4:1 (3-bit, not measured) select of a shared multiple
WIDE_SELECT_LUTS = 4.2    # the same for the 8:1 select of 4-bit weights: at least two LUT6
                          # and a MUXF7 per bit, more where Yosys builds it as a shifter
GROUP_LUTS = 250.0        # per group: event fetch, index/synapse addressing, multiples
LAYER_LUTS = 150.0        # per layer: frame and threshold sequencing
THRESHOLD_LUTS = 0.33     # per lane, level and accumulator bit, levels 1..3
EXTRA_LEVEL_LUTS = 1.0    # per lane, level and accumulator bit beyond 3 levels (4-bit
                          # activations: 15 levels): a carry-chain comparator
SHELL_LUTS = 900.0        # input unit, AXI-Lite registers, loader, skid buffers
LUT_MARGIN = 1.035        # on every layer's LUTs: without it the closest measured design
                          # (tdnn-w2a2) is 3.2 % below Yosys, and the foldings the search
                          # tries are not all measured

PARAM_REGISTERS = 2       # FFs per threshold/bias bit and lane: its read register and its copy
                          # in the compare stage
GROUP_FFS = 45            # per group: fetch pipeline (operation, address, count, multiples)
LAYER_FFS = 350           # per layer: frame counters, threshold sequencing, output word
LANE_FFS = 6              # per lane: valid/tag bits and the output activation
SHELL_FFS = 1000          # input unit, registers, loader, skid buffers (plus its word register)
FRAME_FFS = 1.25          # per input channel and (activation bit + 1): the frame buffer
EXTRA_FRAME_LUTS = 1.45   # per input channel and (activation bit + 1), per frame of a ring
                          # beyond two (the third frame behind layer 0: 556 LUTs measured on
                          # the default's 128 2-bit channels)


@dataclass(frozen=True)
class Budget:
    """What the core may use and the clock. The default leaves a quarter of the xc7z020's
    53,200 LUTs to the rest of the overlay (AXI DMA, interconnect, reset) and to placement
    slack; FF, BRAM and DSP default to the whole device."""

    luts: int = 40_000
    ffs: int = 106_400
    bram36: int = 140
    dsp: int = 220
    clock_mhz: float = 100.0

    def __post_init__(self) -> None:
        for name, positive in (("luts", True), ("ffs", True), ("bram36", False),
                               ("dsp", False), ("clock_mhz", True)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"budget {name} must be a finite number, got {v!r}")
            if v < 0 or (positive and v == 0):
                raise ValueError(f"budget {name} must be {'> 0' if positive else '>= 0'}, "
                                 f"got {v}")

    def to_dict(self) -> dict:
        return asdict(self)

    def excess(self, r: Resources) -> list[str]:
        """The resources of ``r`` above this budget, as ``"7,212 LUTs > 5,000"``."""
        out = []
        for name, used, limit in (("LUTs", r.luts, self.luts), ("FFs", r.ffs, self.ffs),
                                  ("BRAM36", r.bram36, self.bram36),
                                  ("DSP48", r.dsp, self.dsp)):
            if used > limit:
                out.append(f"{used:,.{1 if name == 'BRAM36' else 0}f} {name} > {limit:,}")
        return out


# the whole device
XC7Z020 = Budget(luts=53_200)


@dataclass
class Resources:
    luts: float = 0.0
    ffs: float = 0.0
    bram36: float = 0.0
    dsp: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.luts + other.luts, self.ffs + other.ffs,
                         self.bram36 + other.bram36, self.dsp + other.dsp)

    def fits(self, budget: Budget, fraction: float = 1.0) -> bool:
        return (self.luts <= fraction * budget.luts and self.bram36 <= fraction * budget.bram36
                and self.ffs <= fraction * budget.ffs and self.dsp <= fraction * budget.dsp)

    def to_dict(self) -> dict:
        return {"luts": round(self.luts), "ffs": round(self.ffs),
                "bram36": round(self.bram36, 1), "dsp": self.dsp}


def block_ram(depth: int, width: int) -> float:
    """BRAM36 equivalents for a ``depth`` x ``width`` memory (best legal tiling)."""
    if depth <= 0 or width <= 0:
        return 0.0
    b36 = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in RAMB36_SHAPES)
    b18 = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in RAMB18_SHAPES)
    return min(float(b36), 0.5 * b18)


def memory(depth: int, width: int) -> Resources:
    """A memory as block RAM or, when small, distributed RAM."""
    bits = depth * width
    if bits <= LUTRAM_MAX_BITS:
        return Resources(luts=math.ceil(bits / LUTRAM_BITS_PER_LUT) + width / 4)
    return Resources(bram36=block_ram(depth, width))


def bank_resources(kind: str, depth: int, width: int) -> Resources:
    """A memory bank of the artifact (``kind`` as in its manifest): synapse memories are
    block RAM whatever their size (pn_event_group asks for it), index tables block or
    distributed RAM by size (:func:`memory`), the parameter memory distributed RAM
    (:func:`param_resources` adds its registers)."""
    if kind == "synapse":
        return Resources(bram36=block_ram(depth, width))
    if kind == "index":
        return memory(depth, width)
    if kind == "params":
        return Resources() if depth == 1 else Resources(luts=lutram_sp_luts(depth, width))
    raise ValueError(f"unknown memory kind {kind!r}")


def product_luts(weight_bits: int, in_bits: int) -> float:
    """LUTs per processing element for the magnitude ``|2k + 1| * a`` of a ``weight_bits`` code
    and an ``in_bits`` activation (pn_layer): a 1-bit weight only flips the sign; 2-4-bit
    weights select one of the group's shared odd multiples; wider weights add shifted copies
    of ``a`` per lane."""
    mag = weight_bits + in_bits
    if weight_bits <= 1:
        return 0.0
    if weight_bits <= 3:
        return SELECT_LUTS * mag
    if weight_bits == 4:
        return WIDE_SELECT_LUTS * mag
    return max(WIDE_SELECT_LUTS, weight_bits - 1) * mag   # not measured: at least the 4-bit cost


def threshold_luts(levels: int, acc_bits: int) -> float:
    """LUTs per lane of a hidden layer's ``levels`` parallel comparators (and the count of
    those reached). Up to 3 levels (1- and 2-bit activations) Yosys shares most of the logic
    between them; each further level takes its own carry-chain comparator and a share of the
    count."""
    return acc_bits * (THRESHOLD_LUTS * min(levels, 3) + EXTRA_LEVEL_LUTS * max(levels - 3, 0))


def lutram_luts(depth: int, width: int) -> int:
    """Distributed RAM with one write and one asynchronous read port (RAM32M: 32 x 6 in
    4 LUTs). A memory of one word is a register (:func:`param_resources`)."""
    return ceil_div(width, 6) * 4 * ceil_div(depth, 32)


def lutram_sp_luts(depth: int, width: int) -> int:
    """Distributed RAM whose write and read share one address (``pn_ram`` with
    ``SHARED_ADDR``): single-port cells, RAM32M as 32 x 8 in 4 LUTs."""
    return ceil_div(width, 8) * 4 * ceil_div(depth, 32)


def param_resources(lm: LayerMap) -> Resources:
    """The thresholds (or biases) of a layer: one ``lanes * param_bits`` word per local
    index in distributed RAM, read into a register and held in a second one for the
    comparators. With one local index Yosys keeps the single word in registers."""
    width = lm.lanes * lm.param_bits
    ffs = PARAM_REGISTERS * width + (width if lm.locals == 1 else 0)
    return bank_resources("params", lm.locals, width) + Resources(ffs=ffs)


def layer_resources(lm: LayerMap, in_bits: int) -> Resources:
    """Estimated resources of one layer's neuron array (with the frame buffer in front)."""
    L, G, P = lm.layer, lm.groups, lm.lanes
    A = lm.acc_bits
    slots = ceil_div(L.taps, L.stride)
    r = Resources(luts=LAYER_LUTS + G * GROUP_LUTS, ffs=LAYER_FFS + G * GROUP_FFS)
    for g in range(G):
        r += bank_resources("synapse", lm.synapse_depth, lm.word_bits)
        r += bank_resources("index", lm.index_depth, lm.index_bits)
    # per processing element: product select, accumulator add/subtract, partial-accumulator
    # RAM (LUTs), and its registered read in the threshold phase (FFs)
    per_pe = (PE_FIXED_LUTS + product_luts(L.weight_bits, in_bits) + ACC_LUTS_PER_BIT * A
              + lutram_luts(slots * lm.locals, A))
    r += Resources(luts=G * P * per_pe, ffs=G * P * A)
    # per lane: adder tree over the groups, then threshold comparators or the bias add
    out = A if L.is_classifier else threshold_luts(lm.levels, A) + 2
    r += Resources(luts=P * ((G - 1) * A + out), ffs=P * LANE_FFS)
    r += param_resources(lm)
    if L.is_classifier:
        r += Resources(luts=P * A, ffs=P * A)  # argmax compare tree
    # the input frame buffer: two frames of registers and one priority encoder per group,
    # and the frames of a longer ring (behind layer 0)
    bits = max(in_bits, 1)
    extra = frame_buffers(lm.index - 1) - 2 if lm.index else ROW_BUFFERS - 2
    r += Resources(luts=L.in_channels * (1.5 * bits + 4.5 + EXTRA_FRAME_LUTS * (bits + 1) * extra),
                   ffs=L.in_channels * (bits + 1) * FRAME_FFS)
    r.luts *= LUT_MARGIN
    return r


def network_resources(maps: list[LayerMap], input_bits: int) -> list[Resources]:
    """Per-layer estimates; the first entry is the input unit and control (AXI, registers)."""
    # input unit, registers, loader (its word register: the widest memory word), skid buffers
    shell = Resources(luts=SHELL_LUTS,
                      ffs=SHELL_FFS + max((lm.word_bits for lm in maps), default=32))
    out = [shell]
    in_bits = input_bits
    for lm in maps:
        out.append(layer_resources(lm, in_bits))
        in_bits = lm.layer.act_bits or 0
    return out
