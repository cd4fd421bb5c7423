"""What ``neuro_core`` can hold: the one description of the core's limits (numpy only).

Every value here is a property of the Verilog under ``hdl/`` (the comments name the signal or
constant it comes from). The compiler refuses a network that breaks any of them before an
artifact is written; loading an artifact refuses one again; the Verilog modules check the same
values when they are elaborated (the ``LIMIT_*`` localparams between the ``pn_limits`` markers
of ``hdl/*.v`` are generated from this module: ``python -m pynq_neuro.compiler.limits
--write``), and ``docs/hardware.md`` lists them (``--table``). ``tests/test_limits.py`` checks
that the generated text, the documentation and the port widths of the Verilog agree with this
module.
"""

from __future__ import annotations

import argparse
import numbers
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PynqNeuroError
from ..fileio import atomic_write_text
from ..golden.network import frame_chain, frames_used
from ..util import ceil_div, clog2

# Fields of each layer's hardware description, in the order of the artifact and of the core's
# LAYER_INFO registers; a core is built for exactly these values.
HW_LAYER_FIELDS = (
    "in_channels", "out_channels", "taps", "stride", "in_frames", "out_frames", "frames_used",
    "frames_emitted", "weight_bits", "act_bits", "groups", "lanes", "locals", "local_channels",
    "local_bits", "entry_bits", "word_bits", "acc_bits", "levels", "param_bits",
    "synapse_depth", "addr_bits", "count_bits", "index_bits", "index_depth",
)


@dataclass(frozen=True)
class Violation:
    """One value the core cannot hold: ``layer`` is ``None`` for a network-wide field;
    ``limit`` says what the core allows and why."""

    layer: int | None
    field: str
    value: Any
    limit: str

    def __str__(self) -> str:
        where = "network" if self.layer is None else f"layer {self.layer}"
        return f"{where}: {self.field} = {self.value}, the core allows {self.limit}"


