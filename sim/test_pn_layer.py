"""cocotb tests of one pn_layer between a Python input frame buffer and output sink.

The input frames are the golden activations entering the layer (frames t < FRAMES_USED of
a few digits), offered through the event interface of pn_frame_buffer (ring of two frames,
random delays before a frame becomes available). The outputs (activations of a hidden
layer, logits of the classifier) must equal the golden model frame by frame, and the
schedule must follow the cycle model exactly:

* the event phase of a frame starts in the first cycle in which the layer is free and the
  frame is valid, and rd_release comes in its last cycle, 2 + max_g (sum over the group's
  events of max(1, words) per active tap, or 1 without taps) cycles after the start;
* a completed output frame's threshold phase starts in the first cycle from the end of the
  event phase in which wr_ready is high and the previous output frame is written; wr_done
  comes ``threshold_cycles`` (LOCALS + 4) cycles after the start, and the layer is free for
  the next event phase ``threshold_busy_cycles`` after the start.

Configuration (``$PN_SIM_CONFIG``): ``artifact``, ``layer``, ``digits``, ``load_port``,
``seed``.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from pn_cocotb import LOAD_PORT, drive, sim_cycle, start_clock
from pn_sim import artifact_banks, load_config
from pynq_neuro.compiler.artifact import load_artifact
from pynq_neuro.compiler.cycles import (FRAME_OVERHEAD, event_costs, threshold_busy_cycles,
                                        threshold_cycles)
from pynq_neuro.compiler.mapping import Folding, map_layer
from pynq_neuro.golden.model import run


def _int(sig) -> int:
    return int(sig.value)


class LayerTB:
    def __init__(self, dut, cfg: dict):
        self.dut = dut
        self.cfg = cfg
        art = load_artifact(cfg["artifact"])
        self.idx = cfg["layer"]
        self.h = art.manifest["hardware"]["layers"][self.idx]
        self.net = art.network
        self.images = np.array(cfg["digits"], dtype=np.uint8).reshape(-1, 28, 28)
        self.res = run(self.net, self.images, trace=True)
        self.lm = map_layer(self.net, self.idx, Folding(self.h["groups"], self.h["lanes"]))
        self.cost = event_costs(self.lm)
        self.G, self.P = self.h["groups"], self.h["lanes"]
        self.classifier = self.idx == len(self.net.layers) - 1
        self.in_bits = int(dut.IN_BITS.value)
        self.out_bits = int(dut.OUT_BITS.value)
        self.chb = int(dut.CH_BITS.value)
        self.rng = random.Random(cfg.get("seed", 0))
        start_clock(dut)

    @property
    def cycle(self) -> int:
        """Clock cycles since the start of the simulation (the same count in every coroutine)."""
        return sim_cycle()

    def idle(self) -> None:
        drive(self.dut, ("rd_frame_valid", "ev_valid", "ev_channel", "ev_value", "wr_ready",
                         *LOAD_PORT))

    async def reset(self) -> None:
        self.idle()
        self.dut.rst.value = 1
        for _ in range(3):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        for _ in range(1000):
            await FallingEdge(self.dut.clk)
            if not _int(self.dut.busy):
                return
        raise AssertionError("busy stuck after reset")

    async def load(self) -> None:
        d = self.dut
        for b in artifact_banks(self.cfg["artifact"]):
            if b["layer"] != self.idx:
                continue
            for addr, word in enumerate(b["words"]):
                d.load_we.value = 1
                d.load_kind.value = b["kind"]
                d.load_bank.value = b["bank"]
                d.load_addr.value = addr
                d.load_data.value = word
                await FallingEdge(d.clk)
        d.load_we.value = 0
        await FallingEdge(d.clk)

    async def _frame_buffer(self, frames: list[tuple[int, int]], acts: np.ndarray,
                            frame_delay: int, rng: random.Random) -> None:
        """Driver: a two-slot frame buffer that offers the head nonzero channel of every group
        of the current frame, pops on ev_pop, frees a slot on rd_release and writes the next
        frame after a random delay of up to ``frame_delay`` cycles."""
        d = self.dut
        G = self.G
        slots: list[dict | None] = [None, None]
        rd = wr = 0
        next_frame = 0
        delay = 0
        while True:
            await FallingEdge(d.clk)
            c = self.cycle
            cur = slots[rd]
            valid = cur is not None and cur["visible"] <= c
            ev_v = ev_c = ev_x = 0
            heads = [None] * G
            if valid:
                for g in range(G):
                    for ch in range(g, len(cur["vals"]), G):
                        if cur["nz"][ch]:
                            heads[g] = ch
                            ev_v |= 1 << g
                            ev_c |= (ch // G) << (g * self.chb)
                            ev_x |= int(cur["vals"][ch]) << (g * self.in_bits)
                            break
            self.offered = cur if valid else None
            d.rd_frame_valid.value = int(valid)
            d.ev_valid.value = ev_v
            d.ev_channel.value = ev_c
            d.ev_value.value = ev_x

            await ReadOnly()
            if valid:
                pop = _int(d.ev_pop)
                for g in range(G):
                    if (pop >> g) & 1 and heads[g] is not None:
                        cur["nz"][heads[g]] = False
                if _int(d.rd_release):
                    slots[rd] = None
                    rd ^= 1
            if delay > 0:
                delay -= 1
            elif next_frame < len(frames) and slots[wr] is None:
                n_d, t = frames[next_frame]
                vals = acts[n_d, t]
                slots[wr] = {"frame": (n_d, t), "vals": vals, "nz": [bool(v) for v in vals],
                             "visible": c + 1}
                wr ^= 1
                next_frame += 1
                delay = rng.randint(0, frame_delay) if frame_delay else 0

    async def _output_sink(self, ready_prob: float, rng: random.Random) -> None:
        """Driver of wr_ready: always ready, or busy for a random time after every output
        frame (``ready_prob`` < 1)."""
        d = self.dut
        sink_free = True
        sink_wait = 0
        while True:
            await FallingEdge(d.clk)
            d.wr_ready.value = int(sink_free)
            await ReadOnly()
            if _int(d.wr_done) and ready_prob < 1.0:
                sink_free = False
                sink_wait = rng.randint(0, 60)
            if not sink_free:
                sink_wait -= 1
                if sink_wait <= 0 and rng.random() < ready_prob:
                    sink_free = True

    async def run(self, frame_delay: int, ready_prob: float) -> dict:
        """Start the frame buffer and the output sink; monitor the layer: every release and
        output frame at the cycle of the cycle model, every output frame equal to the golden
        model."""
        d = self.dut
        h = self.h
        G = self.G
        used, emitted = h["frames_used"], h["frames_emitted"]
        K, S = h["taps"], h["stride"]
        ndig = len(self.images)
        acts = self.res.activations[self.idx]        # (N, T, C) entering the layer
        frames = [(n, t) for n in range(ndig) for t in range(used)]
        completes = {tau * S + K - 1: tau for tau in range(emitted)}

        # schedule bookkeeping
        free_at = 0                 # the layer may start an event phase from this cycle
        frame_no = 0                # frames handled
        start = None
        phase = "event"
        ev_end = None
        t0 = None                   # start of the threshold phase being written
        t_out = None                # start of the threshold phase whose output is being written
        out_idle_at = 0             # the threshold pipeline is empty from this cycle
        out_frame: dict[int, int] = {}
        outputs = 0
        checked_frames = 0
        mask = (1 << self.out_bits) - 1

        self.offered = None
        tasks = [cocotb.start_soon(self._frame_buffer(
                     frames, acts, frame_delay, random.Random(self.rng.getrandbits(32)))),
                 cocotb.start_soon(self._output_sink(
                     ready_prob, random.Random(self.rng.getrandbits(32))))]
        try:
            for _ in range(400_000):
                await FallingEdge(d.clk)
                c = self.cycle
                await ReadOnly()
                cur = self.offered
                valid = cur is not None
                ready = _int(d.wr_ready)
                release = _int(d.rd_release)
                wr_en, wr_done = _int(d.wr_en), _int(d.wr_done)
                wr_base, wr_data = _int(d.wr_base), _int(d.wr_data)

                # ---- schedule checks
                if valid and phase == "event" and start is None and c >= free_at:
                    start = c
                    n_d, t = cur["frame"]
                    work = [0] * G
                    for ch in range(len(cur["vals"])):
                        if cur["vals"][ch]:
                            work[ch % G] += int(self.cost[t, ch])
                    cur["expect_release"] = start + FRAME_OVERHEAD + max(work) - 1
                if release:
                    assert valid and start is not None, f"cycle {c}: release without a frame"
                    assert c == cur["expect_release"], (
                        f"frame {cur['frame']}: release at {c}, cycle model says "
                        f"{cur['expect_release']} (start {start})")
                    t = cur["frame"][1]
                    if t in completes:
                        phase = "threshold"
                        ev_end = c + 1
                        t0 = None
                    else:
                        free_at = c + 1
                    start = None
                    frame_no += 1
                if (phase == "threshold" and t0 is None and ev_end is not None and c >= ev_end
                        and t_out is None and c >= out_idle_at and ready):
                    t0 = t_out = c
                    # the layer is free again while the pipeline writes the output frame
                    phase = "event"
                    free_at = t0 + threshold_busy_cycles(self.lm)
                # ---- output scoreboard
                if wr_en:
                    assert t_out is not None, f"cycle {c}: write outside a threshold phase"
                    for j in range(self.P):
                        out_frame[wr_base + j] = (wr_data >> (j * self.out_bits)) & mask
                if wr_done:
                    assert t_out is not None
                    want = t_out + threshold_cycles(self.lm) - 1
                    assert c == want, f"wr_done at {c}, cycle model says {want} (T0 {t_out})"
                    n_d, tau = outputs // emitted, outputs % emitted
                    O = h["out_channels"]
                    got = [out_frame[o] for o in range(O)]
                    if self.classifier:
                        got = [v - (1 << self.out_bits) if v >> (self.out_bits - 1) else v
                               for v in got]
                        want_v = [int(v) for v in self.res.logits[n_d]]
                    else:
                        want_v = [int(v) for v in self.res.activations[self.idx + 1][n_d, tau]]
                    assert got == want_v, f"digit {n_d} output frame {tau}: {got} != {want_v}"
                    checked_frames += 1
                    outputs += 1
                    out_frame = {}
                    t_out = None
                    out_idle_at = c + 1
                if (frame_no == len(frames) and phase == "event" and t_out is None
                        and c > free_at + 2):
                    break
            else:
                raise AssertionError(f"timeout after {frame_no} of {len(frames)} frames")
        finally:
            for task in tasks:
                task.cancel()
        await FallingEdge(d.clk)
        assert not _int(d.busy), "busy after the last frame"
        return {"frames": frame_no, "outputs": checked_frames}

@cocotb.test()
@cocotb.parametrize((
    ("frame_delay", "ready_prob"),
    [(0, 1.0),     # back-to-back frames, output always free: exact phase lengths
     (25, 0.3)],   # random delays of input frames and a busy output
))
async def test_layer(dut, frame_delay: int, ready_prob: float):
    """Golden outputs and exact phase lengths under an input and output traffic pattern."""
    cfg = load_config()
    tb = LayerTB(dut, cfg)
    await tb.reset()
    if cfg.get("load_port"):
        await tb.load()
    info = await tb.run(frame_delay=frame_delay, ready_prob=ready_prob)
    dut._log.info("frames %d, output frames checked %d", info["frames"], info["outputs"])
