"""Consistency of the PYNQ-Z2 overlay with the HDL, the driver and the documented register map.

The overlay scripts (``overlays/*.tcl``), the core (``hdl/neuro_core.v``,
``hdl/pn_axil_regs.v``), the register table of ``docs/hardware.md`` and the driver constants
(``pynq_neuro/driver/registers.py``) are written by hand and must agree. This module reads each
of them without Vivado -- literal ``set`` statements of the Tcl scripts, Verilog-2005 module
headers and localparams, the Markdown register table -- and lists every disagreement as a
:class:`Mismatch`. It also checks a built ``.hwh`` against the driver (``check-hwh``) and the
Vivado calls recorded by a dry run of the scripts (``overlays/dryrun.tcl``).

Pure Python (no numpy), so that it runs on the board too::

    python -m pynq_neuro.overlay_spec check [--root DIR]
    python -m pynq_neuro.overlay_spec check-hwh overlays/build/out/neuro.hwh
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType


class SpecError(ValueError):
    """An input (script, HDL, document, driver module) is missing or cannot be read."""


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: ``topic`` (what kind), ``subject`` (which item) and a message."""

    topic: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.topic} {self.subject}: {self.message}"


# ------------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class OverlayPaths:
    """The files the checks read; :meth:`from_root` gives the repository's own."""

    config_tcl: Path
    package_tcl: Path
    bd_tcl: Path
    core_v: Path
    regs_v: Path
    hardware_md: Path
    registers_py: Path

    @classmethod
    def from_root(cls, root: Path | str) -> OverlayPaths:
        r = Path(root)
        return cls(config_tcl=r / "overlays" / "config.tcl",
                   package_tcl=r / "overlays" / "package_ip.tcl",
                   bd_tcl=r / "overlays" / "build_bd.tcl",
                   core_v=r / "hdl" / "neuro_core.v",
                   regs_v=r / "hdl" / "pn_axil_regs.v",
                   hardware_md=r / "docs" / "hardware.md",
                   registers_py=r / "pynq_neuro" / "driver" / "registers.py")

    def replace(self, **changes: Path) -> OverlayPaths:
        return dataclasses.replace(self, **changes)


def repo_root() -> Path:
    """The checkout this module lives in."""
    return Path(__file__).resolve().parents[1]


def _read(path: Path) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror or e}") from e


# ------------------------------------------------------------------------------------------------
# Tcl: commands, words, lists and literal variables


@dataclass(frozen=True)
class TclWord:
    text: str
    kind: str  # "braced", "quoted" or "bare"


def _skip_braced(s: str, i: int) -> int:
    """Index just past the brace that closes the one at ``s[i]``."""
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise SpecError("unbalanced braces in Tcl text")


def _skip_bracketed(s: str, i: int) -> int:
    """Index just past the bracket that closes the command substitution at ``s[i]``."""
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            i = _skip_braced(s, i)
            continue
        if c == '"':
            i = _skip_quoted(s, i)
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise SpecError("unbalanced brackets in Tcl text")


def _skip_quoted(s: str, i: int) -> int:
    """Index just past the quote that closes the one at ``s[i]``."""
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _skip_bracketed(s, i)
            continue
        if c == '"':
            return i + 1
        i += 1
    raise SpecError("unterminated quoted word in Tcl text")


def _words(s: str, i: int, newline_ends: bool) -> tuple[list[TclWord], int]:
    """The words of one command (or of a list when ``newline_ends`` is False) from ``s[i]``."""
    words: list[TclWord] = []
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] == "\n":
            i += 2
            continue
        if c in " \t\r" or (c == "\n" and not newline_ends):
            i += 1
            continue
        if newline_ends and c in "\n;":
            return words, i + 1
        if c == "{" and not s.startswith("{*}", i):
            end = _skip_braced(s, i)
            words.append(TclWord(s[i + 1:end - 1], "braced"))
            i = end
        elif c == '"':
            end = _skip_quoted(s, i)
            words.append(TclWord(s[i + 1:end - 1], "quoted"))
            i = end
        else:
            start = i
            while i < n:
                c = s[i]
                if c == "\\":
                    i += 2
                    continue
                if c == "[":
                    i = _skip_bracketed(s, i)
                    continue
                if s.startswith("{*}", i):
                    i += 3
                    continue
                if c in " \t\r\n" or (newline_ends and c == ";"):
                    break
                i += 1
            words.append(TclWord(s[start:i], "bare"))
    return words, n


def tcl_commands(script: str) -> list[list[TclWord]]:
    """The top-level commands of a Tcl script, each a list of words (comments dropped; bodies
    of procs and control structures stay single braced words)."""
    commands: list[list[TclWord]] = []
    i, n = 0, len(script)
    while i < n:
        while i < n and script[i] in " \t\r\n;":
            i += 1
        if i >= n:
            break
        if script[i] == "#":
            while i < n and script[i] != "\n":
                i += 2 if script[i] == "\\" else 1
            continue
        words, i = _words(script, i, newline_ends=True)
        if words:
            commands.append(words)
    return commands


_BACKSLASH = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "{": "{", "}": "}",
              "[": "[", "]": "]", "$": "$", " ": " ", ";": ";"}


def _unescape(text: str) -> str:
    text = re.sub(r"\\\n[ \t]*", " ", text)
    return re.sub(r"\\(.)", lambda m: _BACKSLASH.get(m.group(1), m.group(1)), text)


def tcl_list(text: str) -> list[str]:
    """The elements of a Tcl list (as written by ``list`` or in a braced literal)."""
    words, _ = _words(text, 0, newline_ends=False)
    return [w.text if w.kind == "braced" else _unescape(w.text) for w in words]


