"""RTL of neuro_core: the cocotb benches (Icarus), a Verilator regression on a few digits with a
run-time load, the Yosys estimate of a small network, and the verify/estimate command parts.

Every test is skipped cleanly when its tools (iverilog, verilator, yosys, cocotb) or the
datapath sources are missing.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys

import pytest

from pynq_neuro.rtl import have_datapath, sim_dir


def _tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")


def _cocotb() -> None:
    pytest.importorskip("cocotb")
    pytest.importorskip("cocotbext.axi")
    _tools("iverilog")


def _datapath() -> None:
    if not have_datapath():
        pytest.skip("hdl/pn_net.v (the datapath) is not present")


def _bench(name: str):
    """A module of sim/ (the cocotb benches carry their own pytest entry)."""
    path = str(sim_dir())
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pynq_neuro.rtl.regression import tiny_artifacts

    return tiny_artifacts(tmp_path_factory.mktemp("rtl_nets"))


@pytest.mark.parametrize("stream", ["bytes", "packed1", "packed4"])
def test_cocotb_pn_input(stream):
    _cocotb()
    bench = _bench("test_pn_input")
    assert stream in bench.STREAMS
    bench.run_stream(stream)


def test_cocotb_pn_loader():
    _cocotb()
    _bench("test_pn_loader").test_pn_loader()


def test_cocotb_neuro_core():
    _cocotb()
    _datapath()
    _bench("test_neuro_core").test_neuro_core()


def test_verilator_lint_is_clean(tiny, tmp_path):
    """Every module, elaborated under neuro_core for the tiny network and for the default
    zoo model, passes ``verilator --lint-only -Wall`` without a warning."""
    _tools("verilator")
    _datapath()
    import subprocess

    from pynq_neuro import zoo
    from pynq_neuro.compiler.compile import CompileConfig, compile_network
    from pynq_neuro.rtl import hdl_dir, hdl_sources
    from pynq_neuro.rtl.regression import sample_images

    default = tmp_path / "default"
    compile_network(zoo.network_path(zoo.hardware_default()), default,
                    CompileConfig(sample_digits=32), sample_images(32))
    for art in (tiny[0], default):
        proc = subprocess.run(
            ["verilator", "--lint-only", "-Wall", f"-I{hdl_dir()}", f"-I{art}",
             "--top-module", "neuro_core", *map(str, hdl_sources())],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr[-3000:]


def test_verilator_regression(tiny, tmp_path):
    """Bit-exact classes and logits on MNIST digits, before and after a run-time load, and
    cycle counts close to the compiler's cycle model."""
    _tools("verilator")
    _datapath()
    from pynq_neuro.rtl.regression import regression

    a, b = tiny
    r = regression(a, 40, workdir=tmp_path / "a", build_root=tmp_path / "obj")
    assert r["passed"], r["mismatches"][:3]
    assert r["class_mismatches"] == 0 and r["logit_mismatches"] == 0
    model, rtl = r["cycle_model"]["cycles_per_digit"], r["rtl"]["cycles_per_digit"]
    assert abs(rtl - model) <= 0.1 * model
    assert r["rtl"]["counters"]["digits"] == 40
    # every digit's latency as the cycle model predicts it; the first one after reset may
    # also wait for the accumulator flush (docs/compiler.md)
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.compiler.cycles import reset_flush_cycles, simulate
    from pynq_neuro.data import load_mnist
    from pynq_neuro.rtl.regression import parse_results

    art = load_artifact(a)
    res = parse_results(tmp_path / "a" / "results.txt")
    predicted = simulate(art.cycle_maps(), art.network, load_mnist("test")[0][:40]).latency
    latency = res.result - res.first_beat
    assert latency[1:].tolist() == predicted[1:].tolist()
    flush = reset_flush_cycles(art.manifest["hardware"]["layers"])
    assert 0 <= latency[0] - predicted[0] <= flush
    r = regression(a, 20, load=b, workdir=tmp_path / "b", build_root=tmp_path / "obj", stall=30)
    assert r["passed"] and r["rtl"]["load"]["status"] & (1 << 17)


