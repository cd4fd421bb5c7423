"""What the driver expects of the overlay (:class:`Contract`), and one disagreement
(:class:`Mismatch`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import SpecError
from .tcl import tcl_int


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: ``topic`` (what kind), ``subject`` (which item) and a message."""

    topic: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.topic} {self.subject}: {self.message}"


@dataclass(frozen=True)
class Contract:
    """What the driver expects of the overlay."""

    vlnv: str
    core_instance: str
    dma_instance: str
    core_base: int
    core_range: int
    dma_base: int
    dma_length_width: int

    @classmethod
    def from_driver(cls, module: ModuleType) -> Contract:
        names = ("VLNV", "CORE_INSTANCE", "DMA_INSTANCE", "CORE_BASE_ADDRESS", "CORE_RANGE",
                 "DMA_BASE_ADDRESS", "DMA_BUFFER_LENGTH_WIDTH")
        missing = [n for n in names if not hasattr(module, n)]
        if missing:
            raise SpecError(f"the driver constants lack {', '.join(missing)}")
        return cls(*(getattr(module, n) for n in names))

    @classmethod
    def from_scripts(cls, variables: dict[str, str]) -> Contract:
        try:
            return cls(variables["PN_IP_VLNV"], variables["PN_CORE_INSTANCE"],
                       variables["PN_DMA_INSTANCE"], tcl_int(variables["PN_CORE_BASE"]),
                       tcl_int(variables["PN_CORE_RANGE"]), tcl_int(variables["PN_DMA_BASE"]),
                       tcl_int(variables["PN_DMA_LENGTH_WIDTH"]))
        except KeyError as e:
            raise SpecError(f"the overlay scripts do not set {e.args[0]}") from e
