"""Train the shipped model zoo from scratch and record how each model was made.

Runs the ``pynq-neuro train`` commands below in order (float warm start first), evaluates every
model on the full MNIST test set (integer models with the golden model) and writes
``pynq_neuro/zoo/zoo.json``. Usage: ``python scripts/build_zoo.py [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ZOO = Path(__file__).resolve().parents[1] / "pynq_neuro" / "zoo"

MODELS = [
    ("tdnn-float", None, None),
    ("tdnn-w1a1", 1, 1),
    ("tdnn-w2a2", 2, 2),
    ("tdnn-w4a4", 4, 4),
]


def command(name: str, wbits: int | None, abits: int | None) -> list[str]:
    file = name.replace("-", "_") + ".pt"
    cmd = ["pynq-neuro", "train", "--quiet", "-o", f"pynq_neuro/zoo/{file}"]
    if wbits is not None:
        cmd += ["--wbits", str(wbits), "--abits", str(abits),
                "--warm-start", "pynq_neuro/zoo/tdnn_float.pt"]
    return cmd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="train only these models")
    args = parser.parse_args()
    sys.path.insert(0, str(ZOO.parents[1]))
    from pynq_neuro.cli import evaluate
    from pynq_neuro.train import load_checkpoint

    root = ZOO.parents[1]
    bin_dir = Path(sys.executable).parent
    for name, wbits, abits in MODELS:
        if args.only and name not in args.only:
            continue
        cmd = command(name, wbits, abits)
        print("$", shlex.join(cmd), flush=True)
        subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], cwd=root, check=True)

    entries = []
    for name, wbits, abits in MODELS:
        file = name.replace("-", "_")
        if not (ZOO / f"{file}.pt").exists():
            continue
        ckpt = load_checkpoint(ZOO / f"{file}.pt")
        commands = [shlex.join(command(n, w, a)) for n, w, a in MODELS
                    if n == "tdnn-float" and wbits is not None] + [ckpt["command"]]
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
            "train_seconds": ckpt["metrics"]["train_seconds"],
            "warm_start": None if wbits is None else "tdnn-float",
            "commands": commands,
        })
        print(f"{name}: {100 * r['accuracy']:.2f} % ({r['engine']})")
    (ZOO / "zoo.json").write_text(json.dumps({"models": entries}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
