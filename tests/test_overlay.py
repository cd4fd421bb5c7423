"""The PYNQ-Z2 overlay without Vivado: the Tcl scripts (read by a Tcl interpreter) agree with the
HDL ports and parameters (read by pyslang) and with the driver constants; the register map has
one source (pynq_neuro/driver/registers.py) and its generated blocks in the HDL, the docs and the
IP-XACT description are current; each check fails when one side alone changes; the scripts run
under tclsh with stub Vivado commands; the package carries the notebooks and the overlay folder
and declares PYNQ's entry points."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from pynq_neuro.overlay import regmap, tcl
from pynq_neuro.overlay_spec import (
    Contract,
    Mismatch,
    OverlayPaths,
    OverlaySpec,
    SpecError,
    bus_interfaces,
    check_block_design_calls,
    check_contract,
    check_hwh,
    check_interfaces,
    check_overlay,
    check_registers,
    dry_run,
    main,
    read_module,
)

REPO = Path(__file__).resolve().parents[1]
PATHS = OverlayPaths.from_root(REPO)
OVERLAYS = REPO / "overlays"
TCLSH = shutil.which("tclsh")
needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed (Debian: tcl)")


def _has_pyslang() -> bool:
    try:
        import pyslang  # noqa: F401
    except ImportError:
        return False
    return True


NO_PYSLANG = ("pyslang not installed (pip install pyslang): the port and parameter checks read "
              "the HDL with it")
needs_pyslang = pytest.mark.skipif(not _has_pyslang(), reason=NO_PYSLANG)
needs_tcl = pytest.mark.skipif(tcl.backend() == "", reason="no Tcl: neither tkinter nor tclsh")

if not PATHS.registers_py.exists():
    pytest.skip("pynq_neuro/driver/registers.py does not exist yet", allow_module_level=True)


def mutate(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of ``source`` in ``tmp_path`` with the first ``old`` replaced by ``new``."""
    text = source.read_text()
    assert old in text, f"{old!r} is not in {source.name}: the mutation would change nothing"
    out = tmp_path / source.name
    out.write_text(text.replace(old, new, 1))
    return out


def subjects(mismatches: list[Mismatch]) -> set[tuple[str, str]]:
    return {(m.topic, m.subject) for m in mismatches}


@pytest.fixture(scope="module")
def spec() -> OverlaySpec:
    if not _has_pyslang():
        pytest.skip(NO_PYSLANG)
    if tcl.backend() == "":
        pytest.skip("no Tcl: neither tkinter nor tclsh")
    return OverlaySpec.read(PATHS)


# ------------------------------------------------------------------------------------------------
# the constants of config.tcl, read by a Tcl interpreter

EXPECTED_VARIABLES = {
    "PN_PART": "xc7z020clg400-1",
    "PN_BOARD_PART": "tul.com.tw:pynq-z2:part0:1.0",
    "PN_VIVADO_VERSION": "2022.1",
    "PN_IP_VLNV": "pynq-neuro.org:pynq_neuro:neuro_core:1.0",
    "PN_CORE_TOP": "neuro_core",
    "PN_IP_DISPLAY_NAME": "pynq-neuro neuron arrays",
    "PN_BD_NAME": "neuro",
    "PN_OVERLAY_NAME": "neuro",
    "PN_PS_INSTANCE": "processing_system7_0",
    "PN_CORE_INSTANCE": "neuro_core_0",
    "PN_DMA_INSTANCE": "axi_dma_0",
    "PN_RESET_INSTANCE": "rst_ps7_0_100M",
    "PN_GP0_INTERCONNECT": "ps7_0_axi_periph",
    "PN_HP0_INTERCONNECT": "axi_smc",
    "PN_INTC_INSTANCE": "axi_intc_0",
    "PN_IRQ_CONCAT": "xlconcat_0",
    "PN_REGISTER_BUS": "s_axil",
    "PN_ADDRESS_BLOCK": "reg0",
    "PN_CORE_BASE": "0x43C00000",
    "PN_CORE_RANGE": "0x1000",
    "PN_DMA_BASE": "0x40400000",
    "PN_DMA_RANGE": "0x10000",
    "PN_INTC_BASE": "0x41800000",
    "PN_INTC_RANGE": "0x10000",
    "PN_DMA_LENGTH_WIDTH": "26",
    "PN_STREAM_BITS": "32",
    "PN_DMA_MM_BITS": "32",
    "PN_DMA_BURST": "16",
    "PN_FCLK_MHZ": "100",
    "PN_HP0_BITS": "64",
    "PN_DMA_INTERRUPTS": "0",
    "PN_VLNV_PS7": "xilinx.com:ip:processing_system7:5.5",
    "PN_VLNV_DMA": "xilinx.com:ip:axi_dma:7.1",
    "PN_VLNV_RESET": "xilinx.com:ip:proc_sys_reset:5.0",
    "PN_VLNV_INTERCONNECT": "xilinx.com:ip:axi_interconnect:2.1",
    "PN_VLNV_SMARTCONNECT": "xilinx.com:ip:smartconnect:1.0",
    "PN_VLNV_INTC": "xilinx.com:ip:axi_intc:4.1",
    "PN_VLNV_CONCAT": "xilinx.com:ip:xlconcat:2.1",
    "PN_CLOCK_PORT": "clk",
    "PN_RESET_PORT": "rst",
    "PN_RESET_POLARITY": "ACTIVE_HIGH",
    "PN_CORE_PARAMETERS": "MEM_DIR",
    "PN_ARTIFACT_FILES": "manifest.json neuro_params.vh",
}
EXPECTED_BUS_INTERFACES = {
    "s_axis": ("axis", "slave", ["TDATA", "TVALID", "TREADY", "TLAST"]),
    "m_axis": ("axis", "master", ["TDATA", "TVALID", "TREADY", "TLAST"]),
    "s_axil": ("aximm", "slave", ["AWADDR", "AWPROT", "AWVALID", "AWREADY", "WDATA", "WSTRB",
                                  "WVALID", "WREADY", "BRESP", "BVALID", "BREADY", "ARADDR",
                                  "ARPROT", "ARVALID", "ARREADY", "RDATA", "RRESP", "RVALID",
                                  "RREADY"]),
}


@needs_tcl
def test_config_tcl_sets_every_constant_with_its_value():
    variables = tcl.source_variables(PATHS.config_tcl)
    bus = variables.pop("PN_BUS_INTERFACES")
    assert variables == EXPECTED_VARIABLES
    found = {b.name: (b.kind, b.mode, [lg for lg, _ in b.ports])
             for b in bus_interfaces({"PN_BUS_INTERFACES": bus})}
    assert found == EXPECTED_BUS_INTERFACES
    # each physical port is the interface name, "_" and the lower-case logical name
    for b in bus_interfaces({"PN_BUS_INTERFACES": bus}):
        assert all(phys == f"{b.name}_{lg.lower()}" for lg, phys in b.ports)