class CoreLimitError(PynqNeuroError, ValueError):
    """A network or artifact needs more than ``neuro_core`` can hold."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        text = "; ".join(str(v) for v in violations)
        super().__init__(f"the core cannot run this network: {text}")


def _reach(bits: str, doc: str, unit: int = 1) -> property:
    """A limit that follows from the address width ``bits`` (a field of :class:`CoreLimits`):
    ``unit << bits``, ``unit`` being what one address counts."""
    return property(lambda limits: unit << getattr(limits, bits), doc=doc)


@dataclass(frozen=True)
class CoreLimits:
    """Limits of ``neuro_core`` (see ``docs/hardware.md``)."""

    # pn_loader/pn_net load_layer[2:0], the packed V_<FIELD> vectors [32*8-1:0] and the
    # register file (LAYER[0..7]): layers of one core
    max_layers: int = 8
    # pn_loader load_addr[15:0] / addr_reg[15:0]: words of the deepest synapse, index or
    # parameter memory (2**16)
    load_addr_bits: int = 16
    # pn_loader load_bank[7:0], the bank byte of a network.bin bank header: event groups
    bank_bits: int = 8
    # pn_loader chunk_reg[7:0]: a memory word is loaded in at most 256 32-bit chunks
    chunk_bits: int = 8
    # pn_net BASE_BITS: wr_base between the units addresses the outputs of a layer
    base_bits: int = 16
    # neuro_core result stream: a logit is one 32-bit beat (LOGIT_BITS > 32 would truncate)
    logit_bits_max: int = 32
    # neuro_core NUM_CLASSES and pn_argmax: ten logit beats, a 4-bit class field
    num_classes: int = 10
    # pn_input: 28 pixels a row (channels of layer 0) and 28 rows (frames); a 32-bit beat of
    # s_axis carries four 8-bit pixels or, packed, as many INPUT_BITS-bit pixels as it holds
    # (at most a row)
    input_channels: int = 28
    input_frames: int = 28
    pixel_beat_bits: int = 32
    # pn_input: a pixel byte shifted right by 8 - INPUT_BITS
    max_input_bits: int = 8
    # pn_layer: weight codes of 1..8 bits (sign and magnitude, shared multiples up to 4 bits,
    # shift-and-add above), hidden activations of 1..8 bits (LEVELS = 2**ACT_BITS - 1
    # comparators)
    max_weight_bits: int = 8
    max_act_bits: int = 8
    # every per-layer field is a 32-bit slot of a packed vector and of the register file
    field_bits: int = 32
    # neuro_core IN_FLIGHT: end-of-packet flags of the digits between the input unit and the
    # result formatter; at most 3 digits per layer (its neuron array and threshold pipeline,
    # its two output frame buffers) and one more behind layer 0 (its third frame buffer), 2 in
    # the row buffers and the input unit, 2 in pn_argmax and 1 in the formatter:
    # 3 * 8 + 6 = 30 < 32
    in_flight: int = 32

    # the counts the widths above reach
    max_depth = _reach("load_addr_bits", "deepest memory the loader addresses (words)")
    max_groups = _reach("bank_bits", "event groups of a layer")
    max_word_bits = _reach("chunk_bits", "widest memory word the loader assembles (bits)",
                           unit=32)
    max_channels = _reach("base_bits", "most output units of a layer (wr_base addresses them)")

    @property
    def field_max(self) -> int:
        """Largest value of a per-layer field."""
        return (1 << self.field_bits) - 1

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table of ``docs/hardware.md``: (what, limit, compiler field, where in the RTL)."""
        return [
            ("layers", f"1 .. {self.max_layers}", "num_layers",
             "`load_layer[2:0]`, packed `V_<FIELD>` vectors `[32*8-1:0]`"),
            ("memory depth (synapse, index, parameter words)", f"<= {self.max_depth:,}",
             "synapse_depth, index_depth, locals",
             f"`load_addr[{self.load_addr_bits - 1}:0]` of pn_loader"),
            ("memory word width (synapse word, index entry, lanes x parameter bits)",
             f"<= {self.max_word_bits:,} bits", "word_bits, index_bits, lanes * param_bits",
             f"`chunk_reg[{self.chunk_bits - 1}:0]` of pn_loader (32-bit chunks)"),
            ("event groups per layer", f"1 .. {self.max_groups}", "groups",
             f"`load_bank[{self.bank_bits - 1}:0]`"),
            ("output units per layer", f"<= {self.max_channels:,}", "out_channels",
             f"`BASE_BITS` = {self.base_bits} of `wr_base` (pn_net)"),
            ("logit width (classifier accumulator)", f"<= {self.logit_bits_max} bits",
             "acc_bits of the classifier", "one 32-bit beat of m_axis per logit"),
            ("classes", f"exactly {self.num_classes}", "num_classes, classifier out_channels",
             "`NUM_CLASSES` of neuro_core, 4-bit class field"),
            ("input image", f"{self.input_frames} rows x {self.input_channels} pixels",
             "layer 0 in_frames x in_channels",
             "pn_input: a row in 7 beats of 4 bytes, or packed (`PN_PIXELS_PER_BEAT`)"),
            ("input bits", f"1 .. {self.max_input_bits}", "input_bits",
             "pn_input: pixel >> (8 - INPUT_BITS)"),
            ("weight bits", f"1 .. {self.max_weight_bits}", "weight_bits",
             "pn_layer products (sign and magnitude)"),
            ("activation bits (hidden layers)", f"1 .. {self.max_act_bits}", "act_bits",
             "pn_layer threshold comparators"),
            ("any per-layer field", f"<= {self.field_max:,}", "every hardware field",
             f"{self.field_bits}-bit slots of `V_<FIELD>` and of the registers"),
            ("digits in flight", f"< {self.in_flight}", "(follows from the layer limit)",
             "`IN_FLIGHT` of neuro_core"),
        ]

    def hdl_constants(self) -> list[tuple[str, int, str]]:
        """The ``LIMIT_*`` localparams of the Verilog: (name, value, comment)."""
        return [
            ("LIMIT_MAX_LAYERS", self.max_layers, "layers (load_layer[2:0], V_* vectors)"),
            ("LIMIT_LOAD_ADDR_BITS", self.load_addr_bits, "width of load_addr"),
            ("LIMIT_MAX_DEPTH", self.max_depth, "deepest memory the loader addresses"),
            ("LIMIT_MAX_GROUPS", self.max_groups, "event groups (load_bank[7:0])"),
            ("LIMIT_MAX_WORD_BITS", self.max_word_bits, "widest loadable memory word"),
            ("LIMIT_BASE_BITS", self.base_bits, "width of wr_base between the units"),
            ("LIMIT_MAX_CHANNELS", self.max_channels, "output units per layer"),
            ("LIMIT_LOGIT_BITS", self.logit_bits_max, "widest logit of the result stream"),
            ("LIMIT_NUM_CLASSES", self.num_classes, "classes (logit beats)"),
            ("LIMIT_IMAGE_ROWS", self.input_frames, "rows of a digit (frames of layer 0)"),
            ("LIMIT_IMAGE_COLS", self.input_channels, "pixels of a row (channels of layer 0)"),
            ("LIMIT_MAX_INPUT_BITS", self.max_input_bits, "input activation bits"),
            ("LIMIT_MAX_WEIGHT_BITS", self.max_weight_bits, "weight code bits"),
            ("LIMIT_MAX_ACT_BITS", self.max_act_bits, "hidden activation bits"),
            ("LIMIT_IN_FLIGHT", self.in_flight, "digits between input unit and formatter"),
        ]


