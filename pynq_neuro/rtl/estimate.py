"""Synthesis estimate of neuro_core with Yosys (``synth_xilinx -family xc7``).

The core is synthesized for an artifact (its ``neuro_params.vh`` and ``mem/`` images), flattened,
without I/O buffers (it sits inside a block design). From ``stat -json`` and the netlist:

* **LUT**: ``LUT1..LUT6`` plus ``INV`` (a LUT1 in the device) plus distributed memory, counted by
  the LUT sites it occupies (``RAM32M``/``RAM64M``: 4, ``RAM32X1D``/``RAM64X1D``: 2,
  ``RAM128X1D``: 4, ``RAM32X1S``/``RAM64X1S``: 1, ``RAM128X1S``: 2, ``RAM256X1S``: 4,
  ``SRL16E``/``SRLC32E``: 1). Logic and memory LUTs are also reported apart;
* **FF**: ``FDRE``, ``FDSE``, ``FDCE``, ``FDPE`` (and latches ``LDCE``/``LDPE``);
* **BRAM36**: ``RAMB36E1 + 0.5 * RAMB18E1``; **DSP**: ``DSP48E1``;
* **logic depth**: the longest combinational path between sequential elements (FFs, block RAM,
  DSP48, shift registers, top-level ports), computed on the netlist (``write_json``). ``lut_levels``
  counts LUTs (and asynchronous distributed-RAM reads) on that path; ``logic_levels`` counts every
  combinational cell as Vivado does (LUT, MUXF7/F8, CARRY4, distributed-RAM read).

Percentages are of the xc7z020 (53,200 LUT, 106,400 FF, 140 BRAM36, 220 DSP48).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from ..compiler.resources import XC7Z020
from . import REPO, RtlError, hdl_sources, require

DEVICE = {"name": "xc7z020", **{k: getattr(XC7Z020, k) for k in ("luts", "ffs", "bram36", "dsp")}}

LUTRAM_SITES = {
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X1D": 2, "RAM64X1D": 2,
    "RAM128X1D": 4, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM32X16DR8": 8, "RAM64X8SW": 8,
}
SRL_CELLS = {"SRL16E", "SRLC16E", "SRLC32E"}
FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"}
LUT_CELLS = {f"LUT{i}" for i in range(1, 7)}


def _clean(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def count_resources(cells: dict[str, int]) -> dict[str, Any]:
    """Device resources from Yosys cell counts (``num_cells_by_type``)."""
    cells = {_clean(k): int(v) for k, v in cells.items()}
    logic = sum(cells.get(c, 0) for c in LUT_CELLS) + cells.get("INV", 0)
    lutram = sum(n * LUTRAM_SITES[c] for c, n in cells.items() if c in LUTRAM_SITES)
    srl = sum(cells.get(c, 0) for c in SRL_CELLS)
    ffs = sum(cells.get(c, 0) for c in FF_CELLS)
    bram = cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0)
    dsp = cells.get("DSP48E1", 0)
    known = (LUT_CELLS | FF_CELLS | SRL_CELLS | set(LUTRAM_SITES) |
             {"INV", "RAMB36E1", "RAMB18E1", "DSP48E1", "MUXF7", "MUXF8", "CARRY4", "BUFG",
              "GND", "VCC", "IBUF", "OBUF"})
    return {
        "luts": logic + lutram + srl,
        "luts_logic": logic,
        "luts_memory": lutram + srl,
        "lutram_cells": {c: n for c, n in cells.items() if c in LUTRAM_SITES or c in SRL_CELLS},
        "ffs": ffs,
        "bram36": bram,
        "ramb36e1": cells.get("RAMB36E1", 0),
        "ramb18e1": cells.get("RAMB18E1", 0),
        "dsp": dsp,
        "muxf7": cells.get("MUXF7", 0),
        "muxf8": cells.get("MUXF8", 0),
        "carry4": cells.get("CARRY4", 0),
        "other_cells": {c: n for c, n in cells.items() if c not in known},
    }


def _is_sequential(ctype: str) -> bool:
    return (ctype in FF_CELLS or ctype in SRL_CELLS or ctype.startswith("RAMB")
            or ctype.startswith("DSP48") or ctype.startswith("BUFG") or ctype.startswith("FIFO"))


def _comb_inputs(ctype: str, port: str) -> bool:
    """Inputs of a combinational cell that reach its outputs in the same cycle."""
    if ctype in LUTRAM_SITES:   # asynchronous read: only the read addresses
        return port.startswith("A") or port.startswith("DPRA")
    return True


# A first-order delay of a register-to-register path on a -1 speed-grade 7-series part (ns):
# where the path starts (clock to output), each cell on it and the net into it, and the end
# (setup plus clock uncertainty). Rounded from the data-sheet figures of the xc7z020 class
# with a typical net delay; Vivado's timing report of the overlay build is the real figure.
START_NS = {"FF": 0.52, "RAMB": 2.45, "DSP": 4.0, "SRL": 1.3, "PORT": 0.0}
CELL_NS = {"LUT": 0.12, "LUTRAM": 0.95, "CARRY4": 0.35, "MUXF7": 0.29, "MUXF8": 0.29}
CARRY_CHAIN_NS = 0.11   # carry in to carry out of a CARRY4 along a chain (dedicated wire)
CARRY_IN_PORTS = ("CI", "CYINIT")
NET_NS = 0.45           # a routed net into a LUT, a distributed RAM or a carry chain
END_NS = 0.40           # setup of the capturing register and clock uncertainty


def _start_kind(ctype: str) -> str:
    if ctype.startswith("RAMB"):
        return "RAMB"
    if ctype.startswith("DSP48"):
        return "DSP"
    return "SRL" if ctype in SRL_CELLS else "FF"


def _cell_ns(ctype: str) -> float:
    if ctype in LUT_CELLS or ctype == "INV":
        return CELL_NS["LUT"] + NET_NS
    if ctype in LUTRAM_SITES:
        return CELL_NS["LUTRAM"] + NET_NS
    if ctype == "CARRY4":
        return CELL_NS["CARRY4"] + NET_NS / 2     # often fed by the LUT beside it
    return CELL_NS.get(ctype, 0.0)                 # MUXF7/F8: dedicated wires; constants: 0


def plausible_clock_mhz(delay_ns: float) -> float:
    """The clock a path of ``delay_ns`` (see :data:`START_NS`) makes plausible."""
    return 1000.0 / delay_ns if delay_ns > 0 else float("inf")


def logic_depth(netlist: dict[str, Any], top: str) -> dict[str, Any]:
    """Longest combinational path of a flattened Yosys JSON netlist (see the module doc), and
    the slowest path by the first-order delays above (``path_delay_ns``, ``clock_mhz``)."""
    mod = netlist["modules"][top]
    drivers: dict[int, tuple[str, str]] = {}     # bit -> (cell, type) of its combinational driver
    starts: dict[int, str] = {}                  # bit -> kind of its sequential driver
    comb: dict[str, tuple[str, list[int]]] = {}  # cell -> (type, input bits)
    carry_in: dict[str, set[int]] = {}           # CARRY4 -> its carry-in bits
    for name, cell in mod["cells"].items():
        ctype = _clean(cell["type"])
        if _is_sequential(ctype):
            dirs = cell.get("port_directions", {})
            for port, bits in cell["connections"].items():
                if dirs.get(port) == "output":
                    starts.update((b, _start_kind(ctype)) for b in bits if isinstance(b, int))
            continue
        dirs = cell.get("port_directions", {})
        ins: list[int] = []
        for port, bits in cell["connections"].items():
            d = dirs.get(port)
            if d == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = (name, ctype)
            elif d == "input" and _comb_inputs(ctype, port):
                ins.extend(b for b in bits if isinstance(b, int))
                if ctype == "CARRY4" and port in CARRY_IN_PORTS:
                    carry_in.setdefault(name, set()).update(b for b in bits if isinstance(b, int))
        comb[name] = (ctype, ins)

    def weights(ctype: str) -> tuple[int, int]:
        lut = 1 if (ctype in LUT_CELLS or ctype == "INV" or ctype in LUTRAM_SITES) else 0
        return lut, 1

    # longest path by LUT levels (ties: more logic levels) and slowest path by delay, one
    # iterative DFS with memo
    memo: dict[str, tuple[int, int, str | None]] = {}
    delay: dict[str, float] = {}        # slowest arrival at a cell's output (ns)
    came: dict[str, str | None] = {}    # the predecessor on the slowest path into a cell
    on_stack: set[str] = set()
    for root in comb:
        if root in memo:
            continue
        stack = [(root, False)]
        while stack:
            name, done = stack.pop()
            if name in memo:
                continue
            ctype, ins = comb[name]
            preds = {drivers[b][0] for b in ins if b in drivers}
            if not done:
                on_stack.add(name)
                stack.append((name, True))
                for p in preds:
                    if p not in memo:
                        if p in on_stack:
                            raise RtlError(f"combinational loop through {p}")
                        stack.append((p, False))
                continue
            on_stack.discard(name)
            best = (0, 0, None)
            for p in preds:
                lu, lo, _ = memo[p]
                if (lu, lo) > best[:2]:
                    best = (lu, lo, p)
            wl, wo = weights(ctype)
            memo[name] = (best[0] + wl, best[1] + wo, best[2])
            # the slowest arrival, by the first-order delays (every predecessor is done)
            chain = carry_in.get(name, ())
            slow, via = _cell_ns(ctype), None
            for b in ins:
                arrive = ((delay[drivers[b][0]] if b in drivers else
                           START_NS[starts.get(b, "PORT")])
                          + (CARRY_CHAIN_NS if b in chain else _cell_ns(ctype)))
                if arrive > slow:
                    slow, via = arrive, drivers[b][0] if b in drivers else starts.get(b, "PORT")
            delay[name], came[name] = slow, via
    if not memo:
        return {"lut_levels": 0, "logic_levels": 0, "path": [], "path_delay_ns": 0.0,
                "delay_path": [], "clock_mhz": None}
    end = max(memo, key=lambda n: memo[n][:2])
    path, n = [], end
    while n is not None:
        path.append(f"{comb[n][0]} {_clean(n)}")
        n = memo[n][2]
    path.reverse()
    slowest = max(delay, key=delay.get)
    worst = delay[slowest] + END_NS
    delay_path, n = [], slowest
    while n in comb:
        delay_path.append(f"{comb[n][0]} {_clean(n)}")
        n = came[n]
    delay_path.append(f"from {n or 'a constant'}")
    delay_path.reverse()
    return {"lut_levels": memo[end][0], "logic_levels": memo[end][1], "path": path,
            "path_delay_ns": round(worst, 3), "clock_mhz": round(plausible_clock_mhz(worst), 1),
            "delay_path": delay_path}


def synthesize(artifact: str | Path, workdir: str | Path | None = None, top: str = "neuro_core",
               sources: list[Path] | None = None, timeout: float | None = None,
               depth: bool = True) -> dict[str, Any]:
    """Run Yosys on the core for an artifact; returns cell counts, resources and depth."""
    yosys = require("yosys")
    art = Path(artifact).resolve()
    if not (art / "neuro_params.vh").exists():
        raise RtlError(f"{art}: no neuro_params.vh (not an artifact directory)")
    files = sources or hdl_sources()
    if top == "neuro_core" and not any(p.name == "pn_net.v" for p in files):
        raise RtlError(f"{files[0].parent}: pn_net.v (the datapath) is missing")
    tag = hashlib.sha256(str(art).encode()).hexdigest()[:8]
    work = Path(workdir or REPO / "build" / "rtl" / "yosys" / f"{art.name}-{tag}")
    work.mkdir(parents=True, exist_ok=True)
    stat, net = work / "stat.json", work / "netlist.json"
    for p in (stat, net):
        p.unlink(missing_ok=True)
    script = "\n".join([
        "read_verilog -DPN_MEM_DIR=\"{}/\" -I{} -I{} {}".format(
            art / "mem", art, files[0].parent, " ".join(str(f) for f in files)),
        f"synth_xilinx -family xc7 -top {top} -flatten -noiopad",
        f"tee -q -o {stat} stat -json",
        f"write_json {net}" if depth else "",
    ]) + "\n"
    (work / "synth.ys").write_text(script)
    start = time.perf_counter()
    try:
        proc = subprocess.run([yosys, "-q", "-l", str(work / "yosys.log"), str(work / "synth.ys")],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RtlError(f"yosys did not finish within {timeout} s") from None
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not stat.exists():
        log = (work / "yosys.log").read_text(errors="replace") if (work / "yosys.log").exists() \
            else proc.stderr
        tail = "\n".join(log.splitlines()[-25:])
        raise RtlError(f"yosys failed (log {work / 'yosys.log'}):\n{tail}")
    data = json.loads(_json_part(stat.read_text()))
    cells = data["design"]["num_cells_by_type"]
    result: dict[str, Any] = {"cells": {_clean(k): v for k, v in cells.items()},
                              "seconds": seconds, "workdir": str(work)}
    result.update(count_resources(cells))
    if depth:
        result.update(logic_depth(json.loads(net.read_text()), top))
        net.unlink(missing_ok=True)    # large; the path is in the result
    return result


def _json_part(text: str) -> str:
    """``tee -o`` captures the JSON of ``stat -json`` (skip any leading log lines)."""
    return text[text.index("{"):]


def estimate(artifact: str | Path, workdir: str | Path | None = None,
             timeout: float | None = None) -> dict[str, Any]:
    """Synthesized resources of neuro_core for an artifact, device utilisation, and the
    compiler's estimate side by side."""
    from ..compiler.artifact import load_artifact

    art = load_artifact(artifact)
    syn = synthesize(artifact, workdir, timeout=timeout)
    util = {"luts": syn["luts"] / DEVICE["luts"], "ffs": syn["ffs"] / DEVICE["ffs"],
            "bram36": syn["bram36"] / DEVICE["bram36"], "dsp": syn["dsp"] / DEVICE["dsp"]}
    model = (art.manifest.get("performance") or {}).get("resources_estimate", {}).get("total")
    return {
        "artifact": str(artifact),
        "network": art.manifest["network"]["name"],
        "fingerprint": art.fingerprint,
        "device": DEVICE,
        "tool": "yosys synth_xilinx -family xc7 -flatten -noiopad",
        "synthesized": {k: syn[k] for k in ("luts", "luts_logic", "luts_memory", "ffs", "bram36",
                                             "ramb36e1", "ramb18e1", "dsp", "muxf7", "muxf8",
                                             "carry4", "lutram_cells")},
        "utilisation": util,
        "fits": all(v <= 1.0 for v in util.values()),
        "lut_levels": syn.get("lut_levels"),
        "logic_levels": syn.get("logic_levels"),
        "path_delay_ns": syn.get("path_delay_ns"),
        "clock_mhz": syn.get("clock_mhz"),
        "critical_path": syn.get("path", []),
        "slowest_path": syn.get("delay_path", []),
        "compiler_estimate": model,
        "cells": syn["cells"],
        "yosys_seconds": syn["seconds"],
        "lut_counting": "LUT1..LUT6 + INV + LUT sites of distributed RAM and shift registers",
    }


