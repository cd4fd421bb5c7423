"""Integer helpers shared by the compiler, the driver and the compression passes (standard
library only)."""

from __future__ import annotations


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` in integers (``b > 0``); numpy integers and arrays work too."""
    return -(-a // b)


def clog2(n: int) -> int:
    """Bits to address ``n`` items (0 for ``n <= 1``), as Verilog's ``$clog2``; exact for
    integers of any size."""
    return (int(n) - 1).bit_length() if n > 1 else 0


__all__ = ["ceil_div", "clog2"]
