"""Register-level logic of ``neuro_core`` over any :class:`~pynq_neuro.driver.bus.Bus`.

:class:`NeuroCore` knows the register map and the stream formats; it identifies the core, reads
back the synthesized parameters, runs one batch of digits, streams a network in, decodes the
status and recovers from errors. It does not validate user input or split work into batches
(that is :class:`~pynq_neuro.driver.accelerator.NeuroAccelerator`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import registers as R
from .bus import Bus
from .errors import CoreError, DriverError, check_int

# receive buffer of the drain after a reset: more than the results the core can still hold
DRAIN_WORDS = 4096
DRAIN_TIMEOUT_S = 1e-3
BUSY_POLLS = 8
LOAD_POLL_S = 1.0


@dataclass
class BatchResult:
    """Decoded results of one batch."""

    classes: np.ndarray            # int64 (n,)
    logits: np.ndarray | None      # int64 (n, 10) or None
    counters: np.ndarray           # int64 (n,): digit counter of each result


def pixel_words(digits: np.ndarray, input_bits: int = 8, packed: bool = False) -> np.ndarray:
    """uint32 beats of the s_axis pixel stream for uint8 digits (N, 28, 28).

    Four bytes a beat (196 a digit, pixel ``4m+b`` of a row in bits ``8b+7:8b``), or ``packed``:
    each pixel shifted right by ``8 - input_bits`` as the core would, ``P =
    pixels_per_beat(input_bits)`` of them a beat (pixel ``Pm+b`` of a row in bits
    ``input_bits*(b+1)-1 : input_bits*b``), each row starting on a new beat (28 beats a digit
    for binary pixels)."""
    x = np.ascontiguousarray(digits, dtype=np.uint8)
    if not packed:
        return x.reshape(-1).view("<u4").astype(np.uint32, copy=False)
    per = R.pixels_per_beat(input_bits, True)
    beats = R.beats_per_digit(input_bits, True) // R.IMAGE_ROWS
    v = (x.reshape(-1, R.IMAGE_ROWS, R.IMAGE_COLS) >> (8 - input_bits)).astype(np.uint64)
    pad = beats * per - R.IMAGE_COLS
    v = np.pad(v, ((0, 0), (0, 0), (0, pad))).reshape(len(v), R.IMAGE_ROWS, beats, per)
    shifts = np.arange(per, dtype=np.uint64) * np.uint64(input_bits)
    return np.bitwise_or.reduce(v << shifts, axis=-1).astype(np.uint32).reshape(-1)


def words_digits(words: np.ndarray, input_bits: int = 8, packed: bool = False) -> np.ndarray:
    """The digits (N, 28, 28) uint8 that :func:`pixel_words` sends as ``words`` (whole digits):
    what the core sees of each pixel, its ``input_bits`` high bits (the others are zero for a
    packed stream)."""
    w = np.ascontiguousarray(words, dtype="<u4")
    if not packed:
        return w.view(np.uint8).reshape(-1, R.IMAGE_ROWS, R.IMAGE_COLS)
    per = R.pixels_per_beat(input_bits, True)
    beats = R.beats_per_digit(input_bits, True) // R.IMAGE_ROWS
    shifts = np.arange(per, dtype=np.uint32) * np.uint32(input_bits)
    v = (w.reshape(-1, R.IMAGE_ROWS, beats, 1) >> shifts) & np.uint32((1 << input_bits) - 1)
    v = v.reshape(len(v), R.IMAGE_ROWS, beats * per)[:, :, :R.IMAGE_COLS]
    return (v << np.uint32(8 - input_bits)).astype(np.uint8)


def decode_results(words: np.ndarray, n: int, logits: bool) -> BatchResult:
    """Split a result packet of ``n`` digits; raises :class:`CoreError` when it is malformed."""
    per = R.RESULT_WORDS_LOGITS if logits else R.RESULT_WORDS
    words = np.asarray(words, np.uint32)
    if words.size != n * per:
        raise CoreError(f"result packet has {words.size} words, expected {n * per} "
                        f"({n} digits x {per} words)")
    w = words.reshape(n, per)
    beat0 = w[:, 0].astype(np.int64)
    if np.any(beat0 & R.BEAT0_RESERVED_MASK):
        bad = int(np.flatnonzero(beat0 & R.BEAT0_RESERVED_MASK)[0])
        raise CoreError(f"result {bad}: beat 0 = {int(beat0[bad]):#010x} has reserved bits set "
                        f"(a logit beat where a class beat belongs: the stream is out of step)")
    classes = beat0 & R.CLASS_MASK
    if np.any(classes >= R.NUM_CLASSES):
        bad = int(np.flatnonzero(classes >= R.NUM_CLASSES)[0])
        raise CoreError(f"result {bad}: class {int(classes[bad])} is not a digit class")
    lg = w[:, 1:].view(np.int32).astype(np.int64) if logits else None
    return BatchResult(classes, lg, beat0 >> R.COUNTER_SHIFT)


class NeuroCore:
    """One ``neuro_core`` behind a bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._control = 0          # LOGITS_ENABLE | LOAD_MODE as last written
        self._batch: int | None = None
        self.next_counter = 0      # digit counter expected in the next result

    # -------------------------------------------------------------------------------------------
    # identification and parameters

    def identify(self) -> dict[str, int]:
        """Check the ID register; returns the format and core versions."""
        ident = self.bus.read(R.ID)
        if ident != R.ID_VALUE:
            raise DriverError(f"no neuro_core on the {self.bus.name} bus: ID reads {ident:#010x},"
                              f" expected {R.ID_VALUE:#010x} (wrong overlay or address?)")
        version = self.bus.read(R.VERSION)
        return {"format_version": version >> 16, "core_version": version & 0xFFFF}

    def read_hardware(self) -> dict[str, Any]:
        """ID, versions, fingerprint and every layer field read back from the core; the
        ``layers`` and ``fingerprint`` keys compare directly with an artifact's ``hardware``."""
        info = self.identify()
        num_layers = self.bus.read(R.NUM_LAYERS)
        if not 1 <= num_layers <= R.MAX_LAYERS:
            raise DriverError(f"NUM_LAYERS reads {num_layers}, expected 1..{R.MAX_LAYERS}")
        fp = (self.bus.read(R.FINGERPRINT_HI) << 32) | self.bus.read(R.FINGERPRINT_LO)
        layers = [{name: self.bus.read(R.layer_field_offset(l, f))
                   for f, name in enumerate(R.HW_LAYER_FIELDS)} for l in range(num_layers)]
        stream = self.bus.read(R.PIXEL_STREAM)
        input_bits = self.bus.read(R.INPUT_BITS)
        packed = bool(stream & R.PACKED)
        per = (stream & R.PIXELS_PER_BEAT_MASK) >> R.PIXELS_PER_BEAT_SHIFT
        reserved = stream & ~(R.PACKED | R.PIXELS_PER_BEAT_MASK)
        if reserved or not 1 <= input_bits <= 8 or \
                per != R.pixels_per_beat(input_bits, packed):
            raise DriverError(f"PIXEL_STREAM reads {stream:#010x} (packed {packed}, "
                              f"{per} pixels a beat) with INPUT_BITS {input_bits}: not a stream "
                              f"this driver can send")
        return {"id": R.ID_VALUE, **info, "num_layers": num_layers,
                "input_bits": input_bits, "fingerprint": f"{fp:016x}",
                "packed_pixels": packed, "layers": layers}

    # -------------------------------------------------------------------------------------------
    # control and status

    def _write_control(self, pulses: int = 0) -> None:
        self.bus.write(R.CONTROL, self._control | pulses)

    def set_logits(self, enable: bool) -> None:
        bits = (self._control & ~R.LOGITS_ENABLE) | (R.LOGITS_ENABLE if enable else 0)
        if bits != self._control:
            self._control = bits
            self._write_control()

    def set_load_mode(self, enable: bool) -> None:
        bits = (self._control & ~R.LOAD_MODE) | (R.LOAD_MODE if enable else 0)
        if bits != self._control:
            self._control = bits
            self._write_control()

    def set_batch(self, n: int) -> None:
        """Digits per input packet (1..65535)."""
        n = check_int("BATCH", n, 1, R.BATCH_MAX)
        if n != self._batch:
            self.bus.write(R.BATCH, n)
            self._batch = n

    def soft_reset(self) -> None:
        self._write_control(R.SOFT_RESET)

    def clear_error(self) -> None:
        self._write_control(R.CLEAR_ERROR)

    def clear_counters(self) -> None:
        self._write_control(R.CLEAR_COUNTERS)
        self.next_counter = 0

    def status_word(self) -> int:
        return self.bus.read(R.STATUS)

    def status(self) -> dict[str, Any]:
        """STATUS decoded, the counters, CONTROL and BATCH."""
        s = R.status_fields(self.status_word())
        control = self.bus.read(R.CONTROL)
        return {**s, **self.counters(), "batch": self.bus.read(R.BATCH),
                "logits_enable": bool(control & R.LOGITS_ENABLE),
                "load_mode": bool(control & R.LOAD_MODE)}

    def counters(self) -> dict[str, int]:
        return {"digits": self.bus.read(R.DIGITS), "cycles": self.bus.read(R.CYCLES),
                "stall_cycles": self.bus.read(R.STALL_CYCLES),
                "input_stall_cycles": self.bus.read(R.INPUT_STALL_CYCLES)}

    def error(self) -> CoreError | None:
        """The pending error of STATUS as an exception (not raised), or None."""
        status = self.status_word()
        if not status & R.ERROR:
            return None
        code = (status & R.ERROR_CODE_MASK) >> R.ERROR_CODE_SHIFT
        meaning = R.error_meaning(code)
        return CoreError(f"core error {code}: {meaning}", code=code, meaning=meaning,
                         status=status)

    def check_error(self, context: str = "") -> None:
        """Raise the pending error (after clearing it, so that the core can go on)."""
        err = self.error()
        if err is not None:
            self.clear_error()
            if context:
                err.args = (f"{context}: {err.args[0]}",)
            raise err

    # -------------------------------------------------------------------------------------------
    # recovery

    def initialize(self) -> None:
        """Bring the core and the DMA to a known state: :meth:`recover`, then logits and load
        mode off and BATCH 1."""
        self._control = 0
        self.recover()
        self._batch = None
        self.set_batch(1)

    def recover(self) -> None:
        """After a failed exchange: DMA reset (no more words reach the core), soft reset, drain
        a result the core may still send, then clear the error and the counters (the next
        digit counter is 0). The DMA goes first: words still streaming after the soft reset
        would start a new digit out of step."""
        self._control &= ~R.LOAD_MODE
        self.bus.reset_dma()
        self._write_control(R.SOFT_RESET)
        if self._still_busy():
            try:
                self.bus.transfer(None, DRAIN_WORDS, DRAIN_TIMEOUT_S)
            except DriverError:
                self.bus.reset_dma()
        self._write_control(R.CLEAR_ERROR | R.CLEAR_COUNTERS)
        self.next_counter = 0

    def _still_busy(self) -> bool:
        """BUSY after a soft reset: a result is still held for m_axis (or the datapath is still
        clearing its accumulators, which ends by itself within a few hundred cycles)."""
        for _ in range(BUSY_POLLS):
            if not self.status_word() & R.BUSY:
                return False
        return True

    # -------------------------------------------------------------------------------------------
    # digits

    def run_batch(self, words: np.ndarray, n: int, logits: bool, timeout_s: float) -> BatchResult:
        """Classify one packet of ``n`` digits (``words``: their pixel beats, :func:`pixel_words`).
        Checks the packet length, the digit counters and STATUS; raises DmaTimeout or
        CoreError."""
        self.set_logits(logits)
        self.set_batch(n)
        per = R.RESULT_WORDS_LOGITS if logits else R.RESULT_WORDS
        recv = self.bus.transfer(words, n * per, timeout_s)
        try:
            res = decode_results(recv, n, logits)
        except CoreError as e:
            self.check_error(str(e))
            raise
        expected = (self.next_counter + np.arange(n)) & R.COUNTER_MASK
        if not np.array_equal(res.counters, expected):
            bad = int(np.flatnonzero(res.counters != expected)[0])
            self.check_error("results out of sequence")
            raise CoreError(f"result {bad} carries digit counter {int(res.counters[bad])}, "
                            f"expected {int(expected[bad])} (results of another transfer in the "
                            f"stream, or results lost)")
        self.next_counter = (self.next_counter + n) & R.COUNTER_MASK
        self.check_error(f"batch of {n} digits")
        return res

    # -------------------------------------------------------------------------------------------
    # network loading

    def load_stream(self, words: np.ndarray, timeout_s: float) -> None:
        """Stream ``network.bin`` words (LOAD_MODE); raises CoreError unless LOAD_OK."""
        self.check_error("before loading")
        self.set_load_mode(True)
        try:
            self.bus.transfer(words, 0, timeout_s)
            self._wait_load(timeout_s)
        finally:
            self.set_load_mode(False)
        self._check_load()

    def load_lite(self, words: np.ndarray, timeout_s: float) -> None:
        """Write ``network.bin`` words to LOAD_DATA (AXI-Lite); raises CoreError unless
        LOAD_OK."""
        self.check_error("before loading")
        for w in np.asarray(words, np.uint32).tolist():
            self.bus.write(R.LOAD_DATA, w)
        self._wait_load(timeout_s)
        self._check_load()

    def _wait_load(self, timeout_s: float) -> None:
        deadline = time.monotonic() + min(timeout_s, LOAD_POLL_S)
        while not self.status_word() & R.LOAD_DONE:
            if time.monotonic() > deadline:
                raise CoreError("the load stream was sent but LOAD_DONE did not rise (the loader "
                                "is still waiting for words)", status=self.status_word())

    def _check_load(self) -> None:
        status = self.status_word()
        if status & R.ERROR:
            self.check_error("network load refused by the core")
        if not status & R.LOAD_OK:
            raise CoreError("the load ended without LOAD_OK", status=status)


__all__ = ["BatchResult", "NeuroCore", "decode_results", "pixel_words", "words_digits"]
