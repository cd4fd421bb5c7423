"""Compression benchmark: accuracy versus stored synapses for the shipped quantized models.

For each model and pruning level: ``pynq-neuro compress`` (passes plus fine-tune), then
``pynq-neuro compile`` with the default target, then the golden model of the artifact on the full
test set. Writes ``benchmarks/results/compression.json`` (model, wbits, abits, synapses, accuracy,
compile_seconds, modeled_images_per_s, bram_bits, ...) and ``compression.png``.

Usage: ``python benchmarks/compression.py [--models tdnn-w2a2 ...] [--levels NAME ...]
[--reuse]`` (about 2 minutes per model and level on 2 cores; with ``--reuse`` the compressed
networks of an earlier run are only compiled again, a few seconds each).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from anchors import draw_anchors
import report
from report import pyplot, write_results

from pynq_neuro.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "compression"

# name -> compress options (lanes and sparsity per layer: three hidden layers, classifier)
LEVELS = {
    "dense": None,
    # the shipped compressed model (scripts/build_zoo.py: lanes 32,32,16,5, 27,008 synapses)
    "zoo-sparse": "zoo",
    # the shipped model pruned to the same sparsity per layer without lane balance
    "zoo-unstructured": "zoo:unstructured",
    "balanced-58k": {"lanes": [32, 32, 32, 5], "sparsity": [0.5, 0.5, 0.5, 0.5]},
    "balanced-17k": {"lanes": [16, 16, 16, 5], "sparsity": [0.875, 0.875, 0.875, 0.5]},
    "unstructured-27k": {"budget": 27000},
    "lowrank-unstructured-27k": {"low_rank": (2, 24), "budget": 27000},
}
# the README's words for each level
LABELS = {
    "dense": "dense",
    "zoo-sparse": "lane-balanced (as `{model}-sparse`)",
    "zoo-unstructured": "unstructured, the same sparsity per layer (as `{model}-unstructured`)",
    "balanced-58k": "lane-balanced, 58k",
    "balanced-17k": "lane-balanced, 17k",
    "unstructured-27k": "unstructured pruning",
    "lowrank-unstructured-27k": "low rank + pruning",
}
SWEEP = {
    "tdnn-w2a2": list(LEVELS),
    "tdnn-w1a1": ["dense", "zoo-sparse", "zoo-unstructured", "balanced-17k"],
}
FINETUNE_EPOCHS = 12



def passes_for(level: dict) -> list[dict]:
    passes = []
    if "low_rank" in level:
        layer, rank = level["low_rank"]
        passes.append({"pass": "low_rank", "layer": layer, "rank": rank})
    if "lanes" in level:
        passes.append({"pass": "prune", "lanes": level["lanes"], "sparsity": level["sparsity"]})
    elif "budget" in level:
        passes.append({"pass": "prune", "budget": level["budget"]})
    return passes


def zoo_model(model: str, level: str) -> str:
    """The zoo model a ``"zoo"`` or ``"zoo:KIND"`` level reads."""
    return f"{model}-{level.partition(':')[2] or 'sparse'}"


def run_point(model: str, level_name: str, threads: int, reuse: bool = False) -> dict:
    from pynq_neuro import zoo
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.compiler.compile import CompileConfig, compile_network
    from pynq_neuro.compress.factorize import compress
    from pynq_neuro.data import load_mnist, sample_indices
    from pynq_neuro.golden import run

    level = LEVELS[level_name]
    out = WORK / f"{model}-{level_name}"
    out.mkdir(parents=True, exist_ok=True)
    compress_seconds = 0.0
    if level is None:
        source = str(zoo.network_path(model))
    elif isinstance(level, str):  # a zoo model: "zoo" is NAME-sparse, "zoo:KIND" NAME-KIND
        shipped = zoo_model(model, level)
        source = str(zoo.network_path(shipped))
        compress_seconds = zoo.info(shipped)["train_seconds"]
    elif reuse and (out / "model.npz").exists() and (out / "result.json").exists():
        # the compressed network of an earlier run: compile it again
        compress_seconds = json.loads((out / "result.json").read_text())["compress_seconds"]
        source = str(out / "model.npz")
    else:
        passes = passes_for(level)
        if "low_rank" in level:  # the rank pass precedes pruning and changes the layer count
            passes[0]["epochs"] = FINETUNE_EPOCHS // 2
        start = time.perf_counter()
        compress(zoo.checkpoint_path(model), passes, FINETUNE_EPOCHS, threads=threads,
                 output=out / "model.pt", progress=False, log=lambda s: None,
                 command=f"benchmarks/compression.py {model} {level_name}")
        compress_seconds = time.perf_counter() - start
        source = str(out / "model.npz")
    x, y = load_mnist("test")
    start = time.perf_counter()
    cfg = CompileConfig()  # the default compile and its sample
    manifest = compile_network(source, out / "artifact", cfg,
                               x[sample_indices(len(x), cfg.sample_digits)])
    compile_seconds = time.perf_counter() - start
    art = load_artifact(out / "artifact")
    res = run(art.network, x)
    from pynq_neuro.golden import IntegerNetwork

    ref = run(IntegerNetwork.load(source), x)
    mismatches = int((ref.logits != res.logits).any(axis=1).sum())
    perf = manifest["performance"]
    est = perf["resources_estimate"]
    info = zoo.info(model)
    return {
        "model": model,
        "level": level_name,
        "wbits": info["wbits"],
        "abits": info["abits"],
        "synapses": art.network.synapses,
        "accuracy": float((res.classes == y).mean()),
        "accuracy_uncompressed": info["accuracy"],
        "images": int(len(y)),
        "compress_seconds": compress_seconds,
        "compile_seconds": compile_seconds,
        "modeled_images_per_s": perf["cycle_model"]["images_per_s"],
        "modeled_cycles_per_digit": perf["cycle_model"]["cycles_per_digit"],
        "latency_cycles_p99": perf["cycle_model"]["latency_cycles_p99"],
        "bram_bits": int(sum(m["depth"] * m["width"] for m in manifest["memories"])),
        "bram36_estimate": est["total"]["bram36"],
        "lut_estimate": est["total"]["luts"],
        "fits_half": est["fits_half"],
        "foldings": [[l["groups"], l["lanes"]] for l in manifest["hardware"]["layers"]],
        "passes": (passes_for(level) if isinstance(level, dict) else
                   zoo.info(zoo_model(model, level))["commands"][-1] if isinstance(level, str)
                   else []),
        "artifact_vs_integer_model_mismatches": mismatches,
    }


def main() -> int:
    parser = report.argument_parser(__doc__, "compression")
    parser.add_argument("--models", nargs="*", default=list(SWEEP))
    parser.add_argument("--levels", nargs="*", help=f"default: {SWEEP}")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the compressed networks of an earlier run; compile again")
    args = parser.parse_args()
    if args.readme_only:
        return report.rewrite_readme("compression", readme_body)
    import torch

    torch.set_num_threads(args.threads)
    for model in args.models:
        for level in args.levels or SWEEP.get(model, list(LEVELS)):
            entry = run_point(model, level, args.threads, args.reuse)
            # one file per point, so that several runs can share the sweep
            atomic_write_text(WORK / f"{model}-{level}" / "result.json", json.dumps(entry, indent=2))
            print(json.dumps(entry), flush=True)
    entries = [json.loads(p.read_text()) for p in sorted(WORK.glob("*/result.json"))]
    return write_results("compression", entries, plot, readme_body)


def readme_body(entries: list[dict]) -> str:
    """The README's compression table from compression.json entries, most synapses first."""
    rows = []
    for e in sorted(entries, key=lambda e: (e["wbits"], -e["synapses"], -e["accuracy"])):
        label = LABELS.get(e["level"], e["level"]).format(model=e["model"])
        recipe = e["passes"] if isinstance(e["passes"], str) else ""
        if e["level"] == "zoo-sparse" and "--teacher" not in recipe:
            label = label[:-1] + ", before distillation)"
        rows.append([f"W{e['wbits']}A{e['abits']} {label}", f"{e['synapses']:,}",
                     f"{100 * e['accuracy']:.2f} %", f"{e['modeled_images_per_s']:,.0f}",
                     f"{e['bram36_estimate']:.1f}", f"{e['lut_estimate']:,}"])
    return "\n".join([report.para(
        "Compression (full test set, integer models of the artifacts; compiled with the default "
        "budget; throughput from the cycle model on the 1,000 sample digits of the folding "
        "search, LUTs from the compiler's resource model):"), "", *report.table(
            ["network", "synapses", "accuracy", "modeled digits/s", "BRAM36", "LUT (model)"],
            rows)])


def plot(entries: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for model in sorted({e["model"] for e in entries}):
        pts = sorted((e for e in entries if e["model"] == model), key=lambda e: e["synapses"])
        ax.plot([e["synapses"] for e in pts], [100 * e["accuracy"] for e in pts], "o-",
                label=model)
        for e in pts:
            ax.annotate(e["level"], (e["synapses"], 100 * e["accuracy"]), fontsize=6,
                        textcoords="offset points", xytext=(4, -8))
    draw_anchors(ax, text_x=2e4)
    ax.set_xscale("log")
    ax.set_xlabel("stored synapses")
    ax.set_ylabel("MNIST test accuracy (%), integer model of the artifact")
    ax.set_title("Accuracy versus synapses after compression")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
