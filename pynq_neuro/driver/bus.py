"""The transport between the driver and a core: registers and one DMA exchange.

Three backends implement :class:`Bus`: ``board`` (MMIO and AXI DMA through pynq),
``sim`` (the RTL in cocotb) and ``golden`` (a numpy model of the core at the bus level).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Bus(Protocol):
    """Register access and DMA exchanges with one ``neuro_core``."""

    name: str

    def read(self, offset: int) -> int:
        """32-bit AXI-Lite read of the core's register at byte ``offset``."""
        ...

    def write(self, offset: int, value: int) -> None:
        """32-bit AXI-Lite write."""
        ...

    def transfer(self, send: np.ndarray | None, recv_words: int,
                 timeout_s: float) -> np.ndarray:
        """One DMA exchange: MM2S sends ``send`` (uint32, TLAST on the last word) while S2MM
        receives one packet of at most ``recv_words`` words (0: nothing to receive). Returns
        the received words up to and including TLAST (uint32). Raises
        :class:`~pynq_neuro.driver.errors.DmaTimeout` when either direction does not finish
        within ``timeout_s``; :meth:`reset_dma` then recovers the DMA."""
        ...

    def reset_dma(self) -> None:
        """Reset both DMA channels and start them again."""
        ...

    def cycles(self) -> int | None:
        """Clock cycles simulated so far (``None`` on a board)."""
        ...

    def close(self) -> None:
        """Release buffers, simulators or device handles."""
        ...


def as_words(send: np.ndarray | None) -> np.ndarray | None:
    """``send`` as a 1-D uint32 array (``None`` or empty: nothing to send)."""
    if send is None:
        return None
    words = np.asarray(send)
    if words.dtype != np.uint32:
        if not np.issubdtype(words.dtype, np.integer):
            raise ValueError(f"DMA words must be integers, got dtype {words.dtype}")
        if words.size and (words.min() < 0 or words.max() > 0xFFFFFFFF):
            raise ValueError("DMA words must fit in 32 bits")
        words = words.astype(np.uint32)
    words = words.reshape(-1)
    return words if words.size else None


__all__ = ["Bus", "as_words"]
