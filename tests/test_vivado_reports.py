"""Vivado's report_utilization and report_timing_summary texts (samples written here in the
documented layout) into report.json, the timing verdict with the worst path and a suggestion,
and the merge into the hardware results."""

from __future__ import annotations

import json

import pytest

from pynq_neuro.overlay.vivado_reports import (
    ReportError, build_report, main, merge_into_results, merge_vivado, parse_paths,
    parse_timing_summary, parse_utilization, timing_failure)

CORE = "neuro_i/neuro_core_0/inst/u_net/g_layer[1].u_layer"


def utilization(luts=21873, ffs=30112, bram=61.5, dsp=3, prohibited=True, star="") -> str:
    """A routed design's utilisation report (7-series), as report_utilization lays it out."""
    pro_h, pro_v = ("| Prohibited ", "|          0 ") if prohibited else ("", "")

    def row(name, used, avail):
        return (f"| {name:<26} | {used:>7} |     0 {pro_v}| {avail:>9} | "
                f"{100 * float(used) / avail:5.2f} |")

    head = f"| {'Site Type':<26} |  Used   | Fixed {pro_h}| Available | Util% |"
    return "\n".join([
        "Copyright 1986-2022 Xilinx, Inc. All Rights Reserved.",
        "-" * 60,
        "| Tool Version : Vivado v.2022.1 (lin64) Build 3526262 Mon Apr 18 15:47:01 MDT 2022",
        "| Date         : Mon Nov 30 05:40:00 2026",
        "| Design       : neuro_wrapper",
        "| Device       : 7z020clg400-1",
        "| Design State : Routed",
        "-" * 60, "", "Utilization Design Information", "", "Table of Contents",
        "-----------------", "1. Slice Logic", "2. Memory", "3. DSP", "",
        "1. Slice Logic", "--------------", "",
        "+" + "-" * 60 + "+", head, "+" + "-" * 60 + "+",
        row(f"Slice LUTs{star}", luts, 53200),
        row("  LUT as Logic", luts - 400, 53200),
        row("  LUT as Memory", 400, 17400),
        row(f"Slice Registers{star}", ffs, 106400),
        row("  Register as Flip Flop", ffs, 106400),
        row("F7 Muxes", 120, 26600),
        "+" + "-" * 60 + "+", "", "",
        "2. Memory", "---------", "",
        "+" + "-" * 60 + "+", head, "+" + "-" * 60 + "+",
        row("Block RAM Tile", bram, 140),
        row("  RAMB36/FIFO*", int(bram), 140),
        row("  RAMB18", 1, 280),
        "+" + "-" * 60 + "+", "", "",
        "3. DSP", "------", "",
        "+" + "-" * 60 + "+", head, "+" + "-" * 60 + "+",
        row("DSPs", dsp, 220),
        row("  DSP48E1 only", dsp, 220),
        "+" + "-" * 60 + "+", ""])


