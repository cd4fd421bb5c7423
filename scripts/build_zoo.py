"""Train the shipped model zoo from scratch and record how each model was made.

Runs the ``pynq-neuro`` commands below in order (float warm start, quantization-aware training,
compression), evaluates every model on the full MNIST test set (integer models with the golden
model) and writes ``pynq_neuro/zoo/zoo.json``. Usage:
``python scripts/build_zoo.py [--only NAME ...] [--index-only]``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from pynq_neuro.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "pynq_neuro" / "zoo"
Z = "pynq_neuro/zoo/"
# the zoo's TDNN, stated in full so that the recipes do not follow the command's defaults:
# taps 3,3,3 with strides 1,2,2 read image rows 0..24 (28 -> 26 -> 12 -> 5 frames; the last
# rows reach no output), the rows every zoo model records (the compressed ones inherit them)
ZOO_ROWS = 25
ARCH = ["--channels", "128,128,128", "--taps", "3,3,3", "--strides", "1,2,2", "--rows", str(ZOO_ROWS)]
WARM = ["--warm-start", Z + "tdnn_float.pt"]
# the lane-balanced sparsity that the default hardware folding uses (lanes per layer)
SPARSE = ["--sparsity", "0.5,0.75,0.875,0.5", "--lanes", "32,32,16,5",
          "--threads", "1"]
# distillation from the float model in the pruning fine-tunes
TEACHER = ["--teacher", Z + "tdnn_float.pt"]

# name, weight bits, activation bits, the command that makes it, its parent
MODELS = [
    ("tdnn-float", None, None, ["train", "--quiet", "-o", Z + "tdnn_float.pt", *ARCH], None),
    ("tdnn-w1a1", 1, 1, ["train", "--quiet", "-o", Z + "tdnn_w1a1.pt", *ARCH, "--wbits", "1",
                         "--abits", "1", *WARM], "tdnn-float"),
    ("tdnn-w2a2", 2, 2, ["train", "--quiet", "-o", Z + "tdnn_w2a2.pt", *ARCH, "--wbits", "2",
                         "--abits", "2", *WARM], "tdnn-float"),
    ("tdnn-w4a4", 4, 4, ["train", "--quiet", "-o", Z + "tdnn_w4a4.pt", *ARCH, "--wbits", "4",
                         "--abits", "4", *WARM], "tdnn-float"),
    # the pruning fine-tunes are distilled from the float model's logits; binary networks
    # recover more slowly from pruning: a longer fine-tune at a higher learning rate
    ("tdnn-w1a1-sparse", 1, 1, ["compress", Z + "tdnn_w1a1.pt", "-o",
                                Z + "tdnn_w1a1_sparse.pt", *SPARSE, "--epochs", "24",
                                "--lr", "0.003", *TEACHER, "--quiet"], "tdnn-w1a1"),
    # the same sparsity per layer without lane balance: each layer keeps its largest synapses
    # wherever they are, which a binary network needs (lane balance costs it 0.5-0.7 points)
    ("tdnn-w1a1-unstructured", 1, 1, ["compress", Z + "tdnn_w1a1.pt", "-o",
                                      Z + "tdnn_w1a1_unstructured.pt", "--sparsity",
                                      "0.5,0.75,0.875,0.5", "--threads", "1", "--epochs", "24",
                                      "--lr", "0.003", *TEACHER, "--quiet"], "tdnn-w1a1"),
    ("tdnn-w2a2-sparse", 2, 2, ["compress", Z + "tdnn_w2a2.pt", "-o",
                                Z + "tdnn_w2a2_sparse.pt", *SPARSE, "--epochs", "20", *TEACHER,
                                "--quiet"], "tdnn-w2a2"),
    # 4-bit pixels: a cheaper first layer and fewer events (the throughput preset)
    ("tdnn-w2a2-sparse-in4", 2, 2, ["compress", Z + "tdnn_w2a2.pt", "-o",
                                    Z + "tdnn_w2a2_sparse_in4.pt", *SPARSE, "--epochs", "20",
                                    "--input-bits", "4", *TEACHER, "--quiet"], "tdnn-w2a2"),
    # binary pixels: the cheapest first layer and the fewest events (the fastest compile of
    # the throughput-first preset)
    ("tdnn-w2a2-sparse-in1", 2, 2, ["compress", Z + "tdnn_w2a2.pt", "-o",
                                    Z + "tdnn_w2a2_sparse_in1.pt", *SPARSE, "--epochs", "20",
                                    "--input-bits", "1", *TEACHER, "--quiet"], "tdnn-w2a2"),
]
# a second TDNN for throughput: layer 0 takes 4 rows with stride 2 (taps 4,3,3, strides 2,2,1:
# 28 -> 13 -> 6 -> 4 frames), which halves the frames every later layer handles and the taps
# through which a pixel reaches an output; it reads all 28 rows
S2_ROWS = 28
ARCH_S2 = ["--channels", "128,128,128", "--taps", "4,3,3", "--strides", "2,2,1",
           "--rows", str(S2_ROWS)]
TEACHER_S2 = ["--teacher", Z + "tdnn_s2_float.pt"]
MODELS += [
    ("tdnn-s2-float", None, None, ["train", "--quiet", "-o", Z + "tdnn_s2_float.pt", *ARCH_S2],
     None),
    ("tdnn-s2-w2a2", 2, 2, ["train", "--quiet", "-o", Z + "tdnn_s2_w2a2.pt", *ARCH_S2,
                            "--wbits", "2", "--abits", "2", "--warm-start",
                            Z + "tdnn_s2_float.pt"], "tdnn-s2-float"),
    # binary pixels: with the packed pixel stream, the throughput-first preset
    ("tdnn-s2-w2a2-sparse-in1", 2, 2, ["compress", Z + "tdnn_s2_w2a2.pt", "-o",
                                       Z + "tdnn_s2_w2a2_sparse_in1.pt", "--sparsity",
                                       "0.5,0.75,0.875,0.5", "--lanes", "32,32,16,5",
                                       "--threads", "2", "--epochs", "20", "--input-bits", "1",
                                       *TEACHER_S2, "--quiet"], "tdnn-s2-w2a2"),
]
HARDWARE_DEFAULT = "tdnn-w2a2-sparse-in4"


def recipe_rows(name: str) -> int:
    """The image rows the first command of ``name``'s chain declares (``--rows``)."""
    spec = {m[0]: m for m in MODELS}[name]
    while spec[4]:
        spec = {m[0]: m for m in MODELS}[spec[4]]
    cmd = spec[3]
    return int(cmd[cmd.index("--rows") + 1])