@needs_tcl
def test_package_ip_sets_no_constant_of_its_own():
    """All PN_* constants but the generated register list live in config.tcl, which loads
    without Vivado; package_ip.tcl only sources it."""
    text = PATHS.package_tcl.read_text()
    own = set(re.findall(r"^set (PN_\w+)", text, re.MULTILINE))
    assert own == {"PN_REGISTERS"}


@needs_tcl
def test_tcl_evaluation_is_real_tcl(tmp_path):
    script = tmp_path / "s.tcl"
    script.write_text("set PN_A 0x10\nset PN_B \"$PN_A/x\"\nset PN_C {lit $PN_A}\n"
                      "set PN_D [expr {6 * 7}]\nproc p {} { set ::PN_E 1 }\n# set PN_F 2\n"
                      "set PN_G \\\n  long\narray set PN_H {a 1}\nset other 1\n")
    assert tcl.source_variables(script) == {"PN_A": "0x10", "PN_B": "0x10/x", "PN_C": "lit $PN_A",
                                            "PN_D": "42", "PN_G": "long"}
    assert tcl.split_list('a {b c} "d e" {f {g}}') == ["a", "b c", "d e", "f {g}"]
    odd = "x{ \n}$[\\\t;\"q"
    assert tcl.split_list(tcl.quote(odd)) == [odd]
    assert tcl.substitute(["$PN_CORE_INSTANCE/s_axis", "${PN_X}y"],
                          {"PN_CORE_INSTANCE": "n0", "PN_X": "1"}) == ["n0/s_axis", "1y"]


@needs_tcl
def test_tcl_errors_are_spec_errors(tmp_path):
    bad = tmp_path / "bad.tcl"
    bad.write_text("set PN_A [no_such_command]\n")
    with pytest.raises(SpecError, match='invalid command name "no_such_command"'):
        tcl.source_variables(bad)
    with pytest.raises(SpecError, match="no such file"):
        tcl.source_variables(tmp_path / "missing.tcl")
    with pytest.raises(SpecError, match="no such variable"):
        tcl.substitute(["$PN_UNSET"], {})
    with pytest.raises(SpecError, match="command substitution"):
        tcl.substitute(["[exit 3]"], {})


@needs_tclsh
def test_tclsh_and_tkinter_read_the_same(monkeypatch):
    if tcl.backend() != "tkinter":
        pytest.skip("tkinter is not available: only tclsh")
    first = tcl.source_variables(PATHS.config_tcl)
    monkeypatch.setattr(tcl, "_tkinter_available", lambda: False)
    assert tcl.backend() == "tclsh"
    assert tcl.source_variables(PATHS.config_tcl) == first
    assert tcl.split_lists(["a {b c}", "", "x\\ny"]) == [["a", "b c"], [], ["x\ny"]]


TCL_SCRIPTS = ["config.tcl", "package_ip.tcl", "build_bd.tcl", "build_bitstream.tcl", "dryrun.tcl"]


@needs_tcl
def test_tcl_scripts_are_complete():
    assert tcl.complete((OVERLAYS / n).read_text() for n in TCL_SCRIPTS) == [True] * 5
    text = (OVERLAYS / "build_bd.tcl").read_text()
    broken = text.replace("proc pn_link {from to} {", "proc pn_link {from to} {{", 1)
    assert broken != text and tcl.complete([broken]) == [False]


# ------------------------------------------------------------------------------------------------
# (a) interfaces and parameters against hdl/neuro_core.v


@needs_pyslang
def test_verilog_reader_sees_every_port_of_the_header(spec):
    header = PATHS.core_v.read_text().split(");", 2)[1]
    declared = re.findall(r"^\s*(input|output)\s+wire\s*(\[[^\]]*\])?\s*(\w+)", header,
                          re.MULTILINE)
    assert len(declared) > 20
    assert {name: d for d, _, name in declared} == {
        name: p.direction for name, p in spec.module.ports.items()}
    widths = {name: int(r[1:].split(":")[0]) + 1 if r else 1 for _, r, name in declared}
    assert widths == {name: p.width for name, p in spec.module.ports.items()}
    assert spec.module.ports["s_axis_tdata"].width == 32
    assert "MEM_DIR" in spec.module.parameters
    assert not [p for p in spec.module.parameters if p.startswith("LIMIT_")]  # localparams


@needs_pyslang
def test_verilog_reader_on_small_modules():
    m = read_module("module x #(parameter W = 4, parameter [7:0] K = 1) "
                    "(input wire rst_n, input wire [W-1:0] a, output reg [2*W-1:0] q);\n"
                    "localparam L = 2;\n"
                    "always @* if (!rst_n) q = 0; else q = {a, a};\nendmodule\n", "x", "rst_n")
    assert m.parameters == ("W", "K")
    assert {n: (p.direction, p.width) for n, p in m.ports.items()} == {
        "rst_n": ("input", 1), "a": ("input", 4), "q": ("output", 8)}
    assert m.reset_uses == {"low"}


@needs_pyslang
def test_ip_interfaces_match_neuro_core(spec):
    assert check_interfaces(spec.variables, spec.module, spec.bd_script) == []


@needs_pyslang
def test_every_port_is_in_exactly_one_interface(spec):
    physical = [p for b in bus_interfaces(spec.variables) for _, p in b.ports]
    physical += [spec.variables["PN_CLOCK_PORT"], spec.variables["PN_RESET_PORT"]]
    assert sorted(physical) == sorted(spec.module.ports)


@needs_pyslang
def test_reset_polarity_is_active_high_like_the_hdl(spec):
    assert spec.module.reset_uses == {"high"}
    assert spec.variables["PN_RESET_POLARITY"] == "ACTIVE_HIGH"


@needs_pyslang
def test_parameters_the_scripts_set_exist_in_the_hdl(spec):
    params = tcl.split_list(spec.variables["PN_CORE_PARAMETERS"])
    assert params and set(params) <= set(spec.module.parameters)


# ------------------------------------------------------------------------------------------------
# (b) scripts against the driver constants


@needs_pyslang
def test_scripts_match_the_driver_contract(spec):
    from pynq_neuro.driver import registers
    contract = Contract.from_driver(registers)
    assert check_contract(spec.variables, contract) == []
    assert Contract.from_scripts(spec.variables) == contract


