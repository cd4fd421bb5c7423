"""cocotb bench of pn_input: pixel beats to row writes, framing errors and their recovery, for
the byte stream and for packed streams (the build's INPUT_BITS and PACKED come in
``$PN_INPUT_STREAM``; the beats are the driver's :func:`~pynq_neuro.driver.core.pixel_words`).

Run with ``make sim`` (all benches) or ``pytest sim/test_pn_input.py``.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np

try:
    import cocotb
    from cocotb.triggers import ClockCycles, RisingEdge

    from pn_cocotb import StreamBench
except ImportError:  # collected by pytest without the simulation extras
    cocotb = None

FRAMES_USED = 25
# the streams the bench is built for: (INPUT_BITS, PACKED); pytest builds each
STREAMS = {"bytes": (4, 0), "packed1": (1, 1), "packed4": (4, 1)}
STREAM_ENV = "PN_INPUT_STREAM"
INPUT_BITS, PACKED = json.loads(os.environ.get(STREAM_ENV, "[4, 0]"))


def _digit(rng: random.Random) -> np.ndarray:
    img = np.array([rng.randrange(256) for _ in range(784)], np.uint8).reshape(28, 28)
    img[np.array([rng.random() < 0.5 for _ in range(784)]).reshape(28, 28)] = 0
    return img


def _rows_of(img: np.ndarray) -> list[list[int]]:
    """The rows the datapath must receive: shifted pixels of the used rows."""
    return [[int(p) >> (8 - INPUT_BITS) for p in img[r]] for r in range(FRAMES_USED)]


def _words(imgs) -> np.ndarray:
    """The beats of whole digits in the build's stream."""
    from pynq_neuro.driver.core import pixel_words

    return pixel_words(np.asarray(imgs, np.uint8).reshape(-1, 28, 28), INPUT_BITS, bool(PACKED))


def _beats() -> tuple[int, int, int]:
    """Pixels a beat, beats a row and beats a digit of the build's stream."""
    from pynq_neuro.driver import registers as R

    per_digit = R.beats_per_digit(INPUT_BITS, bool(PACKED))
    return R.pixels_per_beat(INPUT_BITS, bool(PACKED)), per_digit // 28, per_digit


