"""Exceptions of the driver and the argument checks that raise :class:`InputError` (numpy
only)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import PynqNeuroError


class DriverError(PynqNeuroError, RuntimeError):
    """The accelerator or its transport failed; the message says what was lost."""


class DmaTimeout(DriverError):
    """A DMA exchange did not finish in time.

    Attributes:
        completed: digits whose results were obtained before the failing transfer (a
            classification raises this with the results of the earlier batches attached).
        classes, logits: those results (``None`` when nothing was classified).
    """

    def __init__(self, message: str, *, completed: int = 0, classes: Any = None,
                 logits: Any = None) -> None:
        super().__init__(message)
        self.completed = completed
        self.classes = classes
        self.logits = logits


class CoreError(DriverError):
    """The core reported an error (sticky ``STATUS.ERROR_CODE``) or sent results that break
    the stream protocol (``code`` 0 then).

    Attributes:
        code: the error code of ``STATUS`` (0: no code, a protocol violation seen by the driver).
        meaning: the decoded meaning of ``code``.
        status: the raw ``STATUS`` word (``None`` when it was not read).
    """

    def __init__(self, message: str, *, code: int = 0, meaning: str = "",
                 status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.meaning = meaning
        self.status = status


class HardwareMismatch(DriverError):
    """An artifact was compiled for hardware other than the synthesized core.

    Attributes:
        differences: ``(where, field, artifact value, core value)`` for every differing field.
    """

    def __init__(self, message: str, differences: list[tuple[str, str, Any, Any]]) -> None:
        super().__init__(message)
        self.differences = differences


class InputError(PynqNeuroError, ValueError):
    """Digits, an artifact or an argument given to the driver is not acceptable."""


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``lo..hi``, else InputError."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            or value < lo or (hi is not None and value > hi)):
        span = f">= {lo}" if hi is None else f"{lo}..{hi}"
        raise InputError(f"{name} must be an integer {span}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any, finite: bool = True) -> float:
    """``value`` as a float if it is a real number > 0 (and finite), else InputError."""
    if (isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not value > 0 or (finite and not math.isfinite(value))):
        kind = "a finite number" if finite else "a number"
        raise InputError(f"{name} must be {kind} > 0, got {value!r}")
    return float(value)


__all__ = ["CoreError", "DmaTimeout", "DriverError", "HardwareMismatch", "InputError",
           "check_int", "check_positive"]