def format_estimate(r: dict[str, Any]) -> str:
    s, u, d = r["synthesized"], r["utilisation"], r["device"]
    m = r.get("compiler_estimate") or {}
    rows = [
        ("LUT", s["luts"], d["luts"], u["luts"], m.get("luts")),
        ("  logic", s["luts_logic"], None, None, None),
        ("  memory (LUTRAM/SRL)", s["luts_memory"], None, None, None),
        ("FF", s["ffs"], d["ffs"], u["ffs"], m.get("ffs")),
        ("BRAM36", s["bram36"], d["bram36"], u["bram36"], m.get("bram36")),
        ("DSP48E1", s["dsp"], d["dsp"], u["dsp"], m.get("dsp")),
    ]
    lines = [f"neuro_core on {d['name']} ({r['network']}, fingerprint {r['fingerprint']}; "
             f"{r['tool']}, {r['yosys_seconds']:.0f} s)",
             f"  {'resource':<22}{'used':>10}{'device':>10}{'util':>8}{'compiler':>11}"]
    for name, used, dev, ut, est in rows:
        lines.append(f"  {name:<22}{used:>10g}" + (f"{dev:>10}{100 * ut:>7.1f}%" if dev else
                                                     " " * 18)
                     + (f"{est:>11g}" if isinstance(est, (int, float)) else ""))
    lines.append(f"  longest path: {r['lut_levels']} LUT levels, {r['logic_levels']} logic levels"
                 " (LUT, MUXF, CARRY4)")
    if r.get("clock_mhz"):
        lines.append(f"  slowest path by first-order delays: {r['path_delay_ns']:.2f} ns, a clock "
                     f"of about {r['clock_mhz']:.0f} MHz is plausible (Vivado's timing decides)")
    lines.append(f"  fits the {d['name']}: {'yes' if r['fits'] else 'NO'}")
    return "\n".join(lines)


__all__ = ["DEVICE", "count_resources", "estimate", "format_estimate", "logic_depth",
           "plausible_clock_mhz", "synthesize"]
