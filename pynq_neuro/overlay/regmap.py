"""Text generated from the register map of :mod:`pynq_neuro.driver.registers`.

Three files hold a generated block between ``BEGIN pn_regmap`` / ``END pn_regmap`` markers:
``hdl/pn_regmap.vh`` (the localparams ``pn_axil_regs`` includes, with the core version; the
whole header is generated), the register table of ``docs/hardware.md`` and the IP-XACT register
list (``PN_REGISTERS``) of ``overlays/package_ip.tcl``. ``--write`` rewrites them, ``--check``
exits 1 when one is stale or the map itself is inconsistent::

    python -m pynq_neuro.driver.registers --check [--root DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..compiler.artifact import HW_LAYER_FIELDS
from ..driver import registers as _registers
from ..fileio import atomic_write_text
from .tcl import quote

SOURCE = "generated from pynq_neuro/driver/registers.py"
REGENERATE = "(python -m pynq_neuro.driver.registers --write); do not edit by hand"
GENERATED_BY = f"{SOURCE} {REGENERATE}"
ACCESS_IPXACT = {"R": "read-only", "W": "write-only", "RW": "read-write"}
WORD_BITS = 32


@dataclass(frozen=True)
class Target:
    """A file with a generated block: its path below the root and its comment markers. With a
    ``preamble`` the whole file is generated: the preamble, the block and a newline."""

    path: str
    begin: str
    end: str
    preamble: str = ""

    @property
    def whole(self) -> bool:
        return bool(self.preamble)

    def pattern(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.begin) + r".*?" + re.escape(self.end), re.DOTALL)

    def file_text(self, block: str) -> str:
        """The generated file around ``block`` (a whole-file target only)."""
        return f"{self.preamble}{block}\n"

    def is_current(self, text: str, block: str) -> bool:
        """``text`` holds ``block`` as its one generated block (and is the generated file)."""
        if self.whole:
            return text == self.file_text(block)
        return self.pattern().findall(text) == [block]


HDL_PREAMBLE = f"""/*
 * pn_regmap.vh: the register map of neuro_core (byte offsets, CONTROL and STATUS bits, the
 * LAYER[l].FIELD[f] block) and the core version, included in the body of pn_axil_regs (no
 * include guard: each module that includes it gets its own localparams).
 *
 * This whole file is {SOURCE}; regenerate it with
 *     python -m pynq_neuro.driver.registers --write
 * (--check exits 1 when it is stale). Do not edit by hand.
 */

"""
HDL = Target("hdl/pn_regmap.vh", "// BEGIN pn_regmap", "// END pn_regmap", HDL_PREAMBLE)
DOCS = Target("docs/hardware.md", "<!-- BEGIN pn_regmap", "<!-- END pn_regmap -->")
TCL = Target("overlays/package_ip.tcl", "# BEGIN pn_regmap", "# END pn_regmap")


def _log2(value: int) -> int:
    return value.bit_length() - 1


def _layer_end(regs: ModuleType = _registers) -> int:
    """Byte address just past the field block of the last layer."""
    return regs.LAYER_BASE + regs.LAYER_STRIDE * regs.MAX_LAYERS


def _show(value: object) -> str:
    return f"{value:#05x}" if isinstance(value, int) else repr(value)


def problems(regs: ModuleType = _registers) -> list[str]:
    """What is wrong with the map: offsets, fields, layer block and the driver's constants."""
    out: list[str] = []
    core_range = regs.CORE_RANGE
    if core_range <= 0 or core_range & (core_range - 1):
        out.append(f"CORE_RANGE {core_range:#x} is not a power of two")
    stride, base = regs.LAYER_STRIDE, regs.LAYER_BASE
    if stride <= 0 or stride & (stride - 1):
        out.append(f"LAYER_STRIDE {stride:#x} is not a power of two")
    elif base % stride:
        out.append(f"LAYER_BASE {base:#x} is not a multiple of LAYER_STRIDE {stride:#x}")
    if 4 * len(HW_LAYER_FIELDS) > stride:
        out.append(f"{len(HW_LAYER_FIELDS)} layer fields do not fit in LAYER_STRIDE {stride:#x}")
    version = regs.CORE_VERSION
    if not isinstance(version, int) or not 0 <= version <= 0xFFFF:
        out.append(f"CORE_VERSION {version!r} is not a 16-bit number (the low half of the "
                   f"VERSION register)")
    if _layer_end(regs) > core_range:
        out.append(f"the layer fields end at {_layer_end(regs):#x}, past CORE_RANGE "
                   f"{core_range:#x}")
    seen: dict[int, str] = {}
    for r in regs.REGISTER_MAP:
        if r.offset % 4 or not 0 <= r.offset < base:
            out.append(f"{r.name}: offset {r.offset:#05x} is not a word below LAYER_BASE "
                       f"{base:#x}")
        if r.offset in seen:
            out.append(f"{r.name}: offset {r.offset:#05x} is also {seen[r.offset]}")
        seen[r.offset] = r.name
        if r.access not in ACCESS_IPXACT:
            out.append(f"{r.name}: access {r.access!r} is not R, W or RW")
        used = 0
        for f in r.fields:
            if f.width < 1 or f.lsb < 0 or f.msb >= WORD_BITS:
                out.append(f"{r.name}.{f.name}: bits {f.msb}:{f.lsb} are not in a 32-bit word")
            elif used & f.mask:
                out.append(f"{r.name}.{f.name}: bits {f.msb}:{f.lsb} overlap another field")
            used |= f.mask if f.width >= 1 and f.lsb >= 0 else 0
            if f.access is not None and f.access not in ACCESS_IPXACT:
                out.append(f"{r.name}.{f.name}: access {f.access!r} is not R, W or RW")
        # the driver's constant of the register and of each field
        if getattr(regs, r.name, None) != r.offset:
            out.append(f"{r.name}: the driver constant is {_show(getattr(regs, r.name, None))}, "
                       f"the map says {r.offset:#05x}")
        for f in r.fields:  # a bit is the mask NAME, a wider field NAME_MASK
            name = f.name if f.width == 1 else f"{f.name}_MASK"
            if getattr(regs, name, None) != f.mask:
                out.append(f"{r.name}.{f.name}: the driver constant {name} is "
                           f"{_show(getattr(regs, name, None))}, the map says {f.mask:#x}")
    return out