_VAR = re.compile(r"\$(?:\{([^}]+)\}|([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z0-9_]+)*))")


def tcl_substitute(text: str, variables: dict[str, str]) -> str | None:
    """``text`` with ``$name`` substituted from ``variables``; None if it needs a command
    substitution or an unknown variable."""
    if re.search(r"(?<!\\)\[", text):
        return None
    missing = False

    def sub(m: re.Match) -> str:
        nonlocal missing
        name = m.group(1) or m.group(2)
        if name not in variables:
            missing = True
            return ""
        return variables[name]

    out = _VAR.sub(sub, text)
    return None if missing else _unescape(out)


def tcl_variables(scripts: Iterable[str], known: dict[str, str] | None = None) -> dict[str, str]:
    """Variables given literal values by top-level ``set NAME VALUE`` commands, in order."""
    variables = dict(known or {})
    for script in scripts:
        for words in tcl_commands(script):
            if len(words) != 3 or words[0].text != "set" or words[1].kind != "bare":
                continue
            value = words[2]
            if value.kind == "braced":
                variables[words[1].text] = value.text
            else:
                text = tcl_substitute(value.text, variables)
                if text is not None:
                    variables[words[1].text] = text
    return variables


def tcl_int(value: str) -> int:
    """A Tcl integer literal (decimal or 0x hexadecimal)."""
    try:
        return int(value.strip(), 0)
    except ValueError as e:
        raise SpecError(f"not an integer: {value!r}") from e


# ------------------------------------------------------------------------------------------------
# Verilog: module header, declarations, localparams


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input", "output" or "inout"
    width: int | None  # None when the range is not a constant


@dataclass(frozen=True)
class VerilogModule:
    name: str
    parameters: tuple[str, ...]
    ports: dict[str, Port]
    body: str  # text after the header, comments removed


def strip_comments(text: str) -> str:
    """Verilog text without ``//`` and ``/* */`` comments (string literals kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise SpecError("unterminated /* comment in Verilog text")
            out.append(" ")
            i = j + 2
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _matching(text: str, i: int, open_: str = "(", close: str = ")") -> int:
    """Index of the bracket closing the one at ``text[i]``."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j
    raise SpecError(f"unbalanced {open_}{close} in Verilog text")


def _split_top(text: str) -> list[str]:
    """``text`` split at commas outside brackets, braces and parentheses."""
    parts, depth, start = [], 0, 0
    for j, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:j])
            start = j + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def verilog_number(text: str) -> int | None:
    """The value of a Verilog integer literal (``12'h00C``, ``5'd2``, ``25``), else None."""
    t = text.strip().replace("_", "")
    m = re.fullmatch(r"(?:\d+)?'([sS]?)([bBoOdDhH])([0-9a-fA-F]+)", t)
    if m:
        base = {"b": 2, "o": 8, "d": 10, "h": 16}[m.group(2).lower()]
        return int(m.group(3), base)
    if re.fullmatch(r"\d+", t):
        return int(t)
    return None


def _range_width(rng: str | None) -> int | None:
    if not rng:
        return 1
    m = re.fullmatch(r"\[\s*(.+?)\s*:\s*(.+?)\s*\]", rng.strip())
    if not m:
        return None
    msb, lsb = verilog_number(m.group(1)), verilog_number(m.group(2))
    if msb is None or lsb is None:
        return None
    return abs(msb - lsb) + 1


def read_module(text: str, name: str) -> VerilogModule:
    """Parameters and ANSI-style ports of module ``name``."""
    src = strip_comments(text)
    m = re.search(rf"\bmodule\s+{re.escape(name)}\b", src)
    if not m:
        raise SpecError(f"no module {name} in the Verilog text")
    i = m.end()
    params: list[str] = []
    rest = src[i:].lstrip()
    i = len(src) - len(rest)
    if rest.startswith("#"):
        open_ = src.index("(", i)
        close = _matching(src, open_)
        for item in _split_top(src[open_ + 1:close]):
            pm = re.match(r"(?:parameter\s+)?(?:(?:integer|real|signed)\s+)?(?:\[[^\]]*\]\s*)?"
                          r"([A-Za-z_]\w*)\s*=", item)
            if pm:
                params.append(pm.group(1))
        i = close + 1
    open_ = src.index("(", i)
    close = _matching(src, open_)
    ports: dict[str, Port] = {}
    direction, width = None, None
    for item in _split_top(src[open_ + 1:close]):
        pm = re.fullmatch(r"(?:(input|output|inout)\s+)?(?:(?:wire|reg|logic)\s+)?(?:signed\s+)?"
                          r"(\[[^\]]*\]\s*)?([A-Za-z_]\w*)", item, flags=re.DOTALL)
        if not pm:
            raise SpecError(f"module {name}: cannot read the port declaration {item!r}")
        if pm.group(1):
            direction, width = pm.group(1), _range_width(pm.group(2))
        elif pm.group(2):
            width = _range_width(pm.group(2))
        if direction is None:
            raise SpecError(f"module {name}: port {pm.group(3)} has no direction (not ANSI style)")
        ports[pm.group(3)] = Port(pm.group(3), direction, width)
    return VerilogModule(name, tuple(params), ports, src[close + 1:])


