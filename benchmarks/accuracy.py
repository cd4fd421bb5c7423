"""Accuracy benchmark: every shipped model on the full MNIST test set.

For each model: accuracy of the integer model (golden model; the float reference in torch),
synapse count, training time as measured when the model was trained, golden-model run time, and
disagreements between the fake-quantized torch model and the golden model. Writes
``benchmarks/results/accuracy.json`` and ``accuracy.png``. ``--retrain`` first retrains the zoo
with ``scripts/build_zoo.py`` (about 30 minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from anchors import draw_anchors
import report
from report import pyplot, write_results


ROOT = Path(__file__).resolve().parents[1]



def main() -> int:
    parser = report.argument_parser(__doc__, "accuracy")
    parser.add_argument("--retrain", action="store_true", help="retrain the zoo first")
    args = parser.parse_args()
    if args.readme_only:
        return report.rewrite_readme("accuracy", readme_body)
    if args.retrain:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_zoo.py")], check=True)

    import torch

    torch.set_num_threads(args.threads)
    from pynq_neuro import zoo
    from pynq_neuro.evaluation import evaluate
    from pynq_neuro.data import load_mnist
    from pynq_neuro.golden import run

    load_mnist("test")  # warm the loader so timings measure the models
    entries = []
    for name in zoo.names():
        info = zoo.info(name)
        quantized = info["wbits"] is not None
        r = evaluate(name, check_torch=quantized)
        start = time.perf_counter()
        evaluate(name)
        end_to_end = time.perf_counter() - start
        golden_seconds = None
        if quantized:  # best of three runs of the golden model alone on the 10,000 digits
            net, x = zoo.load_network(name), load_mnist("test")[0]
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                run(net, x)
                times.append(time.perf_counter() - t0)
            golden_seconds = min(times)
        entry = {
            "model": name,
            "wbits": info["wbits"] if quantized else 32,
            "abits": info["abits"] if quantized else 32,
            "accuracy": r["accuracy"],
            "images": r["images"],
            "synapses": r["synapses"],
            "train_seconds": info["train_seconds"],
            "engine": r["engine"],
            "eval_seconds": r["seconds"],
            "torch_golden_mismatches": r.get("torch_golden_mismatches"),
            "torch_float32_golden_mismatches": r.get("torch_float32_golden_mismatches"),
            "end_to_end_eval_seconds": end_to_end,
            "golden_seconds_10k": golden_seconds,
        }
        entries.append(entry)
        print(json.dumps(entry))
    return write_results("accuracy", entries, plot, readme_body)


def how_trained(info: dict) -> str:
    """How a zoo model was trained, from the commands that reproduce it."""
    last = (info.get("commands") or [""])[-1].split()
    if "compress" in last:
        return "pruning fine-tune, distilled" if "--teacher" in last else "pruning fine-tune"
    return "QAT from the float model" if "--warm-start" in last else "float"


def readme_body(entries: list[dict]) -> str:
    """The README's zoo table from accuracy.json entries (and the zoo's own records)."""
    from pynq_neuro import zoo

    rows = []
    for e in entries:
        bits = "float" if e["wbits"] == 32 else f"W{e['wbits']}A{e['abits']}"
        rows.append([report.zoo_label(e["model"]), bits, f"{e['synapses']:,}",
                     f"{100 * e['accuracy']:.2f} %",
                     f"{e['train_seconds']:.0f} s ({how_trained(zoo.info(e['model']))})"])
    return "\n".join(report.table(
        ["model", "bits", "synapses", "test accuracy", "training time"], rows))


def plot(entries: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for e in entries:
        ax.scatter(e["synapses"], 100 * e["accuracy"], s=60, zorder=3,
                   label=f"{e['model']}: {100 * e['accuracy']:.2f} %")
    draw_anchors(ax, text_x=1.2e5)
    ax.set_xscale("log")
    ax.set_xlabel("stored synapses (weights)")
    ax.set_ylabel("MNIST test accuracy (%), 10,000 digits")
    ax.set_title("Integer-model accuracy vs. synapses")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