@pytest.mark.parametrize("input_bits", [1, 4])
def test_packed_pixel_streams_run_bit_exact_with_the_modelled_cycles(input_bits, tmp_path):
    """Pixels packed at the input bits (one beat a row for binary pixels, four for 4-bit
    pixels): classes and logits equal the golden model, every digit's latency and the steady
    cycles equal the cycle model, and a network mapped onto that build takes its stream."""
    _tools("verilator")
    _datapath()
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.compiler.compile import CompileConfig, compile_network
    from pynq_neuro.compiler.cycles import reset_flush_cycles, simulate
    from pynq_neuro.compiler.mapping import Folding
    from pynq_neuro.data import load_mnist
    from pynq_neuro.rtl.regression import (parse_results, regression, sample_images,
                                           tiny_network, variant_network)

    net = tiny_network(3, input_bits=input_bits)
    a, b = tmp_path / "a", tmp_path / "b"
    images = sample_images(32)
    compile_network(net, a, CompileConfig(foldings=[Folding(2, 4), Folding(2, 3), Folding(1, 5)],
                                          sample_digits=32, packed_pixels=True), images)
    compile_network(variant_network(net, 4), b, CompileConfig(hardware=str(a), sample_digits=32),
                    images)
    art = load_artifact(a)
    assert art.packed_pixels and load_artifact(b).packed_pixels
    assert art.beats_per_row == {1: 1, 4: 4}[input_bits]
    r = regression(a, 40, workdir=tmp_path / "ra", build_root=tmp_path / "obj")
    assert r["passed"] and r["class_mismatches"] == 0 and r["logit_mismatches"] == 0
    assert r["rtl"]["cycles_per_digit"] == r["cycle_model"]["cycles_per_digit"]
    res = parse_results(tmp_path / "ra" / "results.txt")
    predicted = simulate(art.cycle_maps(), art.network, load_mnist("test")[0][:40],
                         beats_per_row=art.beats_per_row).latency
    latency = res.result - res.first_beat
    assert latency[1:].tolist() == predicted[1:].tolist()
    assert 0 <= latency[0] - predicted[0] <= reset_flush_cycles(art.manifest["hardware"]["layers"])
    r = regression(a, 20, load=b, workdir=tmp_path / "rb", build_root=tmp_path / "obj", stall=30)
    assert r["passed"] and r["rtl"]["load"]["status"] & (1 << 17)


def test_estimate_small_network(tiny, tmp_path):
    _tools("yosys")
    _datapath()
    from pynq_neuro.rtl.estimate import estimate, format_estimate

    a, _ = tiny
    r = estimate(a, workdir=tmp_path)
    s = r["synthesized"]
    assert s["luts"] > 500 and s["ffs"] > 300 and r["fits"]
    assert s["luts"] == s["luts_logic"] + s["luts_memory"]
    assert r["lut_levels"] >= 2 and r["logic_levels"] >= r["lut_levels"]
    assert "LUT" in format_estimate(r)


def test_count_resources():
    from pynq_neuro.rtl.estimate import count_resources

    r = count_resources({"\\LUT6": 10, "LUT2": 5, "INV": 1, "RAM32M": 2, "RAM64X1D": 1,
                         "FDRE": 7, "FDSE": 1, "RAMB36E1": 3, "RAMB18E1": 3, "DSP48E1": 2})
    assert r["luts"] == 10 + 5 + 1 + 8 + 2 and r["luts_memory"] == 10
    assert r["ffs"] == 8 and r["bram36"] == 4.5 and r["dsp"] == 2


