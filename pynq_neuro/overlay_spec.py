"""Consistency of the PYNQ-Z2 overlay with the HDL, the driver and the documented register map.

The overlay constants (``overlays/config.tcl``) are read by a Tcl interpreter, the ports and
parameters of ``hdl/neuro_core.v`` by pyslang; the register map has one source,
:data:`pynq_neuro.driver.registers.REGISTER_MAP`, from which ``hdl/pn_regmap.vh``, the table
of ``docs/hardware.md`` and the IP-XACT registers of ``overlays/package_ip.tcl`` are generated
(:mod:`pynq_neuro.overlay.regmap`). Every disagreement is a :class:`Mismatch`. A built ``.hwh``
is checked against the driver with ``check-hwh``, the Vivado calls of a dry run of the scripts
with :func:`check_block_design_calls`::

    python -m pynq_neuro.overlay_spec check [--root DIR]
    python -m pynq_neuro.overlay_spec check-hwh overlays/build/out/neuro.hwh
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .overlay import SpecError, regmap
from .overlay.contract import Contract, Mismatch
from .overlay.dryrun import DryRun, check_block_design_calls, dry_run
from .overlay.hwh import check_hwh
from .overlay.tcl import source_variables, split_list, split_lists, substitute, tcl_int
from .overlay.verilog import VerilogModule, read_module, reset_is_active_low

__all__ = ["BusInterface", "CONTRACT_VARIABLES", "Contract", "DryRun", "Mismatch",
           "OverlayPaths", "OverlaySpec", "SpecError", "bus_interfaces", "check_block_design_calls",
           "check_contract", "check_hwh", "check_interfaces", "check_overlay", "check_registers",
           "core_references", "dry_run", "load_driver_module", "main", "read_module", "repo_root",
           "tcl_int"]


# ------------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class OverlayPaths:
    """The files the checks read; :meth:`from_root` gives the repository's own."""

    config_tcl: Path
    package_tcl: Path
    bd_tcl: Path
    core_v: Path
    regs_v: Path
    regmap_vh: Path
    hardware_md: Path
    registers_py: Path

    @classmethod
    def from_root(cls, root: Path | str) -> OverlayPaths:
        r = Path(root)
        return cls(config_tcl=r / "overlays" / "config.tcl",
                   package_tcl=r / "overlays" / "package_ip.tcl",
                   bd_tcl=r / "overlays" / "build_bd.tcl",
                   core_v=r / "hdl" / "neuro_core.v",
                   regs_v=r / "hdl" / "pn_axil_regs.v",
                   regmap_vh=r / "hdl" / "pn_regmap.vh",
                   hardware_md=r / "docs" / "hardware.md",
                   registers_py=r / "pynq_neuro" / "driver" / "registers.py")

    def replace(self, **changes: Path) -> OverlayPaths:
        return dataclasses.replace(self, **changes)


def repo_root() -> Path:
    """The checkout this module lives in."""
    return Path(__file__).resolve().parents[1]


def _read(path: Path) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror or e}") from e


_module_serial = itertools.count()