def verilog_localparams(text: str) -> dict[str, int]:
    """Integer-valued localparams (``localparam [11:0] A = 12'h000, B = 12'h004;``)."""
    src = strip_comments(text)
    values: dict[str, int] = {}
    for m in re.finditer(r"\blocalparam\b(.*?);", src, flags=re.DOTALL):
        decl = re.sub(r"^\s*(?:integer\s+|signed\s+)?(?:\[[^\]]*\])?", "", m.group(1))
        for item in _split_top(decl):
            am = re.fullmatch(r"([A-Za-z_]\w*)\s*=\s*(.+)", item, flags=re.DOTALL)
            if am:
                v = verilog_number(am.group(2))
                if v is not None:
                    values[am.group(1)] = v
    return values


def verilog_widths(text: str) -> dict[str, int]:
    """Widths of the signals declared in ``text`` (ports, wires and regs with constant ranges)."""
    src = strip_comments(text)
    widths: dict[str, int] = {}
    for m in re.finditer(r"\b(?:input|output|inout|wire|reg)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                         r"(\[[^\]]*\])?\s*([A-Za-z_]\w*)", src):
        w = _range_width(m.group(1))
        if w is not None:
            widths[m.group(2)] = w
    return widths


# ------------------------------------------------------------------------------------------------
# the register map, three ways


@dataclass
class RegisterMap:
    """Register offsets, the layer-field block and the CONTROL/STATUS bit fields of one source.
    Bit fields are ``(lsb, msb)``."""

    source: str
    offsets: dict[str, int] = field(default_factory=dict)
    reserved: set[str] = field(default_factory=set)
    layer_base: int | None = None
    layer_stride: int | None = None
    field_stride: int | None = None
    num_fields: int | None = None
    id_value: int | None = None
    bits: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)


# localparam names of pn_axil_regs.v that differ from the documented register names
HDL_REGISTER_ALIASES = {"STALL": "STALL_CYCLES", "INPUT_STALL": "INPUT_STALL_CYCLES",
                        "FP_LO": "FINGERPRINT_LO", "FP_HI": "FINGERPRINT_HI"}
BIT_REGISTERS = ("CONTROL", "STATUS")


def _canonical(signal: str) -> str:
    return re.sub(r"(_reg|_w)$", "", signal).upper()


def hdl_register_map(text: str) -> RegisterMap:
    """The register map implemented by ``pn_axil_regs.v``."""
    src = strip_comments(text)
    params = verilog_localparams(src)
    rm = RegisterMap("HDL (pn_axil_regs.v)")
    for name, value in params.items():
        if name.startswith("A_"):
            short = name[2:]
            rm.offsets[HDL_REGISTER_ALIASES.get(short, short)] = value
    rm.id_value = params.get("ID_VALUE")
    rm.num_fields = params.get("NUM_FIELDS")
    block = re.search(r"\blayer_block\s*=\s*raddr\s*\[\s*(\d+)\s*:\s*(\d+)\s*\]", src)
    fld = re.search(r"\bfield_num\s*=\s*raddr\s*\[\s*(\d+)\s*:\s*(\d+)\s*\]", src)
    if block and "LAYER_BLOCK_FIRST" in params:
        rm.layer_stride = 1 << int(block.group(2))
        rm.layer_base = params["LAYER_BLOCK_FIRST"] << int(block.group(2))
    if fld:
        rm.field_stride = 1 << int(fld.group(2))
    # CONTROL: the write data bit each control register (or wire) takes
    control: dict[str, tuple[int, int]] = {}
    for m in re.finditer(r"\b(\w+)\s*<?=(?!=)[^;]*?\bs_axil_wdata\s*\[\s*(\d+)\s*\]\s*;", src):
        control[_canonical(m.group(1))] = (int(m.group(2)), int(m.group(2)))
    rm.bits["CONTROL"] = control
    # STATUS: positions in the read concatenation
    status = re.search(r"\bA_STATUS\s*:\s*read_value\s*=\s*\{(.*?)\}\s*;", src, flags=re.DOTALL)
    if status:
        widths = verilog_widths(src)
        fields: dict[str, tuple[int, int]] = {}
        pos = 0
        for item in reversed(_split_top(status.group(1))):
            literal = re.fullmatch(r"(\d+)'[bdh]\w+", item)
            if literal:
                pos += int(literal.group(1))
                continue
            w = widths.get(item)
            if w is None:
                raise SpecError(f"pn_axil_regs.v: STATUS holds {item!r} of unknown width")
            fields[_canonical(item)] = (pos, pos + w - 1)
            pos += w
        rm.bits["STATUS"] = fields
    return rm


def docs_register_map(text: str) -> RegisterMap:
    """The register table of docs/hardware.md."""
    rm = RegisterMap("docs/hardware.md")
    row = re.compile(r"^\|\s*(0x[0-9A-Fa-f]+)\s*\|\s*`([A-Z0-9_]+)`\s*\|\s*([^|]*)\|(.*)\|\s*$")
    layer = re.compile(r"^\|\s*(0x[0-9A-Fa-f]+)\s*\+\s*(0x[0-9A-Fa-f]+)\s*[·*×x]\s*l\s*\+\s*"
                       r"(\d+)\s*[·*×x]\s*f\s*\|(.*)$")
    for line in text.splitlines():
        m = row.match(line)
        if m:
            name = m.group(2)
            rm.offsets[name] = int(m.group(1), 16)
            meaning = m.group(4)
            if "reserved" in meaning.lower():
                rm.reserved.add(name)
            if name == "ID":
                idm = re.search(r"`(0x[0-9A-Fa-f]+)`", meaning)
                rm.id_value = int(idm.group(1), 16) if idm else None
            if name in BIT_REGISTERS:
                bits: dict[str, tuple[int, int]] = {}
                for b in re.finditer(r"\bbits?\s+(\d+)(?::(\d+))?\s+`([A-Z_]+)`", meaning):
                    hi = int(b.group(1))
                    lo = int(b.group(2)) if b.group(2) else hi
                    bits[b.group(3)] = (lo, hi)
                rm.bits[name] = bits
            continue
        m = layer.match(line)
        if m:
            rm.layer_base, rm.layer_stride = int(m.group(1), 16), int(m.group(2), 16)
            rm.field_stride = int(m.group(3))
            nf = re.search(r"(\d+)\s+fields", m.group(4))
            rm.num_fields = int(nf.group(1)) if nf else None
    if not rm.offsets:
        raise SpecError("docs/hardware.md: no register table found")
    return rm


