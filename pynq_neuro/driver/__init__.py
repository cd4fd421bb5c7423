"""Driver of ``neuro_core``: one API on three backends (numpy only; pynq only for the board).

Layers, bottom up:

* :mod:`~pynq_neuro.driver.registers`: register map, stream framing, error codes;
* :mod:`~pynq_neuro.driver.bus`: the :class:`Bus` protocol (registers + one DMA exchange),
  implemented by :class:`~pynq_neuro.driver.golden_bus.GoldenBus` (numpy model of the core),
  ``pynq_neuro.driver.sim_bus.SimBus`` (the RTL in cocotb) and
  :class:`~pynq_neuro.driver.board.BoardBus` (pynq MMIO and AXI DMA);
* :mod:`~pynq_neuro.driver.core`: register-level logic over a bus (:class:`NeuroCore`);
* :mod:`~pynq_neuro.driver.accelerator`: :class:`NeuroAccelerator`, the user API.

Example::

    from pynq_neuro.driver import NeuroAccelerator
    with NeuroAccelerator("golden", artifact="build/w2a2s") as acc:
        classes = acc.classify(digits)            # uint8 (N, 28, 28)
"""

from .accelerator import BACKENDS, NeuroAccelerator, check_digits, compare_hardware
from .bus import Bus
from .core import NeuroCore, pixel_words
from .errors import CoreError, DmaTimeout, DriverError, HardwareMismatch, InputError
from .golden_bus import GoldenBus, GoldenModelError
from .registers import VLNV

__all__ = ["BACKENDS", "Bus", "CoreError", "DmaTimeout", "DriverError", "GoldenBus",
           "GoldenModelError", "HardwareMismatch", "InputError", "NeuroAccelerator", "NeuroCore",
           "VLNV", "check_digits", "compare_hardware", "pixel_words"]