def load_driver_module(path: Path) -> ModuleType:
    """Execute a registers module from ``path`` (a copy may sit anywhere; relative imports
    resolve inside ``pynq_neuro.driver``)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"driver constants {path} do not exist")
    name = f"pynq_neuro.driver._overlay_spec_{next(_module_serial)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # any failure of the module is bad input
        raise SpecError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    finally:
        sys.modules.pop(name, None)
    return module


# ------------------------------------------------------------------------------------------------
# the register map: one source, three generated blocks


def check_registers(driver: ModuleType, texts: dict[regmap.Target, str]) -> list[Mismatch]:
    """The register map of ``driver`` is consistent, and each generated block in ``texts``
    (target -> file text) is the one it generates."""
    out = [Mismatch("register", "map", message) for message in regmap.problems(driver)]
    for target, generate in regmap.GENERATORS:
        if target not in texts:
            continue
        found = target.pattern().findall(texts[target])
        want = generate(driver)
        if len(found) != 1:
            out.append(Mismatch("register", target.path,
                                f"{len(found)} '{target.begin}' blocks, expected 1"))
            continue
        if found[0] == want and target.whole and texts[target] != target.file_text(want):
            out.append(Mismatch("register", target.path,
                                "the text around the generated block is not the generated one "
                                "(python -m pynq_neuro.driver.registers --write)"))
        elif found[0] != want:
            pairs = itertools.zip_longest(want.splitlines(), found[0].splitlines(), fillvalue="")
            expected, got = next((w, f) for w, f in pairs if w != f)
            out.append(Mismatch("register", target.path,
                                f"generated block is stale (python -m pynq_neuro.driver.registers "
                                f"--write): the map gives {expected.strip()!r}, the file has "
                                f"{got.strip()!r}"))
    return out


# ------------------------------------------------------------------------------------------------
# the overlay scripts


# script variable -> (contract attribute, label)
CONTRACT_VARIABLES = {
    "PN_IP_VLNV": ("vlnv", "VLNV"),
    "PN_CORE_INSTANCE": ("core_instance", "core instance"),
    "PN_DMA_INSTANCE": ("dma_instance", "DMA instance"),
    "PN_CORE_BASE": ("core_base", "core base address"),
    "PN_CORE_RANGE": ("core_range", "core address range"),
    "PN_DMA_BASE": ("dma_base", "DMA base address"),
    "PN_DMA_LENGTH_WIDTH": ("dma_length_width", "DMA buffer length width"),
}


def _show(v: object) -> str:
    return f"0x{v:08X}" if isinstance(v, int) and v > 0xFFFF else repr(v)


def check_contract(variables: dict[str, str], driver: Contract) -> list[Mismatch]:
    """VLNV, instance names, addresses and DMA length width: scripts versus driver."""
    out: list[Mismatch] = []
    for var, (attr, label) in CONTRACT_VARIABLES.items():
        expected = getattr(driver, attr)
        if var not in variables:
            out.append(Mismatch("contract", label, f"the scripts do not set {var}"))
            continue
        raw = variables[var]
        got: object = tcl_int(raw) if isinstance(expected, int) else raw
        if got != expected:
            out.append(Mismatch("contract", label,
                                f"scripts ({var}) say {_show(got)}, driver says {_show(expected)}"))
    return out


# expected direction of each logical signal on the slave side
_SLAVE_INPUTS = {"TDATA", "TVALID", "TLAST", "TKEEP", "TSTRB", "TUSER", "TID", "TDEST",
                 "AWADDR", "AWPROT", "AWVALID", "WDATA", "WSTRB", "WVALID", "BREADY",
                 "ARADDR", "ARPROT", "ARVALID", "RREADY"}
_SLAVE_OUTPUTS = {"TREADY", "AWREADY", "WREADY", "BRESP", "BVALID", "ARREADY", "RDATA", "RRESP",
                  "RVALID"}


@dataclass(frozen=True)
class BusInterface:
    name: str
    kind: str
    mode: str
    ports: tuple[tuple[str, str], ...]  # (logical, physical)


def bus_interfaces(variables: dict[str, str]) -> list[BusInterface]:
    """The bus interfaces declared by ``PN_BUS_INTERFACES`` of package_ip.tcl."""
    if "PN_BUS_INTERFACES" not in variables:
        raise SpecError("package_ip.tcl does not set PN_BUS_INTERFACES")
    items = split_list(variables["PN_BUS_INTERFACES"])
    if len(items) % 4:
        raise SpecError("PN_BUS_INTERFACES is not a list of name, kind, mode, port map")
    out = []
    groups = list(zip(*[iter(items)] * 4))
    for (name, kind, mode, _), pm in zip(groups, split_lists([g[3] for g in groups])):
        if len(pm) % 2:
            raise SpecError(f"PN_BUS_INTERFACES: the port map of {name} has an odd length")
        out.append(BusInterface(name, kind, mode, tuple(zip(pm[0::2], pm[1::2]))))
    return out


def core_references(bd_script: str, variables: dict[str, str]) -> set[str]:
    """Pins and interfaces of the core cell that build_bd.tcl names (``$PN_CORE_INSTANCE/x``),
    their variables substituted by Tcl."""
    found = [m.group(1) for m in
             re.finditer(r"\$\{?PN_CORE_INSTANCE\}?/((?:\$\{?\w+\}?|\w)+)", bd_script)]
    try:
        return set(substitute(found, variables))
    except SpecError as e:
        raise SpecError(f"build_bd.tcl: cannot resolve a core pin: {e}") from e


def check_interfaces(variables: dict[str, str], module: VerilogModule,
                     bd_script: str | None = None) -> list[Mismatch]:
    """The IP's clock, reset, bus interfaces and parameters against the HDL module; the core
    pins build_bd.tcl connects against the IP's interfaces."""
    out: list[Mismatch] = []
    top = variables.get("PN_CORE_TOP")
    if top != module.name:
        out.append(Mismatch("interface", "top", f"scripts package {top!r}, HDL module is "
                                                f"{module.name!r}"))
    mapped: dict[str, str] = {}

    def claim(port: str, owner: str) -> None:
        if port in mapped:
            out.append(Mismatch("interface", port, f"mapped twice ({mapped[port]} and {owner})"))
        mapped[port] = owner

    for kind, var in (("clock", "PN_CLOCK_PORT"), ("reset", "PN_RESET_PORT")):
        port = variables.get(var)
        if port is None:
            out.append(Mismatch("interface", kind, f"package_ip.tcl does not set {var}"))
            continue
        claim(port, kind)
        p = module.ports.get(port)
        if p is None:
            out.append(Mismatch("interface", kind, f"{var} is {port!r}, which {module.name} does "
                                                   f"not have"))
        elif p.direction != "input" or p.width != 1:
            out.append(Mismatch("interface", kind, f"{port} is a {p.width}-bit {p.direction}, "
                                                   f"expected a 1-bit input"))
    reset = variables.get("PN_RESET_PORT")
    polarity = variables.get("PN_RESET_POLARITY")
    if reset in module.ports:
        active_low = reset_is_active_low(module)
        expected = None if active_low is None else ("ACTIVE_LOW" if active_low else "ACTIVE_HIGH")
        if expected is not None and polarity != expected:
            out.append(Mismatch("interface", "reset polarity",
                                f"scripts declare {polarity}, {module.name} uses {reset} "
                                f"{expected.lower().replace('_', ' ')}"))
    stream_bits = int(variables.get("PN_STREAM_BITS", "32"))
    core_range = tcl_int(variables.get("PN_CORE_RANGE", "0"))
    interfaces = bus_interfaces(variables)
    for bif in interfaces:
        if bif.mode not in ("slave", "master"):
            out.append(Mismatch("interface", bif.name, f"mode {bif.mode!r} is not slave/master"))
            continue
        for logical, physical in bif.ports:
            subject = f"{bif.name}.{logical}"
            claim(physical, bif.name)
            p = module.ports.get(physical)
            if p is None:
                out.append(Mismatch("interface", subject,
                                    f"maps to {physical}, which {module.name} does not have"))
                continue
            if logical in _SLAVE_INPUTS or logical in _SLAVE_OUTPUTS:
                into = (logical in _SLAVE_INPUTS) == (bif.mode == "slave")
                want = "input" if into else "output"
                if p.direction != want:
                    out.append(Mismatch("interface", subject,
                                        f"{physical} is an {p.direction}, expected an {want}"))
            else:
                out.append(Mismatch("interface", subject, f"unknown logical signal {logical}"))
            if logical == "TDATA" and p.width != stream_bits:
                out.append(Mismatch("interface", subject,
                                    f"{physical} is {p.width} bits, the DMA streams are "
                                    f"{stream_bits} bits (PN_STREAM_BITS)"))
            if logical in ("WDATA", "RDATA") and p.width != 32:
                out.append(Mismatch("interface", subject, f"{physical} is {p.width} bits, "
                                                          f"AXI4-Lite data is 32 bits"))
            if logical in ("AWADDR", "ARADDR") and p.width is not None and \
                    (1 << p.width) != core_range:
                out.append(Mismatch("interface", subject,
                                    f"{physical} is {p.width} bits ({1 << p.width} bytes), the "
                                    f"address range is {core_range:#x} (PN_CORE_RANGE)"))
    for port in module.ports:
        if port not in mapped:
            out.append(Mismatch("interface", port, f"port of {module.name} in no bus interface "
                                                   f"of the IP (it would be left unconnected)"))
    for param in split_list(variables.get("PN_CORE_PARAMETERS", "")):
        if param not in module.parameters:
            out.append(Mismatch("parameter", param, f"the scripts set it, {module.name} has no "
                                                    f"such parameter"))
    if bd_script is not None:
        known = {b.name for b in interfaces} | {variables.get("PN_CLOCK_PORT"),
                                                variables.get("PN_RESET_PORT")}
        reg_seg = f"{variables.get('PN_REGISTER_BUS')}/{variables.get('PN_ADDRESS_BLOCK')}"
        if variables.get("PN_REGISTER_BUS") not in {b.name for b in interfaces
                                                    if b.kind == "aximm" and b.mode == "slave"}:
            out.append(Mismatch("interface", "register bus",
                                f"PN_REGISTER_BUS {variables.get('PN_REGISTER_BUS')!r} is not an "
                                f"AXI slave interface of the IP"))
        for ref in sorted(core_references(bd_script, variables)):
            if ref not in known and ref != reg_seg:
                out.append(Mismatch("block design", ref, f"build_bd.tcl connects "
                                                         f"{variables.get('PN_CORE_INSTANCE')}/"
                                                         f"{ref}, which the IP does not have"))
    return out


