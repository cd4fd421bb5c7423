"""Register map, stream framing and error codes of ``neuro_core`` (docs/hardware.md).

:data:`REGISTER_MAP` is the one source of the register map: the offsets and bit constants
below are read from it, and the Verilog header ``hdl/pn_regmap.vh`` (included by
``pn_axil_regs``; with :data:`CORE_VERSION`), the register table of ``docs/hardware.md`` and the
IP-XACT registers of ``overlays/package_ip.tcl`` are generated from it::

    python -m pynq_neuro.driver.registers --write    # regenerate
    python -m pynq_neuro.driver.registers --check    # exit 1 when a generated block is stale

Numpy only; the layer field order comes from the artifact module, so that the read-back
parameters line up with ``manifest.json`` by construction.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..compiler import limits as _limits
from ..compiler.artifact import HW_LAYER_FIELDS

_core = _limits.LIMITS  # the core's limits (layers, classes, image) have one source

# ------------------------------------------------------------------------------------------------
# IP and block design

VLNV = "pynq-neuro.org:pynq_neuro:neuro_core:1.0"
CORE_INSTANCE = "neuro_core_0"
DMA_INSTANCE = "axi_dma_0"
DMA_VLNV_PREFIX = "xilinx.com:ip:axi_dma:"
CORE_BASE_ADDRESS = 0x43C0_0000
CORE_RANGE = 0x1000
DMA_BASE_ADDRESS = 0x4040_0000
DMA_BUFFER_LENGTH_WIDTH = 26
DMA_MAX_BYTES = (1 << DMA_BUFFER_LENGTH_WIDTH) - 1

# ------------------------------------------------------------------------------------------------
# registers: the one source of the map. hdl/pn_regmap.vh, the register table of
# docs/hardware.md and the IP-XACT description of overlays/package_ip.tcl are generated from
# REGISTER_MAP (python -m pynq_neuro.driver.registers --write; --check exits 1 when stale).


@dataclass(frozen=True)
class Field:
    """A bit field of a register: ``width`` bits from bit ``lsb``."""

    name: str
    lsb: int
    width: int = 1
    note: str = ""            # documentation, after the name
    access: str | None = None  # None: the register's

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1


@dataclass(frozen=True)
class Register:
    """A 32-bit register at byte ``offset``; ``access`` is ``R``, ``W`` or ``RW``."""

    name: str
    offset: int
    access: str
    meaning: str = ""                 # documentation (Markdown), before the fields
    fields: tuple[Field, ...] = ()
    decoded: bool = True              # False: reserved, the core ignores it

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")


ID_VALUE = 0x504E4E31  # "PNN1"
CORE_VERSION = 1

REGISTER_MAP: tuple[Register, ...] = (
    Register("ID", 0x000, "R", '`0x504E4E31` ("PNN1")'),
    Register("VERSION", 0x004, "R",
             f"`{{format version[15:0], core version[15:0]}}` (core version {CORE_VERSION})"),
    Register("CONTROL", 0x008, "RW", fields=(
        Field("SOFT_RESET", 0, note="self-clearing: clears datapath state, keeps weights",
              access="W"),
        Field("LOGITS_ENABLE", 1),
        Field("LOAD_MODE", 2, note="s_axis carries a load stream"),
        Field("CLEAR_ERROR", 3, note="self-clearing", access="W"),
        Field("CLEAR_COUNTERS", 4, note="self-clearing", access="W"))),
    Register("STATUS", 0x00C, "R", fields=(
        Field("BUSY", 0),
        Field("ERROR", 1, note="sticky"),
        Field("ERROR_CODE", 8, 8, note="first error"),
        Field("LOAD_DONE", 16),
        Field("LOAD_OK", 17))),
    Register("DIGITS", 0x010, "R", "results sent"),
    Register("CYCLES", 0x014, "R", "cycles with a digit in flight"),
    Register("STALL_CYCLES", 0x018, "R", "cycles the result stream was back-pressured"),
    Register("INPUT_STALL_CYCLES", 0x01C, "R",
             "cycles the pixel stream was held (`tvalid & !tready`)"),
    Register("LOAD_ADDR", 0x020, "W", "reserved (writes ignored, reads 0)", decoded=False),
    Register("LOAD_DATA", 0x024, "W",
             "AXI-Lite loading: next 32-bit word of the load stream (same format as over the "
             "stream); the write response waits until the loader takes the word"),
    Register("BATCH", 0x028, "RW",
             "digits per stream packet, 1..65535 (reset 1; writing 0 stores 1)"),
    Register("NUM_LAYERS", 0x040, "R", "layers synthesized"),
    Register("INPUT_BITS", 0x044, "R"),
    Register("FINGERPRINT_LO", 0x048, "R",
             "low 32 bits of the hardware fingerprint (hex digits 8..15)"),
    Register("FINGERPRINT_HI", 0x04C, "R", "high 32 bits (hex digits 0..7)"),
    Register("PIXEL_STREAM", 0x050, "R", "format of the s_axis pixel stream", fields=(
        Field("PACKED", 0, note="pixels packed at INPUT_BITS bits by the host; 0: four bytes "
                                "a beat, shifted by the core"),
        Field("PIXELS_PER_BEAT", 8, 8, note="pixels of one 32-bit beat (a row starts on a new "
                                            "beat)"))),
)
# LAYER[l].FIELD[f] at LAYER_BASE + LAYER_STRIDE * l + 4 * f (f in HW_LAYER_FIELDS order)
LAYER_BASE = 0x100
LAYER_STRIDE = 0x80
MAX_LAYERS = _core.max_layers

_REGISTERS = {r.name: r for r in REGISTER_MAP}


def register(name: str) -> Register:
    """The entry of :data:`REGISTER_MAP` called ``name``."""
    return _REGISTERS[name]


# byte offsets
ID = _REGISTERS["ID"].offset
VERSION = _REGISTERS["VERSION"].offset
CONTROL = _REGISTERS["CONTROL"].offset
STATUS = _REGISTERS["STATUS"].offset
DIGITS = _REGISTERS["DIGITS"].offset
CYCLES = _REGISTERS["CYCLES"].offset
STALL_CYCLES = _REGISTERS["STALL_CYCLES"].offset
INPUT_STALL_CYCLES = _REGISTERS["INPUT_STALL_CYCLES"].offset
LOAD_ADDR = _REGISTERS["LOAD_ADDR"].offset
LOAD_DATA = _REGISTERS["LOAD_DATA"].offset
BATCH = _REGISTERS["BATCH"].offset
NUM_LAYERS = _REGISTERS["NUM_LAYERS"].offset
INPUT_BITS = _REGISTERS["INPUT_BITS"].offset
FINGERPRINT_LO = _REGISTERS["FINGERPRINT_LO"].offset
FINGERPRINT_HI = _REGISTERS["FINGERPRINT_HI"].offset
PIXEL_STREAM = _REGISTERS["PIXEL_STREAM"].offset


def _masks(register: str, *fields: str) -> tuple[int, ...]:
    """The masks of the named fields of ``register`` (by name, so the order of the map does
    not matter)."""
    return tuple(_REGISTERS[register].field(name).mask for name in fields)


# CONTROL bits
SOFT_RESET, LOGITS_ENABLE, LOAD_MODE, CLEAR_ERROR, CLEAR_COUNTERS = _masks(
    "CONTROL", "SOFT_RESET", "LOGITS_ENABLE", "LOAD_MODE", "CLEAR_ERROR", "CLEAR_COUNTERS")
CONTROL_STICKY = LOGITS_ENABLE | LOAD_MODE  # the bits that read back

# STATUS bits
BUSY, ERROR, ERROR_CODE_MASK, LOAD_DONE, LOAD_OK = _masks(
    "STATUS", "BUSY", "ERROR", "ERROR_CODE", "LOAD_DONE", "LOAD_OK")
ERROR_CODE_SHIFT = _REGISTERS["STATUS"].field("ERROR_CODE").lsb

# PIXEL_STREAM fields
PACKED, PIXELS_PER_BEAT_MASK = _masks("PIXEL_STREAM", "PACKED", "PIXELS_PER_BEAT")
PIXELS_PER_BEAT_SHIFT = _REGISTERS["PIXEL_STREAM"].field("PIXELS_PER_BEAT").lsb

BATCH_MAX = 0xFFFF

# ------------------------------------------------------------------------------------------------
# streams

IMAGE_ROWS = _core.input_frames
IMAGE_COLS = _core.input_channels
pixels_per_beat = _limits.pixels_per_beat
# the byte stream (four pixels a beat); a packed stream: beats_per_digit
BEATS_PER_ROW = _limits.beats_per_row(8, False)
BEATS_PER_DIGIT = BEATS_PER_ROW * _core.input_frames


def beats_per_digit(input_bits: int, packed: bool) -> int:
    """s_axis beats of one digit: 196 for four bytes a beat, 28 for packed binary pixels."""
    return _limits.beats_per_row(input_bits, packed) * _core.input_frames
NUM_CLASSES = _core.num_classes
RESULT_WORDS = 1                     # beat 0 only
RESULT_WORDS_LOGITS = 1 + NUM_CLASSES
COUNTER_SHIFT = 16                   # beat 0: {counter[15:0], 12'b0, class[3:0]}
COUNTER_MASK = 0xFFFF
CLASS_MASK = 0xF
BEAT0_RESERVED_MASK = 0xFFF0
LOAD_MAGIC = 0x424E4E50              # "PNNB" as a little-endian word

# ------------------------------------------------------------------------------------------------
# error codes (STATUS.ERROR_CODE; the first error is kept until CLEAR_ERROR)

ERROR_CODES: dict[int, str] = {
    1: "TLAST inside a digit (short frame): the partial digit was dropped and the datapath "
       "reset (weights kept)",
    2: "no TLAST on the last beat of the BATCH-th digit of a packet (long frame or missing "
       "TLAST): the digit was classified, beats dropped up to the next TLAST",
    3: "load stream: bad magic or version",
    4: "load stream: bank count or a bank header does not match the synthesized memories",
    5: "load stream: CRC mismatch (memories may be inconsistent: reload the network)",
    6: "load stream: payload length mismatch, or TLAST early or missing on the CRC word",
}


def layer_field_offset(layer: int, field: int | str) -> int:
    """Byte offset of ``LAYER[layer].FIELD[field]`` (a field index or a name of
    ``HW_LAYER_FIELDS``)."""
    f = HW_LAYER_FIELDS.index(field) if isinstance(field, str) else int(field)
    if not 0 <= layer < MAX_LAYERS or not 0 <= f < len(HW_LAYER_FIELDS):
        raise ValueError(f"no register for layer {layer}, field {field!r}")
    return LAYER_BASE + LAYER_STRIDE * layer + 4 * f


def error_meaning(code: int) -> str:
    """The documented meaning of an error code."""
    if code == 0:
        return "no error"
    return ERROR_CODES.get(code, f"unknown error code {code}")


def status_fields(status: int) -> dict[str, object]:
    """Decode a ``STATUS`` word."""
    code = (status & ERROR_CODE_MASK) >> ERROR_CODE_SHIFT
    return {
        "busy": bool(status & BUSY),
        "error": bool(status & ERROR),
        "error_code": code,
        "error_meaning": error_meaning(code) if status & ERROR else "no error",
        "load_done": bool(status & LOAD_DONE),
        "load_ok": bool(status & LOAD_OK),
    }


__all__ = [name for name in sorted(globals()) if name.isupper()]
__all__ += ["Field", "Register", "error_meaning", "layer_field_offset", "register",
            "status_fields"]


def main(argv: list[str] | None = None) -> int:
    """``--write`` / ``--check`` the files generated from :data:`REGISTER_MAP`."""
    from ..overlay.regmap import main as regmap_main  # stdlib only, not needed on the board

    return regmap_main(argv)


if __name__ == "__main__":
    sys.exit(main())