def timing(wns=1.234, tns=0.0, failing=0, whs=0.041, source=f"{CORE}/acc_reg[3]/C",
           destination=f"{CORE}/act_reg[7]/D", levels=9, verdict=None) -> str:
    """A routed design's timing summary at 100 MHz in report_timing_summary's layout."""
    met = wns >= 0 and whs >= 0
    line = verdict or ("All user specified timing constraints are met." if met
                       else "Timing constraints are not met.")
    state = "VIOLATED" if wns < 0 else "MET"
    names = ["WNS(ns)", "TNS(ns)", "TNS Failing Endpoints", "TNS Total Endpoints", "WHS(ns)",
             "THS(ns)", "THS Failing Endpoints", "THS Total Endpoints", "WPWS(ns)", "TPWS(ns)",
             "TPWS Failing Endpoints", "TPWS Total Endpoints"]
    values = [f"{wns:.3f}", f"{tns:.3f}", str(failing), "48213", f"{whs:.3f}", "0.000", "0",
              "48213", "3.750", "0.000", "0", "21544"]
    widths = [max(len(n), len(v)) + 2 for n, v in zip(names, values)]
    return "\n".join([
        "Timing Report", "", "| Tool Version : Vivado v.2022.1 (lin64) Build 3526262",
        "| Design       : neuro_wrapper", "| Device       : 7z020-clg400",
        "", "------------------------------------------------------------------------",
        "| Design Timing Summary", "| ---------------------",
        "------------------------------------------------------------------------", "",
        "".join(n.rjust(w) for n, w in zip(names, widths)) + "  ",
        "".join(("-" * len(n)).rjust(w) for n, w in zip(names, widths)) + "  ",
        "".join(v.rjust(w) for v, w in zip(values, widths)) + "  ", "", "",
        line, "", "",
        "------------------------------------------------------------------------",
        "| Timing Details", "| --------------",
        "------------------------------------------------------------------------", "",
        "From Clock:  clk_fpga_0", "  To Clock:  clk_fpga_0", "",
        f"Setup :  {failing}  Failing Endpoints,  Worst Slack  {wns:.3f}ns,  Total Violation "
        f"{tns:.3f}ns", "",
        "Max Delay Paths", "-" * 60,
        f"Slack ({state}) :        {wns:.3f}ns  (required time - arrival time)",
        f"  Source:                 {source}",
        "                            (rising edge-triggered cell FDRE clocked by clk_fpga_0  "
        "{rise@0.000ns fall@5.000ns period=10.000ns})",
        f"  Destination:            {destination}",
        "                            (rising edge-triggered cell FDRE clocked by clk_fpga_0  "
        "{rise@0.000ns fall@5.000ns period=10.000ns})",
        "  Path Group:             clk_fpga_0",
        "  Path Type:              Setup (Max at Slow Process Corner)",
        "  Requirement:            10.000ns  (clk_fpga_0 rise@10.000ns - clk_fpga_0 rise@0.000ns)",
        f"  Data Path Delay:        {10 - wns:.3f}ns  (logic 2.911ns (30%)  route 6.800ns (70%))",
        f"  Logic Levels:           {levels}  (CARRY4=5 LUT3=1 LUT6=3)", "",
        "Slack (MET) :              2.500ns  (required time - arrival time)",
        "  Source:                 neuro_i/axi_dma_0/U0/x_reg/C",
        "  Destination:            neuro_i/axi_dma_0/U0/y_reg/D",
        "  Path Group:             clk_fpga_0",
        "  Path Type:              Setup (Max at Slow Process Corner)",
        "  Requirement:            10.000ns", "",
        "Min Delay Paths", "-" * 60,
        f"Slack (MET) :              {whs:.3f}ns  (arrival time - required time)",
        "  Source:                 neuro_i/a_reg/C", "  Destination:            neuro_i/b_reg/D",
        "  Path Type:              Hold (Min at Fast Process Corner)", ""])


def test_utilization_rows_with_and_without_the_prohibited_column():
    for prohibited in (True, False):
        u = parse_utilization(utilization(prohibited=prohibited))
        assert u["luts"] == {"used": 21873.0, "available": 53200.0, "percent": 41.11}
        assert u["ffs"]["used"] == 30112 and u["ffs"]["available"] == 106400
        assert u["bram36"]["used"] == 61.5 and u["bram36"]["percent"] == 43.93
        assert u["dsp"] == {"used": 3.0, "available": 220.0, "percent": 1.36}
        assert u["device"] == "7z020clg400-1" and u["design_state"] == "Routed"


def test_post_synthesis_names_with_an_asterisk_are_read():
    assert parse_utilization(utilization(luts=100, star="*"))["luts"]["used"] == 100


def test_a_report_without_the_rows_is_refused():
    with pytest.raises(ReportError, match="Slice LUTs"):
        parse_utilization("| Site Type | Used |\n| Foo | 1 |\n")
    with pytest.raises(ReportError, match="Design Timing Summary"):
        parse_timing_summary(utilization())