def test_logic_depth_on_a_netlist():
    from pynq_neuro.rtl import estimate as E
    from pynq_neuro.rtl.estimate import logic_depth

    lut = {"port_directions": {"I0": "input", "O": "output"}}
    cells = {
        "ff": {"type": "FDRE", "connections": {"D": [5], "Q": [2]},
               "port_directions": {"D": "input", "Q": "output"}},
        "a": {"type": "LUT1", "connections": {"I0": [2], "O": [3]}, **lut},
        "m": {"type": "MUXF7", "connections": {"I0": [3], "I1": [3], "S": [2], "O": [4]},
              "port_directions": {"I0": "input", "I1": "input", "S": "input", "O": "output"}},
        "b": {"type": "LUT1", "connections": {"I0": [4], "O": [5]}, **lut},
    }
    d = logic_depth({"modules": {"top": {"cells": cells}}}, "top")
    assert d["lut_levels"] == 2 and d["logic_levels"] == 3 and len(d["path"]) == 3
    ff_path = E.START_NS["FF"] + 2 * (E.CELL_NS["LUT"] + E.NET_NS) + E.CELL_NS["MUXF7"] + E.END_NS
    assert d["path_delay_ns"] == pytest.approx(ff_path, abs=1e-3)
    assert d["clock_mhz"] == pytest.approx(1000 / ff_path, abs=0.1)
    # a single LUT after a block RAM is slower than two LUTs and a mux after a flip-flop
    cells["ram"] = {"type": "RAMB18E1", "connections": {"DOADO": [7], "ADDRARDADDR": [5]},
                    "port_directions": {"DOADO": "output", "ADDRARDADDR": "input"}}
    cells["c"] = {"type": "LUT1", "connections": {"I0": [7], "O": [8]}, **lut}
    cells["ff2"] = {"type": "FDRE", "connections": {"D": [8], "Q": [9]},
                    "port_directions": {"D": "input", "Q": "output"}}
    d = logic_depth({"modules": {"top": {"cells": cells}}}, "top")
    assert d["lut_levels"] == 2    # the depth still counts levels
    ram_path = E.START_NS["RAMB"] + E.CELL_NS["LUT"] + E.NET_NS + E.END_NS
    assert ram_path > ff_path and d["path_delay_ns"] == pytest.approx(ram_path, abs=1e-3)
    assert d["delay_path"][0] == "from RAMB" and d["delay_path"][-1] == "LUT1 c"
    # a carry chain: the carry in of each next CARRY4 takes the dedicated wire
    carry = {"CI": "input", "S": "input", "CO": "output"}
    chain = {f"c{k}": {"type": "CARRY4", "port_directions": carry,
                       "connections": {"CI": [20 + k], "S": [9], "CO": [21 + k]}}
             for k in range(30)}   # a 120-bit chain
    d = logic_depth({"modules": {"top": {"cells": {**cells, **chain}}}}, "top")
    chain_path = (E.START_NS["FF"] + E.CELL_NS["CARRY4"] + E.NET_NS / 2
                  + 29 * E.CARRY_CHAIN_NS + E.END_NS)
    assert chain_path > ram_path
    assert d["path_delay_ns"] == pytest.approx(chain_path, abs=1e-3)
    assert d["delay_path"][0] == "from FF" and len(d["delay_path"]) == 31


def test_cli_parsers(tiny, capsys):
    from pynq_neuro.rtl.cli import (add_estimate_parser, add_verify_parser, run_estimate,
                                    run_verify)

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_verify_parser(sub)
    add_estimate_parser(sub)
    a, _ = tiny
    args = parser.parse_args(["verify", str(a), "--json"])
    assert args.rtl is False and args.images == 1000
    assert run_verify(args) == 0
    assert '"mem_bin_agree": true' in capsys.readouterr().out
    args = parser.parse_args(["estimate", str(a), "--json"])
    assert args.json and args.command == "estimate" and callable(run_estimate)
    with pytest.raises(SystemExit) as exit_:   # no digits to verify: refused when parsed
        parser.parse_args(["verify", str(a), "--rtl", "--images", "0"])
    assert exit_.value.code == 2


def test_builds_of_one_key_at_once_both_finish_and_a_failed_build_leaves_no_key(tmp_path):
    import threading
    import time

    from pynq_neuro.rtl.verilator import build_once

    out = tmp_path / "key"
    calls = []

    def slow_build(folder):
        calls.append(folder)
        time.sleep(0.2)   # both threads are inside a build at the same time
        (folder / "exe").write_text(f"built in {folder.name}")

    results = []
    threads = [threading.Thread(target=lambda: results.append(build_once(out, "exe", slow_build)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2 and results == [out / "exe"] * 2
    assert (out / "exe").read_text().startswith("built in .key-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]   # the loser's copy is gone
    assert build_once(out, "exe", lambda folder: pytest.fail("rebuilt")) == out / "exe"

    def failing(folder):
        (folder / "build.log").write_text("error")
        raise RuntimeError(f"failed, log {folder / 'build.log'}")

    with pytest.raises(RuntimeError, match="build.log"):
        build_once(tmp_path / "other", "exe", failing)
    assert not (tmp_path / "other").exists()


def test_regressions_of_one_artifact_at_once_do_not_share_files(tiny, tmp_path):
    """Two runs of the same artifact at once (fresh build, default run folders): both build,
    both pass with the same cycles, and no run folder is left behind."""
    _tools("verilator")
    _datapath()
    from concurrent.futures import ThreadPoolExecutor

    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.rtl import REPO
    from pynq_neuro.rtl.regression import regression

    a, _ = tiny
    runs = REPO / "build" / "rtl" / "runs"
    prefix = load_artifact(a).fingerprint
    before = set(runs.glob(f"{prefix}-*")) if runs.exists() else set()
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: regression(a, 30, build_root=tmp_path / "obj"),
                                range(2)))
    assert all(r["passed"] and r["digits"] == 30 for r in reports)
    assert reports[0]["sim_cycles"] == reports[1]["sim_cycles"]
    assert set(runs.glob(f"{prefix}-*")) == before
    assert [p.name for p in (tmp_path / "obj").iterdir() if p.name.startswith(".")] == []
