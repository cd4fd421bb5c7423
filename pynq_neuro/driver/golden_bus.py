"""A numpy model of ``neuro_core`` at the bus level: the ``golden`` backend.

:class:`GoldenBus` implements :class:`~pynq_neuro.driver.bus.Bus` without hardware. It mirrors
the behaviour of ``hdl/neuro_core.v`` that a driver can observe:

* the register file of ``pn_axil_regs`` (ID, VERSION, CONTROL with self-clearing bits, STATUS with
  the sticky first error, counters, BATCH, LOAD_DATA, parameter read-back from the artifact's
  ``hardware`` section and fingerprint);
* the input framing of ``pn_input`` (196 beats per digit, or the artifact's packed stream,
  packets of up to BATCH digits, errors 1 and 2) and the result stream (beat 0 ``{counter[15:0], 12'b0, class[3:0]}``, logits
  sign-extended when LOGITS_ENABLE, TLAST on the result of the digit that ended a packet);
* the load stream of ``pn_loader`` word by word (magic, version, bank headers, payload length,
  CRC; errors 3-6; memories are written as the words arrive, like the RTL);
* classification by the golden model on the network held in the memories, and cycle counts
  (CYCLES, :meth:`GoldenBus.cycles`) from the compiler's cycle model.

The model is transaction level: a transfer consumes its whole send, then the receive takes the
results. Results the receive does not take stay in the core, like results held back by a
stalled S2MM channel.

Memory stays bounded for any packet size: the golden model and the cycle model take a packet
:data:`CHUNK_DIGITS` digits at a time (results are bit for bit those of one pass). The cycle
model then streams each chunk on its own, so a packet longer than a chunk is modeled with the
pipeline filling again at every chunk boundary: its CYCLES count exceeds that of one
back-to-back stream by at most one digit latency per chunk (a few hundredths of a percent).
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..compiler.artifact import (BANK_KINDS, VERSION as FORMAT_VERSION, Artifact, ArtifactError,
                                 Bank, load_artifact, network_from_banks)
from ..golden.network import IntegerNetwork, NetworkError
from ..util import ceil_div
from . import registers as R
from .bus import as_words
from .core import words_digits
from .errors import DmaTimeout, DriverError, InputError, check_int, check_positive

KIND_NAMES = {v: k for k, v in BANK_KINDS.items()}
# digits the golden model and the cycle model take at once: bounds the memory of a transfer
CHUNK_DIGITS = 1024


class GoldenModelError(DriverError):
    """The golden bus cannot model what was asked (e.g. memories that hold no valid network)."""


# ------------------------------------------------------------------------------------------------
# load stream (pn_loader)


@dataclass
class LoadEvent:
    """What one load word did: a load started, ended (ok or not), or failed with a code."""

    start: bool = False
    done: bool = False
    ok: bool = False
    error: int = 0


class LoadParser:
    """The loader's state machine, one 32-bit word at a time; writes ``memories`` in place."""

    IDLE, HEADER, BANK_HDR, BANK_DATA, CRC, DISCARD = range(6)

    def __init__(self, layers: list[dict], memories: dict[tuple[int, int, int], list[int]],
                 format_version: int = FORMAT_VERSION) -> None:
        self.format_version = format_version
        self.memories = memories
        self.banks: list[tuple[int, int, int, int, int]] = []  # layer, kind, bank, depth, width
        for l, h in enumerate(layers):
            for g in range(h["groups"]):
                self.banks.append((l, 0, g, h["synapse_depth"], h["word_bits"]))
            for g in range(h["groups"]):
                self.banks.append((l, 1, g, h["index_depth"], h["index_bits"]))
            self.banks.append((l, 2, 0, h["locals"], h["lanes"] * h["param_bits"]))
        self.payload_words = sum(4 + d * ceil_div(w, 32) for *_, d, w in self.banks)
        self.written = False  # a memory word was written since the flag was cleared
        self.reset()

    def reset(self) -> None:
        self.state = self.IDLE
        self.src_lite = False
        self.cnt = 0
        self.bank = 0
        self.addr = 0
        self.chunk = 0
        self.value = 0
        self.crc = 0

    @property
    def active(self) -> bool:
        return self.state != self.IDLE

    def feed(self, word: int, last: bool, lite: bool) -> LoadEvent:
        """Take one word (``last``: TLAST; ``lite``: from LOAD_DATA)."""
        ev = LoadEvent()
        err = 0
        st = self.state
        if st == self.IDLE:
            self.src_lite = lite
            ev.start = True
            self.cnt, self.bank, self.addr, self.chunk, self.crc = 1, 0, 0, 0, 0
            if word != R.LOAD_MAGIC:
                err = 3
            elif last:
                err = 6
            else:
                self.state = self.HEADER
        elif st == self.HEADER:
            c = self.cnt
            self.cnt += 1
            if c == 1 and word != self.format_version:
                err = 3
            elif c == 2 and word != len(self.banks):
                err = 4
            elif c == 3 and word != self.payload_words:
                err = 6
            elif last:
                err = 6
            elif c == 3:
                self.state, self.cnt = self.BANK_HDR, 0
        elif st == self.BANK_HDR:
            self.crc = zlib.crc32(word.to_bytes(4, "little"), self.crc)
            layer, kind, bank, depth, width = self.banks[self.bank]
            expected = ((bank << 24) | (kind << 16) | layer, depth, width, depth * ceil_div(width, 32))
            c = self.cnt
            self.cnt += 1
            if word != expected[c]:
                err = 4
            elif last:
                err = 6
            elif c == 3:
                self.state, self.addr, self.chunk = self.BANK_DATA, 0, 0
        elif st == self.BANK_DATA:
            self.crc = zlib.crc32(word.to_bytes(4, "little"), self.crc)
            layer, kind, bank, depth, width = self.banks[self.bank]
            if self.chunk == 0:
                self.value = 0
            self.value |= word << (32 * self.chunk)
            self.chunk += 1
            if self.chunk == ceil_div(width, 32):
                self.memories[(layer, kind, bank)][self.addr] = self.value & ((1 << width) - 1)
                self.written = True
                self.addr += 1
                self.chunk = 0
            if last:
                err = 6
            elif self.chunk == 0 and self.addr == depth:
                self.bank += 1
                self.cnt = 0
                self.state = self.CRC if self.bank == len(self.banks) else self.BANK_HDR
        elif st == self.CRC:
            if word != self.crc:
                err = 5
            elif not last and not self.src_lite:
                err = 6
            else:
                self.state = self.IDLE
                ev.done, ev.ok = True, True
        else:  # DISCARD
            if last:
                self.state = self.IDLE
        if err:
            ev.error, ev.done, ev.ok = err, True, False
            self.state = self.IDLE if last else self.DISCARD
        return ev


