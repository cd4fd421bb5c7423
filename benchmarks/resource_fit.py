"""The compiler's resource model against Yosys, row by row of ``hardware.json``.

For every row of ``benchmarks/results/hardware.json`` (written by ``benchmarks/hardware.py``):
the zoo model on the folding the row records, the resource model's LUT, FF and BRAM36
(``pynq_neuro/compiler/resources.py``) next to the Yosys figures of that row, and their
ratio. Yosys is not run: the measured figures are read from the file. With ``--search`` the
folding is chosen again as ``pynq-neuro compile`` does for the row (its LUT budget and
throughput target, 1,000 sample digits of MNIST), with the resource model as it is now.

Usage: ``python benchmarks/resource_fit.py [--results PATH] [--search] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hardware import model_options  # noqa: E402
from pynq_neuro.compiler.mapping import Folding, map_layer  # noqa: E402
from pynq_neuro.compiler.resources import Budget, Resources, network_resources  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "hardware.json"
DEFAULT_TARGET = 250_000.0   # digits/s: the compile's default target
SAMPLE_DIGITS = 1000         # the compile's default sample


def row_options(model: str) -> tuple[str, Budget, float, bool]:
    """``NAME[@LUTS[:TARGET]][+packed]`` (benchmarks/hardware.py) as the zoo name, the budget,
    the throughput target and the packed pixel stream of its compile."""
    name, luts, target, packed = model_options(model)
    budget = Budget(luts=int(luts)) if luts else Budget()
    return name, budget, float(target) if target else DEFAULT_TARGET, packed


def model_total(net, foldings: list[Folding]) -> Resources:
    """The resource model's total for ``net`` on ``foldings``."""
    maps = [map_layer(net, i, f, pack=False) for i, f in enumerate(foldings)]
    res = network_resources(maps, net.input_bits)
    return sum(res[1:], res[0])


def searched_foldings(net, name: str, budget: Budget, target: float,
                      packed: bool = False) -> list[Folding]:
    """The folding ``pynq-neuro compile NAME --luts ... --target ... [--packed-pixels]``
    picks."""
    from pynq_neuro.compiler.compile import sample_data
    from pynq_neuro.compiler.folding import choose_foldings
    from pynq_neuro.compiler.limits import beats_per_row

    images = sample_data(name).sample(SAMPLE_DIGITS).images
    return choose_foldings(net, images, target, budget,
                           beats_per_row=beats_per_row(net.input_bits, packed))[0]


def fit_rows(record: dict[str, Any], search: bool = False) -> list[dict[str, Any]]:
    """One entry per measured row: folding, model and Yosys figures and their ratios."""
    from pynq_neuro import zoo

    out = []
    for row in record.get("models", []):
        if row.get("lut") is None:
            continue
        name, budget, target, packed = row_options(row["model"])
        net = zoo.load_network(name)
        folds = [Folding(int(g), int(p)) for g, p in row["folding"]]
        entry: dict[str, Any] = {"model": row["model"], "folding": row["folding"]}
        total = model_total(net, folds)
        entry["model_estimate"] = total.to_dict()
        entry["yosys"] = {"luts": row["lut"], "ffs": row["ff"], "bram36": row["bram36"]}
        entry["ratio"] = {k: (total.to_dict()[k] / m if m else None)
                          for k, m in entry["yosys"].items()}
        if search:
            chosen = searched_foldings(net, name, budget, target, packed)
            entry["searched_folding"] = [[f.groups, f.lanes] for f in chosen]
            entry["searched_estimate"] = model_total(net, chosen).to_dict()
        out.append(entry)
    return out


def format_rows(rows: list[dict[str, Any]]) -> str:
    def ratio(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [f"{'model':36s} {'folding':22s} {'LUT model/yosys':>20s} {'ratio':>6s} "
             f"{'FF model/yosys':>18s} {'ratio':>6s} {'BRAM36':>12s} {'ratio':>6s}"]
    for r in rows:
        m, y, q = r["model_estimate"], r["yosys"], r["ratio"]
        fold = ",".join(f"{g}x{p}" for g, p in r["folding"])
        lines.append(f"{r['model']:36s} {fold:22s} {m['luts']:>9,}/{y['luts']:<10,} "
                     f"{ratio(q['luts']):>6s} {m['ffs']:>8,}/{y['ffs']:<9,} {ratio(q['ffs']):>6s} "
                     f"{m['bram36']:>5.1f}/{y['bram36']:<6.1f} {ratio(q['bram36']):>6s}")
        if "searched_folding" in r:
            sf = ",".join(f"{g}x{p}" for g, p in r["searched_folding"])
            lines.append(f"{'':36s} search: {sf} ({r['searched_estimate']['luts']:,} LUTs "
                         f"by the model)")
    if rows:
        for key in ("luts", "ffs", "bram36"):
            vals = [r["ratio"][key] for r in rows if r["ratio"][key] is not None]
            lines.append(f"{key}: model/yosys {min(vals):.3f} .. {max(vals):.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS, help="hardware.json to read")
    ap.add_argument("--search", action="store_true",
                    help="also choose each row's folding again with the current model")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    try:
        import torch  # noqa: F401  (only to pin its threads when it is installed)

        torch.set_num_threads(1)
    except ImportError:
        pass
    rows = fit_rows(json.loads(args.results.read_text()), search=args.search)
    print(json.dumps(rows, indent=1) if args.json else format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
