"""The base of every error pynq-neuro raises (standard library only).

Each error class of the package derives from :class:`PynqNeuroError` and keeps the built-in
base it always had (``ValueError`` for bad input, ``RuntimeError`` for failures of tools and
hardware), so ``except PynqNeuroError`` catches whatever the project reports and existing
``except ValueError`` code keeps working.
"""

from __future__ import annotations

import os


class PynqNeuroError(Exception):
    """A problem pynq-neuro detected and describes in its message (bad input, a corrupt or
    unsafe file, a network the core cannot hold, a failed tool or transfer)."""


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (an ``OSError`` as ``FILE: reason``)."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror
        if e.filename is not None:
            text = f"{os.fsdecode(e.filename)}: {text}"
            if e.filename2 is not None:
                text += f" (-> {os.fsdecode(e.filename2)})"
    else:
        text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text or type(e).__name__
