"""Vivado's reports of a routed overlay as data (standard library only).

* :func:`parse_utilization`: the text of ``report_utilization`` (7-series and UltraScale
  tables, with or without the ``Prohibited`` column) -> LUT, FF, BRAM and DSP used, available
  and percent;
* :func:`parse_timing_summary`: the text of ``report_timing_summary`` -> WNS, TNS, failing
  endpoints, hold slack, whether every constraint is met, and the worst setup path (start and
  end point, requirement, logic levels);
* :func:`build_report` / ``report`` command: both into ``overlays/build/report.json``, with a
  suggestion when timing fails;
* :func:`merge_into_results`: a report into ``benchmarks/results/hardware.json`` beside the
  Yosys estimate of the same hardware (matched by fingerprint).

    python -m pynq_neuro.overlay.vivado_reports report --utilization U.rpt --timing T.rpt \\
        [--artifact DIR] [--clock-mhz MHZ] -o build/report.json   # exit 1: timing not met
    python -m pynq_neuro.overlay.vivado_reports clock ARTIFACT    # the artifact's clock
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from . import SpecError

MAX_REPORT_BYTES = 64 << 20
# report_utilization rows (7-series name, UltraScale name) of the figures kept
RESOURCES = {"luts": ("Slice LUTs", "CLB LUTs"), "ffs": ("Slice Registers", "CLB Registers"),
             "bram36": ("Block RAM Tile",), "dsp": ("DSPs",)}
TIMING_COLUMNS = {"WNS(ns)": "wns_ns", "TNS(ns)": "tns_ns",
                  "TNS Failing Endpoints": "failing_endpoints",
                  "TNS Total Endpoints": "total_endpoints", "WHS(ns)": "whs_ns",
                  "THS(ns)": "ths_ns", "THS Failing Endpoints": "hold_failing_endpoints",
                  "THS Total Endpoints": "hold_total_endpoints", "WPWS(ns)": "wpws_ns",
                  "TPWS(ns)": "tpws_ns", "TPWS Failing Endpoints": "pulse_width_failing_endpoints",
                  "TPWS Total Endpoints": "pulse_width_total_endpoints"}
IO_PLL_MHZ = 1000.0  # the PYNQ-Z2's PS I/O PLL, the source of FCLK0 (50 MHz x 20)
MET = "All user specified timing constraints are met."
NOT_MET = "Timing constraints are not met."


class ReportError(SpecError):
    """A Vivado report that is missing, unreadable or not in the expected format."""


def _number(text: str) -> float | None:
    t = text.strip().lstrip("<")
    if t in ("", "NA", "-"):
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _header_value(text: str, key: str) -> str | None:
    m = re.search(rf"^\|\s*{re.escape(key)}\s*:\s*(.*?)\s*$", text, re.MULTILINE)
    return m.group(1) if m else None


# ------------------------------------------------------------------------------------------------
# report_utilization


def parse_utilization(text: str) -> dict[str, Any]:
    """LUT, FF, BRAM tile and DSP figures of a ``report_utilization`` text: for each,
    ``used``, ``available`` and ``percent`` (of the device)."""
    rows: dict[str, dict[str, float | None]] = {}
    columns: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            if line.startswith("+") or not line.strip():
                continue
            columns = None   # a new section
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "Site Type":
            columns = cells
            continue
        if columns is None or len(cells) != len(columns):
            continue
        name = cells[0].rstrip("*").strip()
        values = dict(zip(columns, cells))
        if name not in rows:
            rows[name] = {"used": _number(values.get("Used", "")),
                          "available": _number(values.get("Available", "")),
                          "percent": _number(values.get("Util%", ""))}
    out: dict[str, Any] = {}
    for key, names in RESOURCES.items():
        row = next((rows[n] for n in names if n in rows), None)
        if row is None or row["used"] is None:
            raise ReportError(f"utilization report: no row {' / '.join(names)!r} with a Used "
                              f"figure (is this the text of report_utilization?)")
        out[key] = row
    out["device"] = _header_value(text, "Device")
    out["design_state"] = _header_value(text, "Design State")
    out["tool"] = _header_value(text, "Tool Version")
    return out


# ------------------------------------------------------------------------------------------------
# report_timing_summary


@dataclass
class TimingPath:
    """One timing path of the report's details."""

    slack_ns: float
    source: str
    destination: str
    path_group: str = ""
    path_type: str = ""
    requirement_ns: float | None = None
    data_path_delay_ns: float | None = None
    logic_levels: int | None = None

    @property
    def setup(self) -> bool:
        return self.path_type.lower().startswith("setup")


_PATH_FIELDS = {"Source": "source", "Destination": "destination", "Path Group": "path_group",
                "Path Type": "path_type", "Requirement": "requirement_ns",
                "Data Path Delay": "data_path_delay_ns", "Logic Levels": "logic_levels"}