LIMITS = CoreLimits()


def pixels_per_beat(input_bits: int, packed: bool, limits: CoreLimits = LIMITS) -> int:
    """Pixels of one s_axis beat (``PN_PIXELS_PER_BEAT`` of ``hdl/pn_macros.vh``): four 8-bit
    pixels, or packed (the host shifts them to ``input_bits`` bits) as many as the beat holds,
    at most a row: 28 binary pixels, 16 of 2 bits, 8 of 4 bits, 4 of 8 bits."""
    if not packed:
        return 4
    return min(limits.input_channels, limits.pixel_beat_bits // input_bits)


def beats_per_row(input_bits: int, packed: bool, limits: CoreLimits = LIMITS) -> int:
    """s_axis beats of one image row (a row starts on a new beat): 7 for four bytes a beat."""
    return ceil_div(limits.input_channels, pixels_per_beat(input_bits, packed, limits))


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


# the hardware fields that follow from the others (pn_layer derives them; hdl/pn_limits.vh)
DERIVED_FIELDS = ("out_frames", "locals", "local_channels", "local_bits", "entry_bits",
                  "word_bits", "levels", "param_bits", "addr_bits", "index_bits", "index_depth")


def index_stride(local_channels: int) -> int:
    """Index-table entries per tap: the local channels rounded up to a power of two, so that
    the core addresses entry (k, c_local) as the concatenation ``{k, c_local}``
    (``pn_index_stride``)."""
    return 1 << clog2(local_channels)


def _derived(h: dict[str, int], last: bool) -> dict[str, int]:
    """The fields that follow from the others (what the compiler writes)."""
    locals_ = ceil_div(h["out_channels"], h["lanes"])
    local_channels = ceil_div(h["in_channels"], h["groups"])
    local_bits = clog2(locals_)
    entry_bits = 1 + local_bits + h["weight_bits"]
    levels = 1 if last else 2 ** h["act_bits"] - 1
    addr_bits = max(1, clog2(h["synapse_depth"]))
    return {
        "out_frames": (h["in_frames"] - h["taps"]) // h["stride"] + 1,
        "locals": locals_, "local_channels": local_channels, "local_bits": local_bits,
        "entry_bits": entry_bits, "word_bits": h["lanes"] * entry_bits, "levels": levels,
        "param_bits": levels * h["acc_bits"], "addr_bits": addr_bits,
        "index_bits": h["count_bits"] + addr_bits,
        "index_depth": h["taps"] * index_stride(local_channels),
    }


def _network_field_violations(n: int, input_bits: Any, num_classes: Any,
                              limits: CoreLimits) -> list[Violation]:
    """What the core cannot hold of a network's layer count, input bits and classes."""
    out: list[Violation] = []
    if not 1 <= n <= limits.max_layers:
        out.append(Violation(None, "num_layers", n, f"1 .. {limits.max_layers} layers (the "
                                                    f"loader's layer field has "
                                                    f"{clog2(limits.max_layers)} bits)"))
    if not _is_int(input_bits) or not 1 <= input_bits <= limits.max_input_bits:
        out.append(Violation(None, "input_bits", input_bits,
                             f"1 .. {limits.max_input_bits} (pixel bytes)"))
    if num_classes != limits.num_classes:
        out.append(Violation(None, "num_classes", num_classes,
                             f"exactly {limits.num_classes} (logit beats of the result)"))
    return out


def _unit_violations(i: int, out_channels: int, weight_bits: int,
                     limits: CoreLimits) -> list[Violation]:
    """What the core cannot hold of layer ``i``'s output units and weight bits (whatever its
    folding)."""
    out: list[Violation] = []
    if out_channels > limits.max_channels:
        out.append(Violation(i, "out_channels", out_channels,
                             f"at most {limits.max_channels} output units: wr_base has "
                             f"{limits.base_bits} bits"))
    if not 1 <= weight_bits <= limits.max_weight_bits:
        out.append(Violation(i, "weight_bits", weight_bits,
                             f"1 .. {limits.max_weight_bits} (pn_layer products)"))
    return out


def _logit_limit(limits: CoreLimits) -> str:
    """What the core allows for the classifier's accumulator (its logits)."""
    return (f"at most {limits.logit_bits_max} bits for the classifier: a logit is one "
            f"{limits.logit_bits_max}-bit beat of the result stream")


def layer_violations(i: int, h: dict[str, Any], last: bool, prev: dict[str, Any] | None = None,
                     limits: CoreLimits = LIMITS) -> list[Violation]:
    """What the core cannot hold of layer ``i`` (its hardware fields ``h``; ``prev``: the
    previous layer's, to check the chain)."""
    out: list[Violation] = []

    def bad(field: str, limit: str) -> None:
        out.append(Violation(i, field, h.get(field), limit))

    for key in HW_LAYER_FIELDS:
        v = h.get(key)
        if not _is_int(v):
            bad(key, "an integer field (it is missing or not an integer)")
        elif not 0 <= v <= limits.field_max:
            bad(key, f"0 .. {limits.field_max} (a {limits.field_bits}-bit parameter slot)")
    if out:
        return out
    for key in ("in_channels", "out_channels", "taps", "stride", "in_frames", "groups",
                "lanes", "synapse_depth", "count_bits"):
        if h[key] < 1:
            bad(key, "at least 1")
    if out:
        return out
    if h["taps"] > h["in_frames"]:
        bad("taps", f"at most in_frames = {h['in_frames']}")
    if i == 0:
        if h["in_channels"] != limits.input_channels:
            bad("in_channels", f"exactly {limits.input_channels}: the pixels of a row")
        if h["in_frames"] != limits.input_frames:
            bad("in_frames", f"exactly {limits.input_frames}: the rows of a digit")
    elif prev is not None and all(_is_int(prev.get(k)) for k in
                                  ("out_channels", "out_frames", "frames_emitted")):
        if h["in_channels"] != prev["out_channels"]:
            bad("in_channels", f"exactly the previous layer's out_channels = "
                               f"{prev['out_channels']}")
        if h["in_frames"] != prev["out_frames"]:
            bad("in_frames", f"exactly the previous layer's out_frames = {prev['out_frames']}")
        if h["frames_used"] > prev["frames_emitted"]:
            bad("frames_used", f"at most the previous layer's frames_emitted = "
                               f"{prev['frames_emitted']}")
    if not 1 <= h["frames_used"] <= h["in_frames"]:
        bad("frames_used", f"1 .. in_frames = {h['in_frames']}")
    if h["out_frames"] >= 1 and not 1 <= h["frames_emitted"] <= h["out_frames"]:
        bad("frames_emitted", f"1 .. out_frames = {h['out_frames']}")
    out += _unit_violations(i, h["out_channels"], h["weight_bits"], limits)
    if last:
        if h["act_bits"] != 0:
            bad("act_bits", "0 for the classifier (it outputs logits)")
        if h["out_channels"] != limits.num_classes:
            bad("out_channels", f"exactly {limits.num_classes} for the classifier (classes)")
        if h["out_frames"] != 1 or h["frames_emitted"] != 1:
            bad("out_frames", "exactly 1 output frame for the classifier")
        if h["acc_bits"] > limits.logit_bits_max:
            bad("acc_bits", _logit_limit(limits))
    elif not 1 <= h["act_bits"] <= limits.max_act_bits:
        bad("act_bits", f"1 .. {limits.max_act_bits} (pn_layer threshold comparators)")
    if h["acc_bits"] < 2:
        bad("acc_bits", "at least 2 (a signed accumulator)")
    if h["groups"] > min(limits.max_groups, h["in_channels"]):
        bad("groups", f"at most {min(limits.max_groups, h['in_channels'])} (load_bank has "
                      f"{limits.bank_bits} bits; no more groups than input channels)")
    if h["lanes"] > h["out_channels"]:
        bad("lanes", f"at most out_channels = {h['out_channels']}")
    if out:
        return out
    for key in ("synapse_depth", "index_depth", "locals"):
        if h[key] > limits.max_depth:
            bad(key, f"at most {limits.max_depth} words: the loader's address has "
                     f"{limits.load_addr_bits} bits")
    widths = {"word_bits": h["word_bits"], "index_bits": h["index_bits"],
              "lanes * param_bits": h["lanes"] * h["param_bits"]}
    for key, v in widths.items():
        if v > limits.max_word_bits:
            out.append(Violation(i, key, v, f"at most {limits.max_word_bits} bits per memory "
                                            f"word: the loader assembles at most "
                                            f"{1 << limits.chunk_bits} 32-bit chunks"))
    for key, want in _derived(h, last).items():
        if h[key] != want:
            bad(key, f"exactly {want} (it follows from the other fields)")
    return out


def rows_violation(rows: Any, taps: list[Any], strides: list[Any], in_frames: Any,
                   limits: CoreLimits = LIMITS) -> Violation | None:
    """The declared image ``rows`` of a network unless they are exactly the rows its layers'
    ``taps`` and ``strides`` consume (over ``in_frames`` rows entering layer 0); ``None`` when
    they are, or when the layers are too broken to say (their own violations say why)."""
    if not _is_int(rows) or not 1 <= rows <= limits.input_frames:
        return Violation(None, "rows", rows, f"an integer in 1 .. {limits.input_frames}: the "
                                             f"image rows the network reads")
    if not taps or not all(_is_int(v) and v >= 1 for v in [*taps, *strides, in_frames]):
        return None
    if min(frame_chain(taps, strides, in_frames)) < 1:
        return None  # the layers leave no frames: their own violations say so
    read = frames_used(taps, strides, in_frames)[0]
    if rows == read:
        return None
    return Violation(None, "rows", rows,
                     f"exactly {read}: the image rows the layers' taps and strides consume "
                     f"(rows 0 .. {read - 1} reach the classifier)")


def violations(hw_layers: list[dict[str, Any]], input_bits: int, num_classes: int,
               limits: CoreLimits = LIMITS, rows: int | None = None) -> list[Violation]:
    """Every value of a network's hardware description (the ``layers`` of a manifest's
    ``hardware`` section, the input bits and the classes) that the core cannot hold; with
    ``rows`` (the image rows the network declares it reads) also a declaration that differs
    from what the layers consume."""
    n = len(hw_layers)
    out = _network_field_violations(n, input_bits, num_classes, limits)
    prev = None
    for i, h in enumerate(hw_layers):
        if not isinstance(h, dict):
            out.append(Violation(i, "layer", type(h).__name__, "a table of hardware fields"))
            prev = None
            continue
        out += layer_violations(i, h, i == n - 1, prev, limits)
        prev = h
    if rows is not None and n and all(isinstance(h, dict) for h in hw_layers):
        bad = rows_violation(rows, [h.get("taps") for h in hw_layers],
                             [h.get("stride") for h in hw_layers], hw_layers[0].get("in_frames"),
                             limits)
        out += [bad] if bad is not None else []
    return out


def require(hw_layers: list[dict[str, Any]], input_bits: int, num_classes: int,
            limits: CoreLimits = LIMITS) -> None:
    """Raise :class:`CoreLimitError` naming every value the core cannot hold."""
    found = violations(hw_layers, input_bits, num_classes, limits)
    if found:
        raise CoreLimitError(found)


def network_violations(net: Any, limits: CoreLimits = LIMITS) -> list[Violation]:
    """The limits an integer network breaks whatever its folding: layers, input bits, classes,
    output units, the declared image rows (the rows its layers consume) and the classifier's
    logit width (checked before the folding search)."""
    from .mapping import _accumulator_bits

    n = len(net.layers)
    out = _network_field_violations(n, net.input_bits, net.num_classes, limits)
    for i, layer in enumerate(net.layers):
        out += _unit_violations(i, layer.out_channels, layer.weight_bits, limits)
    if n and getattr(net, "rows", None) is not None:
        bad = rows_violation(net.rows, [l.taps for l in net.layers],
                             [l.stride for l in net.layers], net.layers[0].in_frames, limits)
        out += [bad] if bad is not None else []
    last = n - 1
    if n and not out:
        acc = _accumulator_bits(net, last)
        if acc > limits.logit_bits_max:
            out.append(Violation(last, "acc_bits", acc, f"{_logit_limit(limits)} (the biases "
                                                        f"and weights need {acc})"))
    return out


def require_network(net: Any, limits: CoreLimits = LIMITS) -> None:
    """Raise :class:`CoreLimitError` for the folding-independent limits of a network."""
    found = network_violations(net, limits)
    if found:
        raise CoreLimitError(found)


# ------------------------------------------------------------------------------------------------
# generated text: the Verilog localparams and the documentation table

# the header every checking module includes (hdl/ is on the include path of every build)
HDL_FILES = ("pn_limits.vh",)
BEGIN_MARK = "// BEGIN pn_limits"
END_MARK = "// END pn_limits"
_BLOCK = re.compile(re.escape(BEGIN_MARK) + r".*?" + re.escape(END_MARK), re.DOTALL)


def verilog_block(limits: CoreLimits = LIMITS) -> str:
    """The generated block of localparams (between the markers, markers included)."""
    consts = limits.hdl_constants()
    width = max(len(n) for n, _, _ in consts) + len(" = ") + 8
    lines = [f"{BEGIN_MARK}: limits of neuro_core, generated from "
             "pynq_neuro/compiler/limits.py",
             "// (python -m pynq_neuro.compiler.limits --write); do not edit by hand",
             "/* verilator lint_off UNUSEDPARAM */"]
    for name, value, comment in consts:
        decl = f"localparam integer {name} = {value};"
        lines.append(f"{decl:<{width + 19}} // {comment}")
    lines += ["/* verilator lint_on UNUSEDPARAM */", END_MARK]
    return "\n".join(lines)


def hdl_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "hdl"


def stale_hdl(directory: Path | None = None, limits: CoreLimits = LIMITS) -> list[str]:
    """HDL files whose generated block is missing or differs from this module."""
    d = directory or hdl_dir()
    block = verilog_block(limits)
    stale = []
    for name in HDL_FILES:
        text = (d / name).read_text()
        found = _BLOCK.findall(text)
        if found != [block]:
            stale.append(name)
    return stale


def write_hdl(directory: Path | None = None, limits: CoreLimits = LIMITS) -> list[str]:
    """Rewrite the generated block of every HDL file that has one; returns the files changed."""
    d = directory or hdl_dir()
    block = verilog_block(limits)
    changed = []
    for name in HDL_FILES:
        path = d / name
        text = path.read_text()
        if not _BLOCK.search(text):
            raise ValueError(f"{path}: no '{BEGIN_MARK}' ... '{END_MARK}' block")
        new = _BLOCK.sub(lambda _: block, text)
        if new != text:
            atomic_write_text(path, new)
            changed.append(name)
    return changed


def markdown_table(limits: CoreLimits = LIMITS) -> str:
    """The limits table of ``docs/hardware.md``."""
    lines = ["| limit | value | compiler field | where in the RTL |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in limits.rows()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pynq_neuro.compiler.limits",
                                description="the generated limits of neuro_core")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="rewrite the blocks in hdl/*.v")
    g.add_argument("--check", action="store_true", help="exit 1 if hdl/*.v is out of date")
    g.add_argument("--table", action="store_true", help="print the docs/hardware.md table")
    p.add_argument("--hdl", type=Path, default=None, help="folder of the Verilog sources")
    args = p.parse_args(argv)
    if args.table:
        print(markdown_table())
        return 0
    if args.write:
        for name in write_hdl(args.hdl):
            print(f"updated {name}")
        return 0
    stale = stale_hdl(args.hdl)
    if stale:
        print(f"out of date: {', '.join(stale)} (python -m pynq_neuro.compiler.limits --write)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
