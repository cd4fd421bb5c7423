"""The ``board`` backend: ``neuro_core`` and an AXI DMA (simple mode) in a PYNQ overlay.

The module imports with numpy alone. When pynq is installed it defines the pynq driver classes
:class:`NeuroCoreIP` (bound to the core's VLNV) and :class:`NeuroOverlay` at import, which
registers the IP driver with pynq; pynq itself imports this module before it assigns drivers to
a new overlay (``pynq.lib`` entry point in setup.py), so ``pynq.Overlay("neuro.bit")`` gives the
core its driver even when nothing imported pynq_neuro first.

:class:`BoardBus` needs only a small part of pynq: the core driver's ``read``/``write``, the DMA
driver's ``mmio`` and its two channels (``transfer``, ``idle``, ``error``, ``start``), and
``pynq.allocate``. It never calls a channel's ``wait()``, which would block forever when a
packet does not end: it polls the channels with a deadline instead.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import registers as R
from .bus import as_words
from .errors import DmaTimeout, DriverError

CORE_VLNV_PREFIX = R.VLNV.rsplit(":", 1)[0] + ":"

# AXI DMA registers (PG021), simple mode
MM2S_DMACR = 0x00
MM2S_DMASR = 0x04
S2MM_DMACR = 0x30
S2MM_DMASR = 0x34
S2MM_LENGTH = 0x58
DMACR_RS = 1 << 0
DMACR_RESET = 1 << 2
DMASR_HALTED = 1 << 0
DMASR_IDLE = 1 << 1
DMASR_ERRORS = {0x10: "DMA internal error", 0x20: "DMA slave error", 0x40: "DMA decode error"}
RESET_TIMEOUT_S = 1.0
MIN_BUFFER_WORDS = 1024

OVERLAY_ENV = "PYNQ_NEURO_OVERLAY"
OVERLAY_NAME = "neuro"  # overlays/config.tcl: PN_OVERLAY_NAME


# ------------------------------------------------------------------------------------------------
# discovery


def default_bitfile() -> Path | None:
    """The overlay bitstream: ``$PYNQ_NEURO_OVERLAY``, else ``neuro.bit`` with its
    ``neuro.hwh`` as installed with the package (``pynq_neuro/overlays/neuro/``), else where
    ``overlays/build_bitstream.tcl`` writes them (``overlays/build/out/``)."""
    env = os.environ.get(OVERLAY_ENV)
    if env:
        return Path(env)
    from ..overlays import installed_bitfile

    installed = installed_bitfile()
    if installed is not None:
        return installed
    out = Path(__file__).resolve().parents[2] / "overlays" / "build" / "out"
    built = out / f"{OVERLAY_NAME}.bit"
    return built if built.is_file() and built.with_suffix(".hwh").is_file() else None


def board_available() -> bool:
    """True when pynq is installed, sees a device and an overlay bitstream is known."""
    try:
        import pynq
    except ImportError:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            devices = pynq.Device.devices
    except Exception:  # noqa: BLE001 - no XRT, no device tree: no board
        return False
    return bool(devices) and default_bitfile() is not None


def find_ip(ip_dict: dict[str, dict], type_prefix: str, preferred: str) -> str:
    """The ``ip_dict`` key of the IP whose ``type`` (VLNV) starts with ``type_prefix``; among
    several, the one named ``preferred`` (also inside a hierarchy)."""
    found = [name for name, d in ip_dict.items() if str(d.get("type", "")).startswith(type_prefix)]
    if not found:
        types = sorted({str(d.get("type", "?")) for d in ip_dict.values()})
        raise DriverError(f"the overlay has no IP of type {type_prefix}* (it has: "
                          f"{', '.join(types) or 'no IP'})")
    pick = [n for n in found if n == preferred or n.endswith("/" + preferred)]
    if len(pick) == 1:
        return pick[0]
    if len(found) == 1:
        return found[0]
    raise DriverError(f"the overlay has {len(found)} IPs of type {type_prefix}* "
                      f"({', '.join(sorted(found))}) and none is named {preferred!r}")


def ip_driver(overlay: Any, name: str) -> Any:
    """The driver object of ``ip_dict`` entry ``name`` (``a/b/c`` walks hierarchies)."""
    obj = overlay
    for part in name.split("/"):
        obj = getattr(obj, part)
    return obj


# ------------------------------------------------------------------------------------------------
# the bus


class BoardBus:
    """:class:`~pynq_neuro.driver.bus.Bus` over pynq: MMIO of the core and an AXI DMA.

    Args:
        core: the core's driver (``read(offset)``, ``write(offset, value)``).
        dma: the ``pynq.lib.dma.DMA`` driver (``mmio``, ``sendchannel``, ``recvchannel``).
        allocate: ``pynq.allocate`` (default) or a replacement with the same signature.
        clock_mhz: the core's clock (for reports only): FCLK0 as PYNQ reports it when the
            bus is opened by :func:`open_board_bus` (``clock_measured`` False when PYNQ could
            not read it and the nominal clock stands in).
        poll_s: sleep between two polls of the channels (0: busy polling).
    """

    name = "board"

    def __init__(self, core: Any, dma: Any, *, allocate: Callable[..., Any] | None = None,
                 clock_mhz: float = 100.0, poll_s: float = 0.0) -> None:
        self.core = core
        self.dma = dma
        self.clock_mhz = clock_mhz
        self.clock_measured = True
        self.poll_s = poll_s
        self.overlay: Any = None
        self._allocate = allocate
        self._buffers: dict[str, Any] = {}
        self._stuck = False
        if dma.sendchannel is None or dma.recvchannel is None:
            raise DriverError("the AXI DMA needs both channels (MM2S and S2MM)")

    # registers

    def read(self, offset: int) -> int:
        return int(self.core.read(int(offset))) & 0xFFFFFFFF

    def write(self, offset: int, value: int) -> None:
        self.core.write(int(offset), int(value) & 0xFFFFFFFF)

    # buffers

    def _buffer(self, direction: str, words: int) -> Any:
        """A cached contiguous buffer of at least ``words`` uint32 for one direction; buffers
        grow in powers of two, so that a few sizes serve every batch."""
        buf = self._buffers.get(direction)
        if buf is not None and buf.shape[0] >= words:
            return buf
        cap = max(MIN_BUFFER_WORDS, 1 << (int(words) - 1).bit_length())
        if buf is not None:
            self._free(buf)
        allocate = self._allocate
        if allocate is None:
            import pynq

            allocate = pynq.allocate
        buf = allocate(shape=(cap,), dtype=np.uint32)
        self._buffers[direction] = buf
        return buf

    @staticmethod
    def _free(buf: Any) -> None:
        free = getattr(buf, "freebuffer", None)
        if free is not None:
            free()

    # DMA

    def transfer(self, send: np.ndarray | None, recv_words: int, timeout_s: float) -> np.ndarray:
        if self._stuck:
            raise DriverError("the DMA channels are not idle after a timeout: call reset_dma()")
        words = as_words(send)
        recv_words = int(recv_words)
        for what, n in (("send", 0 if words is None else len(words)), ("receive", recv_words)):
            if n < 0 or 4 * n > R.DMA_MAX_BYTES:
                raise ValueError(f"{what} of {n} words: the AXI DMA moves 0..{R.DMA_MAX_BYTES} "
                                 f"bytes per transfer")
        send_ch, recv_ch = self.dma.sendchannel, self.dma.recvchannel
        pending = []
        rbuf = None
        try:
            if recv_words:
                rbuf = self._buffer("recv", recv_words)
                recv_ch.transfer(rbuf, nbytes=4 * recv_words)
                pending.append(("S2MM", recv_ch))
            if words is not None:
                sbuf = self._buffer("send", len(words))
                sbuf[:len(words)] = words
                send_ch.transfer(sbuf, nbytes=4 * len(words))
                pending.append(("MM2S", send_ch))
        except RuntimeError as e:  # pynq: channel not started or not idle
            self._stuck = True
            raise DriverError(f"the DMA refused the transfer ({e}): call reset_dma()") from None
        deadline = time.monotonic() + timeout_s
        while pending:
            for item in list(pending):
                side, ch = item
                if ch.error:
                    self._stuck = True
                    status = self.dma.mmio.read(MM2S_DMASR if side == "MM2S" else S2MM_DMASR)
                    why = ", ".join(t for bit, t in DMASR_ERRORS.items() if status & bit)
                    raise DriverError(f"{side}: {why or 'DMA error'} (DMASR {status:#x}); call "
                                      f"reset_dma()")
                if ch.idle:
                    pending.remove(item)
            if pending and time.monotonic() > deadline:
                self._stuck = True
                sides = " and ".join(s for s, _ in pending)
                raise DmaTimeout(f"{sides} did not finish within {timeout_s} s (the core took or "
                                 f"sent no complete packet)")
            if pending and self.poll_s:
                time.sleep(self.poll_s)
        if rbuf is None:
            return np.zeros(0, np.uint32)
        invalidate = getattr(rbuf, "invalidate", None)
        if invalidate is not None:
            invalidate()
        got = int(self.dma.mmio.read(S2MM_LENGTH)) // 4
        return np.array(rbuf[:min(got, recv_words)], dtype=np.uint32)

    def reset_dma(self) -> None:
        """Reset the AXI DMA (DMACR reset bit of both channels), then start both channels."""
        mmio = self.dma.mmio
        mmio.write(MM2S_DMACR, DMACR_RESET)
        mmio.write(S2MM_DMACR, DMACR_RESET)
        self._poll(lambda: not (mmio.read(MM2S_DMACR) | mmio.read(S2MM_DMACR)) & DMACR_RESET,
                   "the AXI DMA reset did not complete")
        for reg, status in ((MM2S_DMACR, MM2S_DMASR), (S2MM_DMACR, S2MM_DMASR)):
            mmio.write(reg, DMACR_RS)
            self._poll(lambda s=status: not mmio.read(s) & DMASR_HALTED,
                       f"the AXI DMA channel at {reg:#x} did not start after its reset")
        # the channels' own start() is now immediate; it also arms their first transfer
        self.dma.sendchannel.start()
        self.dma.recvchannel.start()
        self._stuck = False

    @staticmethod
    def _poll(done: Callable[[], bool], message: str) -> None:
        deadline = time.monotonic() + RESET_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise DriverError(message)

    def cycles(self) -> int | None:
        return None

    def close(self) -> None:
        for buf in self._buffers.values():
            self._free(buf)
        self._buffers.clear()


# ------------------------------------------------------------------------------------------------
# pynq classes (defined at import when pynq is installed)


def _import_pynq() -> Any:
    """pynq, or None when it is not installed (the numpy-only board path)."""
    try:
        with warnings.catch_warnings():
            # pynq imports pkg_resources, which warns about its own deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            import pynq
    except ImportError:
        return None
    return pynq


_pynq = _import_pynq()

if _pynq is not None:

    class NeuroCoreIP(_pynq.DefaultIP):
        """pynq driver of ``neuro_core`` (AXI-Lite registers).

        Defining the class registers it for the core's VLNV in pynq's driver registry, so
        any ``pynq.Overlay`` created afterwards gives the core this driver. pynq imports this
        module itself when it creates an overlay (the ``pynq.lib`` entry point of the
        package)."""

        bindto = [R.VLNV]

        def identify(self) -> int:
            """The ID register (0x504E4E31 for a neuro_core)."""
            return int(self.read(R.ID))

    class NeuroOverlay(_pynq.Overlay):
        """An overlay with ``neuro_core`` and an AXI DMA in simple mode.

        The core is found by its VLNV and the DMA by its type in ``ip_dict`` (preferring the
        cell names ``neuro_core_0`` and ``axi_dma_0``)."""

        def __init__(self, bitfile: str | Path | None = None, download: bool = True,
                     **kwargs: Any) -> None:
            path = bitfile or default_bitfile()
            if path is None:
                raise DriverError(f"no overlay bitstream: pass its path or set ${OVERLAY_ENV}")
            super().__init__(str(path), download=download, **kwargs)
            self.core_name = find_ip(self.ip_dict, CORE_VLNV_PREFIX, R.CORE_INSTANCE)
            self.dma_name = find_ip(self.ip_dict, R.DMA_VLNV_PREFIX, R.DMA_INSTANCE)

        @property
        def neuro_core(self) -> Any:
            return ip_driver(self, self.core_name)

        @property
        def neuro_dma(self) -> Any:
            return ip_driver(self, self.dma_name)

        def bus(self, **kwargs: Any) -> BoardBus:
            b = BoardBus(self.neuro_core, self.neuro_dma, **kwargs)
            b.overlay = self
            return b

else:

    def __getattr__(name: str) -> Any:
        if name in ("NeuroCoreIP", "NeuroOverlay"):
            raise AttributeError(f"{__name__}.{name} needs pynq, which is not installed "
                                 f"(pip install 'pynq-neuro[board]' on the board)")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


NOMINAL_CLOCK_MHZ = 100.0  # overlays/config.tcl: PN_FCLK_MHZ (used only when FCLK0 is unreadable)


def pl_clock_mhz() -> tuple[float | None, str]:
    """FCLK0 in MHz as PYNQ reports it (``pynq.ps.Clocks.fclk0_mhz``, from the PS clock
    registers), or ``None`` and the reason it could not be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from pynq.ps import Clocks
    except ImportError:
        return None, "pynq is not installed"
    try:
        mhz = float(Clocks.fclk0_mhz)
    except Exception as e:  # noqa: BLE001 - no device, no access to the PS registers
        return None, f"{type(e).__name__}: {e}"
    if not mhz > 0:
        return None, f"pynq.ps.Clocks.fclk0_mhz reads {mhz}"
    return mhz, "pynq.ps.Clocks.fclk0_mhz"


