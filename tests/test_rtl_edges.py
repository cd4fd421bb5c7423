"""neuro_core at the edges of its limits, and its own parameter checks.

* One network at every edge at once: 8 layers (the most), a synapse memory of exactly 65,536
  words (the deepest the loader addresses) and logits exactly 32 bits wide (biases at both
  ends of the range). Verilator runs it bit for bit against the golden model from its
  ``.mem`` images and again after a run-time load of another network into the same build
  through the stream; the cycle model predicts every digit's latency.
* A core built from an edited ``neuro_params.vh`` stops with the message of the module whose
  parameters are inconsistent: at time 0 under Icarus and Verilator, at elaboration in Yosys.
* ``pn_ram`` with one address for both ports (the parameter memories) loads and reads back, and
  stops a simulation that writes and reads it in the same cycle or sets SHARED_ADDR to anything
  but 0 or 1.

Skipped when the tools are not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.cycles import reset_flush_cycles, simulate
from pynq_neuro.compiler.limits import LIMITS
from pynq_neuro.rtl import RtlError, have_datapath, hdl_dir, sim_dir

from test_limits import edge_foldings, edge_network, sparse_digits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    if not have_datapath():
        pytest.skip("hdl/pn_net.v (the datapath) is not present")


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    from pynq_neuro.rtl.regression import variant_network

    root = tmp_path_factory.mktemp("edge")
    net = edge_network()
    images = sparse_digits(8, seed=1)
    compile_network(net, root / "A", CompileConfig(foldings=edge_foldings(net),
                                                   sample_digits=8), images)
    compile_network(variant_network(net, 3), root / "B",
                    CompileConfig(hardware=str(root / "A"), sample_digits=8), images)
    return root, net


def test_most_layers_deepest_memory_widest_logits_on_the_rtl(edge, tmp_path):
    _tools("verilator")
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.rtl.regression import parse_results, regression

    root, net = edge
    art = load_artifact(root / "A")
    hw = art.manifest["hardware"]["layers"]
    assert len(hw) == LIMITS.max_layers
    assert hw[0]["synapse_depth"] == LIMITS.max_depth
    assert hw[-1]["acc_bits"] == LIMITS.logit_bits_max
    x = sparse_digits(4, seed=2)
    r = regression(root / "A", x, workdir=tmp_path / "a", build_root=tmp_path / "obj")
    assert r["passed"], r["mismatches"][:2]
    res = parse_results(tmp_path / "a" / "results.txt")
    # the logits reach both ends of the 32-bit range, bit-exact
    assert res.logits.max() > 2**31 - 1024 and res.logits.min() < -(2**31) + 1024
    # the cycle model: every digit's latency (the first after reset also waits for the
    # accumulator flush, at most slots * locals cycles of a layer)
    model = simulate(art.cycle_maps(), art.network, x)
    rtl_latency = res.result - res.first_beat
    assert rtl_latency[1:].tolist() == model.latency[1:].tolist()
    flush = reset_flush_cycles(hw)
    assert 0 <= rtl_latency[0] - model.latency[0] <= flush
    # run-time load of another network through the stream: 65,536 words into one bank
    r = regression(root / "A", x, load=root / "B", workdir=tmp_path / "b",
                   build_root=tmp_path / "obj")
    assert r["passed"] and r["rtl"]["load"]["status"] & (1 << 17), r["rtl"]["load"]
    assert r["network"] != art.manifest["network"]["name"]


# ------------------------------------------------------------------------------------------------
# parameter checks of the Verilog


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pynq_neuro.rtl.regression import tiny_artifacts

    a, _ = tiny_artifacts(tmp_path_factory.mktemp("params"))
    return a


def _edited(src: Path, dst: Path, macro: str, old: str, new: str) -> Path:
    """A copy of an artifact whose neuro_params.vh has ``old`` replaced by ``new`` in the
    definition of ``macro``."""
    shutil.copytree(src, dst)
    vh = dst / "neuro_params.vh"
    text = vh.read_text()
    line = re.search(rf"^`define {macro} .*$", text, re.M).group(0)
    assert old in line
    vh.write_text(text.replace(line, line[::-1].replace(old[::-1], new[::-1], 1)[::-1]))
    return dst


# layer 0's LOCAL_BITS is the last element of the packed vector (layer 0 least significant)
LOCAL_BITS_EDIT = ("PN_V_LOCAL_BITS", "32'd1}", "32'd2}",
                   "pn_net: layer 0: LOCAL_BITS = 2 in neuro_params.vh, 1 from the other fields")


def _icarus(art: Path, out: Path) -> str:
    """Build the fast bench with Icarus for ``art`` and run one digit; the simulator's
    output."""
    from pynq_neuro.rtl.regression import pixel_words, write_words

    write_words(out / "pixels.hex", pixel_words(sparse_digits(1)))
    build = subprocess.run(
        ["iverilog", "-g2005", "-o", str(out / "sim.vvp"), "-s", "tb_neuro_core", f"-I{art}",
         f"-I{hdl_dir()}", f"-I{sim_dir() / 'common'}",
         f"-DPN_MEM_DIR=\"{art}/mem/\"", *map(str, sorted(hdl_dir().glob("*.v"))),
         str(sim_dir() / "fast" / "tb_neuro_core.v")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["vvp", "-n", str(out / "sim.vvp"), f"+pixels={out / 'pixels.hex'}",
                          "+digits=1", f"+results={out / 'results.txt'}", "+timeout=100000"],
                         capture_output=True, text=True, cwd=out, timeout=120)
    return run.stdout + run.stderr


@pytest.mark.parametrize("edit", [
    LOCAL_BITS_EDIT,
    ("PN_LOGIT_BITS", "10", "33", "LOGIT_BITS = 33"),
    ("PN_V_GROUPS", "32'd2}", "32'd3}",
     "pn_net: layer 0: LOCAL_CHANNELS = 14 in neuro_params.vh, 10 from the other fields"),
    ("PN_FIRST_FRAME_BUFFERS", "3", "2", "pn_net: neuro_params.vh assumes rings of 2 rows, 2 "
     "frames and 2 frames behind layer 0, the core has 2, 2 and 3"),
], ids=["local_bits", "logit_bits", "groups", "frame_rings"])
def test_inconsistent_parameters_stop_icarus_with_the_message(tiny, tmp_path, edit):
    _tools("iverilog", "vvp")
    macro, old, new, message = edit
    art = _edited(tiny, tmp_path / "art", macro, old, new)
    text = _icarus(art, tmp_path)
    assert "ERROR" in text and message in text, text[-2000:]
    assert "DONE" not in text       # stopped at time 0: no digit went through
    # the unedited artifact classifies the digit
    ok = tmp_path / "ok"
    ok.mkdir()
    text = _icarus(tiny, ok)
    assert "ERROR" not in text and "DONE 1 digits" in text, text[-2000:]


def _declared_rows(src: Path, dst: Path, rows: int) -> Path:
    """A copy of an artifact whose neuro_params.vh declares ``rows`` image rows (as the
    compiler writes it for networks that record their rows)."""
    shutil.copytree(src, dst)
    vh = dst / "neuro_params.vh"
    vh.write_text(vh.read_text() + f"`define PN_INPUT_ROWS {rows}\n")
    return dst


def test_declared_rows_that_the_layers_do_not_read_stop_icarus(tiny, tmp_path):
    _tools("iverilog", "vvp")
    from pynq_neuro.compiler.artifact import load_artifact

    read = load_artifact(tiny).network.input_rows
    assert read < 28
    ok = tmp_path / "ok"
    ok.mkdir()
    text = _icarus(_declared_rows(tiny, tmp_path / "art-ok", read), ok)
    assert "ERROR" not in text and "DONE 1 digits" in text, text[-2000:]
    for rows in sorted({read + 1, 28}):
        out = tmp_path / f"bad-{rows}"
        out.mkdir()
        text = _icarus(_declared_rows(tiny, tmp_path / f"art-{rows}", rows), out)
        assert (f"pn_net: PN_INPUT_ROWS = {rows} in neuro_params.vh, the layers read {read} "
                "rows") in text, text[-2000:]
        assert "DONE" not in text


def test_inconsistent_parameters_stop_verilator_with_the_message(tiny, tmp_path):
    _tools("verilator")
    from pynq_neuro.rtl.regression import build_fast, run_fast

    macro, old, new, message = LOCAL_BITS_EDIT
    art = _edited(tiny, tmp_path / "art", macro, old, new)
    exe = build_fast(art, tmp_path / "obj")
    with pytest.raises(RtlError, match=re.escape(message)):
        run_fast(exe, sparse_digits(1), tmp_path / "run")


def test_inconsistent_parameters_stop_yosys(tiny, tmp_path):
    _tools("yosys")
    macro, old, new, _ = LOCAL_BITS_EDIT

    def elaborate(art: Path) -> subprocess.CompletedProcess:
        script = (f"read_verilog -DPN_MEM_DIR=\"{art}/mem/\" -I{art} -I{hdl_dir()} "
                  f"{' '.join(map(str, sorted(hdl_dir().glob('*.v'))))}; "
                  f"hierarchy -check -top neuro_core")
        return subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True,
                              timeout=300)

    bad = elaborate(_edited(tiny, tmp_path / "art", macro, old, new))
    assert bad.returncode != 0 and "pn_net.v" in bad.stdout + bad.stderr
    assert elaborate(tiny).returncode == 0


RAM_TB = r"""
`timescale 1ns / 1ps
`default_nettype none
module tb_ram;
    reg clk = 1'b0;
    reg wr_en = 1'b0, rd_en = 1'b0;
    reg [1:0] wr_addr = 2'd0, rd_addr = 2'd0;
    reg [7:0] wr_data = 8'd0;
    wire [7:0] rd_data;
    integer i;
    always #5 clk = !clk;
    pn_ram #(.WIDTH(8), .DEPTH(4), .RAM_STYLE("distributed"), .SHARED_ADDR(`SHARED))
    dut (.clk(clk), .wr_en(wr_en), .wr_addr(wr_addr), .wr_data(wr_data),
         .rd_en(rd_en), .rd_addr(rd_addr), .rd_data(rd_data));
    initial begin
        // load four words (the read address points elsewhere: the write's address wins)
        for (i = 0; i < 4; i = i + 1) begin
            @(negedge clk); wr_en = 1'b1; wr_addr = i; wr_data = 8'h50 + i; rd_addr = 3 - i;
        end
        @(negedge clk); wr_en = 1'b0;
        // read them back in another order; rd_data holds while rd_en is low
        for (i = 0; i < 4; i = i + 1) begin
            @(negedge clk); rd_en = 1'b1; rd_addr = (i * 3) % 4; wr_addr = i;
            @(negedge clk); rd_en = 1'b0;
            @(negedge clk); $display("READ %0d %h", (i * 3) % 4, rd_data);
        end
        // a write and a read in one cycle
        @(negedge clk); wr_en = 1'b1; rd_en = 1'b1;
        @(negedge clk); wr_en = 1'b0; rd_en = 1'b0;
        @(negedge clk); $display("BOTH DONE");
        $finish;
    end
