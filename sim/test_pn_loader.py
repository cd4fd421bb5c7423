"""cocotb bench of pn_loader: network.bin parsing over AXI-Stream and the AXI-Lite word port,
memory writes, header and CRC checks, error codes 3..6 and recovery.

The loader is built with the parameters of a small compiled artifact (read from its
neuro_params.vh); every memory write is checked against the artifact's banks.
Run with ``make sim`` or ``pytest sim/test_pn_loader.py``.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

try:
    import cocotb
    from cocotb.triggers import ClockCycles, RisingEdge

    from pn_cocotb import StreamBench
except ImportError:  # collected by pytest without the simulation extras
    cocotb = None

HERE = Path(__file__).resolve().parent
BUILD = HERE / "sim_build" / "pn_loader"

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

    class TB(StreamBench):
        def __init__(self, dut, seed: int = 1):
            super().__init__(dut, seed, lite_valid=0, lite_data=0, clear=0, idle_ok=1)
            self.a, self.b, self.c = (Path(p) for p in os.environ["PN_LOADER_NETS"].split(":"))
            self.writes: dict[tuple[int, int, int], dict[int, int]] = {}
            self.duplicates = 0
            self.events: list[tuple] = []
            cocotb.start_soon(self._monitor())

        def clear_log(self):
            self.writes.clear()
            self.events.clear()
            self.duplicates = 0

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

    def _flip_payload_bit(b: bytearray) -> bytearray:
        b[40] ^= 0x01
        return b

    @cocotb.test()
    async def other_hardware(dut):
        """A network compiled for other hardware is refused (error 4)."""
        tb = TB(dut, 10)
        await tb.reset()
        await tb.send_stream(bytes(tb.blob(tb.c)))
        assert [e for e in tb.events if e[0] == "error"] == [("error", 4)]

    # (seed, corruption, expected error code, sent over AXI-Lite)
    _REFUSED = [
        cocotb.Param((5, _word(0, 0x12345678), 3, False), "bad_magic"),
        cocotb.Param((6, _word(1, 0xFFFF), 3, False), "bad_version"),
        cocotb.Param((7, _word(2, 99), 4, False), "bank_count"),
        cocotb.Param((8, _word(3, 7), 6, False), "payload_length"),
        # depth of the first bank changed: error 4 before any write
        cocotb.Param((9, _word(5, 3), 4, False), "bank_header"),
        # a flipped payload bit: every word is written, then error 5
        cocotb.Param((11, _flip_payload_bit, 5, False), "crc_error"),
        # TLAST in the middle of the payload: error 6
        cocotb.Param((12, lambda b: b[:400], 6, False), "truncated"),
        # words after the CRC (no TLAST on it): error 6, discarded up to TLAST
        cocotb.Param((13, lambda b: b + bytes(12), 6, False), "missing_tlast"),
        # a bad AXI-Lite stream is discarded until clear; then a new one loads
        cocotb.Param((14, _word(0, 0), 3, True), "lite_error_until_clear"),
        cocotb.Param((15, _word(30, 0xFFFFFFFF), 5, True), "lite_crc_error"),
    ]

    @cocotb.test()
    @cocotb.parametrize(case=_REFUSED)
    async def refused_stream(dut, case):
        """A corrupt network.bin reports its error code; the next good one loads."""
        seed, corrupt, code, lite = case
        await _error_then_recover(dut, seed, corrupt, code, lite=lite)


def test_pn_loader():
    """pytest entry: compile the small networks, build the loader with Icarus, run."""
    sys.path.insert(0, str(HERE.parent))
    from pynq_neuro.rtl import run_cocotb

    from pn_sim import loader_parameters

    a, b, c = _artifacts()
    run_cocotb("pn_loader", ["pn_loader.v"], "test_pn_loader", BUILD,
               parameters=loader_parameters(a), extra_env={"PN_LOADER_NETS": f"{a}:{b}:{c}"})


if __name__ == "__main__":
    test_pn_loader()