def set_pl_clock_mhz(mhz: float) -> tuple[float | None, str]:
    """Set FCLK0 through PYNQ (``pynq.ps.Clocks.fclk0_mhz = mhz``: the PS picks the closest
    divisors) and return the clock read back."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pynq.ps import Clocks

            Clocks.fclk0_mhz = float(mhz)
    except Exception as e:  # noqa: BLE001 - no device, divisors out of range
        return None, f"{type(e).__name__}: {e}"
    return pl_clock_mhz()


def achievable_clock_mhz(mhz: float) -> float | None:
    """The FCLK0 closest to ``mhz`` that the PS clock dividers make from their source PLL
    (what ``pynq.ps.Clocks.fclk0_mhz = mhz`` and the download of an overlay built for ``mhz``
    set), by pynq's own divisor search; None when PYNQ cannot tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pynq.ps import Clocks

            clocks = Clocks._instance
            src = clocks._get_src_clk_mhz(clocks.PL_CLK_CTRLS[0].SRCSEL)
            d0, d1 = clocks._get_2_divisors(src, float(mhz), 6, 6)
    except Exception:  # noqa: BLE001 - no device, another pynq version
        return None
    return round(src / (d0 * d1), 6)


def _board_bus(core: Any, dma: Any) -> BoardBus:
    clock, _ = pl_clock_mhz()
    bus = BoardBus(core, dma, clock_mhz=NOMINAL_CLOCK_MHZ if clock is None else clock)
    bus.clock_measured = clock is not None
    return bus


