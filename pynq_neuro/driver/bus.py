"""The transport between the driver and a core: registers and one DMA exchange.

Three backends implement :class:`Bus`: ``board`` (MMIO and AXI DMA through pynq),
``sim`` (the RTL in cocotb) and ``golden`` (a numpy model of the core at the bus level).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .errors import InputError


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


def as_words(send: np.ndarray | None, max_words: int | None = None) -> np.ndarray | None:
    """``send`` as a 1-D uint32 array (``None`` or empty: nothing to send). Raises
    :class:`~pynq_neuro.driver.errors.InputError` (a ``ValueError``) for anything else: more
    than one dimension, words that are not integers or do not fit in 32 bits, more than
    ``max_words`` words."""
    if send is None:
        return None
    words = np.asarray(send)
    if words.ndim != 1:
        raise InputError(f"send must be a 1-D array of uint32 words, got shape {words.shape}")
    if not words.size:
        return None
    if words.dtype.kind not in "ui":
        raise InputError(f"send must hold integer words, got dtype {words.dtype}")
    if int(words.min()) < 0 or int(words.max()) > 0xFFFF_FFFF:
        raise InputError("send words must be in 0..2**32-1")
    if max_words is not None and words.size > max_words:
        raise InputError(f"at most {max_words} words per transfer, got {words.size}")
    return words.astype(np.uint32, copy=False)


__all__ = ["Bus", "as_words"]