# ------------------------------------------------------------------------------------------------
# all checks


@dataclass
class OverlaySpec:
    """Everything read from one set of :class:`OverlayPaths`."""

    variables: dict[str, str]
    module: VerilogModule
    bd_script: str
    driver_module: ModuleType
    generated: dict[regmap.Target, str]  # texts holding generated register blocks

    @classmethod
    def read(cls, paths: OverlayPaths) -> OverlaySpec:
        bd = _read(paths.bd_tcl)
        _read(paths.config_tcl)
        variables = source_variables(paths.config_tcl)
        top = variables.get("PN_CORE_TOP")
        if not top:
            raise SpecError(f"{paths.config_tcl} does not set PN_CORE_TOP")
        module = read_module(_read(paths.core_v), top, variables.get("PN_RESET_PORT"))
        generated = {regmap.HDL: _read(paths.regmap_vh), regmap.DOCS: _read(paths.hardware_md),
                     regmap.TCL: _read(paths.package_tcl)}
        return cls(variables, module, bd, load_driver_module(paths.registers_py), generated)

    def contract(self) -> Contract:
        return Contract.from_driver(self.driver_module)


def check_overlay(paths: OverlayPaths) -> list[Mismatch]:
    """Every check: (a) interfaces and parameters, (b) scripts versus driver, (c) registers."""
    spec = OverlaySpec.read(paths)
    return (check_interfaces(spec.variables, spec.module, spec.bd_script)
            + check_contract(spec.variables, spec.contract())
            + check_registers(spec.driver_module, spec.generated))


# ------------------------------------------------------------------------------------------------
# command line


def _report(mismatches: list[Mismatch], what: str) -> int:
    for m in mismatches:
        print(m)
    if mismatches:
        print(f"{what}: {len(mismatches)} mismatch(es)")
        return 1
    print(f"{what}: consistent")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pynq_neuro.overlay_spec",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="overlay scripts vs HDL vs driver vs docs")
    p.add_argument("--root", default=str(repo_root()), help="repository root")
    p = sub.add_parser("check-hwh", help="a built .hwh against the driver constants")
    p.add_argument("hwh")
    p.add_argument("--root", default=str(repo_root()), help="repository root (driver)")
    args = parser.parse_args(argv)
    paths = OverlayPaths.from_root(args.root)
    try:
        if args.command == "check":
            return _report(check_overlay(paths), "overlay")
        contract = Contract.from_driver(load_driver_module(paths.registers_py))
        return _report(check_hwh(_read(Path(args.hwh)), contract), args.hwh)
    except SpecError as e:
        print(f"pynq-neuro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