# ------------------------------------------------------------------------------------------------
# generated text


def verilog_block(regs: ModuleType = _registers) -> str:
    """The localparams of ``pn_regmap.vh`` (between the markers, markers included)."""
    addr_bits = _log2(regs.CORE_RANGE)
    shift = _log2(regs.LAYER_STRIDE)
    block_bits = addr_bits - shift
    digits = (addr_bits + 3) // 4
    decls: list[tuple[str, str]] = [
        (f"localparam ADDR_WIDTH = {addr_bits};",
         f"byte address bits (range {regs.CORE_RANGE:#x})"),
        (f"localparam [31:0] ID_VALUE = 32'h{regs.ID_VALUE:08X};", "ID register value"),
        (f"localparam CORE_VERSION = {regs.CORE_VERSION};", "VERSION register, low half"),
    ]
    for r in regs.REGISTER_MAP:
        note = r.access + ("" if r.decoded else ", reserved")
        decls.append((f"localparam [ADDR_WIDTH-1:0] A_{r.name} = {addr_bits}'h{r.offset:0{digits}X};",
                      note))
    decls += [
        (f"localparam NUM_FIELDS = {len(HW_LAYER_FIELDS)};", "fields per layer"),
        (f"localparam LAYER_SHIFT = {shift};",
         f"LAYER[l].FIELD[f] at {regs.LAYER_BASE:#x} + {regs.LAYER_STRIDE:#x}*l + 4*f"),
        (f"localparam [{block_bits - 1}:0] LAYER_BLOCK_FIRST = "
         f"{block_bits}'d{regs.LAYER_BASE >> shift};", "address bits above LAYER_SHIFT of layer 0"),
    ]
    for r in regs.REGISTER_MAP:
        for f in r.fields:
            where = f"bit {f.lsb}" if f.width == 1 else f"bits {f.msb}:{f.lsb}"
            decls.append((f"localparam {r.name}_{f.name} = {f.lsb};", f"{r.name} {where}"))
            if f.width > 1:
                decls.append((f"localparam {r.name}_{f.name}_WIDTH = {f.width};", ""))
    width = max(len(d) for d, _ in decls) + 1
    lines = [f"{HDL.begin}: register map of neuro_core, {SOURCE}", f"// {REGENERATE}",
             "/* verilator lint_off UNUSEDPARAM */"]
    lines += [f"{d:<{width}}// {c}".rstrip() if c else d for d, c in decls]
    lines += ["/* verilator lint_on UNUSEDPARAM */", HDL.end]
    return "\n".join(lines)


def _field_text(f) -> str:  # noqa: ANN001 - registers.Field
    where = f"bit {f.lsb}" if f.width == 1 else f"bits {f.msb}:{f.lsb}"
    return f"{where} `{f.name}`" + (f" ({f.note})" if f.note else "")


def register_meaning(r) -> str:  # noqa: ANN001 - registers.Register
    """The documented meaning of a register: its text, then its fields."""
    parts = [r.meaning] if r.meaning else []
    if r.fields:
        parts.append(", ".join(_field_text(f) for f in r.fields))
    return "; ".join(parts)