def open_board_bus(overlay: Any = None) -> BoardBus:
    """A :class:`BoardBus` for ``overlay``: a NeuroOverlay, any pynq Overlay holding the core
    and a DMA, a bitstream path, or None (the default bitstream)."""
    if _pynq is None:
        raise DriverError("the board backend needs pynq, which is not installed (pip install "
                          "'pynq-neuro[board]' on the board)")
    if overlay is None or isinstance(overlay, (str, Path)):
        overlay = NeuroOverlay(overlay)
    if isinstance(overlay, NeuroOverlay):
        core, dma = overlay.neuro_core, overlay.neuro_dma
    else:
        core = ip_driver(overlay, find_ip(overlay.ip_dict, CORE_VLNV_PREFIX, R.CORE_INSTANCE))
        dma = ip_driver(overlay, find_ip(overlay.ip_dict, R.DMA_VLNV_PREFIX, R.DMA_INSTANCE))
    bus = _board_bus(core, dma)
    bus.overlay = overlay
    return bus


__all__ = ["CORE_VLNV_PREFIX", "BoardBus", "board_available", "default_bitfile", "find_ip",
           "ip_driver", "open_board_bus", "achievable_clock_mhz", "pl_clock_mhz",
           "set_pl_clock_mhz"]
if _pynq is not None:
    __all__ += ["NeuroCoreIP", "NeuroOverlay"]
