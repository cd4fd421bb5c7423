"""A built Vivado hardware handoff (``.hwh``) against the driver contract."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from . import SpecError
from .contract import Contract, Mismatch


def check_hwh(text: str, contract: Contract) -> list[Mismatch]:
    """The core and DMA of a Vivado hardware handoff file against the driver contract."""
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as e:
        raise SpecError(f"not a readable .hwh: {e}") from e
    out: list[Mismatch] = []
    modules = {m.get("INSTANCE"): m for m in root.iter("MODULE")}
    core = modules.get(contract.core_instance)
    if core is None:
        out.append(Mismatch("hwh", contract.core_instance, "no such module"))
    elif core.get("VLNV") != contract.vlnv:
        out.append(Mismatch("hwh", contract.core_instance,
                            f"VLNV {core.get('VLNV')}, driver expects {contract.vlnv}"))
    dma = modules.get(contract.dma_instance)
    if dma is None:
        out.append(Mismatch("hwh", contract.dma_instance, "no such module"))
    else:
        params = {p.get("NAME"): p.get("VALUE") for p in dma.iter("PARAMETER")}
        for name, want in (("c_include_sg", "0"),
                           ("c_sg_length_width", str(contract.dma_length_width))):
            if params.get(name) != want:
                out.append(Mismatch("hwh", f"{contract.dma_instance} {name}",
                                    f"{params.get(name)!r}, driver expects {want!r}"))
    ranges: dict[str, list[ET.Element]] = {}
    for r in root.iter("MEMRANGE"):
        if r.get("MEMTYPE") == "REGISTER":
            ranges.setdefault(r.get("INSTANCE", ""), []).append(r)
    for inst, base, size in ((contract.core_instance, contract.core_base, contract.core_range),
                             (contract.dma_instance, contract.dma_base, None)):
        found = ranges.get(inst, [])
        if not found:
            out.append(Mismatch("hwh", inst, "not in the PS address map"))
            continue
        r = found[0]
        lo, hi = int(r.get("BASEVALUE", "-1"), 0), int(r.get("HIGHVALUE", "-1"), 0)
        if lo != base:
            out.append(Mismatch("hwh", inst, f"base {lo:#010x}, driver expects {base:#010x}"))
        if size is not None and hi - lo + 1 != size:
            out.append(Mismatch("hwh", inst, f"range {hi - lo + 1:#x}, driver expects {size:#x}"))
    return out