def test_timing_summary_met():
    t = parse_timing_summary(timing())
    assert (t["wns_ns"], t["tns_ns"], t["failing_endpoints"], t["total_endpoints"],
            t["whs_ns"], t["met"]) == (1.234, 0.0, 0, 48213, 0.041, True)
    assert t["worst_setup_path"]["source"].endswith("acc_reg[3]/C")


def test_timing_summary_failing_with_the_worst_path():
    t = parse_timing_summary(timing(wns=-0.812, tns=-35.5, failing=97))
    assert t["met"] is False and t["failing_endpoints"] == 97 and t["tns_ns"] == -35.5
    p = t["worst_setup_path"]
    assert p["slack_ns"] == -0.812 and p["logic_levels"] == 9 and p["requirement_ns"] == 10.0
    assert p["destination"] == f"{CORE}/act_reg[7]/D" and p["path_group"] == "clk_fpga_0"
    # the hold path is not a setup path; the worst of the setup paths is kept
    assert [q.setup for q in parse_paths(timing())] == [True, True, False]


def test_negative_slack_fails_even_without_the_verdict_line():
    t = parse_timing_summary(timing(wns=-0.1, verdict="(no verdict)"))
    assert t["met"] is False
    assert parse_timing_summary(timing(whs=-0.02))["met"] is False


def test_report_and_suggestion_for_a_path_in_a_layer():
    r = build_report(utilization(), timing(wns=-0.812, tns=-35.5, failing=97), clock_mhz=100.0)
    assert (r["lut"], r["ff"], r["bram36"], r["dsp"]) == (21873, 30112, 61.5, 3)
    assert r["utilisation"]["luts"]["percent"] == 41.11 and r["timing_met"] is False
    assert "10.81 ns (92.5 MHz)" in r["suggestion"] and "--clock-mhz 90.9 " in r["suggestion"]
    assert "fold layer 1 narrower" in r["suggestion"]
    line = timing_failure(r)
    assert f"from {CORE}/acc_reg[3]/C to {CORE}/act_reg[7]/D" in line
    assert "WNS -0.812 ns" in line and "97 failing endpoints" in line


def test_a_path_outside_the_core_suggests_the_clock_only():
    r = build_report(utilization(), timing(wns=-0.3, source="neuro_i/axi_dma_0/U0/a/C",
                                           destination="neuro_i/axi_smc/inst/b/D"),
                     clock_mhz=100.0)
    assert "--clock-mhz" in r["suggestion"] and "fold" not in r["suggestion"]
    ok = build_report(utilization(), timing(), clock_mhz=100.0)
    assert ok["suggestion"] is None and timing_failure(ok) is None


