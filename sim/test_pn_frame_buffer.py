"""cocotb tests of pn_frame_buffer against a Python model of the ring.

Every cycle the outputs (wr_ready, rd_frame_valid and every group's event) must equal the
model: group g's event is the lowest channel c = l*GROUPS + g of the frame at the read
pointer whose activation is nonzero and not yet popped. The producer writes frames of
random activations (about half zero) chunk by chunk in random order with idle cycles;
the consumer pops at random, releases frames when they are empty (sometimes early), and
the test applies a reset in the middle.

Parameters come from the DUT's generics (CHANNELS, BITS, NBUF, GROUPS, WR_WIDTH).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from pynq_neuro.util import ceil_div


class RingModel:
    def __init__(self, channels: int, nbuf: int, groups: int):
        self.C, self.N, self.G = channels, nbuf, groups
        self.reset()

    def reset(self) -> None:
        self.val = [[0] * self.C for _ in range(self.N)]
        self.nz = [[False] * self.C for _ in range(self.N)]
        self.full = [False] * self.N
        self.wr = 0
        self.rd = 0

    @property
    def wr_ready(self) -> bool:
        return not self.full[self.wr]

    @property
    def rd_valid(self) -> bool:
        return self.full[self.rd]

    def event(self, g: int) -> tuple[int, int] | None:
        """(local channel, value) of group g's next event, or None."""
        if not self.rd_valid:
            return None
        for c in range(g, self.C, self.G):
            if self.nz[self.rd][c]:
                return c // self.G, self.val[self.rd][c]
        return None

    def edge(self, wr_en, wr_base, wr_vals, wr_done, pops, release) -> None:
        """Apply one clock edge."""
        events = [self.event(g) for g in range(self.G)]
        if wr_en:
            for j, v in enumerate(wr_vals):
                c = wr_base + j
                if c < self.C:
                    self.val[self.wr][c] = v
                    self.nz[self.wr][c] = v != 0
        if self.rd_valid:
            for g in range(self.G):
                if pops[g] and events[g] is not None:
                    self.nz[self.rd][events[g][0] * self.G + g] = False
            if release:
                self.nz[self.rd] = [False] * self.C
                self.full[self.rd] = False
                self.rd = (self.rd + 1) % self.N
        if wr_done:
            self.full[self.wr] = True
            self.wr = (self.wr + 1) % self.N


class RingBench:
    """Producer and consumer of the ring as coroutines; each publishes the inputs it drove
    this cycle, and the monitor steps the model with them."""

    def __init__(self, dut, model: RingModel, rng: random.Random):
        self.dut = dut
        self.model = model
        self.B = int(dut.BITS.value)
        self.W = int(dut.WR_WIDTH.value)
        self.producer_rng = random.Random(rng.getrandbits(32))
        self.consumer_rng = random.Random(rng.getrandbits(32))
        self.written = (0, 0, [], 0)          # wr_en, wr_base, values, wr_done
        self.read = ([0] * model.G, 0)        # pops, release
        self.tasks: list = []

    def start(self) -> None:
        self.written = (0, 0, [], 0)
        self.read = ([0] * self.model.G, 0)
        self.tasks = [cocotb.start_soon(self._producer()), cocotb.start_soon(self._consumer())]

    def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        self.tasks = []

    async def _producer(self) -> None:
        """Chunks of the frame in random order, wr_done with the last or later."""
        d, m, rng, W, B = self.dut, self.model, self.producer_rng, self.W, self.B
        chunks: list[int] = []
        writing = False
        while True:
            await FallingEdge(d.clk)
            wr_en, wr_base, vals, wr_done = 0, 0, [], 0
            if m.wr_ready and rng.random() < 0.6:
                if not chunks and not writing:
                    chunks = list(range(0, ceil_div(m.C, W) * W, W))
                    rng.shuffle(chunks)
                    writing = True
                if chunks:
                    wr_en = 1
                    wr_base = chunks.pop()
                    vals = [rng.randrange(1, 1 << B) if rng.random() < 0.5 else 0
                            for _ in range(W)]
                if not chunks and rng.random() < 0.7:
                    wr_done = 1
                    writing = False
            data = 0
            for j, v in enumerate(vals):
                data |= v << (j * B)
            d.wr_en.value = wr_en
            d.wr_base.value = wr_base
            d.wr_data.value = data
            d.wr_done.value = wr_done
            self.written = (wr_en, wr_base, vals, wr_done)

    async def _consumer(self) -> None:
        """Random pops; release when empty (or, rarely, early)."""
        d, m, rng = self.dut, self.model, self.consumer_rng
        while True:
            await FallingEdge(d.clk)
            pops = [int(rng.random() < 0.7) for _ in range(m.G)]
            release = 0
            if m.rd_valid:
                empty = all(m.event(g) is None for g in range(m.G))
                if (empty and rng.random() < 0.5) or rng.random() < 0.01:
                    release = 1
            d.ev_pop.value = sum(p << g for g, p in enumerate(pops))
            d.rd_release.value = release
            self.read = (pops, release)


