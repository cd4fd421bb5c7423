"""cocotb bench of pn_loader: network.bin parsing over AXI-Stream and the AXI-Lite word port,
memory writes, header and CRC checks, error codes 3..6 and recovery.

The loader is built with the parameters of a small compiled artifact (through a wrapper that
includes its neuro_params.vh); every memory write is checked against the artifact's banks.
Run with ``make sim`` or ``pytest sim/test_pn_loader.py``.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import struct
import sys
from pathlib import Path

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge
    from cocotbext.axi import AxiStreamBus, AxiStreamSource
except ImportError:  # collected by pytest without the simulation extras
    cocotb = None

HERE = Path(__file__).resolve().parent
BUILD = HERE / "sim_build" / "pn_loader"

WRAPPER = """\
`resetall
`timescale 1ns / 1ps
`default_nettype none
`include "neuro_params.vh"
module tb_pn_loader (
    input  wire clk,
    input  wire rst,
    input  wire [31:0] s_axis_tdata,
    input  wire s_axis_tvalid,
    output wire s_axis_tready,
    input  wire s_axis_tlast,
    input  wire [31:0] lite_data,
    input  wire lite_valid,
    output wire lite_ready,
    input  wire clear,
    input  wire idle_ok,
    output wire load_we,
    output wire [2:0] load_layer,
    output wire [1:0] load_kind,
    output wire [7:0] load_bank,
    output wire [15:0] load_addr,
    output wire [`PN_LOAD_BITS-1:0] load_data,
    output wire active,
    output wire load_start,
    output wire load_done,
    output wire load_ok,
    output wire error_valid,
    output wire [7:0] error_code
);
pn_loader #(
    .NUM_LAYERS(`PN_NUM_LAYERS), .V_GROUPS(`PN_V_GROUPS), .V_WORD_BITS(`PN_V_WORD_BITS),
    .V_SYNAPSE_DEPTH(`PN_V_SYNAPSE_DEPTH), .V_INDEX_BITS(`PN_V_INDEX_BITS),
    .V_INDEX_DEPTH(`PN_V_INDEX_DEPTH), .V_LANES(`PN_V_LANES), .V_PARAM_BITS(`PN_V_PARAM_BITS),
    .V_LOCALS(`PN_V_LOCALS), .LOAD_BITS(`PN_LOAD_BITS), .FORMAT_VERSION(`PN_FORMAT_VERSION)
) dut (
    .clk(clk), .rst(rst), .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast), .lite_data(lite_data),
    .lite_valid(lite_valid), .lite_ready(lite_ready), .clear(clear), .idle_ok(idle_ok),
    .load_we(load_we), .load_layer(load_layer), .load_kind(load_kind), .load_bank(load_bank),
    .load_addr(load_addr), .load_data(load_data), .active(active), .load_start(load_start),
    .load_done(load_done), .load_ok(load_ok), .error_valid(error_valid),
    .error_code(error_code)
);
endmodule
`resetall
"""

KINDS = {"synapse": 0, "index": 1, "params": 2}


def _artifacts() -> tuple[Path, Path, Path]:
    """A, B (same hardware) and C (other hardware)."""
    from pynq_neuro.compiler.mapping import Folding
    from pynq_neuro.rtl.regression import tiny_artifacts

    a, b = tiny_artifacts(BUILD / "nets")
    c, _ = tiny_artifacts(BUILD / "other", seed=5, spec=((6, 4, 3),),
                          foldings=[Folding(2, 3), Folding(1, 5)])
    return a, b, c


def _expected(artifact: Path) -> dict[tuple[int, int, int], tuple[list[int], int]]:
    from pynq_neuro.compiler.artifact import load_artifact

    art = load_artifact(artifact)
    return {(b.layer, KINDS[b.kind], b.bank): (b.words, b.width) for b in art.banks}


if cocotb is not None:

    class TB:
        def __init__(self, dut, seed: int = 1):
            self.dut = dut
            self.rng = random.Random(seed)
            Clock(dut.clk, 10, unit="ns", impl="gpi").start(start_high=False)
            self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                          dut.rst)
            self.source.log.setLevel(logging.WARNING)
            dut.lite_valid.value = 0
            dut.lite_data.value = 0
            dut.clear.value = 0
            dut.idle_ok.value = 1
            self.a, self.b, self.c = (Path(p) for p in os.environ["PN_LOADER_NETS"].split(":"))
            self.writes: dict[tuple[int, int, int], dict[int, int]] = {}
            self.duplicates = 0
            self.events: list[tuple] = []
            cocotb.start_soon(self._monitor())

        async def reset(self):
            self.dut.rst.value = 1
            await ClockCycles(self.dut.clk, 3)
            self.dut.rst.value = 0
            await ClockCycles(self.dut.clk, 2)

        def clear_log(self):
            self.writes.clear()
            self.events.clear()
            self.duplicates = 0

        def pauses(self, prob: float):
            self.source.set_pause_generator(
                (self.rng.random() < prob for _ in itertools.count()) if prob else None)

        async def _monitor(self):
            d = self.dut
            while True:
                await RisingEdge(d.clk)
                if int(d.load_we.value):
                    key = (int(d.load_layer.value), int(d.load_kind.value),
                           int(d.load_bank.value))
                    bank = self.writes.setdefault(key, {})
                    addr = int(d.load_addr.value)
                    self.duplicates += addr in bank
                    bank[addr] = int(d.load_data.value)
                if int(d.load_start.value):
                    self.events.append(("start",))
                if int(d.error_valid.value):
                    self.events.append(("error", int(d.error_code.value)))
                if int(d.load_done.value):
                    self.events.append(("done", int(d.load_ok.value)))

        async def send_stream(self, data: bytes):
            await self.source.send(data)
            await self.source.wait()
            await ClockCycles(self.dut.clk, 10)

        async def send_lite(self, data: bytes, gap: float = 0.5):
            d = self.dut
            for (word,) in struct.iter_unpack("<I", data):
                while self.rng.random() < gap:
                    await RisingEdge(d.clk)
                d.lite_data.value = word
                d.lite_valid.value = 1
                while True:
                    await RisingEdge(d.clk)
                    if int(d.lite_ready.value):
                        break
                d.lite_valid.value = 0
            await ClockCycles(d.clk, 10)

        def check_memories(self, artifact: Path):
            want = _expected(artifact)
            assert self.duplicates == 0
            assert set(self.writes) == set(want)
            for key, (words, width) in want.items():
                got = self.writes[key]
                assert sorted(got) == list(range(len(words))), key
                # a memory takes the low `width` bits of load_data
                mask = (1 << width) - 1
                assert [got[i] & mask for i in range(len(words))] == words, key

        def blob(self, artifact: Path | None = None) -> bytearray:
            return bytearray((artifact or self.a).joinpath("network.bin").read_bytes())

    @cocotb.test()
    async def stream_load(dut):
        """A valid stream with random pauses writes every word of every bank once."""
        tb = TB(dut, 2)
        await tb.reset()
        tb.pauses(0.3)
        await tb.send_stream(bytes(tb.blob()))
        assert tb.events == [("start",), ("done", 1)]
        tb.check_memories(tb.a)
        assert int(dut.active.value) == 0

    @cocotb.test()
    async def lite_load(dut):
        """The same through the AXI-Lite word port, another network of the same hardware."""
        tb = TB(dut, 3)
        await tb.reset()
        await tb.send_lite(bytes(tb.blob(tb.b)))
        tb.check_memories(tb.b)
        assert tb.events == [("start",), ("done", 1)]

    @cocotb.test()
    async def waits_for_idle(dut):
        """No word is taken while the datapath is busy."""
        tb = TB(dut, 4)
        await tb.reset()
        dut.idle_ok.value = 0
        await tb.source.send(bytes(tb.blob()))
        await ClockCycles(dut.clk, 50)
        assert tb.events == [] and int(dut.s_axis_tready.value) == 0
        dut.idle_ok.value = 1
        await tb.source.wait()
        await ClockCycles(dut.clk, 10)
        tb.check_memories(tb.a)

    async def _error_then_recover(dut, seed: int, corrupt, code: int, lite: bool = False):
        tb = TB(dut, seed)
        await tb.reset()
        tb.pauses(0.2)
        bad = corrupt(tb.blob())
        if lite:
            await tb.send_lite(bytes(bad), gap=0.2)
        else:
            await tb.send_stream(bytes(bad))
        errors = [e for e in tb.events if e[0] == "error"]
        assert errors == [("error", code)], tb.events
        assert ("done", 0) in tb.events
        assert int(dut.active.value) == int(lite)
        if lite:
            dut.clear.value = 1
            await RisingEdge(dut.clk)
            dut.clear.value = 0
            await ClockCycles(dut.clk, 2)
        tb.clear_log()
        if lite:
            await tb.send_lite(bytes(tb.blob()), gap=0.2)
        else:
            await tb.send_stream(bytes(tb.blob()))
        tb.check_memories(tb.a)
        assert tb.events == [("start",), ("done", 1)]

    def _word(index: int, value: int):
        def f(b: bytearray) -> bytearray:
            b[4 * index:4 * index + 4] = struct.pack("<I", value)
            return b
        return f

    @cocotb.test()
    async def bad_magic(dut):
        await _error_then_recover(dut, 5, _word(0, 0x12345678), 3)

    @cocotb.test()
    async def bad_version(dut):
        await _error_then_recover(dut, 6, _word(1, 2), 3)

    @cocotb.test()
    async def bank_count(dut):
        await _error_then_recover(dut, 7, _word(2, 99), 4)

    @cocotb.test()
    async def payload_length(dut):
        await _error_then_recover(dut, 8, _word(3, 7), 6)

    @cocotb.test()
    async def bank_header(dut):
        """Depth of the first bank changed: error 4 before any write."""
        await _error_then_recover(dut, 9, _word(5, 3), 4)

    @cocotb.test()
    async def other_hardware(dut):
        """A network compiled for other hardware is refused (error 4)."""
        tb = TB(dut, 10)
        await tb.reset()
        await tb.send_stream(bytes(tb.blob(tb.c)))
        assert [e for e in tb.events if e[0] == "error"] == [("error", 4)]

    @cocotb.test()
    async def crc_error(dut):
        """A flipped payload bit: every word is written, then error 5."""
        def flip(b: bytearray) -> bytearray:
            b[40] ^= 0x01
            return b
        await _error_then_recover(dut, 11, flip, 5)

    @cocotb.test()
    async def truncated(dut):
        """TLAST in the middle of the payload: error 6."""
        await _error_then_recover(dut, 12, lambda b: b[:400], 6)

    @cocotb.test()
    async def missing_tlast(dut):
        """Words after the CRC (no TLAST on it): error 6, discarded up to TLAST."""
        await _error_then_recover(dut, 13, lambda b: b + bytes(12), 6)

    @cocotb.test()
    async def lite_error_until_clear(dut):
        """A bad AXI-Lite stream is discarded until clear; then a new one loads."""
        await _error_then_recover(dut, 14, _word(0, 0), 3, lite=True)

    @cocotb.test()
    async def lite_crc_error(dut):
        await _error_then_recover(dut, 15, _word(30, 0xFFFFFFFF), 5, lite=True)


def test_pn_loader():
    """pytest entry: compile the small networks, build the loader with Icarus, run."""
    sys.path.insert(0, str(HERE.parent))
    from pynq_neuro.rtl import run_cocotb

    a, b, c = _artifacts()
    BUILD.mkdir(parents=True, exist_ok=True)
    wrapper = BUILD / "tb_pn_loader.v"
    wrapper.write_text(WRAPPER)
    run_cocotb("tb_pn_loader", ["pn_loader.v", wrapper], "test_pn_loader", BUILD,
               includes=[a], extra_env={"PN_LOADER_NETS": f"{a}:{b}:{c}"})


if __name__ == "__main__":
    test_pn_loader()
