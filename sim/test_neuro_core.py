"""cocotb bench of neuro_core: AXI-Stream pixels in, results out, AXI-Lite registers.

The core is built for a small compiled network ``A`` (neuro_params.vh and memory images); a
second network ``B`` with the same hardware is loaded at run time. Every result is checked by a
scoreboard fed by the golden model of the network currently loaded. Streams see random idle
cycles on the source and random back-pressure on the sink.

Run with ``make sim`` or ``pytest sim/test_neuro_core.py``.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import struct
import sys
from collections import deque
from pathlib import Path

import numpy as np

from pynq_neuro.driver.registers import (  # the register map has one source
    BATCH, BUSY, CLEAR_COUNTERS, CLEAR_ERROR, CONTROL, CORE_VERSION, CYCLES, DIGITS, ERROR,
    FINGERPRINT_HI, FINGERPRINT_LO, ID, INPUT_BITS, INPUT_STALL_CYCLES, LAYER_BASE, LAYER_STRIDE,
    LOAD_DATA, LOAD_DONE, LOAD_MODE, LOAD_OK, LOGITS_ENABLE, NUM_LAYERS, SOFT_RESET, STALL_CYCLES,
    STATUS, VERSION)

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, with_timeout
    from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamSink,
                               AxiStreamSource)
except ImportError:  # collected by pytest without the simulation extras
    cocotb = None

HERE = Path(__file__).resolve().parent
BUILD = HERE / "sim_build" / "neuro_core"


def _artifacts() -> tuple[Path, Path]:
    from pynq_neuro.rtl.regression import tiny_artifacts

    return tiny_artifacts(BUILD / "nets")


if cocotb is not None:

    class TB:
        """Clock, AXI-Lite master, pixel source, result sink and the golden scoreboard."""

        def __init__(self, dut, seed: int = 1):
            from pynq_neuro.compiler.artifact import load_artifact
            from pynq_neuro.rtl.regression import sample_images

            self.dut = dut
            self.rng = random.Random(seed)
            dut.rst.value = 1
            Clock(dut.clk, 10, unit="ns", impl="gpi").start(start_high=False)
            self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
            self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                          dut.rst)
            self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk,
                                      dut.rst)
            for bus in (self.axil.write_if, self.axil.read_if, self.source, self.sink):
                bus.log.setLevel(logging.WARNING)
            a, b = os.environ["PN_CORE_NETS"].split(":")
            self.art = {"A": load_artifact(a), "B": load_artifact(b)}
            self.paths = {"A": Path(a), "B": Path(b)}
            self.loaded = "A"
            self.images = sample_images(64)
            self.expected: deque = deque()   # (digit counter, class, logits)
            self.seq = 0

        # -- set-up ---------------------------------------------------------------------------

        async def reset(self):
            self.dut.rst.value = 1
            await ClockCycles(self.dut.clk, 4)
            self.dut.rst.value = 0
            await ClockCycles(self.dut.clk, 4)
            self.seq = 0
            self.expected.clear()

        def idle_insertion(self, source_pause: float = 0.3, sink_pause: float = 0.3):
            rng = self.rng
            self.source.set_pause_generator(
                (rng.random() < source_pause for _ in itertools.count()) if source_pause
                else None)
            self.sink.set_pause_generator(
                (rng.random() < sink_pause for _ in itertools.count()) if sink_pause else None)
            # removing a generator leaves the pause where it last was
            if not source_pause:
                self.source.pause = False
            if not sink_pause:
                self.sink.pause = False

        async def write(self, addr: int, value: int):
            await self.axil.write_dword(addr, value)

        async def read(self, addr: int) -> int:
            return await self.axil.read_dword(addr)

        # -- digits and scoreboard ------------------------------------------------------------

        def golden(self, images: np.ndarray):
            from pynq_neuro.golden import run

            r = run(self.art[self.loaded].network, images)
            return r.classes.astype(int), np.rint(r.logits).astype(np.int64)

        def expect(self, images: np.ndarray):
            classes, logits = self.golden(images)
            for c, l in zip(classes, logits):
                self.expected.append((self.seq & 0xFFFF, int(c), [int(v) for v in l]))
                self.seq += 1

        async def send(self, images: np.ndarray, expect: bool = True):
            if expect:
                self.expect(images)
            for img in images:
                await self.source.send(img.astype(np.uint8).tobytes())

        async def send_beats(self, data: bytes):
            await self.source.send(data)

        async def check_results(self, logits: bool = True, timeout_us: int = 2000):
            """Receive one packet per expected digit and compare with the golden model."""
            while self.expected:
                frame = await with_timeout(self.sink.recv(), timeout_us, "us")
                words = [w for (w,) in struct.iter_unpack("<I", bytes(frame.tdata))]
                seq, cls, want = self.expected.popleft()
                assert len(words) == (11 if logits else 1), words
                assert words[0] & 0xFFFF0000 == seq << 16, (hex(words[0]), seq)
                assert words[0] & 0xFFF0 == 0
                assert words[0] & 0xF == cls, (words[0] & 0xF, cls)
                if logits:
                    got = [w - (1 << 32) if w >> 31 else w for w in words[1:]]
                    assert got == want, (got, want)

        async def check_packet(self, n: int, logits: bool = True, timeout_us: int = 4000):
            """Receive one packet holding the results of the next ``n`` expected digits."""
            per = 11 if logits else 1
            frame = await with_timeout(self.sink.recv(), timeout_us, "us")
            words = [w for (w,) in struct.iter_unpack("<I", bytes(frame.tdata))]
            assert len(words) == n * per, (len(words), n * per)
            for i in range(n):
                seq, cls, want = self.expected.popleft()
                beat = words[i * per:(i + 1) * per]
                assert beat[0] == (seq << 16) | cls, (hex(beat[0]), seq, cls)
                if logits:
                    got = [w - (1 << 32) if w >> 31 else w for w in beat[1:]]
                    assert got == want, (got, want)

        async def wait_idle(self, cycles: int = 20000):
            for _ in range(cycles // 10):
                await ClockCycles(self.dut.clk, 10)
                if not await self.read(STATUS) & BUSY:
                    return
            raise AssertionError("core stays busy")

        # -- loading --------------------------------------------------------------------------

        def blob(self, name: str) -> bytes:
            return (self.paths[name] / "network.bin").read_bytes()

        async def load_stream(self, data: bytes):
            await self.write(CONTROL, LOAD_MODE | LOGITS_ENABLE)
            await self.source.send(data)
            await self.source.wait()
            await self._load_wait()
            await self.write(CONTROL, LOGITS_ENABLE)

        async def load_lite(self, data: bytes):
            for (w,) in struct.iter_unpack("<I", data):
                await self.write(LOAD_DATA, w)
            await self._load_wait()

        async def expect_loaded(self, name: str):
            """STATUS reports a good load of network ``name``; results are checked against it."""
            status = await self.read(STATUS)
            assert status & LOAD_OK and not status & ERROR, hex(status)
            self.loaded = name

        async def _load_wait(self):
            for _ in range(2000):
                status = await self.read(STATUS)
                if status & LOAD_DONE:
                    return status
            raise AssertionError("load did not finish")

    async def _start(dut, seed: int, logits: bool = True, pauses=(0.3, 0.3)) -> TB:
        tb = TB(dut, seed)
        await tb.reset()
        tb.idle_insertion(*pauses)
        await tb.write(CONTROL, LOGITS_ENABLE if logits else 0)
        return tb

    @cocotb.test()
    async def registers(dut):
        """ID, version, synthesized parameters and fingerprint read back; control bits."""
        from pynq_neuro.compiler.artifact import HW_LAYER_FIELDS

        tb = await _start(dut, 1)
        m = tb.art["A"].manifest
        assert await tb.read(ID) == 0x504E4E31
        version = await tb.read(VERSION)
        assert (version >> 16, version & 0xFFFF) == (m["version"], CORE_VERSION)
        assert await tb.read(NUM_LAYERS) == len(m["hardware"]["layers"])
        assert await tb.read(INPUT_BITS) == m["network"]["input_bits"]
        fp = (await tb.read(FINGERPRINT_HI) << 32) | await tb.read(FINGERPRINT_LO)
        assert f"{fp:016x}" == m["hardware"]["fingerprint"]
        for l, layer in enumerate(m["hardware"]["layers"]):
            for f, key in enumerate(HW_LAYER_FIELDS):
                got = await tb.read(LAYER_BASE + LAYER_STRIDE * l + 4 * f)
                assert got == layer[key], (l, key, got, layer[key])
        # past the last layer and the last field: zero
        assert await tb.read(LAYER_BASE + LAYER_STRIDE * len(m["hardware"]["layers"])) == 0
        assert await tb.read(LAYER_BASE + 4 * len(HW_LAYER_FIELDS)) == 0
        assert await tb.read(0xFFC) == 0
        # control read-back: self-clearing bits read 0
        await tb.write(CONTROL, LOGITS_ENABLE | LOAD_MODE | CLEAR_ERROR | CLEAR_COUNTERS)
        assert await tb.read(CONTROL) == LOGITS_ENABLE | LOAD_MODE
        await tb.write(CONTROL, 0)
        assert await tb.read(CONTROL) == 0
        status = await tb.read(STATUS)
        assert status & (BUSY | ERROR) == 0, hex(status)

    @cocotb.test()
    async def digits_back_to_back(dut):
        """Back-to-back digits with idle cycles on both streams; logits and counters."""
        tb = await _start(dut, 2)
        imgs = tb.images[:24]
        await tb.send(imgs)
        await tb.check_results()
        await tb.wait_idle()
        assert await tb.read(DIGITS) == 24
        assert await tb.read(CYCLES) > 24 * 196
        assert await tb.read(STALL_CYCLES) > 0
        await tb.write(CONTROL, LOGITS_ENABLE | CLEAR_COUNTERS)
        assert await tb.read(DIGITS) == 0
        # the digit counter restarts with the counters
        tb.seq = 0
        await tb.send(tb.images[10:12])
        await tb.check_results()

    @cocotb.test()
    async def full_speed_class_only(dut):
        """No idle cycles, class beats only; the result stream back-pressures the core."""
        tb = await _start(dut, 3, logits=False, pauses=(0.0, 0.0))
        await tb.send(tb.images[12:20])
        await tb.check_results(logits=False)
        assert await tb.read(INPUT_STALL_CYCLES) > 0
        tb.idle_insertion(0.0, 0.9)
        await tb.send(tb.images[20:24])
        await tb.check_results(logits=False)
        assert await tb.read(STALL_CYCLES) > 0

    @cocotb.test()
    async def packets_of_digits(dut):
        """BATCH digits per packet, as a DMA sends them: one TLAST in, one TLAST out."""
        tb = await _start(dut, 9)
        assert await tb.read(BATCH) == 1
        await tb.write(BATCH, 0)
        assert await tb.read(BATCH) == 1
        await tb.write(BATCH, 6)
        assert await tb.read(BATCH) == 6
        # a full packet of six digits and one that ends after four
        for imgs in (tb.images[0:6], tb.images[6:10]):
            tb.expect(imgs)
            await tb.send_beats(b"".join(img.astype(np.uint8).tobytes() for img in imgs))
            await tb.check_packet(len(imgs))
        # class beats only, back to back
        await tb.write(CONTROL, 0)
        imgs = tb.images[10:16]
        tb.expect(imgs)
        await tb.send_beats(b"".join(img.astype(np.uint8).tobytes() for img in imgs))
        await tb.check_packet(6, logits=False)
        await tb.wait_idle()
        assert await tb.read(DIGITS) == 16
        assert await tb.read(STATUS) & ERROR == 0
        await tb.write(BATCH, 1)

    @cocotb.test()
    async def reset_mid_digit(dut):
        """rst and SOFT_RESET in the middle of a digit: weights kept, next digits correct."""
        tb = await _start(dut, 4)
        await tb.send(tb.images[24:25], expect=False)
        await ClockCycles(dut.clk, 150)
        await tb.reset()
        tb.idle_insertion(0.3, 0.3)
        await tb.write(CONTROL, LOGITS_ENABLE)
        await tb.send(tb.images[25:27])
        await tb.check_results()
        # SOFT_RESET while a digit is in the datapath
        await tb.send(tb.images[27:28], expect=False)
        await ClockCycles(dut.clk, 300)
        await tb.write(CONTROL, LOGITS_ENABLE | SOFT_RESET)
        await tb.source.wait()
        await ClockCycles(dut.clk, 5)
        # a result may have left before the reset; drop whatever came out
        await ClockCycles(dut.clk, 200)
        while not tb.sink.empty():
            tb.sink.recv_nowait()
            tb.seq += 1
        await tb.wait_idle()
        await tb.send(tb.images[28:30])
        await tb.check_results()

    @cocotb.test()
    async def malformed_frames(dut):
        """Short, long and unterminated frames set the error and recover without reloading."""
        tb = await _start(dut, 5)
        # complete digits, then a short frame: their results still arrive
        await tb.send(tb.images[30:32])
        await tb.send_beats(tb.images[32].tobytes()[:4 * 90])
        await tb.check_results()
        await tb.wait_idle()
        status = await tb.read(STATUS)
        assert status & ERROR and (status >> 8) & 0xFF == 1, hex(status)
        await tb.send(tb.images[33:35])
        await tb.check_results()
        # the first error is kept
        await tb.send_beats(tb.images[35].tobytes() + bytes(8))
        tb.expect(tb.images[35:36])
        await tb.check_results()
        assert (await tb.read(STATUS) >> 8) & 0xFF == 1
        await tb.write(CONTROL, LOGITS_ENABLE | CLEAR_ERROR)
        assert await tb.read(STATUS) & ERROR == 0
        # long frame: the digit counts, the extra beats are dropped
        await tb.send_beats(tb.images[36].tobytes() + bytes(range(40)))
        tb.expect(tb.images[36:37])
        await tb.send(tb.images[37:38])
        await tb.check_results()
        status = await tb.read(STATUS)
        assert status & ERROR and (status >> 8) & 0xFF == 2, hex(status)
        await tb.write(CONTROL, LOGITS_ENABLE | CLEAR_ERROR)
        # missing TLAST: two digits in one packet, the second is dropped
        await tb.send_beats(tb.images[38].tobytes() + tb.images[39].tobytes())
        tb.expect(tb.images[38:39])
        await tb.send(tb.images[40:42])
        await tb.check_results()
        status = await tb.read(STATUS)
        assert (status >> 8) & 0xFF == 2, hex(status)
        await tb.wait_idle()
        assert await tb.read(DIGITS) == 10

    @cocotb.test()
    async def random_traffic(dut):
        """A random mix of good digits and malformed frames with register polling; every
        complete digit is classified, the first error is reported."""
        tb = await _start(dut, 8, pauses=(0.2, 0.4))
        rng = random.Random(8)
        first_error = None
        n = 0
        for step in range(30):
            img = tb.images[rng.randrange(len(tb.images))]
            kind = rng.random()
            if kind < 0.7:
                await tb.send(img[None])
            elif kind < 0.8:
                await tb.send_beats(img.tobytes()[:4 * rng.randrange(1, 196)])
                first_error = first_error or 1
            elif kind < 0.9:
                await tb.send_beats(img.tobytes() + bytes(4 * rng.randrange(1, 30)))
                tb.expect(img[None])
                first_error = first_error or 2
            else:
                other = tb.images[rng.randrange(len(tb.images))]
                await tb.send_beats(img.tobytes() + other.tobytes())
                tb.expect(img[None])
                first_error = first_error or 2
            n += 1
            if rng.random() < 0.3:
                await tb.read(STATUS)
        await tb.check_results()
        await tb.wait_idle()
        status = await tb.read(STATUS)
        if first_error is None:
            assert not status & ERROR
        else:
            assert status & ERROR and (status >> 8) & 0xFF == first_error, hex(status)
        assert await tb.read(DIGITS) == tb.seq

    @cocotb.test()
    async def load_at_run_time(dut):
        """Load B through the stream, classify; load A through AXI-Lite, classify."""
        tb = await _start(dut, 6)
        await tb.send(tb.images[42:44])
        await tb.check_results()
        tb.idle_insertion(0.0, 0.3)
        await tb.load_stream(tb.blob("B"))
        await tb.expect_loaded("B")
        tb.idle_insertion(0.3, 0.3)
        await tb.send(tb.images[44:50])
        await tb.check_results()
        await tb.load_lite(tb.blob("A"))
        await tb.expect_loaded("A")
        await tb.send(tb.images[50:54])
        await tb.check_results()

    @cocotb.test()
    async def load_errors(dut):
        """A corrupt load stream reports its error; the next good stream loads."""
        tb = await _start(dut, 7, pauses=(0.0, 0.0))
        bad = bytearray(tb.blob("B"))
        bad[100] ^= 0x10
        await tb.load_stream(bytes(bad))
        status = await tb.read(STATUS)
        assert status & LOAD_DONE and not status & LOAD_OK, hex(status)
        assert (status >> 8) & 0xFF == 5, hex(status)
        await tb.write(CONTROL, LOGITS_ENABLE | CLEAR_ERROR)
        await tb.load_stream(tb.blob("B")[:200])     # TLAST too early
        assert (await tb.read(STATUS) >> 8) & 0xFF == 6
        await tb.write(CONTROL, LOGITS_ENABLE | CLEAR_ERROR)
        await tb.load_stream(tb.blob("B"))
        await tb.expect_loaded("B")
        await tb.send(tb.images[54:57])
        await tb.check_results()


def test_neuro_core():
    """pytest entry: compile the networks, build neuro_core with Icarus, run the benches."""
    sys.path.insert(0, str(HERE.parent))
    from pynq_neuro.rtl import hdl_sources, run_cocotb

    a, b = _artifacts()
    run_cocotb("neuro_core", hdl_sources(), "test_neuro_core", BUILD, includes=[a],
               defines={"PN_MEM_DIR": f'"{a}/mem/"'},
               extra_env={"PN_CORE_NETS": f"{a}:{b}"})


if __name__ == "__main__":
    test_neuro_core()