def test_command_writes_report_json_and_fails_on_timing(tmp_path, capsys):
    u, t_ok, t_bad = tmp_path / "u.rpt", tmp_path / "t.rpt", tmp_path / "bad.rpt"
    u.write_text(utilization())
    t_ok.write_text(timing())
    t_bad.write_text(timing(wns=-0.5, tns=-3.0, failing=4))
    out = tmp_path / "report.json"
    args = ["report", "--utilization", str(u), "--clock-mhz", "100", "-o", str(out)]
    assert main([*args, "--timing", str(t_ok)]) == 0
    assert json.loads(out.read_text())["timing"]["wns_ns"] == 1.234
    assert main([*args, "--timing", str(t_bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pynq-neuro: error: timing not met at 100 MHz") and err.count("\n") == 1
    assert json.loads(out.read_text())["timing_met"] is False  # written before the verdict
    assert main([*args, "--timing", str(tmp_path / "missing.rpt")]) == 2
    assert "missing.rpt" in capsys.readouterr().err


def test_merge_next_to_the_yosys_estimate(tmp_path):
    results = {"clock_mhz": 100, "models": [
        {"model": "a", "fingerprint": "00ff", "lut": 20000},
        {"model": "b", "fingerprint": "abcd", "lut": 9000}]}
    report = build_report(utilization(), timing(), clock_mhz=100.0,
                          artifact={"fingerprint": "abcd", "network": "b"})
    merged = merge_vivado(results, report)
    b = merged["models"][1]
    assert b["lut"] == 9000 and b["vivado"]["lut"] == 21873 and b["vivado"]["timing_met"]
    assert "vivado" not in merged["models"][0] and "vivado" not in results["models"][1]
    with pytest.raises(ReportError, match="fingerprint 9999"):
        merge_vivado(results, dict(report, artifact={"fingerprint": "9999", "network": "c"}))
    with pytest.raises(ReportError, match="names no artifact"):
        merge_vivado(results, dict(report, artifact=None))
    path, rep = tmp_path / "hardware.json", tmp_path / "report.json"
    path.write_text(json.dumps(results))
    rep.write_text(json.dumps(report))
    merge_into_results(path, [rep])
    assert json.loads(path.read_text())["models"][1]["vivado"]["dsp"] == 3


# ------------------------------------------------------------------------------------------------
# the build scripts under tclsh with stub Vivado commands


def _dry_run(script, args, work, **kw):
    import shutil

    from pynq_neuro.overlay_spec import dry_run

    if shutil.which("tclsh") is None:
        pytest.skip("tclsh not installed")
    from pathlib import Path

    return dry_run(Path(__file__).resolve().parents[1] / "overlays" / script, args, work, **kw)


def _fclk(run) -> list[str]:
    from pynq_neuro.overlay.dryrun import _dict_config

    return [v for c in run.find("set_property") if c[1] == "-dict"
            for k, v in _dict_config(c).items() if k == "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"]


def test_block_design_takes_fclk0_from_the_artifact(tmp_path):
    art = tmp_path / "art"
    art.mkdir()
    (art / "manifest.json").write_text(json.dumps(
        {"compile_config": {"budget": {"clock_mhz": 125.0}},
         "performance": {"budget": {"clock_mhz": 125.0}}}))
    run = _dry_run("build_bd.tcl", ["-project", str(tmp_path / "p"), "-artifact", str(art)],
                   tmp_path / "d1")
    assert run.returncode == 0, run.stderr
    assert _fclk(run) == ["125.0"] and "FCLK0 125.0 MHz" in run.stdout
    (art / "manifest.json").write_text('{"a": {"clock_mhz": 125.0}, "b": {"clock_mhz": 100.0}}')
    run = _dry_run("build_bd.tcl", ["-project", str(tmp_path / "p"), "-artifact", str(art)],
                   tmp_path / "d2")
    assert run.returncode != 0 and "several clocks" in run.stderr
    run = _dry_run("build_bd.tcl", ["-project", str(tmp_path / "p"), "-artifact",
                                    str(tmp_path / "none")], tmp_path / "d3")
    assert run.returncode != 0 and "compile the network first" in run.stderr


def test_bitstream_timing_failure_names_the_worst_path(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pn_overlay.xpr").write_text("")
    run = _dry_run("build_bitstream.tcl", ["-project", str(proj), "-out", str(tmp_path / "out"),
                                           "-clock_mhz", "125"], tmp_path / "dry", slack=-0.25)
    assert run.returncode != 0
    assert "timing not met at 125 MHz" in run.stderr
    assert "from neuro_i/neuro_core_0/inst/u_net/g_layer[2].u_layer/acc_reg[0]/C" in run.stderr
    assert "CLOCK_MHZ" in run.stderr
    summary = (tmp_path / "out" / "neuro_build.txt").read_text()
    assert "fclk0_mhz 125" in summary and "worst_setup_path" in summary
    # the reports the build wrote go through the parser: report.json and the one-line verdict
    out = tmp_path / "report.json"
    assert main(["report", "--utilization", str(tmp_path / "out" / "neuro_utilization.rpt"),
                 "--timing", str(tmp_path / "out" / "neuro_timing.rpt"), "--clock-mhz", "125",
                 "-o", str(out)]) == 1
    r = json.loads(out.read_text())
    assert r["timing"]["wns_ns"] == -0.25 and r["timing_met"] is False
    assert r["worst_setup_path"]["destination"].endswith("act_reg[0]/D")
    assert "fold layer 2 narrower" in r["suggestion"] and "--clock-mhz 111.11 " in r["suggestion"]