_module_serial = itertools.count()


def load_driver_module(path: Path) -> ModuleType:
    """Execute a registers module from ``path`` (a copy may sit anywhere; relative imports
    resolve inside ``pynq_neuro.driver``)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"driver constants {path} do not exist")
    name = f"pynq_neuro.driver._overlay_spec_{next(_module_serial)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # any failure of the module is bad input
        raise SpecError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    finally:
        sys.modules.pop(name, None)
    return module


def _mask_field(mask: int) -> tuple[int, int] | None:
    """``(lsb, msb)`` of a contiguous bit mask."""
    if mask <= 0:
        return None
    lo = (mask & -mask).bit_length() - 1
    hi = mask.bit_length() - 1
    return (lo, hi) if mask == ((1 << (hi + 1)) - (1 << lo)) else None


def driver_register_map(module: ModuleType, names: Iterable[str],
                        bit_names: dict[str, Iterable[str]]) -> RegisterMap:
    """Offsets and bit fields the driver module defines for the given register and bit names
    (a bit ``B`` is the mask ``B``, or ``B_MASK`` for a multi-bit field)."""
    rm = RegisterMap(f"driver ({Path(module.__file__ or 'registers.py').name})")
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, int):
            rm.offsets[name] = value
    for attr in ("LAYER_BASE", "LAYER_STRIDE", "ID_VALUE"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            setattr(rm, attr.lower(), value)
    layer_offset = getattr(module, "layer_field_offset", None)
    if callable(layer_offset):
        try:
            f0 = layer_offset(0, 0)
            rm.field_stride = layer_offset(0, 1) - f0
            rm.layer_stride = layer_offset(1, 0) - f0
        except Exception as e:  # any failure of the driver function is bad input
            raise SpecError(f"layer_field_offset of the driver failed: {e}") from e
        rm.layer_base = f0
    try:
        from .compiler.artifact import HW_LAYER_FIELDS
        rm.num_fields = len(HW_LAYER_FIELDS)
    except ImportError:
        pass
    for register, bits in bit_names.items():
        found: dict[str, tuple[int, int]] = {}
        for b in bits:
            value = getattr(module, b, None)
            if not isinstance(value, int):
                value = getattr(module, f"{b}_MASK", None)
            if isinstance(value, int):
                span = _mask_field(value)
                if span is not None:
                    found[b] = span
        rm.bits[register] = found
    return rm


def _hex(v: int | None) -> str:
    return "missing" if v is None else f"0x{v:03X}"


def check_registers(hdl: RegisterMap, docs: RegisterMap, driver: RegisterMap) -> list[Mismatch]:
    """Offsets, layer-field addressing, ID value and CONTROL/STATUS bits agree in all three."""
    out: list[Mismatch] = []
    sources = (hdl, docs, driver)
    names = sorted(set(hdl.offsets) | set(docs.offsets), key=lambda n: (docs.offsets.get(
        n, hdl.offsets.get(n, 0)), n))
    for name in names:
        values = {s.source: s.offsets.get(name) for s in sources}
        if name in docs.reserved and name not in hdl.offsets:
            # documented as reserved, not decoded by the HDL: only docs and driver must agree
            values.pop(hdl.source)
            values = {k: v for k, v in values.items() if v is not None}
        if len(set(values.values())) > 1:
            detail = ", ".join(f"{k} {_hex(v)}" for k, v in values.items())
            out.append(Mismatch("register", name, f"offsets differ: {detail}"))
    for attr, label in (("layer_base", "layer fields base"), ("layer_stride", "layer stride"),
                        ("field_stride", "field stride"), ("num_fields", "fields per layer"),
                        ("id_value", "ID value")):
        values = {s.source: getattr(s, attr) for s in sources}
        if len(set(values.values())) > 1:
            detail = ", ".join(f"{k} {v if v is None else hex(v)}" for k, v in values.items())
            out.append(Mismatch("register", label, f"differs: {detail}"))
    for register in BIT_REGISTERS:
        bit_names = sorted(set(hdl.bits.get(register, {})) | set(docs.bits.get(register, {})))
        for b in bit_names:
            values = {s.source: s.bits.get(register, {}).get(b) for s in sources}
            if len(set(values.values())) > 1:
                detail = ", ".join(f"{k} {_bits(v)}" for k, v in values.items())
                out.append(Mismatch("register", f"{register}.{b}", f"bits differ: {detail}"))
    return out


def _bits(span: tuple[int, int] | None) -> str:
    if span is None:
        return "missing"
    lo, hi = span
    return f"bit {lo}" if lo == hi else f"bits {hi}:{lo}"


# ------------------------------------------------------------------------------------------------
# the overlay scripts


@dataclass(frozen=True)
class Contract:
    """What the driver expects of the overlay."""

    vlnv: str
    core_instance: str
    dma_instance: str
    core_base: int
    core_range: int
    dma_base: int
    dma_length_width: int

    @classmethod
    def from_driver(cls, module: ModuleType) -> Contract:
        names = ("VLNV", "CORE_INSTANCE", "DMA_INSTANCE", "CORE_BASE_ADDRESS", "CORE_RANGE",
                 "DMA_BASE_ADDRESS", "DMA_BUFFER_LENGTH_WIDTH")
        missing = [n for n in names if not hasattr(module, n)]
        if missing:
            raise SpecError(f"the driver constants lack {', '.join(missing)}")
        return cls(*(getattr(module, n) for n in names))

    @classmethod
    def from_scripts(cls, variables: dict[str, str]) -> Contract:
        try:
            return cls(variables["PN_IP_VLNV"], variables["PN_CORE_INSTANCE"],
                       variables["PN_DMA_INSTANCE"], tcl_int(variables["PN_CORE_BASE"]),
                       tcl_int(variables["PN_CORE_RANGE"]), tcl_int(variables["PN_DMA_BASE"]),
                       tcl_int(variables["PN_DMA_LENGTH_WIDTH"]))
        except KeyError as e:
            raise SpecError(f"the overlay scripts do not set {e.args[0]}") from e


# script variable -> (contract attribute, label)
CONTRACT_VARIABLES = {
    "PN_IP_VLNV": ("vlnv", "VLNV"),
    "PN_CORE_INSTANCE": ("core_instance", "core instance"),
    "PN_DMA_INSTANCE": ("dma_instance", "DMA instance"),
    "PN_CORE_BASE": ("core_base", "core base address"),
    "PN_CORE_RANGE": ("core_range", "core address range"),
    "PN_DMA_BASE": ("dma_base", "DMA base address"),
    "PN_DMA_LENGTH_WIDTH": ("dma_length_width", "DMA buffer length width"),
}


def _show(v: object) -> str:
    return f"0x{v:08X}" if isinstance(v, int) and v > 0xFFFF else repr(v)


def check_contract(variables: dict[str, str], driver: Contract) -> list[Mismatch]:
    """VLNV, instance names, addresses and DMA length width: scripts versus driver."""
    out: list[Mismatch] = []
    for var, (attr, label) in CONTRACT_VARIABLES.items():
        expected = getattr(driver, attr)
        if var not in variables:
            out.append(Mismatch("contract", label, f"the scripts do not set {var}"))
            continue
        raw = variables[var]
        got: object = tcl_int(raw) if isinstance(expected, int) else raw
        if got != expected:
            out.append(Mismatch("contract", label,
                                f"scripts ({var}) say {_show(got)}, driver says {_show(expected)}"))
    return out


# expected direction of each logical signal on the slave side
_SLAVE_INPUTS = {"TDATA", "TVALID", "TLAST", "TKEEP", "TSTRB", "TUSER", "TID", "TDEST",
                 "AWADDR", "AWPROT", "AWVALID", "WDATA", "WSTRB", "WVALID", "BREADY",
                 "ARADDR", "ARPROT", "ARVALID", "RREADY"}
_SLAVE_OUTPUTS = {"TREADY", "AWREADY", "WREADY", "BRESP", "BVALID", "ARREADY", "RDATA", "RRESP",
                  "RVALID"}


@dataclass(frozen=True)
class BusInterface:
    name: str
    kind: str
    mode: str
    ports: tuple[tuple[str, str], ...]  # (logical, physical)


def bus_interfaces(variables: dict[str, str]) -> list[BusInterface]:
    """The bus interfaces declared by ``PN_BUS_INTERFACES`` of package_ip.tcl."""
    if "PN_BUS_INTERFACES" not in variables:
        raise SpecError("package_ip.tcl does not set PN_BUS_INTERFACES")
    items = tcl_list(variables["PN_BUS_INTERFACES"])
    if len(items) % 4:
        raise SpecError("PN_BUS_INTERFACES is not a list of name, kind, mode, port map")
    out = []
    for name, kind, mode, ports in zip(*[iter(items)] * 4):
        pm = tcl_list(ports)
        if len(pm) % 2:
            raise SpecError(f"PN_BUS_INTERFACES: the port map of {name} has an odd length")
        out.append(BusInterface(name, kind, mode, tuple(zip(pm[0::2], pm[1::2]))))
    return out


def _reset_is_active_low(module: VerilogModule, port: str) -> bool | None:
    """Polarity of ``port`` from its use in the module body (None: cannot tell)."""
    low = re.search(rf"if\s*\(\s*(?:!|~)\s*{re.escape(port)}\b", module.body)
    high = re.search(rf"if\s*\(\s*{re.escape(port)}\b", module.body) or \
        re.search(rf"<=\s*{re.escape(port)}\s*\|\|", module.body)
    if low and not high:
        return True
    if high and not low:
        return False
    return None


def core_references(bd_script: str, variables: dict[str, str]) -> set[str]:
    """Pins and interfaces of the core cell that build_bd.tcl names (``$PN_CORE_INSTANCE/x``)."""
    refs = set()
    for m in re.finditer(r"\$\{?PN_CORE_INSTANCE\}?/((?:\$\{?\w+\}?|\w)+)", bd_script):
        name = tcl_substitute(m.group(1), variables)
        if name is None:
            raise SpecError(f"build_bd.tcl: cannot resolve the core pin {m.group(1)!r}")
        refs.add(name)
    return refs


def check_interfaces(variables: dict[str, str], module: VerilogModule,
                     bd_script: str | None = None) -> list[Mismatch]:
    """The IP's clock, reset, bus interfaces and parameters against the HDL module; the core
    pins build_bd.tcl connects against the IP's interfaces."""
    out: list[Mismatch] = []
    top = variables.get("PN_CORE_TOP")
    if top != module.name:
        out.append(Mismatch("interface", "top", f"scripts package {top!r}, HDL module is "
                                                f"{module.name!r}"))
    mapped: dict[str, str] = {}

    def claim(port: str, owner: str) -> None:
        if port in mapped:
            out.append(Mismatch("interface", port, f"mapped twice ({mapped[port]} and {owner})"))
        mapped[port] = owner

    for kind, var in (("clock", "PN_CLOCK_PORT"), ("reset", "PN_RESET_PORT")):
        port = variables.get(var)
        if port is None:
            out.append(Mismatch("interface", kind, f"package_ip.tcl does not set {var}"))
            continue
        claim(port, kind)
        p = module.ports.get(port)
        if p is None:
            out.append(Mismatch("interface", kind, f"{var} is {port!r}, which {module.name} does "
                                                   f"not have"))
        elif p.direction != "input" or p.width != 1:
            out.append(Mismatch("interface", kind, f"{port} is a {p.width}-bit {p.direction}, "
                                                   f"expected a 1-bit input"))
    reset = variables.get("PN_RESET_PORT")
    polarity = variables.get("PN_RESET_POLARITY")
    if reset in module.ports:
        active_low = _reset_is_active_low(module, reset)
        expected = None if active_low is None else ("ACTIVE_LOW" if active_low else "ACTIVE_HIGH")
        if expected is not None and polarity != expected:
            out.append(Mismatch("interface", "reset polarity",
                                f"scripts declare {polarity}, {module.name} uses {reset} "
                                f"{expected.lower().replace('_', ' ')}"))
    stream_bits = int(variables.get("PN_STREAM_BITS", "32"))
    core_range = tcl_int(variables.get("PN_CORE_RANGE", "0"))
    interfaces = bus_interfaces(variables)
    for bif in interfaces:
        if bif.mode not in ("slave", "master"):
            out.append(Mismatch("interface", bif.name, f"mode {bif.mode!r} is not slave/master"))
            continue
        for logical, physical in bif.ports:
            subject = f"{bif.name}.{logical}"
            claim(physical, bif.name)
            p = module.ports.get(physical)
            if p is None:
                out.append(Mismatch("interface", subject,
                                    f"maps to {physical}, which {module.name} does not have"))
                continue
            if logical in _SLAVE_INPUTS or logical in _SLAVE_OUTPUTS:
                into = (logical in _SLAVE_INPUTS) == (bif.mode == "slave")
                want = "input" if into else "output"
                if p.direction != want:
                    out.append(Mismatch("interface", subject,
                                        f"{physical} is an {p.direction}, expected an {want}"))
            else:
                out.append(Mismatch("interface", subject, f"unknown logical signal {logical}"))
            if logical == "TDATA" and p.width != stream_bits:
                out.append(Mismatch("interface", subject,
                                    f"{physical} is {p.width} bits, the DMA streams are "
                                    f"{stream_bits} bits (PN_STREAM_BITS)"))
            if logical in ("WDATA", "RDATA") and p.width != 32:
                out.append(Mismatch("interface", subject, f"{physical} is {p.width} bits, "
                                                          f"AXI4-Lite data is 32 bits"))
            if logical in ("AWADDR", "ARADDR") and p.width is not None and \
                    (1 << p.width) != core_range:
                out.append(Mismatch("interface", subject,
                                    f"{physical} is {p.width} bits ({1 << p.width} bytes), the "
                                    f"address range is {core_range:#x} (PN_CORE_RANGE)"))
    for port in module.ports:
        if port not in mapped:
            out.append(Mismatch("interface", port, f"port of {module.name} in no bus interface "
                                                   f"of the IP (it would be left unconnected)"))
    for param in tcl_list(variables.get("PN_CORE_PARAMETERS", "")):
        if param not in module.parameters:
            out.append(Mismatch("parameter", param, f"the scripts set it, {module.name} has no "
                                                    f"such parameter"))
    if bd_script is not None:
        known = {b.name for b in interfaces} | {variables.get("PN_CLOCK_PORT"),
                                                variables.get("PN_RESET_PORT")}
        reg_seg = f"{variables.get('PN_REGISTER_BUS')}/{variables.get('PN_ADDRESS_BLOCK')}"
        if variables.get("PN_REGISTER_BUS") not in {b.name for b in interfaces
                                                    if b.kind == "aximm" and b.mode == "slave"}:
            out.append(Mismatch("interface", "register bus",
                                f"PN_REGISTER_BUS {variables.get('PN_REGISTER_BUS')!r} is not an "
                                f"AXI slave interface of the IP"))
        for ref in sorted(core_references(bd_script, variables)):
            if ref not in known and ref != reg_seg:
                out.append(Mismatch("block design", ref, f"build_bd.tcl connects "
                                                         f"{variables.get('PN_CORE_INSTANCE')}/"
                                                         f"{ref}, which the IP does not have"))
    return out