if cocotb is not None:

    class TB(StreamBench):
        """Clock, pixel source, random px_ready and a monitor of the row port."""

        def __init__(self, dut, seed: int = 1):
            super().__init__(dut, seed, hold=0, batch=1, px_ready=1)
            self.per_beat, self.per_row, self.beats = _beats()
            self.ready_prob = 1.0
            self.rows: list[list[int]] = []       # completed rows, in order
            self.row = [None] * 28
            self.events: list[tuple[str, int]] = []
            self.violations = 0
            cocotb.start_soon(self._monitor())
            cocotb.start_soon(self._ready())

        def set_idle(self, pause_prob: float, ready_prob: float):
            self.pauses(pause_prob)
            self.ready_prob = ready_prob

        async def _ready(self):
            while True:
                await RisingEdge(self.dut.clk)
                self.dut.px_ready.value = int(self.rng.random() < self.ready_prob)

        async def _monitor(self):
            d = self.dut
            while True:
                await RisingEdge(d.clk)
                if int(d.rst.value):
                    self.row = [None] * 28
                    continue
                if int(d.px_en.value):
                    if not int(d.px_ready.value):
                        self.violations += 1
                    base = int(d.px_base.value)
                    data = int(d.px_data.value)
                    m = (1 << INPUT_BITS) - 1
                    for b in range(self.per_beat):
                        if base + b < 28:
                            self.row[base + b] = (data >> (b * INPUT_BITS)) & m
                if int(d.px_row_done.value):
                    self.rows.append(self.row)
                    self.row = [None] * 28
                if int(d.digit_done.value):
                    last = int(d.digit_last.value)
                    self.events.append(("done" if last else "done+", len(self.rows)))
                if int(d.digit_abort.value):
                    self.events.append(("abort", len(self.rows)))
                    self.row = [None] * 28
                if int(d.error_valid.value):
                    self.events.append((f"error{int(d.error_code.value)}", len(self.rows)))

        async def send_words(self, n_beats: int, imgs=()):
            """One packet (TLAST on its last beat) of ``n_beats``: the beats of the digits
            ``imgs``, then random beats (or only the first ``n_beats`` of the digits)."""
            words = list(_words(imgs).tolist()) if len(imgs) else []
            while len(words) < n_beats:
                words.append(self.rng.getrandbits(32))
            data = np.asarray(words[:n_beats], "<u4").tobytes()
            await self.source.send(data)

        async def drain(self, extra: int = 20):
            await self.source.wait()
            await ClockCycles(self.dut.clk, extra)

        async def next_digit_exact(self):
            """After an error or a reset: a fresh digit arrives intact and alone."""
            self.rows.clear()
            self.events.clear()
            img = _digit(self.rng)
            await self.send_words(self.beats, [img])
            await self.drain()
            assert self.rows == _rows_of(img)
            assert [e for e, _ in self.events] == ["done"]

    @cocotb.test()
    async def digits_back_to_back(dut):
        """Digits with random source pauses and px_ready: every used row arrives intact."""
        tb = TB(dut, 2)
        await tb.reset()
        tb.set_idle(0.3, 0.6)
        imgs = [_digit(tb.rng) for _ in range(4)]
        for img in imgs:
            await tb.send_words(tb.beats, [img])
        await tb.drain()
        want = [r for img in imgs for r in _rows_of(img)]
        assert tb.violations == 0
        assert tb.rows == want
        assert [e for e, _ in tb.events] == ["done"] * 4

    @cocotb.test()
    async def full_speed(dut):
        """Without pauses a digit takes one cycle a beat (196 for bytes, 28 for binary pixels
        packed)."""
        tb = TB(dut, 3)
        await tb.reset()
        img = _digit(tb.rng)
        await tb.send_words(tb.beats, [img])
        start = None
        for cycle in range(400):
            await RisingEdge(dut.clk)
            if start is None and int(dut.s_axis_tvalid.value) and int(dut.s_axis_tready.value):
                start = cycle
            if int(dut.digit_done.value):
                break
        assert start is not None and cycle - start <= tb.beats + 1
        assert tb.rows == _rows_of(img)

    @cocotb.test()
    async def hold_blocks_a_new_digit(dut):
        """hold keeps tready low at a digit boundary only."""
        tb = TB(dut, 4)
        await tb.reset()
        dut.hold.value = 1
        img = _digit(tb.rng)
        await tb.send_words(tb.beats, [img])
        await ClockCycles(dut.clk, 50)
        assert tb.rows == [] and int(dut.active.value) == 0
        dut.hold.value = 0
        await ClockCycles(dut.clk, 3 + tb.beats // 8)
        dut.hold.value = 1     # in the middle of the digit: no effect
        await tb.drain()
        assert tb.rows == _rows_of(img)

    @cocotb.test()
    async def short_frame(dut):
        """TLAST before a digit's last beat: error 1, abort, next digit normal."""
        tb = TB(dut, 5)
        await tb.reset()
        tb.set_idle(0.2, 0.8)
        short = tb.beats // 2 + 2
        await tb.send_words(short)
        await tb.drain()
        rows = (short - 1) // tb.per_row   # complete rows before the beat with the early TLAST
        assert ("error1", rows) in tb.events and any(e == "abort" for e, _ in tb.events)
        await tb.next_digit_exact()

    @cocotb.test()
    @cocotb.parametrize(case=[cocotb.Param((6, 0.2, 0.8, False), "long_frame"),
                              cocotb.Param((7, 0.0, 1.0, True), "missing_tlast")])
    async def tail_dropped(dut, case):
        """No TLAST on a digit's last beat: the digit counts, error 2, the beats that follow
        (four random beats of a long frame, or a second digit in a packet of one) are dropped
        up to TLAST."""
        seed, pause_prob, ready_prob, second_digit = case
        tb = TB(dut, seed)
        await tb.reset()
        tb.set_idle(pause_prob, ready_prob)
        img1 = _digit(tb.rng)
        extra = [_digit(tb.rng)] if second_digit else []
        img2 = _digit(tb.rng)
        await tb.send_words(tb.beats * (1 + len(extra)) + (0 if extra else 4), [img1, *extra])
        await tb.send_words(tb.beats, [img2])
        await tb.drain()
        assert tb.rows == _rows_of(img1) + _rows_of(img2)
        assert [e for e, _ in tb.events] == ["done", "error2", "done"]

    @cocotb.test()
    async def packets_of_digits(dut):
        """BATCH = 3: a packet of three digits with one TLAST; a packet that ends early at a
        digit boundary; a third digit without TLAST (error 2, dropped up to TLAST)."""
        tb = TB(dut, 9)
        await tb.reset()
        dut.batch.value = 3
        tb.set_idle(0.2, 0.7)
        imgs = [_digit(tb.rng) for _ in range(9)]
        B = tb.beats
        await tb.send_words(3 * B, imgs[0:3])           # full packet
        await tb.send_words(2 * B, imgs[3:5])           # ends after two digits
        await tb.send_words(3 * B + 5, imgs[5:8])       # no TLAST on digit 3
        await tb.send_words(B, imgs[8:9])
        await tb.drain()
        assert tb.violations == 0
        assert tb.rows == [r for img in imgs for r in _rows_of(img)]
        assert [e for e, _ in tb.events] == ["done+", "done+", "done", "done+", "done",
                                             "done+", "done+", "done", "error2", "done"]

    @cocotb.test()
    async def reset_mid_digit(dut):
        """A reset in the middle of a digit restarts at beat 0."""
        tb = TB(dut, 8)
        await tb.reset()
        await tb.send_words(tb.beats, [_digit(tb.rng)])
        await ClockCycles(dut.clk, tb.beats // 3)
        tb.source.clear()
        await tb.reset()
        await tb.next_digit_exact()


def run_stream(stream: str) -> None:
    """Build pn_input with Icarus for one stream of :data:`STREAMS` and run the benches
    above."""
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent))
    from pynq_neuro.rtl import run_cocotb

    bits, packed = STREAMS[stream]
    run_cocotb("pn_input", ["pn_input.v"], "test_pn_input",
               here / "sim_build" / f"pn_input_{stream}",
               parameters={"INPUT_BITS": bits, "PACKED": packed, "FRAMES_USED": FRAMES_USED},
               extra_env={STREAM_ENV: json.dumps([bits, packed])})


def test_pn_input():
    """pytest entry: every stream of :data:`STREAMS`."""
    for name in STREAMS:
        run_stream(name)


if __name__ == "__main__":
    test_pn_input()