# ------------------------------------------------------------------------------------------------
# (c) the register map: one source, generated blocks


def test_register_map_is_consistent_and_the_generated_blocks_are_current():
    from pynq_neuro.driver import registers
    assert regmap.problems(registers) == []
    assert regmap.stale(REPO) == []
    texts = {t: (REPO / t.path).read_text() for t, _ in regmap.GENERATORS}
    assert check_registers(registers, texts) == []
    r = subprocess.run([sys.executable, "-m", "pynq_neuro.driver.registers", "--check"],
                       capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def test_driver_constants_come_from_the_map():
    from pynq_neuro.driver import registers as R
    by_name = {r.name: r for r in R.REGISTER_MAP}
    assert (R.STATUS, R.BATCH, R.FINGERPRINT_HI) == (by_name["STATUS"].offset,
                                                     by_name["BATCH"].offset,
                                                     by_name["FINGERPRINT_HI"].offset)
    status = by_name["STATUS"]
    assert R.ERROR_CODE_MASK == status.field("ERROR_CODE").mask == 0xFF00
    assert R.LOAD_OK == 1 << status.field("LOAD_OK").lsb
    assert R.layer_field_offset(1, 2) == R.LAYER_BASE + R.LAYER_STRIDE + 8


def test_generated_hdl_decodes_every_register():
    """pn_regmap.vh declares every register and the core version; each decoded register has a
    case label in pn_axil_regs.v (which includes the header), the reserved ones none."""
    from pynq_neuro.driver import registers as R
    header = PATHS.regmap_vh.read_text()
    body = PATHS.regs_v.read_text()
    assert '`include "pn_regmap.vh"' in body and "BEGIN pn_regmap" not in body
    assert re.search(r"\bparameter\s+CORE_VERSION\b", body) is None
    # the core version has one source: the header holds the driver's, neuro_core.v none
    assert f"localparam CORE_VERSION = {R.CORE_VERSION};" in header
    assert "CORE_VERSION" not in PATHS.core_v.read_text()
    for r in R.REGISTER_MAP:
        assert f"localparam [ADDR_WIDTH-1:0] A_{r.name} = 12'h{r.offset:03X};" in header, r.name
        assert re.search(rf"\blocalparam\b[^;]*\bA_{r.name}\b", body) is None, r.name
        used = re.search(rf"\bA_{r.name}\b", body) is not None
        assert used == r.decoded, r.name


def test_docs_table_rows_follow_the_map():
    from pynq_neuro.driver import registers as R
    [block] = regmap.DOCS.pattern().findall(PATHS.hardware_md.read_text())
    rows = re.findall(r"^\| (0x[0-9A-F]{3}) \| `(\w+)` \| (R|W|RW) \|", block, re.MULTILINE)
    assert rows == [(f"0x{r.offset:03X}", r.name, r.access) for r in R.REGISTER_MAP]
    assert "bits 15:8 `ERROR_CODE`" in block and "ending at 0x4FC" in block


@needs_tcl
@pytest.mark.parametrize("text", ["plain words", "{balanced} [x]", "open { only", "close } only",
                                  "ends in \\", " padded ", "tab\tand\nnewline $v;", ""])
def test_tcl_word_reads_back_exactly(text):
    assert tcl.split_list(regmap.tcl_word(text)) == [text]


@needs_tcl
def test_ipxact_register_list_reads_back_as_the_map():
    from pynq_neuro.driver import registers as R
    [block] = regmap.TCL.pattern().findall(PATHS.package_tcl.read_text())
    items = tcl.evaluate(block + "\npn_emit $PN_REGISTERS")
    entries = tcl.split_lists(items)
    assert [(e[0], int(e[1], 16), e[2], e[3]) for e in entries] == [
        (r.name, r.offset, regmap.ACCESS_IPXACT[r.access], regmap.ipxact_description(r))
        for r in R.REGISTER_MAP]
    assert '{format version[15:0], core version[15:0]}' in entries[1][3]
    control = next(e for e in entries if e[0] == "CONTROL")
    fields = tcl.split_lists(tcl.split_list(control[4]))
    assert [(f[0], int(f[1]), int(f[2]), f[3]) for f in fields] == [
        (f.name, f.lsb, f.width, regmap.ACCESS_IPXACT[f.access or "RW"])
        for f in R.register("CONTROL").fields]


def fake_registers(**changes) -> types.ModuleType:
    """A copy of the driver's register constants with some replaced."""
    from pynq_neuro.driver import registers as R
    m = types.ModuleType("fake_registers")
    m.__dict__.update({k: v for k, v in vars(R).items() if not k.startswith("__")})
    m.__dict__.update(changes)
    return m


def bad_maps():
    from pynq_neuro.driver.registers import REGISTER_MAP, Field, Register
    batch = [r for r in REGISTER_MAP if r.name != "BATCH"]
    return [
        ("is also LOAD_DATA", dict(REGISTER_MAP=(*batch, Register("BATCH", 0x024, "RW")))),
        ("not a word", dict(REGISTER_MAP=(*batch, Register("BATCH", 0x02A, "RW")))),
        ("below LAYER_BASE", dict(REGISTER_MAP=(*batch, Register("BATCH", 0x100, "RW")))),
        ("overlap", dict(REGISTER_MAP=(*batch, Register("BATCH", 0x028, "RW", fields=(
            Field("A", 0, 4), Field("B", 3)))))),
        ("32-bit word", dict(REGISTER_MAP=(*batch, Register("BATCH", 0x028, "RW", fields=(
            Field("A", 30, 4),))))),
        ("access", dict(REGISTER_MAP=(*batch, Register("BATCH", 0x028, "RX")))),
        ("driver constant is 0x02c", dict(BATCH=0x02C)),
        ("driver constant LOAD_OK", dict(LOAD_OK=1 << 18)),
        ("not a power of two", dict(LAYER_STRIDE=0x90)),
        ("do not fit", dict(LAYER_STRIDE=0x40, LAYER_BASE=0x100)),
        ("past CORE_RANGE", dict(CORE_RANGE=0x400)),
        ("not a 16-bit number", dict(CORE_VERSION=0x10000)),
        ("not a 16-bit number", dict(CORE_VERSION=-1)),
    ]


@pytest.mark.parametrize("message, changes", bad_maps(), ids=[m for m, _ in bad_maps()])
def test_an_inconsistent_map_is_refused(message, changes):
    found = regmap.problems(fake_registers(**changes))
    assert any(message in p for p in found), found


def repo_copy(tmp_path: Path) -> Path:
    """The files with generated register blocks, copied to ``tmp_path``."""
    for target, _ in regmap.GENERATORS:
        dest = tmp_path / target.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / target.path, dest)
    return tmp_path


