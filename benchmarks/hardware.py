"""Hardware benchmark: every shipped model on the RTL of its default compile.

For each quantized model of the zoo: ``pynq-neuro compile <model>`` with the default
target, then the Verilator fast path on the whole MNIST test set (10,000 digits back to back,
class and logits compared with the golden model, cycles per digit and latency from the
simulation, next to the compiler's cycle model), then the Yosys estimate for the xc7z020 (LUT,
FF, BRAM36, DSP48, LUT levels on the longest path). Writes ``benchmarks/results/hardware.json``
(one entry per model) with the published anchors beside them.

Usage: ``python benchmarks/hardware.py [--models tdnn-w2a2-sparse ...] [--images N]
[--no-synth] [--force]``. Results of a model are kept in ``build/hardware/<model>/`` and
reused while the artifact and the Verilog are unchanged. About 5 minutes of simulation per
model plus 10-25 minutes of Yosys for the large dense networks.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import report
from pynq_neuro.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "hardware"
CLOCK_MHZ = 100.0

# zoo models with the default compile; "NAME@LUTS" compiles NAME with a LUT budget of LUTS
# (26600: half of the xc7z020), "NAME@LUTS:TARGET" also with a throughput target of TARGET
# digits/s (the throughput-first preset: 500,000 digits/s within 85 % of the LUTs)
THROUGHPUT_FIRST = "45220:500000"
MODELS = ["tdnn-w2a2-sparse-in4", "tdnn-w2a2-sparse-in1",
          "tdnn-s2-w2a2-sparse-in1", f"tdnn-s2-w2a2-sparse-in1@{THROUGHPUT_FIRST}+packed",
          "tdnn-w2a2-sparse",
          "tdnn-w2a2-sparse@26600", "tdnn-w1a1-sparse", "tdnn-w1a1-unstructured",
          "tdnn-w1a1-unstructured@26600",
          "tdnn-w1a1", "tdnn-w2a2", "tdnn-s2-w2a2",
          "tdnn-w4a4"]

# 196 beats of 32 bits per digit: the byte pixel stream's limit at 100 MHz (a packed stream of
# binary pixels takes 28 beats a digit)
STREAM_LIMIT = CLOCK_MHZ * 1e6 / 196
ANCHORS = [
    {"system": "BNN-PYNQ LFC W1A1 (PYNQ-Z2, measured)", "images_per_s": 118_883,
     "accuracy": 0.9847},
    {"system": "32-bit pixel stream of bytes (four pixels a beat), limit at 100 MHz",
     "images_per_s": round(STREAM_LIMIT)},
]


def hdl_digest() -> str:
    h = hashlib.sha256()
    for p in (sorted((ROOT / "hdl").glob("*.v*")) + sorted((ROOT / "sim" / "common").glob("*.vh"))
              + [ROOT / "sim" / "fast" / "tb_neuro_core.v"]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def model_options(model: str) -> tuple[str, str, str, bool]:
    """``NAME[@LUTS[:TARGET]][+packed]`` as (name, luts, target, packed), the missing parts
    empty (``+packed``: ``compile --packed-pixels``)."""
    model, plus, flag = model.partition("+")
    if plus and flag != "packed":
        raise SystemExit(f"{model}+{flag}: the only option after '+' is 'packed'")
    name, _, options = model.partition("@")
    luts, _, target = options.partition(":")
    return name, luts, target, bool(plus)


def compile_model(model: str, out: Path) -> None:
    exe = Path(sys.executable).with_name("pynq-neuro")
    name, luts, target, packed = model_options(model)
    cmd = [str(exe) if exe.exists() else "pynq-neuro", "compile", name, "-o", str(out)]
    if luts:
        cmd += ["--luts", luts]
    if target:
        cmd += ["--target", target]
    if packed:
        cmd.append("--packed-pixels")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"compile of {model} failed:\n{proc.stdout}\n{proc.stderr}")


def run_model(model: str, images: int, synth: bool, force: bool) -> dict:
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.rtl.estimate import estimate
    from pynq_neuro.rtl.regression import format_report, regression

    work = WORK / model.replace(":", "-t")  # make reads ':' in a path as a rule
    art_dir = work / "artifact"
    compile_model(model, art_dir)
    art = load_artifact(art_dir)
    key = {"fingerprint": art.fingerprint, "network_bin": hashlib.sha256((art_dir / "network.bin").read_bytes()).hexdigest()[:16],
           "hdl": hdl_digest(), "images": images}
    cached = work / "result.json"
    if cached.exists() and not force:
        old = json.loads(cached.read_text())
        if old.get("key") == key and (old.get("synthesis") is not None or not synth):
            print(f"{model}: cached result")
            return old

    t0 = time.perf_counter()
    rep = regression(art_dir, images, workdir=work / "run")
    print(format_report(rep), flush=True)
    syn = None
    if synth:
        syn = estimate(art_dir, workdir=work / "yosys")
        print(f"{model}: yosys {syn['synthesized']['luts']} LUT, {syn['synthesized']['ffs']} FF, "
              f"{syn['synthesized']['bram36']} BRAM36, {syn['lut_levels']} LUT levels, "
              f"about {syn.get('clock_mhz')} MHz plausible ({syn['yosys_seconds']:.0f} s)", flush=True)
    rtl, cm = rep["rtl"], rep["cycle_model"]
    perf = art.manifest.get("performance") or {}
    entry = {
        "model": model,
        "lut_budget": (perf.get("budget") or {}).get("luts"),
        "fingerprint": art.fingerprint,
        "images": rep["digits"],
        "mismatches": rep["class_mismatches"] + rep["logit_mismatches"],
        "class_mismatches": rep["class_mismatches"],
        "logit_mismatches": rep["logit_mismatches"],
        "accuracy": rep.get("accuracy"),
        "cycles_per_image_mean": rtl["cycles_per_digit"],
        "cycles_per_image_p99": rtl["digit_interval"]["p99"],
        "images_per_s_100mhz": rtl["images_per_s"],
        "latency_cycles": rtl["latency_cycles"]["mean"],
        "latency_cycles_p99": rtl["latency_cycles"]["p99"],
        "cycle_model": {"cycles_per_image_mean": cm["cycles_per_digit"],
                        "cycles_per_image_p99": cm["digit_interval"]["p99"],
                        "images_per_s_100mhz": cm["images_per_s"],
                        "latency_cycles": cm["latency_cycles"]["mean"],
                        "bottleneck_layer": cm["bottleneck_layer"]},
        "folding": [[h["groups"], h["lanes"]] for h in art.manifest["hardware"]["layers"]],
        "synapses": art.manifest["network"].get("synapses"),
        "compiler_resource_estimate": (perf.get("resources_estimate") or {}).get("total"),
        "sim_seconds": rep["sim_seconds"],
        "build_seconds": rep["build_seconds"],
    }
    if syn is not None:
        s, u = syn["synthesized"], syn["utilisation"]
        entry.update({
            "lut": s["luts"], "ff": s["ffs"], "bram36": s["bram36"], "dsp": s["dsp"],
            "lut_levels": syn["lut_levels"], "logic_levels": syn["logic_levels"],
            "path_delay_ns": syn.get("path_delay_ns"), "clock_mhz": syn.get("clock_mhz"),
            "utilisation": u,
            "fits": syn["fits"],
            "fits_half": bool(u["luts"] <= 0.5 and u["bram36"] <= 0.5),
            "yosys_seconds": syn["yosys_seconds"],
        })
    else:
        entry.update({"lut": None, "ff": None, "bram36": None, "dsp": None,
                      "lut_levels": None, "fits": None})
    entry["seconds"] = time.perf_counter() - t0
    atomic_write_text(cached, json.dumps({"key": key, "entry": entry, "synthesis": syn},
                                         indent=1))
    return {"key": key, "entry": entry, "synthesis": syn}


def carry_synthesis(entry: dict, previous: dict | None) -> dict:
    """Without a new Yosys run, keep the previous figures of the same hardware, labelled with
    the Verilog digest they were measured on (the synthesized logic of a model is unchanged
    while its fingerprint, folding and the datapath are)."""
    keys = ("lut", "ff", "bram36", "dsp", "lut_levels", "logic_levels", "path_delay_ns",
            "clock_mhz", "utilisation", "fits", "fits_half", "yosys_seconds")
    if entry.get("lut") is not None or not previous or previous.get("lut") is None:
        return entry
    if previous.get("folding") != entry.get("folding"):
        return entry
    out = dict(entry)
    out.update({k: previous[k] for k in keys if k in previous})
    out["synthesis_hdl"] = previous.get("synthesis_hdl", previous.get("hdl", "earlier"))
    return out


def model_label(model: str) -> str:
    """The README's name of a hardware row: the zoo model and its compile options."""
    name, luts, target, packed = model_options(model)
    if not luts and not packed:
        return report.zoo_label(name)
    if f"{luts}:{target}" == THROUGHPUT_FIRST:
        share = " (throughput first)"
    else:
        share = {"26600": " (half device)", "53200": " (whole device)"}.get(luts, "")
    flags = " ".join(([f"--luts {luts}"] if luts else []) + ([f"--target {target}"] if target else [])
                     + (["--packed-pixels"] if packed else []))
    return f"`{name}`, `{flags}`{share}"


