"""Overlay consistency without Vivado: the register map generator (:mod:`.regmap`), the Tcl
scripts read by a real Tcl interpreter (:mod:`.tcl`) and the HDL ports read by pyslang
(:mod:`.verilog`). :mod:`pynq_neuro.overlay_spec` runs the checks."""

from ..errors import PynqNeuroError


class SpecError(PynqNeuroError, ValueError):
    """An input (script, HDL, document, driver module) is missing or cannot be read."""