def parse_paths(text: str) -> list[TimingPath]:
    """Every path of the report's timing details (``Slack (MET|VIOLATED) : ...`` blocks)."""
    paths: list[TimingPath] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None and "source" in current and "destination" in current:
            paths.append(TimingPath(**current))

    for line in text.splitlines():
        m = re.match(r"^\s*Slack(?:\s*\((?:MET|VIOLATED)\))?\s*:\s*(-?[\d.]+|inf)\s*ns", line)
        if m:
            close()
            current = {"slack_ns": float(m.group(1))}
            continue
        if current is None:
            continue
        m = re.match(r"^\s{2}([A-Z][A-Za-z ]+?):\s+(\S.*?)\s*$", line)
        if not m or m.group(1) not in _PATH_FIELDS:
            continue
        key, value = _PATH_FIELDS[m.group(1)], m.group(2)
        if key in current:
            continue
        if key.endswith("_ns"):
            current[key] = _number(value.split("ns")[0])
        elif key == "logic_levels":
            n = re.match(r"(\d+)", value)
            current[key] = int(n.group(1)) if n else None
        else:
            current[key] = value
    close()
    return paths


def parse_timing_summary(text: str) -> dict[str, Any]:
    """The design timing summary of a ``report_timing_summary`` text (WNS, TNS, failing
    endpoints, WHS, THS, ...), ``met`` (Vivado's own verdict line) and the worst setup path."""
    lines = text.splitlines()
    summary: dict[str, Any] | None = None
    for i, line in enumerate(lines):
        if "WNS(ns)" in line and "TNS(ns)" in line:
            names = re.split(r"\s{2,}", line.strip())
            values = next((lines[j].split() for j in range(i + 1, min(i + 4, len(lines)))
                           if lines[j].strip() and not set(lines[j].strip()) <= set("- ")),
                          None)
            if values is None or len(values) != len(names):
                raise ReportError("timing summary: the Design Timing Summary row does not have "
                                  f"one value per column ({names})")
            summary = {}
            for name, value in zip(names, values):
                key = TIMING_COLUMNS.get(name)
                if key is not None:
                    v = _number(value)
                    summary[key] = (int(v) if v is not None and "endpoints" in key else v)
            break
    if summary is None:
        raise ReportError("timing summary: no Design Timing Summary table with WNS(ns) and "
                          "TNS(ns) (is this the text of report_timing_summary?)")
    if MET in text:
        met: bool | None = True
    elif NOT_MET in text:
        met = False
    else:
        met = None
    setup = [p for p in parse_paths(text) if p.setup]
    worst = min(setup, key=lambda p: p.slack_ns) if setup else None
    failing = any((summary.get(k) or 0) < 0 for k in ("wns_ns", "whs_ns", "wpws_ns"))
    summary["met"] = bool(met) and not failing if met is not None else not failing
    summary["worst_setup_path"] = None if worst is None else asdict(worst)
    return summary


# ------------------------------------------------------------------------------------------------
# the overlay's report


def suggestion(timing: dict[str, Any], clock_mhz: float) -> str | None:
    """What to change when setup timing fails: a clock the worst path meets, and for a path
    inside a layer of the core the compile option that shortens it."""
    wns = timing.get("wns_ns")
    if wns is None or wns >= 0:
        if (timing.get("whs_ns") or 0) < 0:
            return ("hold time fails (WHS < 0): a clock or reset is routed through general "
                    "logic; check the block design's clocking, not the core")
        return None
    period = 1e3 / clock_mhz
    path = timing.get("worst_setup_path") or {}
    needed = (path.get("requirement_ns") or period) - wns
    fmax = 1e3 / needed
    # the fastest clock at or below fmax that the PS makes (I/O PLL / integer divisor)
    mhz = math.floor(IO_PLL_MHZ / math.ceil(IO_PLL_MHZ / fmax) * 100) / 100
    text = (f"The worst path needs {needed:.2f} ns ({fmax:.1f} MHz): compile at "
            f"--clock-mhz {mhz:g} (make -C overlays CLOCK_MHZ={mhz:g}; the PS makes FCLK0 as "
            f"{IO_PLL_MHZ:g} MHz / an integer), which also sets FCLK0")
    ends = f"{path.get('source', '')} {path.get('destination', '')}"
    layer = re.search(r"g_layer\[(\d+)\]", ends)
    if layer:
        text += (f"; or fold layer {layer.group(1)} narrower (--folding, fewer groups: "
                 f"the path lies in its neuron array, whose group sum widens with the groups)")
    return text


def build_report(utilization_text: str, timing_text: str, *, clock_mhz: float,
                 artifact: dict[str, Any] | None = None) -> dict[str, Any]:
    """``report.json``: utilisation, timing, the worst path and a suggestion."""
    util = parse_utilization(utilization_text)
    timing = parse_timing_summary(timing_text)
    resources = {k: util[k] for k in RESOURCES}
    return {
        "clock_mhz": clock_mhz,
        "device": util["device"], "design_state": util["design_state"], "tool": util["tool"],
        "utilisation": resources,
        "lut": resources["luts"]["used"], "ff": resources["ffs"]["used"],
        "bram36": resources["bram36"]["used"], "dsp": resources["dsp"]["used"],
        "timing": {k: v for k, v in timing.items() if k != "worst_setup_path"},
        "timing_met": timing["met"],
        "worst_setup_path": timing["worst_setup_path"],
        "suggestion": suggestion(timing, clock_mhz),
        "artifact": artifact,
    }