# ------------------------------------------------------------------------------------------------
# all checks


@dataclass
class OverlaySpec:
    """Everything read from one set of :class:`OverlayPaths`."""

    variables: dict[str, str]
    module: VerilogModule
    bd_script: str
    hdl: RegisterMap
    docs: RegisterMap
    driver_module: ModuleType

    @classmethod
    def read(cls, paths: OverlayPaths) -> OverlaySpec:
        config, package, bd = (_read(p) for p in (paths.config_tcl, paths.package_tcl,
                                                  paths.bd_tcl))
        variables = tcl_variables([config, package])
        top = variables.get("PN_CORE_TOP")
        if not top:
            raise SpecError(f"{paths.config_tcl} does not set PN_CORE_TOP")
        module = read_module(_read(paths.core_v), top)
        return cls(variables, module, bd, hdl_register_map(_read(paths.regs_v)),
                   docs_register_map(_read(paths.hardware_md)),
                   load_driver_module(paths.registers_py))

    def driver_registers(self) -> RegisterMap:
        names = set(self.hdl.offsets) | set(self.docs.offsets)
        bit_names = {r: set(self.hdl.bits.get(r, {})) | set(self.docs.bits.get(r, {}))
                     for r in BIT_REGISTERS}
        return driver_register_map(self.driver_module, names, bit_names)

    def contract(self) -> Contract:
        return Contract.from_driver(self.driver_module)


