"""cocotb pieces shared by the benches of sim/ (imported inside the simulator).

* :func:`start_clock` starts the clock ``dut.clk`` (low first);
* :func:`drive` sets input ports to one value (idle inputs);
* :func:`sim_cycle` is the clock cycle of the simulation time, the same in every coroutine;
* :class:`StreamBench`: the clock, an ``AxiStreamSource`` on ``s_axis``, random source pauses
  and a synchronous reset, the base of the pn_input and pn_loader benches.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterable

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb.simtime import get_sim_time
from cocotbext.axi import AxiStreamBus, AxiStreamSource

CLOCK_NS = 10
# the memory load port of pn_layer (pn_net adds load_layer)
LOAD_PORT = ("load_we", "load_kind", "load_bank", "load_addr", "load_data")


def start_clock(dut, period_ns: int = CLOCK_NS) -> Clock:
    """Start ``dut.clk`` with a period of ``period_ns``, low in the first half period."""
    clock = Clock(dut.clk, period_ns, unit="ns", impl="gpi")
    clock.start(start_high=False)
    return clock


def drive(dut, names: Iterable[str], value: int = 0) -> None:
    """Set each input port of ``names`` to ``value``."""
    for name in names:
        getattr(dut, name).value = value


def sim_cycle(period_ns: int = CLOCK_NS) -> int:
    """Clock cycles since the start of the simulation."""
    return round(get_sim_time("ns") / period_ns)


class StreamBench:
    """Clock, an AXI-Stream source on ``s_axis`` and reset of a module with ``clk``/``rst``;
    ``inputs``: the other input ports and their values at start."""

    def __init__(self, dut, seed: int = 1, **inputs: int):
        self.dut = dut
        self.rng = random.Random(seed)
        start_clock(dut)
        for name, value in inputs.items():
            getattr(dut, name).value = value
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                      dut.rst)
        self.source.log.setLevel(logging.WARNING)

    async def reset(self) -> None:
        """Three cycles of reset, then two idle cycles."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def pauses(self, prob: float) -> None:
        """Pause the source in each cycle with probability ``prob`` (0: never)."""
        if prob:
            self.source.set_pause_generator(
                (self.rng.random() < prob for _ in itertools.count()))
        else:
            self.source.set_pause_generator(None)
            self.source.pause = False  # removing a generator leaves the pause as it was