def markdown_table(regs: ModuleType = _registers) -> str:
    """The register table of ``docs/hardware.md`` (between the markers, markers included)."""
    lines = [f"{DOCS.begin}: {GENERATED_BY} -->",
             "| offset | name | access | meaning |", "|---|---|---|---|"]
    for r in regs.REGISTER_MAP:
        meaning = register_meaning(r)
        lines.append(f"| 0x{r.offset:03X} | `{r.name}` | {r.access} | {meaning} |"
                     if meaning else f"| 0x{r.offset:03X} | `{r.name}` | {r.access} | |")
    lines.append(f"| {regs.LAYER_BASE:#x} + {regs.LAYER_STRIDE:#x}·l + 4·f | `LAYER[l].FIELD[f]` "
                 f"| R | the synthesized value of hardware field `f` (order of `HW_LAYER_FIELDS`, "
                 f"{len(HW_LAYER_FIELDS)} fields) of layer `l` (up to {regs.MAX_LAYERS} layers, "
                 f"ending at {_layer_end(regs) - 4:#X}) |".replace("0X", "0x"))
    lines.append(DOCS.end)
    return "\n".join(lines)


def tcl_word(text: str) -> str:
    """``text`` as one Tcl word (braced when that is exact, else backslash-quoted)."""
    depth = 0
    balanced = True
    for c in text:
        depth += (c == "{") - (c == "}")
        balanced &= depth >= 0
    if text and balanced and depth == 0 and "\\" not in text and text.strip() == text:
        return "{" + text + "}"
    return quote(text)


def _plain(markdown: str) -> str:
    return markdown.replace("`", "")


def ipxact_description(r) -> str:  # noqa: ANN001 - registers.Register
    """The description of a register in the IP-XACT (plain text)."""
    return _plain(register_meaning(r)) or r.name


def tcl_block(regs: ModuleType = _registers) -> str:
    """``PN_REGISTERS`` for ``overlays/package_ip.tcl``: one element per register,
    ``{name offset access description {{field lsb width access description} ...}}``."""
    lines = [f"{TCL.begin}: {SOURCE}", f"# {REGENERATE}",
             "set PN_REGISTERS {"]
    for r in regs.REGISTER_MAP:
        fields = " ".join(
            "{" + " ".join([f.name, str(f.lsb), str(f.width), ACCESS_IPXACT[f.access or r.access],
                            tcl_word(_plain(f.note or f.name))]) + "}" for f in r.fields)
        desc = ipxact_description(r)
        lines.append(f"    {{{r.name} 0x{r.offset:03X} {ACCESS_IPXACT[r.access]} {tcl_word(desc)} "
                     f"{{{fields}}}}}")
    lines += ["}", TCL.end]
    return "\n".join(lines)


GENERATORS = ((HDL, verilog_block), (DOCS, markdown_table), (TCL, tcl_block))


# ------------------------------------------------------------------------------------------------
# files


def default_root() -> Path:
    return Path(__file__).resolve().parents[2]


def stale(root: Path | None = None, regs: ModuleType = _registers) -> list[str]:
    """Files (relative to ``root``) whose generated block is missing or out of date."""
    base = Path(root) if root is not None else default_root()
    out = []
    for target, generate in GENERATORS:
        path = base / target.path
        text = path.read_text() if path.is_file() else ""
        if not target.is_current(text, generate(regs)):
            out.append(target.path)
    return out


def write(root: Path | None = None, regs: ModuleType = _registers) -> list[str]:
    """Rewrite the generated blocks and files (atomically); returns the files changed."""
    base = Path(root) if root is not None else default_root()
    changed = []
    for target, generate in GENERATORS:
        path = base / target.path
        block = generate(regs)
        if target.whole:
            text = path.read_text() if path.is_file() else ""
            new = target.file_text(block)
        else:
            text = path.read_text()
            if not target.pattern().search(text):
                raise ValueError(f"{path}: no '{target.begin}' ... '{target.end}' block")
            new = target.pattern().sub(lambda _: block, text)
        if new != text:
            atomic_write_text(path, new)
            changed.append(target.path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pynq_neuro.driver.registers",
                                description="files generated from the register map")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="rewrite the generated blocks and files")
    g.add_argument("--check", action="store_true",
                   help="exit 1 if a generated block is stale or the map is inconsistent")
    p.add_argument("--root", type=Path, default=None, help="repository root")
    args = p.parse_args(argv)
    bad = problems()
    for message in bad:
        print(f"register map: {message}", file=sys.stderr)
    if bad:
        return 1
    try:
        if args.write:
            for name in write(args.root):
                print(f"updated {name}")
            return 0
        out_of_date = stale(args.root)
    except (OSError, ValueError) as e:
        print(f"pynq-neuro: error: {e}", file=sys.stderr)
        return 2
    if out_of_date:
        print(f"out of date: {', '.join(out_of_date)} "
              f"(python -m pynq_neuro.driver.registers --write)", file=sys.stderr)
        return 1
    return 0