@cocotb.test()
async def test_ring_events(dut):
    C = int(dut.CHANNELS.value)
    B = int(dut.BITS.value)
    N = int(dut.NBUF.value)
    G = int(dut.GROUPS.value)
    chb = int(dut.CH_BITS.value)
    model = RingModel(C, N, G)
    bench = RingBench(dut, model, random.Random(C * 7 + G))
    Clock(dut.clk, 10, unit="ns", impl="gpi").start(start_high=False)

    def idle() -> None:
        dut.wr_en.value = 0
        dut.wr_done.value = 0
        dut.ev_pop.value = 0
        dut.rd_release.value = 0

    dut.rst.value = 1
    idle()
    dut.wr_base.value = 0
    dut.wr_data.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0

    frames_written = frames_read = early = events_checked = 0
    cycles = 3000
    reset_at = cycles // 2
    bench.start()
    try:
        for cycle in range(cycles):
            await FallingEdge(dut.clk)
            # monitor: compare the outputs of this cycle with the model
            assert int(dut.wr_ready.value) == model.wr_ready, f"cycle {cycle}: wr_ready"
            assert int(dut.rd_frame_valid.value) == model.rd_valid, \
                f"cycle {cycle}: rd_frame_valid"
            ev_valid = int(dut.ev_valid.value)
            ev_channel = int(dut.ev_channel.value)
            ev_value = int(dut.ev_value.value)
            for g in range(G):
                want = model.event(g)
                got_valid = (ev_valid >> g) & 1
                assert got_valid == (want is not None), f"cycle {cycle}: ev_valid[{g}]"
                if want is not None:
                    ch = (ev_channel >> (g * chb)) & ((1 << chb) - 1)
                    v = (ev_value >> (g * B)) & ((1 << B) - 1)
                    assert (ch, v) == want, f"cycle {cycle}: group {g} event {(ch, v)} != {want}"
                    events_checked += 1

            if cycle == reset_at:
                bench.stop()
                dut.rst.value = 1
                idle()
                await FallingEdge(dut.clk)
                dut.rst.value = 0
                model.reset()
                bench.start()
                continue

            # the inputs the producer and the consumer drove this cycle step the model
            await ReadOnly()
            wr_en, wr_base, vals, wr_done = bench.written
            pops, release = bench.read
            frames_written += wr_done
            if model.rd_valid and release:
                frames_read += 1
                early += any(model.event(g) is not None for g in range(G))
            model.edge(wr_en, wr_base, vals, wr_done, pops, release)
    finally:
        bench.stop()

    dut._log.info("frames written %d, read %d (%d released early), events checked %d",
                  frames_written, frames_read, early, events_checked)
    assert frames_read > 20 and events_checked > 200
