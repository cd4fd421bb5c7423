"""cocotb tests of pn_net (the top level, with the parameters of an artifact).

Scoreboard: per digit the class and all 10 logits must equal the numpy golden model on the
artifact's network. Cycles: with back-to-back digits and no back-pressure, the cycle of
every result (and so the cycles per digit and each latency) must equal
``pynq_neuro.compiler.cycles.simulate`` on the same digits.

Configuration (``$PN_SIM_CONFIG``): ``artifact`` (directory), ``digits`` (list of uint8
28x28 images), ``load_port`` (memories start at zero and are loaded through load_*),
``seed``.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from pn_cocotb import LOAD_PORT, drive, sim_cycle, start_clock
from pn_sim import artifact_banks, load_config
from pynq_neuro.compiler.artifact import load_artifact
from pynq_neuro.compiler.cycles import BEATS_PER_ROW, simulate
from pynq_neuro.compiler.mapping import Folding, map_network
from pynq_neuro.golden.model import run

ROWS = 28


def _int(sig) -> int:
    return int(sig.value)


class RowFeeder:
    """Drives the pixel side of pn_net as pn_input does, one decision per cycle.

    A row below ``frames_used`` of layer 0 is written beat by beat while ``px_ready`` is high;
    a later row is never written and takes BEATS_PER_ROW cycles without waiting (the rule of
    the cycle model). ``gap`` adds random idle cycles before rows."""

    def __init__(self, acts: np.ndarray, used0: int, input_bits: int, gap: int = 0,
                 rng: random.Random | None = None):
        self.acts = acts
        self.used0 = used0
        self.ib = input_bits
        self.gap = gap
        self.rng = rng or random.Random(0)
        self.rows = [(d, r) for d in range(len(acts)) for r in range(ROWS)]
        self.pos = 0
        self.beat = 0
        self.wait = None
        self.left = 0
        self.first_beat = [None] * len(acts)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.rows)

    def step(self, cycle: int, px_ready: int) -> tuple[int, int, int, int]:
        """(px_en, px_base, px_data, px_row_done) for this cycle."""
        idle = (0, 0, 0, 0)
        if self.done:
            return idle
        d, r = self.rows[self.pos]
        if self.wait is None:
            self.wait = self.rng.randint(0, self.gap) if self.gap and self.rng.random() < 0.3 else 0
        if self.wait > 0:
            self.wait -= 1
            return idle
        if r < self.used0:
            if not px_ready:
                return idle
            b = self.beat
            if r == 0 and b == 0:
                self.first_beat[d] = cycle
            data = 0
            for k in range(4):
                data |= int(self.acts[d, r, 4 * b + k]) << (k * self.ib)
            self.beat += 1
            last = self.beat == BEATS_PER_ROW
            if last:
                self._next()
            return (1, 4 * b, data, int(last))
        # an unused row
        if self.left == 0:
            self.left = BEATS_PER_ROW
        self.left -= 1
        if self.left == 0:
            self._next()
        return idle

    def _next(self) -> None:
        self.pos += 1
        self.beat = 0
        self.wait = None
        self.left = 0


class NetTB:
    def __init__(self, dut, cfg: dict):
        self.dut = dut
        self.cfg = cfg
        self.art = load_artifact(cfg["artifact"])
        self.hw = self.art.manifest["hardware"]["layers"]
        self.net = self.art.network
        self.images = np.array(cfg["digits"], dtype=np.uint8).reshape(-1, 28, 28)
        self.acts = self.images >> (8 - self.net.input_bits)
        self.used0 = self.hw[0]["frames_used"]
        self.logit_bits = self.hw[-1]["acc_bits"]
        self.golden = run(self.net, self.images)
        self.rng = random.Random(cfg.get("seed", 0))
        self.results: list[tuple[int, list[int], int]] = []
        start_clock(dut)
        self.idle_inputs()

    def idle_inputs(self) -> None:
        drive(self.dut, ("px_en", "px_base", "px_data", "px_row_done", "load_layer", *LOAD_PORT))
        self.dut.res_ready.value = 1

    @property
    def cycle(self) -> int:
        """Clock cycles since the start of the simulation (the same count in every coroutine)."""
        return sim_cycle()

    async def tick(self) -> None:
        await FallingEdge(self.dut.clk)

    async def reset(self, cycles: int = 3) -> None:
        self.dut.rst.value = 1
        self.idle_inputs()
        for _ in range(cycles):
            await self.tick()
        self.dut.rst.value = 0
        await self.tick()
        # partial accumulators are cleared after reset; busy stays high meanwhile
        for _ in range(10000):
            if not _int(self.dut.busy):
                break
            await self.tick()
        assert not _int(self.dut.busy), "busy stuck after reset"

    async def load_memories(self) -> None:
        """Write every bank of the artifact through the load port, one word per cycle."""
        d = self.dut
        for bank in artifact_banks(self.cfg["artifact"]):
            for addr, word in enumerate(bank["words"]):
                d.load_we.value = 1
                d.load_layer.value = bank["layer"]
                d.load_kind.value = bank["kind"]
                d.load_bank.value = bank["bank"]
                d.load_addr.value = addr
                d.load_data.value = word
                await self.tick()
        d.load_we.value = 0
        await self.tick()

    def decode(self) -> tuple[int, list[int]]:
        lb = self.logit_bits
        raw = _int(self.dut.res_logits)
        logits = []
        for o in range(10):
            v = (raw >> (o * lb)) & ((1 << lb) - 1)
            logits.append(v - (1 << lb) if v >> (lb - 1) else v)
        return _int(self.dut.res_class), logits

    async def stream(self, digits: list[int], gap: int = 0,
                     ready_prob: float = 1.0, abort_at: tuple[int, int] | None = None,
                     max_cycles: int = 2_000_000) -> RowFeeder | None:
        """Feed ``digits`` (indices into the configured images) and collect their results.

        The pixel driver and the result sink run as their own coroutines, each with its own
        random stream; this one waits for the results.
        ``abort_at = (k, cycles)``: reset the datapath ``cycles`` cycles after the first
        beat of the k-th digit of the list and return (results so far are kept)."""
        feeder = RowFeeder(self.acts[digits], self.used0, self.net.input_bits, gap,
                           random.Random(self.rng.getrandbits(32)))
        sink_rng = random.Random(self.rng.getrandbits(32))
        d = self.dut
        expect = len(digits)
        got0 = len(self.results)
        self.px_stall_cycles = 0
        self.classifier_stall_cycles = 0
        tasks = [cocotb.start_soon(self._drive_pixels(feeder)),
                 cocotb.start_soon(self._accept_results(ready_prob, sink_rng))]
        try:
            for _ in range(max_cycles):
                await self.tick()
                if abort_at is not None:
                    k, after = abort_at
                    fb = feeder.first_beat[k]
                    if fb is not None and self.cycle >= fb + after:
                        self.busy_at_reset = _int(d.busy)
                        self.layers_at_reset = [
                            (_int(d.g_layer[i].layer_inst.state_reg),
                             _int(d.g_layer[i].layer_inst.t_reg))
                            for i in range(len(self.hw))]
                        self._stop(tasks)
                        await self.reset()
                        return None
                if feeder.done and len(self.results) - got0 >= expect:
                    break
            else:
                raise AssertionError(f"timeout: {len(self.results) - got0} of {expect} results")
        finally:
            self._stop(tasks)
        return feeder

    def _stop(self, tasks: list) -> None:
        for t in tasks:
            t.cancel()
        self.idle_inputs()

    async def _drive_pixels(self, feeder: RowFeeder) -> None:
        """Pixel driver: one decision of the feeder per cycle, at the falling edge."""
        d = self.dut
        while True:
            await self.tick()
            px_ready = _int(d.px_ready)
            en, base, data, done = feeder.step(self.cycle, px_ready)
            if not px_ready and not feeder.done:
                self.px_stall_cycles += 1
            d.px_en.value = en
            d.px_base.value = base
            d.px_data.value = data
            d.px_row_done.value = done

    async def _accept_results(self, ready_prob: float, rng: random.Random) -> None:
        """Result sink and monitor: drives res_ready (random stalls, long stalls that reach
        the pixel side, the first result held until the classifier waits for the argmax)
        and records every accepted result with its cycle."""
        d = self.dut
        last_layer = d.g_layer[len(self.hw) - 1]
        stalled = False
        hold = None
        done_hold = False
        while True:
            await self.tick()
            # outputs depend on registers only: sample them, then drive this cycle's ready
            if ready_prob >= 1.0:
                ready = 1
            elif hold is not None:
                ready = 0
                hold += 1
                if self.classifier_stall_cycles >= 20 or hold > 200_000:
                    hold = None
                    done_hold = True
            elif not done_hold and _int(d.res_valid):
                hold = 0
                ready = 0
            elif stalled:
                stalled = rng.random() >= 0.0015
                ready = 0
            else:
                stalled = rng.random() < 0.01
                ready = int(not stalled and rng.random() < ready_prob)
            d.res_ready.value = ready
            if _int(d.res_valid) and ready:
                cls, logits = self.decode()
                self.results.append((cls, logits, self.cycle))
            if ready_prob < 1.0 and not _int(last_layer.l_wr_ready):
                self.classifier_stall_cycles += 1

    def check(self, digits: list[int], results: list[tuple[int, list[int], int]]) -> None:
        assert len(results) == len(digits), f"{len(results)} results for {len(digits)} digits"
        for k, (di, (cls, logits, _)) in enumerate(zip(digits, results)):
            want_l = [int(v) for v in self.golden.logits[di]]
            want_c = int(self.golden.classes[di])
            assert logits == want_l, f"digit {k} (#{di}): logits {logits} != golden {want_l}"
            assert cls == want_c, f"digit {k} (#{di}): class {cls} != golden {want_c}"


async def _started(dut) -> NetTB:
    """The bench of the configured network after a reset, memories loaded if it has a load port."""
    tb = NetTB(dut, load_config())
    await tb.reset()
    if tb.cfg.get("load_port"):
        await tb.load_memories()
    return tb


@cocotb.test()
async def test_stream_cycles(dut):
    """Back-to-back digits: golden results and cycle-exact agreement with the cycle model."""
    tb = await _started(dut)
    n = min(len(tb.images), tb.cfg.get("stream_digits", 6))
    digits = list(range(n))
    feeder = await tb.stream(digits)
    tb.check(digits, tb.results)
    ties = sum(int(np.sum(l == l.max()) > 1) for l in tb.golden.logits[digits])
    dut._log.info("digits with tied largest logits: %d", ties)
    for _ in range(5):
        await tb.tick()
    assert not _int(dut.busy), "busy after the last result"

    maps = map_network(tb.net, [Folding(h["groups"], h["lanes"]) for h in tb.hw])
    model = simulate(maps, tb.net, tb.images[digits])
    c0 = feeder.first_beat[0]
    rtl_times = np.array([t - c0 for _, _, t in tb.results])
    rtl_latency = np.array([t - fb for (_, _, t), fb in zip(tb.results, feeder.first_beat)])
    model_times = np.asarray(model.result_times)
    dut._log.info("result cycles  RTL %s", rtl_times.tolist())
    dut._log.info("result cycles model %s", model_times.tolist())
    dut._log.info("latency RTL %s model %s", rtl_latency.tolist(),
                  np.asarray(model.datapath_latency).tolist())
    if n > 1:
        rtl_cpd = (rtl_times[-1] - rtl_times[0]) / (n - 1)
        dut._log.info("cycles per digit: RTL %.2f, model %.2f", rtl_cpd, model.cycles_per_digit)
    assert rtl_times.tolist() == model_times.tolist(), (
        f"result cycles differ from the cycle model: RTL {rtl_times.tolist()} "
        f"model {model_times.tolist()}")
    assert rtl_latency.tolist() == np.asarray(model.datapath_latency).tolist()


@cocotb.test()
async def test_backpressure_gaps(dut):
    """Random back-pressure on res_ready and idle gaps between rows."""
    tb = await _started(dut)
    n = min(len(tb.images), tb.cfg.get("stress_digits", 5))
    digits = [int(i) for i in tb.rng.sample(range(len(tb.images)), n)]
    await tb.stream(digits, gap=12, ready_prob=0.5)
    dut._log.info("cycles with px_ready low: %d, with the classifier held by the argmax: %d",
                  tb.px_stall_cycles, tb.classifier_stall_cycles)
    assert tb.classifier_stall_cycles > 0, "the back-pressure never reached the classifier"
    tb.check(digits, tb.results)


@cocotb.test()
async def test_reset_mid_digit(dut):
    """A reset in the middle of a digit; the next digits are exact (weights kept)."""
    tb = await _started(dut)
    n = len(tb.images)
    first = [0, 1 % n]
    # results of the digits before the reset that came out are exact
    await tb.stream(first + [2 % n], abort_at=(1, 300 + tb.rng.randint(0, 200)))
    dut._log.info("reset with (state, frame) of the layers %s", tb.layers_at_reset)
    assert tb.busy_at_reset, "the reset did not hit a digit in flight"
    before = list(tb.results)
    assert len(before) <= 2, f"{len(before)} results before the reset"
    if before:
        tb.check(first[:len(before)], before)
    tb.results = []
    after = [(3 + k) % n for k in range(3)]
    await tb.stream(after, ready_prob=0.7)
    tb.check(after, tb.results)
