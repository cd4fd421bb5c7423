"""Design-space exploration benchmark: ``pynq-neuro explore`` over the default space.

Runs an exploration (24 trials by default: NSGA-II on accuracy, memory bits, digits/s and
LUTs; 3 training epochs on all 60,000 digits, accuracy on the full test set; the front
verified by the sharded RTL regression and Yosys) in ``build/explore-bench/run`` on a local
Ray, and writes ``benchmarks/results/explore.json``: the settings, the counts, the elapsed
time, every trial's objectives and the Pareto front with its measured figures, next to the
plot ``explore.png``.

Usage: ``python benchmarks/explore.py [--trials N] [--cpus N] [--resume]`` (hours on 2 cores:
each trial trains a network). ``--smoke`` runs 2 trials of tiny networks on a few hundred
digits (a minute or two) into ``build/explore-bench/smoke`` and writes its summary to
``--output`` (default ``build/explore-bench/smoke.json``), leaving the results alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from pynq_neuro.fileio import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "build" / "explore-bench"

SPACE = {   # the default space with a longer training
    "training": {"epochs": 3, "finetune_epochs": 1, "train_images": None, "batch_size": 128,
                 "lr": None},
}
SMOKE_SPACE = {
    "layers": 2, "widths": [8, 16], "taps": 3, "strides": 2, "wbits": [1, 2], "abits": 2,
    "input_bits": 8, "sparsity": [0.0, 0.5], "lanes": [4], "luts": [40000],
    "training": {"epochs": 1, "finetune_epochs": 0, "train_images": 300},
}


def summary(folder: Path) -> dict:
    """The benchmark's record: the exploration record without per-trial bulk."""
    rec = json.loads((folder / "explore.json").read_text())
    keep = ("id", "status", "seconds", "objectives", "error")
    return {
        "benchmark": "pynq-neuro explore",
        "settings": rec["settings"], "objectives": rec["objectives"],
        "counts": rec["counts"], "elapsed_seconds": rec["elapsed_seconds"],
        "cpus": os.cpu_count(),
        "trials": [{**{k: t.get(k) for k in keep},
                    "design": (t.get("design") or {}).get("description")}
                   for t in rec["trials"]],
        "front": [{"id": f["id"], "design": f.get("description"), "figures": f["source"],
                   "final": f["final"], "modelled": {k: f["metrics"][k] for k in f["final"]},
                   "rtl": f.get("rtl"), "estimate": f.get("estimate"),
                   **{k: f[k] for k in ("rtl_error", "estimate_error") if k in f}}
                  for f in rec["front"]],
        "zoo": rec["zoo"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--cpus", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--smoke", action="store_true", help="2 tiny trials (checks the script)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run")
    ap.add_argument("--output", help="summary JSON (default: benchmarks/results/explore.json; "
                                     "with --smoke build/explore-bench/smoke.json)")
    args = ap.parse_args(argv)
    from pynq_neuro.cli import main as cli

    name = "smoke" if args.smoke else "run"
    folder = WORK / name
    WORK.mkdir(parents=True, exist_ok=True)
    space_file = WORK / f"{name}-space.json"
    atomic_write_text(space_file, json.dumps(SMOKE_SPACE if args.smoke else SPACE))
    if args.resume:
        cmd = ["explore", "--resume", str(folder)]
    else:
        if folder.exists():
            shutil.rmtree(folder)
        cmd = ["explore", str(folder), "--space", str(space_file), "--cpus", str(args.cpus),
               "--trials", str(2 if args.smoke else args.trials)]
        if args.smoke:
            cmd += ["--images", "200", "--sample-digits", "100", "--rtl-images", "24",
                    "--shards", "2", "--front-limit", "1", "--estimate-timeout", "600"]
    status = cli(cmd)
    if status != 0:
        return status
    out = Path(args.output) if args.output else (
        WORK / "smoke.json" if args.smoke else RESULTS / "explore.json")
    atomic_write_text(out, json.dumps(summary(folder), indent=1) + "\n")
    plot = folder / "pareto.png"
    atomic_write_bytes(out.with_suffix(".png"), plot.read_bytes())
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