def chain(name: str) -> list[str]:
    """The commands that reproduce ``name`` from scratch, parents first."""
    spec = {m[0]: m for m in MODELS}[name]
    parent = spec[4]
    return (chain(parent) if parent else []) + [shlex.join(["pynq-neuro", *spec[3]])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="make only these models")
    parser.add_argument("--index-only", action="store_true", help="only rewrite zoo.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pynq_neuro.evaluation import evaluate
    from pynq_neuro.models import ModelConfig
    from pynq_neuro.train import load_checkpoint

    exe = Path(sys.executable).parent / "pynq-neuro"
    for name, *_, cmd, _parent in MODELS:
        if args.index_only or (args.only and name not in args.only):
            continue
        print("$", shlex.join(["pynq-neuro", *cmd]), flush=True)
        subprocess.run([str(exe), *cmd], cwd=ROOT, check=True)

    entries = []
    for name, wbits, abits, cmd, parent in MODELS:
        file = name.replace("-", "_")
        if not (ZOO / f"{file}.pt").exists():
            continue
        ckpt = load_checkpoint(ZOO / f"{file}.pt")
        rows = ModelConfig.from_dict(ckpt["model_config"]).rows
        if rows != recipe_rows(name):
            raise SystemExit(f"{name} reads {rows} image rows, its recipe {recipe_rows(name)}")
        r = evaluate(str(ZOO / f"{file}.pt"))
        entries.append({
            "name": name,
            "family": ckpt["model_config"]["family"],
            "wbits": wbits,
            "abits": abits,
            "checkpoint": f"{file}.pt",
            "network": f"{file}.npz" if wbits is not None else None,
            "accuracy": r["accuracy"],
            "engine": r["engine"],
            "synapses": r["synapses"],
            "rows": rows,
            "train_seconds": ckpt["metrics"]["train_seconds"],
            "parent": parent,
            "hardware_default": name == HARDWARE_DEFAULT,
            "commands": chain(name),
        })
        print(f"{name}: {100 * r['accuracy']:.2f} % ({r['engine']}, {r['synapses']} synapses)")
    atomic_write_text(ZOO / "zoo.json", json.dumps({"models": entries}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