@pytest.mark.parametrize("target", [t for t, _ in regmap.GENERATORS], ids=lambda t: t.path)
def test_registers_check_fails_on_a_stale_block_and_write_repairs_it(tmp_path, target):
    root = repo_copy(tmp_path)
    path = root / target.path
    text = path.read_text()
    [block] = target.pattern().findall(text)
    path.write_text(text.replace(block, block.replace("0x028", "0x02C").replace(
        "12'h028", "12'h02C").replace("0x028", "0x02C"), 1))
    assert path.read_text() != text
    cmd = [sys.executable, "-m", "pynq_neuro.driver.registers", "--root", str(root)]
    r = subprocess.run([*cmd, "--check"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and target.path in r.stderr and "--write" in r.stderr
    r = subprocess.run([*cmd, "--write"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and f"updated {target.path}" in r.stdout
    assert path.read_text() == text
    assert regmap.stale(root) == []


def test_generated_header_is_the_whole_file(tmp_path):
    """Text edited outside the block of pn_regmap.vh is stale; --write recreates a missing one."""
    root = repo_copy(tmp_path)
    path = root / regmap.HDL.path
    text = path.read_text()
    assert text.startswith(regmap.HDL_PREAMBLE) and text.endswith("// END pn_regmap\n")
    path.write_text(text.replace("Do not edit by hand.", "Edit freely.", 1))
    assert regmap.stale(root) == [regmap.HDL.path]
    from pynq_neuro.driver import registers
    edited = check_registers(registers, {regmap.HDL: path.read_text()})
    assert [(m.subject, "--write" in m.message) for m in edited] == [(regmap.HDL.path, True)]
    path.unlink()
    assert regmap.stale(root) == [regmap.HDL.path]
    assert regmap.write(root) == [regmap.HDL.path]
    assert path.read_text() == text and regmap.stale(root) == []
    assert regmap.write(root) == []


def test_registers_write_needs_the_markers(tmp_path):
    root = repo_copy(tmp_path)
    path = root / regmap.DOCS.path
    path.write_text(regmap.DOCS.pattern().sub("", path.read_text()))
    assert regmap.stale(root) == [regmap.DOCS.path]
    with pytest.raises(ValueError, match="no '<!-- BEGIN pn_regmap'"):
        regmap.write(root)
    r = subprocess.run([sys.executable, "-m", "pynq_neuro.driver.registers", "--root", str(root),
                        "--write"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "pynq-neuro: error: ") and "Traceback" not in r.stderr


@needs_pyslang
def test_whole_repository_is_consistent():
    assert check_overlay(PATHS) == []
    assert main(["check", "--root", str(REPO)]) == 0


# ------------------------------------------------------------------------------------------------
# (d) each check fails when one side alone changes

HDL_BLOCK, DOCS_BLOCK, TCL_BLOCK = (("register", t.path) for t, _ in regmap.GENERATORS)
STATUS_MOVED = ('Register("STATUS", 0x00C', 'Register("STATUS", 0x010')
# the file changed: (text, its replacement, every (topic, subject) the check reports then)
C, I, P = "contract", "interface", "parameter"   # the topics of the reports
MUTATIONS = {
    "core_v": [
        ("parameter MEM_DIR =", "parameter MEM_PATH =", [(P, "MEM_DIR")]),
        ("s_axis_tlast", "s_axis_tend", [(I, "s_axis.TLAST"), (I, "s_axis_tend")]),
        ("output wire         s_axis_tready", "input  wire         s_axis_tready",
         [(I, "s_axis.TREADY")]),
        ("input  wire [11:0]  s_axil_awaddr", "input  wire [15:0]  s_axil_awaddr",
         [(I, "s_axil.AWADDR")]),
        ("output wire [31:0]  m_axis_tdata", "output wire [63:0]  m_axis_tdata",
         [(I, "m_axis.TDATA")]),
    ],
    "regmap_vh": [
        ("A_STATUS = 12'h00C", "A_STATUS = 12'h02C", [HDL_BLOCK]),
        ("CORE_VERSION = 1;", "CORE_VERSION = 2;", [HDL_BLOCK]),
        ("Do not edit by hand.", "Edit freely.", [HDL_BLOCK]),
        ("A_BATCH = 12'h028", "A_BATCH = 12'h030", [HDL_BLOCK]),
        ("STATUS_LOAD_OK = 17", "STATUS_LOAD_OK = 18", [HDL_BLOCK]),
        ("LAYER_SHIFT = 7", "LAYER_SHIFT = 8", [HDL_BLOCK]),
        ("// END pn_regmap", "// END pn_regmap\n// BEGIN pn_regmap\n// END pn_regmap",
         [HDL_BLOCK]),
    ],
    "config_tcl": [
        ("pynq-neuro.org:pynq_neuro:neuro_core:1.0", "pynq-neuro.org:pynq_neuro:neuro_core:1.1",
         [(C, "VLNV")]),
        ("neuro_core_0", "neuro_core_1", [(C, "core instance")]),
        ("0x43C00000", "0x43C10000", [(C, "core base address")]),
        ("PN_DMA_BASE          0x40400000", "PN_DMA_BASE          0x40410000",
         [(C, "DMA base address")]),
        ("PN_DMA_LENGTH_WIDTH  26", "PN_DMA_LENGTH_WIDTH  23", [(C, "DMA buffer length width")]),
        ("PN_CORE_RANGE        0x1000", "PN_CORE_RANGE        0x10000",
         [(C, "core address range")]),
        ("TREADY s_axis_tready", "TREADY s_axis_trdy", [(I, "s_axis.TREADY")]),
        ("PN_RESET_POLARITY    ACTIVE_HIGH", "PN_RESET_POLARITY    ACTIVE_LOW",
         [(I, "reset polarity")]),
        ("{MEM_DIR}", "{MEM_DIR NUM_NEURONS}", [(P, "NUM_NEURONS")]),
    ],
    "package_tcl": [
        ("{BATCH 0x028 read-write", "{BATCH 0x02C read-write", [TCL_BLOCK]),
        ("{SOFT_RESET 0 1 write-only", "{SOFT_RESET 0 1 read-write", [TCL_BLOCK]),
    ],
    "bd_tcl": [
        ("$PN_CORE_INSTANCE/s_axis", "$PN_CORE_INSTANCE/s_axis0", [("block design", "s_axis0")]),
    ],
    # the driver: the source of the register map
    "registers_py": [
        (*STATUS_MOVED, [HDL_BLOCK, DOCS_BLOCK, TCL_BLOCK]),
        ('Register("BATCH", 0x028', 'Register("BATCH", 0x024', [("register", "map")]),
        ("LAYER_STRIDE = 0x80", "LAYER_STRIDE = 0x100", [HDL_BLOCK]),
        ("CORE_VERSION = 1", "CORE_VERSION = 2", [HDL_BLOCK, DOCS_BLOCK, TCL_BLOCK]),
        ('Field("LOAD_DONE", 16)', 'Field("LOAD_DONE", 18)', [DOCS_BLOCK]),
        ('VLNV = "pynq-neuro.org:pynq_neuro:neuro_core:1.0"',
         'VLNV = "pynq-neuro.org:pynq_neuro:neuro_core:2.0"', [(C, "VLNV")]),
        ("CORE_BASE_ADDRESS = 0x43C0_0000", "CORE_BASE_ADDRESS = 0x43C1_0000",
         [(C, "core base address")]),
        ("DMA_BUFFER_LENGTH_WIDTH = 26", "DMA_BUFFER_LENGTH_WIDTH = 24",
         [(C, "DMA buffer length width")]),
    ],
    "hardware_md": [
        ("| 0x01C | `INPUT_STALL_CYCLES`", "| 0x03C | `INPUT_STALL_CYCLES`", [DOCS_BLOCK]),
        ("bit 3 `CLEAR_ERROR`", "bit 5 `CLEAR_ERROR`", [DOCS_BLOCK]),
    ],
}
CASES = [(attr, old, new, expected) for attr, rows in MUTATIONS.items()
         for old, new, expected in rows]


@needs_pyslang
@pytest.mark.parametrize("attr, old, new, expected", CASES,
                         ids=[f"{c[0]}:{c[3][0][1]}:{c[2][:24]}" for c in CASES])
def test_check_reports_a_change_of_one_side(tmp_path, attr, old, new, expected):
    mutated = PATHS.replace(**{attr: mutate(tmp_path, getattr(PATHS, attr), old, new)})
    found = check_overlay(mutated)
    for topic, subject in expected:
        assert (topic, subject) in subjects(found), "\n".join(map(str, found))
        # the message names the values of the sides that disagree
        message = next(str(m) for m in found if (m.topic, m.subject) == (topic, subject))
        assert len(message) > len(f"{topic} {subject}: ") + 10


@needs_pyslang
def test_mismatch_message_names_each_side(tmp_path):
    mutated = PATHS.replace(registers_py=mutate(tmp_path, PATHS.registers_py, *STATUS_MOVED))
    [m] = [m for m in check_overlay(mutated) if m.subject == "hdl/pn_regmap.vh"]
    assert "A_STATUS = 12'h010" in m.message and "A_STATUS = 12'h00C" in m.message
    assert "--write" in m.message


@needs_pyslang
def test_unreadable_inputs_raise_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        check_overlay(PATHS.replace(core_v=tmp_path / "missing.v"))
    broken = mutate(tmp_path, PATHS.registers_py, "VLNV =", "VLNV = (")
    with pytest.raises(SpecError, match="importing .* failed"):
        check_overlay(PATHS.replace(registers_py=broken))
    with pytest.raises(SpecError, match="no module neuro_core"):
        read_module("module other(input wire a); endmodule", "neuro_core")
    bad_tcl = mutate(tmp_path, PATHS.config_tcl, "set PN_PART", "set PN_PART [vivado_only]\n#")
    with pytest.raises(SpecError, match="invalid command name"):
        check_overlay(PATHS.replace(config_tcl=bad_tcl))
    assert main(["check", "--root", str(tmp_path / "nowhere")]) == 2


# ------------------------------------------------------------------------------------------------
# (e) the Tcl scripts run under tclsh with stub Vivado commands


def fake_artifact(root: Path) -> Path:
    """Just what package_ip.tcl reads of an artifact (it copies, it does not parse)."""
    art = root / "artifact"
    (art / "mem").mkdir(parents=True)
    (art / "manifest.json").write_text('{"format": "pynq-neuro-artifact"}\n')
    (art / "neuro_params.vh").write_text("`define PN_NUM_LAYERS 1\n")
    for name in ("L0_syn_g0.mem", "L0_idx_g0.mem", "L0_par.mem"):
        (art / "mem" / name).write_text("0\n")
    return art


def scripts_copy(tmp_path: Path, replacements: dict[str, list[tuple[str, str]]]) -> Path:
    """The overlay scripts copied to ``tmp_path/overlays`` with text replacements."""
    out = tmp_path / "overlays"
    out.mkdir()
    for name in TCL_SCRIPTS:
        text = (OVERLAYS / name).read_text()
        for old, new in replacements.get(name, []):
            assert old in text
            text = text.replace(old, new)
        (out / name).write_text(text)
    return out


def contract_and_variables(spec: OverlaySpec, scripts: Path = OVERLAYS):
    return spec.contract(), tcl.source_variables(scripts / "config.tcl")


@needs_tclsh
def test_package_ip_dry_run(tmp_path, spec):
    art = fake_artifact(tmp_path)
    ip_repo = tmp_path / "ip_repo"
    run = dry_run(OVERLAYS / "package_ip.tcl", ["-artifact", str(art), "-ip_repo", str(ip_repo),
                                                "-work", str(tmp_path / "w")], tmp_path / "dry")
    assert run.returncode == 0, run.stderr
    ip_dir = ip_repo / "neuro_core"
    assert sorted(p.name for p in (ip_dir / "mem").iterdir()) == sorted(
        p.name for p in (art / "mem").iterdir())
    assert {p.name for p in (ip_dir / "hdl").iterdir()} == {
        p.name for p in (REPO / "hdl").glob("*.v*")} | {"neuro_params.vh"}
    [pkg] = run.find("ipx::package_project")
    vendor, library, name, version = spec.contract().vlnv.split(":")
    assert pkg[pkg.index("-vendor") + 1] == vendor and pkg[pkg.index("-library") + 1] == library
    props = {(c[1], c[3]): c[2] for c in run.find("set_property") if len(c) == 4}
    assert props[("name", "core:neuro_core")] == name
    assert props[("version", "core:neuro_core")] == version
    assert props[("value", "hdl_parameter:MEM_DIR")] == f"{ip_dir / 'mem'}/"
    assert props[("value", "bus_parameter:POLARITY")] == "ACTIVE_HIGH"
    # every port map names a port of neuro_core, every port of neuro_core is mapped
    physical = [c[2] for c in run.find("set_property") if c[1] == "physical_name"]
    assert sorted(physical) == sorted(spec.module.ports)
    added = {c[1] for c in run.find("ipx::add_bus_interface")}
    assert added == {"s_axis", "m_axis", "s_axil", "clk", "rst"}
    removed = {c[1] for c in run.find("ipx::remove_hdl_parameter")}
    assert "MEM_DIR" not in removed and removed
    [block] = run.find("ipx::add_address_block")
    assert block[1] == spec.variables["PN_ADDRESS_BLOCK"]
    # the IP-XACT registers and fields: one per entry of the register map, at its offset
    from pynq_neuro.driver import registers as R
    regs = [c[1] for c in run.find("ipx::add_register")]
    assert regs == [r.name for r in R.REGISTER_MAP]
    assert {c[1] for c in run.find("ipx::add_register")} and all(
        c[2] == f"address_block:{spec.variables['PN_ADDRESS_BLOCK']}"
        for c in run.find("ipx::add_register"))
    offsets = {c[3]: int(c[2], 16) for c in run.find("set_property")
               if c[1] == "address_offset"}
    assert offsets == {f"register:{r.name}": r.offset for r in R.REGISTER_MAP}
    fields = [(c[2].split(":")[1], c[1]) for c in run.find("ipx::add_field")]
    assert fields == [(r.name, f.name) for r in R.REGISTER_MAP for f in r.fields]
    widths = {c[3]: int(c[2]) for c in run.find("set_property") if c[1] == "bit_width"}
    assert widths["field:ERROR_CODE"] == 8 and widths["field:BUSY"] == 1


@needs_tclsh
def test_package_ip_refuses_a_missing_artifact(tmp_path):
    run = dry_run(OVERLAYS / "package_ip.tcl", ["-artifact", str(tmp_path / "nope")],
                  tmp_path / "dry")
    assert run.returncode != 0 and "does not exist" in run.stderr
    assert run.find("create_project") == []


@needs_tclsh
def test_block_design_dry_run(tmp_path, spec):
    run = dry_run(OVERLAYS / "build_bd.tcl", ["-ip_repo", str(tmp_path / "ip"), "-project",
                                              str(tmp_path / "proj")], tmp_path / "dry")
    assert run.returncode == 0, run.stderr
    contract, variables = contract_and_variables(spec)
    assert check_block_design_calls(run, contract, variables) == []
    assert run.find("apply_bd_automation") and run.find("validate_bd_design")
    [top] = [c for c in run.find("set_property") if c[1] == "top"]
    assert top[2] == "neuro_wrapper"


@needs_tclsh
def test_block_design_catches_a_hard_coded_address(tmp_path, spec):
    scripts = scripts_copy(tmp_path, {"build_bd.tcl": [
        ("$PN_CORE_BASE $PN_CORE_RANGE", "0x43C10000 $PN_CORE_RANGE")]})
    run = dry_run(scripts / "build_bd.tcl", ["-project", str(tmp_path / "proj")],
                  tmp_path / "dry")
    assert run.returncode == 0, run.stderr
    contract, variables = contract_and_variables(spec, scripts)
    found = check_block_design_calls(run, contract, variables)
    assert ("block design", "neuro_core_0/s_axil/reg0") in subjects(found)


@needs_tclsh
def test_block_design_catches_an_inverted_reset(tmp_path, spec):
    scripts = scripts_copy(tmp_path, {"build_bd.tcl": [
        ("$PN_RESET_INSTANCE/peripheral_reset $PN_CORE_INSTANCE/rst",
         "$PN_RESET_INSTANCE/peripheral_aresetn $PN_CORE_INSTANCE/rst")]})
    run = dry_run(scripts / "build_bd.tcl", ["-project", str(tmp_path / "proj")],
                  tmp_path / "dry")
    contract, variables = contract_and_variables(spec, scripts)
    assert ("block design", "neuro_core_0/rst") in subjects(
        check_block_design_calls(run, contract, variables))


@needs_tclsh
def test_block_design_without_board_files(tmp_path, spec):
    run = dry_run(OVERLAYS / "build_bd.tcl", ["-project", str(tmp_path / "p")], tmp_path / "d1",
                  board=False)
    assert run.returncode != 0 and "board part" in run.stderr and "-part_only 1" in run.stderr
    run = dry_run(OVERLAYS / "build_bd.tcl", ["-project", str(tmp_path / "p"), "-part_only", "1"],
                  tmp_path / "d2", board=False)
    assert run.returncode == 0, run.stderr
    assert run.find("apply_bd_automation") == []
    assert not [c for c in run.find("set_property") if c[1] == "board_part"]
    contract, variables = contract_and_variables(spec)
    assert check_block_design_calls(run, contract, variables) == []


@needs_tclsh
def test_block_design_with_dma_interrupts(tmp_path, spec):
    scripts = scripts_copy(tmp_path, {"config.tcl": [("PN_DMA_INTERRUPTS    0",
                                                      "PN_DMA_INTERRUPTS    1")]})
    run = dry_run(scripts / "build_bd.tcl", ["-project", str(tmp_path / "proj")],
                  tmp_path / "dry")
    assert run.returncode == 0, run.stderr
    contract, variables = contract_and_variables(spec, scripts)
    assert check_block_design_calls(run, contract, variables) == []
    nets = [set(c[1:]) for c in run.find("connect_bd_net")]
    assert {"axi_intc_0/irq", "processing_system7_0/IRQ_F2P"} in nets
    assert {"axi_dma_0/mm2s_introut", "xlconcat_0/In0"} in nets
    [intc] = [c for c in run.find("assign_bd_address") if "axi_intc_0/S_AXI/Reg" in c]
    assert intc[intc.index("-offset") + 1] == variables["PN_INTC_BASE"]


@needs_tclsh
def test_an_unknown_vivado_command_fails_the_dry_run(tmp_path):
    scripts = scripts_copy(tmp_path, {"build_bd.tcl": [("validate_bd_design", "validate_bd")]})
    run = dry_run(scripts / "build_bd.tcl", ["-project", str(tmp_path / "proj")],
                  tmp_path / "dry")
    assert run.returncode != 0 and 'invalid command name "validate_bd"' in run.stderr


@needs_tclsh
@pytest.mark.parametrize("slack, ok", [(0.25, True), (-0.125, False)])
def test_bitstream_dry_run_copies_files_and_checks_timing(tmp_path, slack, ok):
    proj, out = tmp_path / "proj", tmp_path / "out"
    proj.mkdir()
    (proj / "pn_overlay.xpr").write_text("")
    run = dry_run(OVERLAYS / "build_bitstream.tcl", ["-project", str(proj), "-out", str(out),
                                                     "-jobs", "3"], tmp_path / "dry", slack=slack)
    assert (run.returncode == 0) == ok, run.stderr
    [impl] = [c for c in run.find("launch_runs") if c[1] == "impl_1"]
    assert impl[-4:] == ["-to_step", "write_bitstream", "-jobs", "3"]
    assert (out / "neuro_timing.rpt").exists() and (out / "neuro_build.txt").exists()
    assert f"wns_ns {slack}" in (out / "neuro_build.txt").read_text()
    assert (out / "neuro.bit").exists() == ok and (out / "neuro.hwh").exists() == ok
    if not ok:
        assert "timing not met" in run.stderr


@needs_tclsh
def test_bitstream_needs_the_project(tmp_path):
    run = dry_run(OVERLAYS / "build_bitstream.tcl", ["-project", str(tmp_path / "none")],
                  tmp_path / "dry")
    assert run.returncode != 0 and "run build_bd.tcl first" in run.stderr


# ------------------------------------------------------------------------------------------------
# a built .hwh against the driver


def synthetic_hwh(contract: Contract, core_base: int | None = None) -> str:
    """A hardware handoff with the elements PYNQ and check_hwh read, as Vivado writes them."""
    base = contract.core_base if core_base is None else core_base
    ranges = (
        f'<MEMRANGE ADDRESSBLOCK="reg0" BASENAME="C_BASEADDR" BASEVALUE="0x{base:08X}" '
        f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{base + contract.core_range - 1:08X}" '
        f'INSTANCE="{contract.core_instance}" MASTERBUSINTERFACE="M_AXI_GP0" MEMTYPE="REGISTER" '
        f'SLAVEBUSINTERFACE="s_axil"/>'
        f'<MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_BASEADDR" BASEVALUE="0x{contract.dma_base:08X}" '
        f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{contract.dma_base + 0xFFFF:08X}" '
        f'INSTANCE="{contract.dma_instance}" MASTERBUSINTERFACE="M_AXI_GP0" MEMTYPE="REGISTER" '
        f'SLAVEBUSINTERFACE="S_AXI_LITE"/>')
    return (
        '\ufeff<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
        '<EDKSYSTEM EDWVERSION="1.2" VIVADOVERSION="2022.1"><MODULES>'
        f'<MODULE INSTANCE="{contract.dma_instance}" VLNV="xilinx.com:ip:axi_dma:7.1"><PARAMETERS>'
        '<PARAMETER NAME="c_include_sg" VALUE="0"/>'
        f'<PARAMETER NAME="c_sg_length_width" VALUE="{contract.dma_length_width}"/>'
        '</PARAMETERS></MODULE>'
        f'<MODULE INSTANCE="{contract.core_instance}" VLNV="{contract.vlnv}"/>'
        f'<MODULE INSTANCE="processing_system7_0" VLNV="xilinx.com:ip:processing_system7:5.5">'
        f'<MEMORYMAP>{ranges}</MEMORYMAP></MODULE>'
        '</MODULES></EDKSYSTEM>\n')


def test_hwh_check(spec, tmp_path):
    contract = spec.contract()
    assert check_hwh(synthetic_hwh(contract), contract) == []
    found = check_hwh(synthetic_hwh(contract, core_base=0x43C10000), contract)
    assert subjects(found) == {("hwh", contract.core_instance)}
    hwh = tmp_path / "neuro.hwh"
    hwh.write_text(synthetic_hwh(contract))
    assert main(["check-hwh", str(hwh), "--root", str(REPO)]) == 0


def test_hwh_check_on_a_real_pynq_z2_handoff(spec):
    """resizer.hwh (PYNQ-Z2, Vivado 2019.2, shipped with pynqmetadata's tests) has an AXI DMA
    at 0x40400000 with a 26-bit length register and no neuro_core: exactly that is reported."""
    pm = pytest.importorskip("pynqmetadata")
    path = Path(pm.__file__).parent / "tests" / "hwhs" / "resizer.hwh"
    if not path.exists():
        pytest.skip("pynqmetadata ships no resizer.hwh")
    contract = spec.contract()
    found = check_hwh(path.read_text(encoding="utf-8-sig"), contract)
    assert subjects(found) == {("hwh", contract.core_instance)}


# ------------------------------------------------------------------------------------------------
# (f) packaging: the wheel holds the notebooks and the overlay folder; PYNQ's entry points


def source_copy(dest: Path) -> Path:
    """The files setup.py packages, copied (links kept) so that the build leaves the checkout
    alone."""
    dest.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "notebooks", dest / "notebooks", ignore=ignore)
    shutil.copytree(REPO / "pynq_neuro", dest / "pynq_neuro", symlinks=True, ignore=ignore)
    for built in ("neuro.bit", "neuro.hwh", "neuro.bit.link", "neuro.hwh.link", "artifact"):
        p = dest / "pynq_neuro" / "overlays" / "neuro" / built
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return dest


def build_wheel(src: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, check=False, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    [wheel] = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built with a (fake) overlay installed in the package folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = source_copy(root / "src")
    neuro = src / "pynq_neuro" / "overlays" / "neuro"
    (neuro / "neuro.bit").write_bytes(b"\x00bitstream")
    (neuro / "neuro.hwh").write_text("<EDKSYSTEM/>\n")
    (neuro / "artifact" / "mem").mkdir(parents=True)
    (neuro / "artifact" / "manifest.json").write_text("{}\n")
    (neuro / "artifact" / "mem" / "L0_par.mem").write_text("0\n")
    return build_wheel(src, root / "dist")


def notebook_names() -> list[str]:
    return sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def test_wheel_holds_the_notebooks_and_the_overlay(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(n.split("/")[-1] for n in names
                     if n.startswith("pynq_neuro/notebooks/") and n.endswith(".ipynb"))
    if not notebook_names():
        pytest.skip("notebooks/ holds no notebooks yet")
    assert shipped == notebook_names()
    # the notebooks' jupytext sources (notebooks/*.py) stay in the repository
    assert not [n for n in names if n.startswith("pynq_neuro/notebooks/") and n.endswith(".py")
                and not n.endswith("__init__.py")]
    assert {"pynq_neuro/overlays/__init__.py", "pynq_neuro/overlays/neuro/neuro.bit",
            "pynq_neuro/overlays/neuro/neuro.hwh", "pynq_neuro/overlays/neuro/README.md",
            "pynq_neuro/overlays/neuro/artifact/manifest.json",
            "pynq_neuro/overlays/neuro/artifact/mem/L0_par.mem"} <= names


def test_wheel_entry_points_and_light_requirements(wheel):
    z = zipfile.ZipFile(wheel)
    info = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = z.read(info).decode()
    assert re.search(r"\[pynq\.overlays\]\s*\npynq-neuro = pynq_neuro\.overlays\s*\n", text)
    assert re.search(r"\[pynq\.notebooks\]\s*\npynq-neuro = pynq_neuro\.notebooks\s*\n", text)
    meta = z.read(info.replace("entry_points.txt", "METADATA")).decode()
    requires = re.findall(r"^Requires-Dist: (.*)$", meta, re.MULTILINE)
    base = [r for r in requires if "extra ==" not in r]
    assert [re.split(r"[<>=;\s]", r)[0] for r in base] == ["numpy"]
    torch = [r for r in requires if r.startswith("torch")]
    assert torch and all("extra ==" in r for r in torch)


def unpacked(wheel: Path, dest: Path) -> Path:
    zipfile.ZipFile(wheel).extractall(dest)
    return dest


def run_isolated(code: str, path: Path) -> subprocess.CompletedProcess:
    """``code`` in a python without site-packages, the unpacked wheel first on sys.path."""
    return subprocess.run([sys.executable, "-S", "-c",
                           f"import sys; sys.path.insert(0, {str(path)!r})\n{code}"],
                          capture_output=True, text=True, check=False, timeout=120, cwd=path)


def test_entry_points_resolve_from_the_wheel(wheel, tmp_path):
    site = unpacked(wheel, tmp_path / "site")
    r = run_isolated("""
import json, os
from importlib.metadata import entry_points
out = {}
for group in ("pynq.overlays", "pynq.notebooks"):
    [ep] = [e for e in entry_points(group=group) if e.name == "pynq-neuro"]
    module = ep.load()
    folder = list(module.__path__)[0]
    out[group] = [folder, sorted(os.listdir(folder))]
import pynq_neuro.overlays as ov
out["bitfile"] = str(ov.installed_bitfile())
print(json.dumps(out))
""", site)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["pynq.overlays"][0] == str(site / "pynq_neuro" / "overlays")
    assert "neuro" in out["pynq.overlays"][1]
    assert out["pynq.notebooks"][0] == str(site / "pynq_neuro" / "notebooks")
    assert [n for n in out["pynq.notebooks"][1] if n.endswith(".ipynb")] == notebook_names()
    assert not [n for n in out["pynq.notebooks"][1] if n.endswith(".py") and n != "__init__.py"]
    assert out["bitfile"] == str(site / "pynq_neuro" / "overlays" / "neuro" / "neuro.bit")


def test_pynq_get_notebooks_delivers_them(wheel, tmp_path):
    pynq_cli = Path(sys.executable).parent / "pynq"
    if not pynq_cli.exists():
        pytest.skip("pynq is not installed (the pynq-host extra)")
    if not notebook_names():
        pytest.skip("notebooks/ holds no notebooks yet")
    site = unpacked(wheel, tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([str(pynq_cli), "get-notebooks", "pynq-neuro", "-o", "-p",
                        str(tmp_path / "delivered")], capture_output=True, text=True,
                       check=False, env=env, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "delivered" / "pynq-neuro").glob("*.ipynb")) == \
        notebook_names()


def test_pynq_finds_the_overlay_through_the_entry_point(wheel, tmp_path):
    """pynq.Bitstream resolves a relative name against <entry point folder>/<stem>/<name>."""
    pytest.importorskip("pynqutils")
    site = unpacked(wheel, tmp_path / "site")
    r = subprocess.run([sys.executable, "-c", """
import os
from pynqutils.setup_utils import ExtensionsManager
paths = ExtensionsManager("pynq.overlays").paths
found = [os.path.join(p, "neuro", "neuro.bit") for p in paths
         if os.path.isfile(os.path.join(p, "neuro", "neuro.bit"))]
print(found[0])
"""], capture_output=True, text=True, check=False, env=dict(os.environ, PYTHONPATH=str(site)),
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(site / "pynq_neuro" / "overlays" / "neuro" / "neuro.bit")


def test_link_descriptors_are_resolved_at_build_time(tmp_path):
    """A release ships neuro.bit.link ({"url", "md5sum"}); building the package on a machine
    with pynq downloads the file into the package (here from a file:// URL)."""
    pytest.importorskip("pynqutils")
    pytest.importorskip("magic")
    src = source_copy(tmp_path / "src")
    payload = tmp_path / "published.bit"
    payload.write_bytes(b"\x01released bitstream")
    link = src / "pynq_neuro" / "overlays" / "neuro" / "neuro.bit.link"
    link.write_text(json.dumps({"url": payload.as_uri(),
                                "md5sum": hashlib.md5(payload.read_bytes()).hexdigest()}))
    z = zipfile.ZipFile(build_wheel(src, tmp_path / "dist"))
    assert z.read("pynq_neuro/overlays/neuro/neuro.bit") == payload.read_bytes()


def test_editable_install_declares_the_entry_points():
    from importlib.metadata import entry_points
    eps = {(e.group, e.name): e.value for g in ("pynq.overlays", "pynq.notebooks")
           for e in entry_points(group=g)}
    if not eps:
        pytest.skip("the installed pynq-neuro predates its pynq entry points (run make setup)")
    assert eps[("pynq.overlays", "pynq-neuro")] == "pynq_neuro.overlays"
    assert eps[("pynq.notebooks", "pynq-neuro")] == "pynq_neuro.notebooks"
    import pynq_neuro.notebooks
    folder = Path(next(iter(pynq_neuro.notebooks.__path__)))
    assert folder.resolve() == (REPO / "notebooks").resolve()


# ------------------------------------------------------------------------------------------------
# make overlay without Vivado


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_overlay_stops_first_when_vivado_is_missing():
    r = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "overlay",
                        "VIVADO=pn-no-such-vivado"], capture_output=True, text=True,
                       check=False, timeout=60)
    assert r.returncode != 0
    assert "'pn-no-such-vivado' is not on PATH" in r.stderr and "2022.1" in r.stderr
    assert "setup:" not in r.stdout and "compile" not in r.stdout


def test_package_builds_while_notebooks_are_missing(tmp_path):
    """A checkout without notebooks/ (the link dangles) still builds, without that entry point."""
    src = source_copy(tmp_path / "src")
    shutil.rmtree(src / "notebooks")
    z = zipfile.ZipFile(build_wheel(src, tmp_path / "dist"))
    info = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = z.read(info).decode()
    assert "[pynq.overlays]" in text and "pynq.notebooks" not in text
    assert not [n for n in z.namelist() if n.startswith("pynq_neuro/notebooks/")]
