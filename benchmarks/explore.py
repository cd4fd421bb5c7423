"""Design-space exploration benchmark: ``pynq-neuro explore`` over the default space.

Runs an exploration (24 trials by default: NSGA-II on accuracy, memory bits, digits/s and
LUTs; each trial trains on the first 20,000 training digits: 1 full-precision epoch, 3
quantization-aware epochs and 1 after pruning; accuracy on the full test set; the front's
first 4 members verified by the sharded RTL regression and Yosys) in ``build/explore-bench/run`` on a local
Ray, and writes ``benchmarks/results/explore.json``: the settings, the counts, the elapsed
time, every trial's objectives and the Pareto front with its measured figures, next to the
plot ``explore.png``.

Usage: ``python benchmarks/explore.py [--trials N] [--cpus N] [--resume] [--speedup K]``
(about an hour on 2 cores: each trial trains a network). ``--speedup K`` first runs the same K trials
(one NSGA-II generation, so the sampled designs do not depend on completion order) on a local
Ray of 1 CPU and of 2 CPUs, one torch thread per trial, without the second pass, and records
both wall times, the speed-up and whether the two runs trained the same designs. ``--smoke`` runs 2 trials of tiny networks on a few hundred
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
    "training": {"warm_epochs": 1, "epochs": 3, "finetune_epochs": 1, "train_images": 20_000,
                 "batch_size": 128, "lr": None},
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


SPEEDUP_TRAINING = {"warm_epochs": 1, "epochs": 1, "finetune_epochs": 1, "train_images": 20_000,
                    "batch_size": 128, "lr": None}


def speedup(k: int, images: int, workers: tuple[int, ...] = (1, 2)) -> dict:
    """Wall time of the same ``k`` trials on local Rays of 1 and 2 CPUs: the whole command
    (Ray's start, the trials, the record and the plot) and the trials alone (first start to
    last end). The load average beside each run shows what else the machine was doing."""
    from pynq_neuro.cli import main as cli

    space_file = WORK / "speedup-space.json"
    atomic_write_text(space_file, json.dumps({"training": SPEEDUP_TRAINING}))
    runs = {}
    for cpus in workers:
        folder = WORK / f"speedup-{cpus}"
        if folder.exists():
            shutil.rmtree(folder)
        load_before = os.getloadavg()[0]
        status = cli(["explore", str(folder), "--space", str(space_file), "--cpus", str(cpus),
                      "--trials", str(k), "--population", str(k), "--images", str(images),
                      "--no-rtl", "--no-estimate"])
        if status != 0:
            raise SystemExit(f"speed-up run on {cpus} CPU(s) failed with status {status}")
        rec = json.loads((folder / "explore.json").read_text())
        ends = [t["started"] + float(t.get("seconds") or 0) for t in rec["trials"]]
        runs[cpus] = {
            "elapsed_seconds": rec["elapsed_seconds"], "counts": rec["counts"],
            "trials_wall_seconds": max(ends) - min(t["started"] for t in rec["trials"]),
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
            "trial_seconds": sum(float(t.get("seconds") or 0) for t in rec["trials"]),
            "designs": sorted((t.get("design") or {}).get("description", "")
                              for t in rec["trials"])}
    one, two = runs[workers[0]], runs[workers[-1]]
    return {"trials": k, "test_images": images, "training": SPEEDUP_TRAINING,
            "threads_per_trial": 1,
            "runs": {str(c): {k2: v for k2, v in r.items() if k2 != "designs"}
                     for c, r in runs.items()},
            "designs": one["designs"], "same_designs": one["designs"] == two["designs"],
            "speedup": one["elapsed_seconds"] / two["elapsed_seconds"],
            "speedup_trials": one["trials_wall_seconds"] / two["trials_wall_seconds"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--cpus", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--smoke", action="store_true", help="2 tiny trials (checks the script)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run")
    ap.add_argument("--speedup", type=int, metavar="K",
                    help="also time the same K trials on 1 and on 2 CPUs (recorded in the results)")
    ap.add_argument("--speedup-only", action="store_true",
                    help="with --speedup: stop after the timing (the exploration reads it later)")
    ap.add_argument("--speedup-images", type=int, default=2000,
                    help="test digits of each speed-up trial's accuracy (default 2000)")
    ap.add_argument("--front-limit", type=int, default=4,
                    help="front members the second pass verifies (default 4)")
    ap.add_argument("--output", help="summary JSON (default: benchmarks/results/explore.json; "
                                     "with --smoke build/explore-bench/smoke.json)")
    args = ap.parse_args(argv)
    from pynq_neuro.cli import main as cli

    name = "smoke" if args.smoke else "run"
    folder = WORK / name
    WORK.mkdir(parents=True, exist_ok=True)
    timing_file = WORK / "speedup.json"
    if args.speedup:
        atomic_write_text(timing_file, json.dumps(speedup(args.speedup, args.speedup_images),
                                                  indent=1) + "\n")
        if args.speedup_only:
            print(f"wrote {timing_file}")
            return 0
    space_file = WORK / f"{name}-space.json"
    atomic_write_text(space_file, json.dumps(SMOKE_SPACE if args.smoke else SPACE))
    if args.resume:
        cmd = ["explore", "--resume", str(folder)]
    else:
        if folder.exists():
            shutil.rmtree(folder)
        cmd = ["explore", str(folder), "--space", str(space_file), "--cpus", str(args.cpus),
               "--trials", str(2 if args.smoke else args.trials)]
        if not args.smoke:
            cmd += ["--front-limit", str(args.front_limit)]
        if args.smoke:
            cmd += ["--images", "200", "--sample-digits", "100", "--rtl-images", "24",
                    "--shards", "2", "--front-limit", "1", "--estimate-timeout", "600"]
    status = cli(cmd)
    if status != 0:
        return status
    out = Path(args.output) if args.output else (
        WORK / "smoke.json" if args.smoke else RESULTS / "explore.json")
    record = summary(folder)
    if timing_file.exists() and not args.smoke:
        record["speedup"] = json.loads(timing_file.read_text())
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    plot = folder / "pareto.png"
    atomic_write_bytes(out.with_suffix(".png"), plot.read_bytes())
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
