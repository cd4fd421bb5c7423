"""The pynq-neuro overlay as installed with the package.

``neuro/`` holds ``neuro.bit`` and ``neuro.hwh`` (written by ``make overlay``, or downloaded at
install time from ``neuro.bit.link``/``neuro.hwh.link`` descriptors of a release) and
``neuro/artifact/``, the compiled network whose memory images the bitstream holds. This package
is registered as a ``pynq.overlays`` entry point, so on a board ``pynq.Overlay("neuro.bit")``
finds the bitstream here. Standard library only.
"""

from __future__ import annotations

from pathlib import Path

OVERLAY_NAME = "neuro"
OVERLAY_DIR = Path(__file__).resolve().parent / OVERLAY_NAME
BITFILE = OVERLAY_DIR / f"{OVERLAY_NAME}.bit"
HWHFILE = OVERLAY_DIR / f"{OVERLAY_NAME}.hwh"
ARTIFACT_DIR = OVERLAY_DIR / "artifact"


def installed_bitfile() -> Path | None:
    """``neuro.bit`` when it is installed together with its ``neuro.hwh``, else None."""
    return BITFILE if BITFILE.is_file() and HWHFILE.is_file() else None


__all__ = ["ARTIFACT_DIR", "BITFILE", "HWHFILE", "OVERLAY_DIR", "OVERLAY_NAME",
           "installed_bitfile"]