# ------------------------------------------------------------------------------------------------
# results


@dataclass
class _Result:
    """One digit's result waiting in the core (the formatter renders beat 0 when it is sent)."""

    cls: int
    logits: list[int]          # ten 32-bit words (sign-extended logits), empty without logits
    last: bool                 # TLAST on the last beat (the digit ended an input packet)
    sent: int = 0              # beats already sent

    @property
    def beats(self) -> int:
        return 1 + len(self.logits)


# ------------------------------------------------------------------------------------------------
# the bus


class GoldenBus:
    """Bus-level model of ``neuro_core`` built for ``artifact`` (a directory or an
    :class:`~pynq_neuro.compiler.artifact.Artifact`); its memories start with the artifact's
    images, like a bitstream built with them."""

    name = "golden"

    def __init__(self, artifact: str | Path | Artifact, *, clock_mhz: float = 100.0) -> None:
        clock_mhz = check_positive("clock_mhz", clock_mhz)
        if isinstance(artifact, Artifact):
            art = artifact
        elif not isinstance(artifact, (str, os.PathLike)):
            raise InputError(f"artifact must be an artifact folder or an Artifact, got "
                             f"{type(artifact).__name__}")
        else:
            try:
                art = load_artifact(artifact)
            except ArtifactError as e:
                raise InputError(f"artifact refused: {e}") from None
            except OSError as e:
                raise InputError(f"artifact {artifact}: {e.strerror or e}") from None
        self.artifact = art
        self.clock_mhz = clock_mhz
        self._manifest = art.manifest
        hw = art.manifest["hardware"]
        self._layers: list[dict] = [dict(l) for l in hw["layers"]]
        self._fingerprint = int(hw["fingerprint"], 16)
        self._input_bits = int(art.manifest["network"]["input_bits"])
        self._packed = art.packed_pixels
        self._beats_per_row = art.beats_per_row
        self._logit_bits = int(self._layers[-1]["acc_bits"])
        self._memories = {(b.layer, BANK_KINDS[b.kind], b.bank): list(b.words) for b in art.banks}
        self._loader = LoadParser(self._layers, self._memories)
        self._net: IntegerNetwork | None = art.network
        self._maps: list | None = None
        # registers
        self._logits_enable = False
        self._load_mode = False
        self._batch = 1
        self._error = False
        self._error_code = 0
        self._load_done = False
        self._load_ok = False
        self._digits = 0
        self._cycles = 0
        self._stall_cycles = 0
        self._input_stall_cycles = 0
        # stream state
        self._results: deque[_Result] = deque()
        self._seq = 0
        # DMA and test hooks
        self._dma_stuck = False
        self._stalls: deque[str | None] = deque()
        self._clock = 0
        self.closed = False

    # -------------------------------------------------------------------------------------------
    # test hooks

    def inject_stall(self, direction: str = "recv", transfers: int = 1, after: int = 0) -> None:
        """Make ``transfers`` exchanges time out, after ``after`` normal ones. ``"send"``: the
        core takes no beat; ``"recv"``: the core takes the digits but its result stream stays
        held back (the results wait in the core, as behind a stalled S2MM channel)."""
        if direction not in ("send", "recv"):
            raise InputError(f"direction must be 'send' or 'recv', got {direction!r}")
        transfers, after = check_int("transfers", transfers, 0), check_int("after", after, 0)
        self._stalls.extend([None] * after + [direction] * transfers)

    @property
    def pending_results(self) -> int:
        """Results waiting in the core."""
        return len(self._results)

    # -------------------------------------------------------------------------------------------
    # registers

    def read(self, offset: int) -> int:
        self._check_open()
        a = int(offset) & 0xFFC
        if a == R.ID:
            return R.ID_VALUE
        if a == R.VERSION:
            return (FORMAT_VERSION << 16) | R.CORE_VERSION
        if a == R.CONTROL:
            return (R.LOAD_MODE if self._load_mode else 0) | (
                R.LOGITS_ENABLE if self._logits_enable else 0)
        if a == R.STATUS:
            return ((R.BUSY if self._busy() else 0) | (R.ERROR if self._error else 0)
                    | (self._error_code << R.ERROR_CODE_SHIFT)
                    | (R.LOAD_DONE if self._load_done else 0) | (R.LOAD_OK if self._load_ok else 0))
        counters = {R.DIGITS: self._digits, R.CYCLES: self._cycles,
                    R.STALL_CYCLES: self._stall_cycles,
                    R.INPUT_STALL_CYCLES: self._input_stall_cycles}
        if a in counters:
            return counters[a] & 0xFFFFFFFF
        if a == R.BATCH:
            return self._batch
        if a == R.NUM_LAYERS:
            return len(self._layers)
        if a == R.INPUT_BITS:
            return self._input_bits
        if a == R.FINGERPRINT_LO:
            return self._fingerprint & 0xFFFFFFFF
        if a == R.FINGERPRINT_HI:
            return self._fingerprint >> 32
        if a == R.PIXEL_STREAM:
            per = R.pixels_per_beat(self._input_bits, self._packed)
            return (R.PACKED if self._packed else 0) | (per << R.PIXELS_PER_BEAT_SHIFT)
        if a >= R.LAYER_BASE:
            layer, field = divmod(a - R.LAYER_BASE, R.LAYER_STRIDE)
            field //= 4
            if layer < len(self._layers) and field < len(R.HW_LAYER_FIELDS):
                return int(self._layers[layer][R.HW_LAYER_FIELDS[field]]) & 0xFFFFFFFF
        return 0

    def write(self, offset: int, value: int) -> None:
        self._check_open()
        a, v = int(offset) & 0xFFC, int(value) & 0xFFFFFFFF
        if a == R.CONTROL:
            self._logits_enable = bool(v & R.LOGITS_ENABLE)
            self._load_mode = bool(v & R.LOAD_MODE)
            if v & R.SOFT_RESET:
                self._soft_reset()
            if v & R.CLEAR_ERROR:
                self._error, self._error_code = False, 0
                if self._loader.state == LoadParser.DISCARD and self._loader.src_lite:
                    self._loader.state = LoadParser.IDLE
            if v & R.CLEAR_COUNTERS:
                self._digits = self._cycles = self._stall_cycles = self._input_stall_cycles = 0
                self._seq = 0
        elif a == R.BATCH:
            self._batch = (v & R.BATCH_MAX) or 1
        elif a == R.LOAD_DATA:
            ld = self._loader
            if (not ld.active and not self._idle_ok()) or (ld.active and not ld.src_lite):
                raise DriverError("LOAD_DATA write would never complete: the loader does not "
                                  "take AXI-Lite words while digits are in the core or a stream "
                                  "load runs")
            self._load_event(ld.feed(v, last=False, lite=True))
            self._clock += 1

    # -------------------------------------------------------------------------------------------
    # DMA

    def transfer(self, send: np.ndarray | None, recv_words: int, timeout_s: float) -> np.ndarray:
        self._check_open()
        if self._dma_stuck:
            raise DriverError("DMA channels are not idle after a timeout: call reset_dma()")
        try:
            words = as_words(send)
        except ValueError as e:
            raise InputError(str(e)) from None
        recv_words = check_int("recv_words", recv_words, 0)
        check_positive("timeout_s", timeout_s, finite=False)   # no wall clock: inf waits forever
        stall = self._stalls.popleft() if self._stalls else None
        if stall == "send" and words is not None:
            self._timeout("MM2S: the core took no beat (stall injected)", timeout_s)
        cycles = 0
        if words is not None:
            cycles = self._take(words, timeout_s)
        if stall == "recv" and recv_words:
            self._timeout("S2MM: the result stream stayed held back (stall injected)",
                                 timeout_s)
        if cycles / (self.clock_mhz * 1e6) > timeout_s:
            self._timeout(f"the exchange needs {cycles} cycles, more than {timeout_s} s "
                                 f"at {self.clock_mhz} MHz", timeout_s)
        self._clock += cycles
        return self._receive(recv_words, timeout_s) if recv_words else np.zeros(0, np.uint32)

    def reset_dma(self) -> None:
        self._check_open()
        self._dma_stuck = False

    def cycles(self) -> int | None:
        return self._clock

    def close(self) -> None:
        self.closed = True

    # -------------------------------------------------------------------------------------------
    # internals

    def _check_open(self) -> None:
        if self.closed:
            raise DriverError("the golden bus is closed")

    def _timeout(self, why: str, timeout_s: float) -> NoReturn:
        self._dma_stuck = True
        raise DmaTimeout(f"DMA exchange did not finish within {timeout_s} s: {why}")

    def _busy(self) -> bool:
        return bool(self._results) or self._loader.active

    def _idle_ok(self) -> bool:
        # the result in the formatter does not block a load; results behind it do
        return len(self._results) <= 1

    def _set_error(self, code: int) -> None:
        if not self._error:
            self._error, self._error_code = True, code

    def _load_event(self, ev: LoadEvent) -> None:
        if ev.start:
            self._load_done = self._load_ok = False
        if ev.error:
            self._set_error(ev.error)
        if ev.done:
            self._load_done, self._load_ok = True, ev.ok
        if self._loader.written:
            self._loader.written = False
            self._net, self._maps = None, None

    def _soft_reset(self) -> None:
        self._loader.reset()
        # the datapath is reset; only the result in the formatter is still sent completely
        while len(self._results) > 1:
            self._results.pop()

    def _take(self, words: np.ndarray, timeout_s: float) -> int:
        """The core takes one MM2S packet (TLAST on the last word); returns its cycles."""
        ld = self._loader
        if self._load_mode:
            if (not ld.active and not self._idle_ok()) or (ld.active and ld.src_lite):
                self._timeout("MM2S: the loader does not take the stream (digits in the core "
                              "or an AXI-Lite load running)", timeout_s)
            n = len(words)
            for i, w in enumerate(words.tolist()):
                self._load_event(ld.feed(w, last=i == n - 1, lite=False))
            return n
        if ld.active:
            self._timeout("MM2S: the input unit holds the first beat while a load runs",
                          timeout_s)
        return self._pixels(words)

    def _pixels(self, words: np.ndarray) -> int:
        """Input framing (pn_input) of one packet: returns the modeled cycles."""
        B = R.beats_per_digit(self._input_bits, self._packed)
        n = len(words)
        starts, lasts = [], []
        pkt, pos = 0, 0
        while n - pos >= B:
            tlast = pos + B == n
            full = pkt + 1 >= self._batch
            starts.append(pos)
            lasts.append(tlast or full)
            pkt = 0 if (tlast or full) else pkt + 1
            pos += B
            if not tlast and full:
                self._set_error(2)  # the rest of the packet is dropped up to TLAST
                pos = n
                break
        if pos < n:
            self._set_error(1)  # TLAST inside a digit: the partial digit is dropped
        if not starts:
            return n
        k = len(starts)  # the digits are consecutive: starts[i] == i * B
        images = words_digits(words[: k * B], self._input_bits, self._packed)
        return self._classify(images, lasts) + (n - pos if pos < n else 0)

    def _network(self) -> IntegerNetwork:
        if self._net is None:
            banks = [Bank("", l, KIND_NAMES[k], b, width, self._memories[(l, k, b)])
                     for l, k, b, _, width in self._loader.banks]
            try:
                self._net = network_from_banks(self._manifest, banks)
            except (ArtifactError, NetworkError, ValueError) as e:
                raise GoldenModelError(f"the memories do not hold a valid network, the golden "
                                       f"model cannot classify ({e}); load a network") from None
        return self._net

    def _cycle_maps(self, net: IntegerNetwork) -> list:
        if self._maps is None:
            from ..compiler.mapping import hardware_maps

            self._maps = hardware_maps(net, self._layers)
        return self._maps

    def _classify(self, images: np.ndarray, lasts: list[bool]) -> int:
        """Classify a packet's digits, :data:`CHUNK_DIGITS` at a time; returns its cycles."""
        return sum(self._classify_chunk(images[s:s + CHUNK_DIGITS], lasts[s:s + CHUNK_DIGITS])
                   for s in range(0, len(images), CHUNK_DIGITS))

    def _classify_chunk(self, images: np.ndarray, lasts: list[bool]) -> int:
        from ..compiler.cycles import simulate
        from ..golden.model import run

        net = self._network()
        res = run(net, images, trace=True)
        report = simulate(self._cycle_maps(net), net, images, res.activations,
                          self._beats_per_row)
        with_logits = self._logits_enable
        B = self._logit_bits
        for cls, logits, last in zip(res.classes.tolist(), res.logits.tolist(), lasts):
            words = []
            if with_logits:
                for v in logits:
                    if B < 32:
                        v = ((int(v) + (1 << (B - 1))) % (1 << B)) - (1 << (B - 1))
                    words.append(int(v) & 0xFFFFFFFF)
            self._results.append(_Result(int(cls) & R.CLASS_MASK, words, last))
        beats = R.RESULT_WORDS_LOGITS if with_logits else R.RESULT_WORDS
        # the model streams the chunk from cycle 0 (its first beat) to the last result beat
        span = int(report.result_times[-1]) + beats
        first = report.result_times - report.latency   # first beats, up to a common offset
        self._cycles += span
        k = len(images)
        beats = R.beats_per_digit(self._input_bits, self._packed)
        self._input_stall_cycles += max(0, int(first[-1] - first[0]) - beats * (k - 1))
        return span

    def _receive(self, recv_words: int, timeout_s: float) -> np.ndarray:
        out: list[int] = []
        while len(out) < recv_words:
            if not self._results:
                self._timeout(f"S2MM: {len(out)} words received, no TLAST (the core has no "
                              f"more results)", timeout_s)
            r = self._results[0]
            if r.sent == 0:
                word = ((self._seq & R.COUNTER_MASK) << R.COUNTER_SHIFT) | r.cls
            else:
                word = r.logits[r.sent - 1]
            out.append(word)
            r.sent += 1
            if r.sent == r.beats:
                self._results.popleft()
                self._seq = (self._seq + 1) & R.COUNTER_MASK
                self._digits += 1
                if r.last:
                    return np.asarray(out, np.uint32)
        self._dma_stuck = True
        raise DriverError(f"S2MM buffer of {recv_words} words filled before TLAST: the packet "
                          f"is longer than the buffer (undefined behaviour on an AXI DMA)")


__all__ = ["GoldenBus", "GoldenModelError", "LoadEvent", "LoadParser"]
