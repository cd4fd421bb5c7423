"""Register map, stream framing and error codes of ``neuro_core`` (docs/hardware.md).

Numpy only; the layer field order comes from the artifact module, so that the read-back
parameters line up with ``manifest.json`` by construction.
"""

from __future__ import annotations

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
# registers (byte offsets)

ID = 0x000
VERSION = 0x004
CONTROL = 0x008
STATUS = 0x00C
DIGITS = 0x010
CYCLES = 0x014
STALL_CYCLES = 0x018
INPUT_STALL_CYCLES = 0x01C
LOAD_ADDR = 0x020
LOAD_DATA = 0x024
BATCH = 0x028
NUM_LAYERS = 0x040
INPUT_BITS = 0x044
FINGERPRINT_LO = 0x048
FINGERPRINT_HI = 0x04C
LAYER_BASE = 0x100
LAYER_STRIDE = 0x80
MAX_LAYERS = _core.max_layers

ID_VALUE = 0x504E4E31  # "PNN1"
CORE_VERSION = 1

# CONTROL bits
SOFT_RESET = 1 << 0
LOGITS_ENABLE = 1 << 1
LOAD_MODE = 1 << 2
CLEAR_ERROR = 1 << 3
CLEAR_COUNTERS = 1 << 4
CONTROL_STICKY = LOGITS_ENABLE | LOAD_MODE  # the bits that read back

# STATUS bits
BUSY = 1 << 0
ERROR = 1 << 1
ERROR_CODE_SHIFT = 8
ERROR_CODE_MASK = 0xFF << ERROR_CODE_SHIFT
LOAD_DONE = 1 << 16
LOAD_OK = 1 << 17

BATCH_MAX = 0xFFFF

# ------------------------------------------------------------------------------------------------
# streams

BEATS_PER_ROW = _core.input_channels // 4  # four pixels a beat
BEATS_PER_DIGIT = BEATS_PER_ROW * _core.input_frames
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
__all__ += ["error_meaning", "layer_field_offset", "status_fields"]