def timing_failure(report: dict[str, Any]) -> str | None:
    """One line naming the worst path and the suggestion when timing fails, else None."""
    if report["timing_met"]:
        return None
    t, path = report["timing"], report["worst_setup_path"] or {}
    where = (f"; worst path from {path.get('source')} to {path.get('destination')} "
             f"(slack {path.get('slack_ns')} ns, {path.get('logic_levels')} logic levels)"
             if path else "")
    return (f"timing not met at {report['clock_mhz']:g} MHz: WNS {t.get('wns_ns')} ns, TNS "
            f"{t.get('tns_ns')} ns, {t.get('failing_endpoints')} failing endpoints, WHS "
            f"{t.get('whs_ns')} ns{where}. {report['suggestion'] or ''}").strip()


def _read(path: str | Path) -> str:
    from ..fileio import read_regular

    try:
        return read_regular(path, MAX_REPORT_BYTES).decode("utf-8", "replace")
    except OSError as e:
        raise ReportError(f"{path}: {e.strerror or e}") from None


def artifact_info(directory: str | Path) -> dict[str, Any]:
    """Name, fingerprint and clock of the artifact the overlay was built from."""
    from ..compiler.artifact import load_artifact
    from ..driver.accelerator import artifact_clock_mhz

    art = load_artifact(directory)
    return {"path": str(directory), "fingerprint": art.fingerprint,
            "network": art.manifest["network"]["name"],
            "clock_mhz": artifact_clock_mhz(art.manifest)}


# ------------------------------------------------------------------------------------------------
# benchmarks/results/hardware.json


def merge_vivado(results: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """``results`` (hardware.json) with ``report`` (report.json) as the ``vivado`` entry of the
    model built from the same hardware (same fingerprint), beside its Yosys estimate."""
    fp = (report.get("artifact") or {}).get("fingerprint")
    if not fp:
        raise ReportError("the Vivado report names no artifact fingerprint (build it with "
                          "--artifact)")
    models = results.get("models", [])
    match = [m for m in models if m.get("fingerprint") == fp]
    if not match:
        raise ReportError(f"no model of the results has hardware fingerprint {fp} (run the "
                          f"benchmark for {report['artifact'].get('network')} first)")
    keep = ("clock_mhz", "device", "tool", "lut", "ff", "bram36", "dsp", "utilisation",
            "timing", "timing_met", "worst_setup_path", "suggestion")
    out = dict(results)
    out["models"] = [dict(m, vivado={k: report.get(k) for k in keep})
                     if m.get("fingerprint") == fp else m for m in models]
    return out


def merge_into_results(results_path: str | Path, report_paths: Sequence[str | Path]) -> None:
    """Merge Vivado reports into a results file, atomically."""
    from ..fileio import atomic_write_text

    results = json.loads(_read(results_path))
    for path in report_paths:
        results = merge_vivado(results, json.loads(_read(path)))
    atomic_write_text(results_path, json.dumps(results, indent=1) + "\n")


# ------------------------------------------------------------------------------------------------
# command line (overlays/Makefile)


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli_core import CliParser, error, guard, positive
    from ..fileio import atomic_write_text

    parser = CliParser(prog="pynq-neuro vivado-reports", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="parse the reports into report.json")
    p.add_argument("--utilization", required=True, help="text of report_utilization")
    p.add_argument("--timing", required=True, help="text of report_timing_summary")
    p.add_argument("--artifact", help="artifact the overlay was built from")
    p.add_argument("--clock-mhz", type=positive, help="FCLK0 (default: the artifact's clock)")
    p.add_argument("-o", "--output", required=True, help="report.json to write")
    c = sub.add_parser("clock", help="print the clock an artifact was compiled for")
    c.add_argument("artifact")

    def body() -> int:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.command == "clock":
            print(f"{artifact_info(args.artifact)['clock_mhz']:g}")
            return 0
        art = artifact_info(args.artifact) if args.artifact else None
        clock = args.clock_mhz or (art["clock_mhz"] if art else None)
        if clock is None:
            raise ReportError("give --clock-mhz or --artifact (the clock of the design)")
        report = build_report(_read(args.utilization), _read(args.timing), clock_mhz=clock,
                              artifact=art)
        report["reports"] = {"utilization": str(args.utilization), "timing": str(args.timing)}
        atomic_write_text(args.output, json.dumps(report, indent=1) + "\n")
        u = report["utilisation"]
        used = ", ".join(f"{k} {u[k]['used']:g} ({u[k]['percent']}%)" for k in u)
        print(f"overlay: {used}; WNS {report['timing']['wns_ns']} ns -> {args.output}")
        failure = timing_failure(report)
        if failure is not None:
            error(failure)
            return 1
        return 0

    return guard(body)


if __name__ == "__main__":
    sys.exit(main())