def readme_body(record: dict) -> str:
    """The README's hardware table from a hardware.json record. Yosys figures carried from an
    earlier Verilog (same folding) are marked, with the digests of both Verilog versions."""
    rows = []
    earlier = set()
    for r in record["models"]:
        u = r.get("utilisation") or {}
        mark = ""
        if r.get("lut") is not None:
            if r.get("synthesis_hdl") not in (None, r.get("hdl")):
                mark = " †"
                earlier.add(r["synthesis_hdl"])
            fits = "" if r.get("fits", True) else ", does not fit"
            lut = f"{r['lut']:,} ({100 * u['luts']:.0f} %{fits}){mark}"
            ff, levels = f"{r['ff']:,}", str(r["lut_levels"])
            bram = f"{r['bram36']:.1f} ({100 * u['bram36']:.0f} %)"
        else:
            lut = ff = levels = bram = "–"
        clock = f"{r['clock_mhz']:.0f} MHz" if r.get("clock_mhz") and not mark else "–"
        rows.append([
            model_label(r["model"]), f"{100 * r['accuracy']:.2f} %",
            f"{r['images'] - r['mismatches']:,}/{r['images']:,}",
            f"{r['cycles_per_image_mean']:.1f}, {r['cycles_per_image_p99']:.0f}",
            f"{r['images_per_s_100mhz']:,.0f}", f"{r['latency_cycles']:,.0f}", lut, ff, bram,
            levels, clock])
    current = {r.get("hdl") for r in record["models"]}
    lines = [report.para(
        "RTL on the full test set (default compile: 40,000-LUT budget; throughput from "
        f"simulated cycles at {record['clock_mhz']:.0f} MHz with digits back to back; "
        "resources from Yosys 0.23 `synth_xilinx`, utilisation of the xc7z020; Vivado not "
        "run; plausible clock: a first-order figure from the slowest path of the Yosys "
        "netlist, see `pynq_neuro/rtl/estimate.py`):"), "", *report.table(
            ["model", "accuracy", "bit-exact", "cycles/digit (mean, p99)", "digits/s",
             "latency (cycles)", "LUT", "FF", "BRAM36", "LUT levels", "plausible clock"], rows)]
    if earlier:
        lines += ["", report.para(
            f"† Yosys figures of the same folding on an earlier Verilog "
            f"({', '.join(sorted(earlier))}); the simulation of every row, and the other "
            f"Yosys figures, are on the current one ({', '.join(sorted(c for c in current if c))}).")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = report.argument_parser(__doc__, "hardware", threads=False)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--no-synth", action="store_true", help="skip the Yosys estimate")
    ap.add_argument("--force", action="store_true", help="recompute cached models")
    ap.add_argument("--vivado", action="append", default=[], metavar="REPORT",
                    help="merge a Vivado report.json (make -C overlays) into its model's entry")
    args = ap.parse_args(argv)
    out = report.RESULTS / "hardware.json"
    if args.readme_only:
        return report.rewrite_readme("hardware", readme_body)
    sys.path.insert(0, str(ROOT))
    if args.images < 1:
        ap.error(f"--images must be >= 1, got {args.images}")

    for model in args.models:
        res = run_model(model, args.images, not args.no_synth, args.force)
        # merge with the file as it is now (other runs may have written other models)
        entries = {}
        if out.exists():
            entries = {e["model"]: e for e in json.loads(out.read_text()).get("models", [])}
        entry = dict(res["entry"], hdl=res["key"]["hdl"])
        if res["entry"].get("lut") is not None:
            entry["synthesis_hdl"] = res["key"]["hdl"]
        entries[model] = carry_synthesis(entry, entries.get(model))
        report.RESULTS.mkdir(parents=True, exist_ok=True)
        ordered = [entries[m] for m in MODELS if m in entries] + \
            [e for m, e in entries.items() if m not in MODELS]
        atomic_write_text(out, json.dumps({
            "clock_mhz": CLOCK_MHZ,
            "device": "xc7z020 (53,200 LUT, 106,400 FF, 140 BRAM36, 220 DSP48)",
            "method": "RTL: Verilator fast path (sim/fast/tb_neuro_core.v), digits back to back, "
                      "results compared with the golden model; resources: Yosys 0.23 "
                      "synth_xilinx -family xc7 -flatten",
            "anchors": ANCHORS,
            "models": ordered,
        }, indent=1) + "\n")
        print(f"wrote {out}", flush=True)
    if args.vivado:
        from pynq_neuro.overlay.vivado_reports import merge_into_results

        merge_into_results(out, args.vivado)
        print(f"merged {', '.join(args.vivado)} into {out}", flush=True)
    return report.rewrite_readme("hardware", readme_body)


if __name__ == "__main__":
    raise SystemExit(main())
