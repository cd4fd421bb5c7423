"""The overlay scripts under tclsh with stub Vivado commands (``overlays/dryrun.tcl``), and
checks of the Vivado calls they record."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import SpecError
from .contract import Contract, Mismatch
from .tcl import split_list, split_lists, tcl_int


@dataclass(frozen=True)
class DryRun:
    returncode: int
    calls: list[list[str]]
    stdout: str
    stderr: str

    def find(self, command: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == command]


def dry_run(script: Path, args: Sequence[str], work: Path, *, tclsh: str = "tclsh",
            slack: float = 0.5, board: bool = True, timeout_s: float = 120.0) -> DryRun:
    """Run ``script`` under ``overlays/dryrun.tcl`` (stub Vivado commands) in ``work``."""
    script = Path(script).resolve()
    runner = script.parent / "dryrun.tcl"
    if not runner.is_file():
        raise SpecError(f"no {runner}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{script.stem}.calls"
    cmd = [tclsh, str(runner), "-log", str(log), "-work", str(work), "-slack", str(slack),
           "-board", "1" if board else "0", "--", str(script), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=work,
                       check=False)
    calls = split_lists(log.read_text().splitlines()) if log.exists() else []
    return DryRun(r.returncode, calls, r.stdout, r.stderr)


def _option(call: list[str], name: str) -> str | None:
    return call[call.index(name) + 1] if name in call[:-1] else None


# options of the recorded Vivado commands that take a value
_VALUED_OPTIONS = {"-offset", "-range", "-target_address_space", "-vlnv", "-type", "-rule",
                   "-config", "-of_objects", "-dir", "-net"}


def _positional(call: list[str]) -> list[str]:
    """The arguments of a recorded call that are neither options nor option values."""
    out, skip = [], False
    for a in call[1:]:
        if skip:
            skip = False
        elif a.startswith("-") and not re.fullmatch(r"-?\d+(\.\d*)?", a):
            skip = a in _VALUED_OPTIONS
        else:
            out.append(a)
    return out


def _dict_config(call: list[str]) -> dict[str, str]:
    items = split_list(call[2]) if len(call) > 2 else []
    return dict(zip(items[0::2], items[1::2]))


def check_block_design_calls(run: DryRun, contract: Contract, variables: dict[str, str]
                             ) -> list[Mismatch]:
    """The cells, connections, DMA settings and addresses build_bd.tcl asks Vivado for."""
    out: list[Mismatch] = []
    cells = {_positional(c)[-1]: _option(c, "-vlnv") for c in run.find("create_bd_cell")}
    core, dma = contract.core_instance, contract.dma_instance
    if cells.get(core) != contract.vlnv:
        out.append(Mismatch("block design", core, f"no cell {core} of {contract.vlnv} "
                                                  f"(cells: {cells})"))
    if not str(cells.get(dma, "")).startswith("xilinx.com:ip:axi_dma:"):
        out.append(Mismatch("block design", dma, f"no AXI DMA cell {dma} (cells: {cells})"))
    dma_config: dict[str, str] = {}
    for c in run.find("set_property"):
        if c[1] == "-dict" and c[-1] == dma:
            dma_config.update(_dict_config(c))
    want = {"CONFIG.c_include_sg": "0", "CONFIG.c_sg_length_width": str(contract.dma_length_width),
            "CONFIG.c_m_axis_mm2s_tdata_width": variables.get("PN_STREAM_BITS", "32"),
            "CONFIG.c_s_axis_s2mm_tdata_width": variables.get("PN_STREAM_BITS", "32")}
    for key, value in want.items():
        if dma_config.get(key) != value:
            out.append(Mismatch("block design", f"{dma} {key}",
                                f"set to {dma_config.get(key)!r}, expected {value!r}"))
    # address map
    segments = {_positional(c)[-1]: c for c in run.find("assign_bd_address") if "-offset" in c}
    reg_seg = f"{core}/{variables.get('PN_REGISTER_BUS')}/{variables.get('PN_ADDRESS_BLOCK')}"
    for seg, base, rng in ((reg_seg, contract.core_base, contract.core_range),
                           (f"{dma}/S_AXI_LITE/Reg", contract.dma_base, None)):
        call = segments.get(seg)
        if call is None:
            out.append(Mismatch("block design", seg, "no address assigned"))
            continue
        if tcl_int(_option(call, "-offset") or "-1") != base:
            out.append(Mismatch("block design", seg, f"offset {_option(call, '-offset')}, "
                                                     f"driver expects {base:#010x}"))
        if rng is not None and tcl_int(_option(call, "-range") or "-1") != rng:
            out.append(Mismatch("block design", seg, f"range {_option(call, '-range')}, "
                                                     f"driver expects {rng:#x}"))
    # streams, registers, clock and reset of the core
    links = [set(c[1:]) for c in run.find("connect_bd_intf_net")]
    for a, b in ((f"{dma}/M_AXIS_MM2S", f"{core}/s_axis"),
                 (f"{core}/m_axis", f"{dma}/S_AXIS_S2MM")):
        if {a, b} not in links:
            out.append(Mismatch("block design", f"{a} -> {b}", "not connected"))
    if not any(f"{core}/{variables.get('PN_REGISTER_BUS')}" in link for link in links):
        out.append(Mismatch("block design", f"{core}/{variables.get('PN_REGISTER_BUS')}",
                            "not connected to the GP0 interconnect"))
    nets = [set(c[1:]) for c in run.find("connect_bd_net")]
    clock_pin = f"{core}/{variables.get('PN_CLOCK_PORT')}"
    reset_pin = f"{core}/{variables.get('PN_RESET_PORT')}"
    clock_net = [n for n in nets if clock_pin in n]
    if not clock_net or not any(p.endswith("/FCLK_CLK0") for p in clock_net[0]):
        out.append(Mismatch("block design", clock_pin, "not on the FCLK_CLK0 net"))
    reset_net = [n for n in nets if reset_pin in n]
    want_reset = "peripheral_reset" if variables.get("PN_RESET_POLARITY") == "ACTIVE_HIGH" \
        else "peripheral_aresetn"
    if not reset_net or not any(p.endswith("/" + want_reset) for p in reset_net[0]):
        out.append(Mismatch("block design", reset_pin,
                            f"not driven by proc_sys_reset's {want_reset} "
                            f"({variables.get('PN_RESET_POLARITY')})"))
    fclk = [v for c in run.find("set_property") if c[1] == "-dict"
            for k, v in _dict_config(c).items() if k == "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"]
    if fclk != [variables.get("PN_FCLK_MHZ")]:
        out.append(Mismatch("block design", "FCLK0", f"set to {fclk}, expected "
                                                     f"{variables.get('PN_FCLK_MHZ')} MHz"))
    return out