endmodule
"""


def _run_ram_tb(tmp_path: Path, shared: int) -> str:
    """Build RAM_TB with SHARED_ADDR = ``shared`` under Icarus, run it, return its output."""
    _tools("iverilog", "vvp")
    tb = tmp_path / "tb_ram.v"
    tb.write_text(RAM_TB)
    build = subprocess.run(["iverilog", "-g2005", f"-DSHARED={shared}", "-o",
                            str(tmp_path / "r.vvp"), "-s", "tb_ram", f"-I{hdl_dir()}",
                            str(hdl_dir() / "pn_ram.v"), str(tb)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["vvp", "-n", str(tmp_path / "r.vvp")], capture_output=True, text=True,
                         timeout=60)
    return run.stdout + run.stderr


@pytest.mark.parametrize("shared", [0, 1])
def test_ram_with_one_address_loads_reads_and_stops_on_a_collision(tmp_path, shared):
    """pn_ram with SHARED_ADDR (the parameter memories): the write's address wins while wr_en is
    high, reads return what was loaded, and a write and a read in the same cycle stop the
    simulation with the module's message (with two addresses they are allowed)."""
    text = _run_ram_tb(tmp_path, shared)
    reads = dict(re.findall(r"READ (\d) ([0-9a-f]{2})", text))
    assert reads == {str(a): f"{0x50 + a:02x}" for a in range(4)}, text
    message = "pn_ram: a write and a read in one cycle with SHARED_ADDR = 1"
    if shared:
        assert "ERROR" in text and message in text and "BOTH DONE" not in text, text
    else:
        assert message not in text and "BOTH DONE" in text, text


def test_ram_with_a_shared_address_other_than_0_or_1_stops_at_time_0(tmp_path):
    """SHARED_ADDR is a flag: any other value stops the simulation before the first clock."""
    text = _run_ram_tb(tmp_path, 2)
    assert "pn_ram: SHARED_ADDR = 2, not 0 or 1" in text and "READ" not in text, text