def check_overlay(paths: OverlayPaths) -> list[Mismatch]:
    """Every check: (a) interfaces and parameters, (b) scripts versus driver, (c) registers."""
    spec = OverlaySpec.read(paths)
    return (check_interfaces(spec.variables, spec.module, spec.bd_script)
            + check_contract(spec.variables, spec.contract())
            + check_registers(spec.hdl, spec.docs, spec.driver_registers()))


# ------------------------------------------------------------------------------------------------
# dry run of the scripts (tclsh + overlays/dryrun.tcl) and the calls it records


@dataclass(frozen=True)
class DryRun:
    returncode: int
    calls: list[list[str]]
    stdout: str
    stderr: str

    def find(self, command: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == command]


def dry_run(script: Path, args: Sequence[str], work: Path, *, tclsh: str = "tclsh",
            slack: float = 0.5, board: bool = True, timeout_s: float = 120.0) -> DryRun:
    """Run ``script`` under ``overlays/dryrun.tcl`` (stub Vivado commands) in ``work``."""
    script = Path(script).resolve()
    runner = script.parent / "dryrun.tcl"
    if not runner.is_file():
        raise SpecError(f"no {runner}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{script.stem}.calls"
    cmd = [tclsh, str(runner), "-log", str(log), "-work", str(work), "-slack", str(slack),
           "-board", "1" if board else "0", "--", str(script), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=work,
                       check=False)
    calls = [tcl_list(line) for line in log.read_text().splitlines()] if log.exists() else []
    return DryRun(r.returncode, calls, r.stdout, r.stderr)


def _option(call: list[str], name: str) -> str | None:
    return call[call.index(name) + 1] if name in call[:-1] else None


# options of the recorded Vivado commands that take a value
_VALUED_OPTIONS = {"-offset", "-range", "-target_address_space", "-vlnv", "-type", "-rule",
                   "-config", "-of_objects", "-dir", "-net"}


def _positional(call: list[str]) -> list[str]:
    """The arguments of a recorded call that are neither options nor option values."""
    out, skip = [], False
    for a in call[1:]:
        if skip:
            skip = False
        elif a.startswith("-") and not re.fullmatch(r"-?\d+(\.\d*)?", a):
            skip = a in _VALUED_OPTIONS
        else:
            out.append(a)
    return out


def _dict_config(call: list[str]) -> dict[str, str]:
    items = tcl_list(call[2]) if len(call) > 2 else []
    return dict(zip(items[0::2], items[1::2]))


def check_block_design_calls(run: DryRun, contract: Contract, variables: dict[str, str]
                             ) -> list[Mismatch]:
    """The cells, connections, DMA settings and addresses build_bd.tcl asks Vivado for."""
    out: list[Mismatch] = []
    cells = {_positional(c)[-1]: _option(c, "-vlnv") for c in run.find("create_bd_cell")}
    core, dma = contract.core_instance, contract.dma_instance
    if cells.get(core) != contract.vlnv:
        out.append(Mismatch("block design", core, f"no cell {core} of {contract.vlnv} "
                                                  f"(cells: {cells})"))
    if not str(cells.get(dma, "")).startswith("xilinx.com:ip:axi_dma:"):
        out.append(Mismatch("block design", dma, f"no AXI DMA cell {dma} (cells: {cells})"))
    dma_config: dict[str, str] = {}
    for c in run.find("set_property"):
        if c[1] == "-dict" and c[-1] == dma:
            dma_config.update(_dict_config(c))
    want = {"CONFIG.c_include_sg": "0", "CONFIG.c_sg_length_width": str(contract.dma_length_width),
            "CONFIG.c_m_axis_mm2s_tdata_width": variables.get("PN_STREAM_BITS", "32"),
            "CONFIG.c_s_axis_s2mm_tdata_width": variables.get("PN_STREAM_BITS", "32")}
    for key, value in want.items():
        if dma_config.get(key) != value:
            out.append(Mismatch("block design", f"{dma} {key}",
                                f"set to {dma_config.get(key)!r}, expected {value!r}"))
    # address map
    segments = {_positional(c)[-1]: c for c in run.find("assign_bd_address") if "-offset" in c}
    reg_seg = f"{core}/{variables.get('PN_REGISTER_BUS')}/{variables.get('PN_ADDRESS_BLOCK')}"
    for seg, base, rng in ((reg_seg, contract.core_base, contract.core_range),
                           (f"{dma}/S_AXI_LITE/Reg", contract.dma_base, None)):
        call = segments.get(seg)
        if call is None:
            out.append(Mismatch("block design", seg, "no address assigned"))
            continue
        if tcl_int(_option(call, "-offset") or "-1") != base:
            out.append(Mismatch("block design", seg, f"offset {_option(call, '-offset')}, "
                                                     f"driver expects {base:#010x}"))
        if rng is not None and tcl_int(_option(call, "-range") or "-1") != rng:
            out.append(Mismatch("block design", seg, f"range {_option(call, '-range')}, "
                                                     f"driver expects {rng:#x}"))
    # streams, registers, clock and reset of the core
    links = [set(c[1:]) for c in run.find("connect_bd_intf_net")]
    for a, b in ((f"{dma}/M_AXIS_MM2S", f"{core}/s_axis"),
                 (f"{core}/m_axis", f"{dma}/S_AXIS_S2MM")):
        if {a, b} not in links:
            out.append(Mismatch("block design", f"{a} -> {b}", "not connected"))
    if not any(f"{core}/{variables.get('PN_REGISTER_BUS')}" in link for link in links):
        out.append(Mismatch("block design", f"{core}/{variables.get('PN_REGISTER_BUS')}",
                            "not connected to the GP0 interconnect"))
    nets = [set(c[1:]) for c in run.find("connect_bd_net")]
    clock_pin = f"{core}/{variables.get('PN_CLOCK_PORT')}"
    reset_pin = f"{core}/{variables.get('PN_RESET_PORT')}"
    clock_net = [n for n in nets if clock_pin in n]
    if not clock_net or not any(p.endswith("/FCLK_CLK0") for p in clock_net[0]):
        out.append(Mismatch("block design", clock_pin, "not on the FCLK_CLK0 net"))
    reset_net = [n for n in nets if reset_pin in n]
    want_reset = "peripheral_reset" if variables.get("PN_RESET_POLARITY") == "ACTIVE_HIGH" \
        else "peripheral_aresetn"
    if not reset_net or not any(p.endswith("/" + want_reset) for p in reset_net[0]):
        out.append(Mismatch("block design", reset_pin,
                            f"not driven by proc_sys_reset's {want_reset} "
                            f"({variables.get('PN_RESET_POLARITY')})"))
    fclk = [v for c in run.find("set_property") if c[1] == "-dict"
            for k, v in _dict_config(c).items() if k == "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"]
    if fclk != [variables.get("PN_FCLK_MHZ")]:
        out.append(Mismatch("block design", "FCLK0", f"set to {fclk}, expected "
                                                     f"{variables.get('PN_FCLK_MHZ')} MHz"))
    return out


# ------------------------------------------------------------------------------------------------
# a built .hwh


def check_hwh(text: str, contract: Contract) -> list[Mismatch]:
    """The core and DMA of a Vivado hardware handoff file against the driver contract."""
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as e:
        raise SpecError(f"not a readable .hwh: {e}") from e
    out: list[Mismatch] = []
    modules = {m.get("INSTANCE"): m for m in root.iter("MODULE")}
    core = modules.get(contract.core_instance)
    if core is None:
        out.append(Mismatch("hwh", contract.core_instance, "no such module"))
    elif core.get("VLNV") != contract.vlnv:
        out.append(Mismatch("hwh", contract.core_instance,
                            f"VLNV {core.get('VLNV')}, driver expects {contract.vlnv}"))
    dma = modules.get(contract.dma_instance)
    if dma is None:
        out.append(Mismatch("hwh", contract.dma_instance, "no such module"))
    else:
        params = {p.get("NAME"): p.get("VALUE") for p in dma.iter("PARAMETER")}
        for name, want in (("c_include_sg", "0"),
                           ("c_sg_length_width", str(contract.dma_length_width))):
            if params.get(name) != want:
                out.append(Mismatch("hwh", f"{contract.dma_instance} {name}",
                                    f"{params.get(name)!r}, driver expects {want!r}"))
    ranges: dict[str, list[ET.Element]] = {}
    for r in root.iter("MEMRANGE"):
        if r.get("MEMTYPE") == "REGISTER":
            ranges.setdefault(r.get("INSTANCE", ""), []).append(r)
    for inst, base, size in ((contract.core_instance, contract.core_base, contract.core_range),
                             (contract.dma_instance, contract.dma_base, None)):
        found = ranges.get(inst, [])
        if not found:
            out.append(Mismatch("hwh", inst, "not in the PS address map"))
            continue
        r = found[0]
        lo, hi = int(r.get("BASEVALUE", "-1"), 0), int(r.get("HIGHVALUE", "-1"), 0)
        if lo != base:
            out.append(Mismatch("hwh", inst, f"base {lo:#010x}, driver expects {base:#010x}"))
        if size is not None and hi - lo + 1 != size:
            out.append(Mismatch("hwh", inst, f"range {hi - lo + 1:#x}, driver expects {size:#x}"))
    return out


# ------------------------------------------------------------------------------------------------
# command line


def _report(mismatches: list[Mismatch], what: str) -> int:
    for m in mismatches:
        print(m)
    if mismatches:
        print(f"{what}: {len(mismatches)} mismatch(es)")
        return 1
    print(f"{what}: consistent")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pynq_neuro.overlay_spec",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="overlay scripts vs HDL vs driver vs docs")
    p.add_argument("--root", default=str(repo_root()), help="repository root")
    p = sub.add_parser("check-hwh", help="a built .hwh against the driver constants")
    p.add_argument("hwh")
    p.add_argument("--root", default=str(repo_root()), help="repository root (driver)")
    args = parser.parse_args(argv)
    paths = OverlayPaths.from_root(args.root)
    try:
        if args.command == "check":
            return _report(check_overlay(paths), "overlay")
        contract = Contract.from_driver(load_driver_module(paths.registers_py))
        return _report(check_hwh(_read(Path(args.hwh)), contract), args.hwh)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
