"""Co-simulation server: ``neuro_core`` driven request by request from a client process.

:class:`pynq_neuro.driver.sim_bus.SimBus` starts the simulator with two pipes (requests in,
replies out) and talks to it synchronously; simulated time only advances while a request is
served. Two engines speak the same protocol:

* ``icarus``: ``vvp`` with this module as the cocotb test module. The single test
  :func:`serve` builds the bench (clock, reset, cocotbext-axi AXI-Lite master, an MM2S-like
  stream source and an S2MM-like stream sink) and answers requests. The pipe descriptors come
  in ``$PN_COSIM_REQ_FD`` / ``$PN_COSIM_RESP_FD``, the clock period in ``$PN_COSIM_PERIOD_PS``.
* ``verilator``: :data:`VERILATOR_BENCH`, a plain Verilog bench implementing the same DMA and
  AXI-Lite behaviour, built with ``verilator --binary`` (the pipes are ``+req=`` / ``+resp=``
  files). Icarus evaluates the full-size networks at only tens of cycles per second; the
  Verilator build runs them at tens of thousands.

Protocol (text lines; numbers in hexadecimal except the cycle counter, which is decimal):

==================  =========================================  ==============================
request             meaning                                    reply
==================  =========================================  ==============================
``R off 0 0``       AXI-Lite read                              ``OK cycles value 0``
``W off value 0``   AXI-Lite write                             ``OK cycles 0 0``
``T n m budget``    DMA exchange: ``n`` words follow, one per  ``OK cycles k 0`` + ``k`` words
                    line (MM2S, TLAST on the last); S2MM       ``TO cycles sent got``
                    receives one packet of up to ``m`` words;  ``OV cycles got 0``
                    give up after ``budget`` cycles
``D 0 0 0``         reset both DMA channels                    ``OK cycles 0 0``
``C 0 0 0``         (cycle counter only)                       ``OK cycles 0 0``
``Q 0 0 0``         end the simulation                         ``OK cycles 0 0``
==================  =========================================  ==============================

``TO``: the transfer did not finish (``sent`` words taken by the core, ``got`` words received,
``ffffffff`` when the server does not know);
both channels keep their state until ``D``. ``OV``: the packet was longer than ``m`` words.
``ER cycles message``: a malformed request. The first line, once the core is out of reset, is
``HI cycles 0 0``. ``cycles`` counts clock cycles since the start of the simulation.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import First, Timer
    from cocotb.utils import get_sim_time
    from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                               AxiStreamSink, AxiStreamSource)
except ImportError:  # imported without the simulation extras (e.g. for VERILATOR_BENCH)
    cocotb = None

REQ_FD_ENV = "PN_COSIM_REQ_FD"
RESP_FD_ENV = "PN_COSIM_RESP_FD"
PERIOD_ENV = "PN_COSIM_PERIOD_PS"
WALL_ENV = "PN_COSIM_WALL"          # "base_s,s_per_cycle" of the wall-clock guard
RESET_CYCLES = 8
# longest single wait between checks of the wall-clock guard (clock cycles)
WAIT_CHUNK_CYCLES = 100_000
# default wall-clock guard of one transfer: seconds plus seconds per budget cycle
WALL_DEFAULT = "120,0.05"


if cocotb is not None:

    class DmaSink(AxiStreamSink):
        """S2MM side of an AXI DMA in simple mode: ``tready`` only while a receive is armed,
        and one packet (up to TLAST) per receive."""

        armed = False

        def full(self) -> bool:
            return not self.armed or self.queue_occupancy_frames > 0

        def arm(self) -> None:
            self.armed = True
            self.wake_event.set()

    class CosimBench:
        """The core with its clock, reset, AXI-Lite master and the two DMA channels."""

        def __init__(self, dut, period_ps: int, wall: tuple[float, float]):
            self.dut = dut
            self.period_ps = period_ps
            self.wall_base_s, self.wall_s_per_cycle = wall
            dut.rst.value = 1
            Clock(dut.clk, period_ps, unit="ps", impl="gpi").start(start_high=False)
            self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
            self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                          dut.rst)
            self.sink = DmaSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
            for bus in (self.axil.write_if, self.axil.read_if, self.source, self.sink):
                bus.log.setLevel(logging.WARNING)

        def cycles(self) -> int:
            return int(get_sim_time("ps")) // self.period_ps

        async def run_cycles(self, n: int) -> None:
            await Timer(n * self.period_ps, unit="ps")

        async def reset(self) -> None:
            self.dut.rst.value = 1
            await self.run_cycles(RESET_CYCLES)
            self.dut.rst.value = 0
            await self.run_cycles(RESET_CYCLES)

        async def read(self, offset: int) -> int:
            return int(await self.axil.read_dword(offset))

        async def write(self, offset: int, value: int) -> None:
            await self.axil.write_dword(offset, value & 0xFFFF_FFFF)

        async def transfer(self, words: list[int], recv_words: int,
                           budget_cycles: int) -> tuple[str, list[int]]:
            """One DMA exchange; returns the reply status line tail and the received words."""
            start = self.cycles()
            deadline = start + max(1, budget_cycles)
            wall_end = (time.monotonic() + self.wall_base_s
                        + budget_cycles * self.wall_s_per_cycle)
            if words:
                data = b"".join(w.to_bytes(4, "little") for w in words)
                self.source.send_nowait(AxiStreamFrame(data))
            if recv_words:
                self.sink.arm()
            while True:
                sent = self.source.idle()
                received = not recv_words or not self.sink.empty()
                if sent and received:
                    break
                now = self.cycles()
                if now >= deadline or time.monotonic() > wall_end:
                    # neither end counts words: all or none sent, received unknown
                    return f"TO {{cycles}} {len(words) if sent else 0:x} ffffffff", []
                waits = [Timer(min(deadline - now, WAIT_CHUNK_CYCLES) * self.period_ps,
                               unit="ps")]
                if not sent:
                    waits.append(self.source.idle_event.wait())
                if not received:
                    waits.append(self.sink.active_event.wait())
                await First(*waits)
            if not recv_words:
                return "OK {cycles} 0 0", []
            self.sink.armed = False
            data = bytes(self.sink.recv_nowait().tdata)
            got = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
            if len(got) > recv_words:
                return f"OV {{cycles}} {len(got):x} 0", []
            return f"OK {{cycles}} {len(got):x} 0", got

        async def reset_dma(self) -> None:
            """Abort both channels: queued and partially moved data is dropped."""
            self.sink.armed = False
            for end in (self.source, self.sink):
                end._handle_reset(True)   # stops the channel's coroutine, deasserts the bus
                end.clear()
                end._handle_reset(False)
            await self.run_cycles(4)

        async def handle(self, fields: list[str], req) -> tuple[str, list[int]]:
            op, a, b, c = fields[0], *(int(f, 16) for f in fields[1:4])
            if op == "R":
                return f"OK {{cycles}} {await self.read(a):x} 0", []
            if op == "W":
                await self.write(a, b)
                return "OK {cycles} 0 0", []
            if op == "T":
                words = [int(req.readline(), 16) for _ in range(a)]
                return await self.transfer(words, b, c)
            if op == "D":
                await self.reset_dma()
                return "OK {cycles} 0 0", []
            if op == "C":
                return "OK {cycles} 0 0", []
            return f"ER {{cycles}} unknown request {op!r}", []

    @cocotb.test()
    async def serve(dut):
        """Answer the client's requests until it quits or closes the request pipe."""
        req = os.fdopen(int(os.environ[REQ_FD_ENV]), "r")
        resp = os.fdopen(int(os.environ[RESP_FD_ENV]), "w")
        base, per_cycle = (float(v) for v in os.environ.get(WALL_ENV, WALL_DEFAULT).split(","))
        bench = CosimBench(dut, int(os.environ.get(PERIOD_ENV, "10000")), (base, per_cycle))
        await bench.reset()
        resp.write(f"HI {bench.cycles()} 0 0\n")
        resp.flush()
        try:
            while True:
                line = req.readline()
                if not line:
                    dut._log.info("request pipe closed")
                    return
                fields = line.split()
                if len(fields) != 4:
                    status, words = f"ER {{cycles}} malformed request {line!r}", []
                elif fields[0] == "Q":
                    resp.write(f"OK {bench.cycles()} 0 0\n")
                    resp.flush()
                    return
                else:
                    try:
                        status, words = await bench.handle(fields, req)
                    except Exception as e:  # noqa: BLE001 - reported, the server continues
                        status, words = f"ER {{cycles}} {type(e).__name__}: {e}", []
                resp.write(status.format(cycles=bench.cycles()).replace("\n", " ") + "\n")
                resp.write("".join(f"{w:08x}\n" for w in words))
                resp.flush()
        finally:
            req.close()
            resp.close()


# the plain Verilog bench of the verilator engine
VERILATOR_BENCH = Path(__file__).resolve().parent / "cosim" / "tb_cosim.v"

