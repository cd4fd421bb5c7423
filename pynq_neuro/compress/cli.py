"""The ``compress`` subcommand: factorization passes and fine-tunes on a trained checkpoint.

``COMMAND`` (:class:`pynq_neuro.cli_core.Command`): ``add_parser(subparsers)`` adds the
subcommand to an ``argparse`` parser; ``run(args)`` executes it (errors are raised for
:func:`pynq_neuro.cli_core.guard` to report; numeric options are checked by the parser).
Low-rank passes (``--low-rank LAYER:RANK``, repeatable) run first, in the order given, then
pruning (``--budget`` or ``--sparsity``). ``--teacher`` distils every fine-tune from a trained
model (``--distill-weight``, ``--temperature``; :mod:`pynq_neuro.quant.distill`) and
``--input-bits`` reduces the pixels before the first fine-tune.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from typing import TYPE_CHECKING, Any

from ..cli_core import (Command, add_max_shift, count, natural, non_negative, positive, seed,
                        threads)

if TYPE_CHECKING:
    from ..quant.distill import DistillConfig

DISTILL_WEIGHT = 0.7  # share of the teacher term in the loss
TEMPERATURE = 4.0

DESCRIPTION = "factorize a trained checkpoint (low rank, pruning) with short fine-tunes"


def _low_rank_spec(text: str) -> tuple[int, int]:
    try:
        layer, rank = (int(v) for v in text.split(":"))
        if layer < 0 or rank < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LAYER:RANK (layer >= 0, rank >= 1), e.g. 1:16, got {text!r}") from None
    return layer, rank


def _sparsity(text: str) -> float | list[float]:
    """S or S1,S2,...: shares of weights to prune, each in [0, 1)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not (math.isfinite(v) and 0 <= v < 1) for v in values):
        raise argparse.ArgumentTypeError(
            f"expected S or S1,S2,... (finite numbers >= 0 and < 1), got {text!r}")
    return values[0] if len(values) == 1 and "," not in text else values


def _lanes(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
        if any(v < 1 for v in values):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected lanes per layer (integers >= 1) like 32,32,16,5; got {text!r}") from None
    return values


def _input_bits(text: str) -> int:
    try:
        bits = int(text)
        if not 1 <= bits <= 8:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected pixel bits 1..8, got {text!r}") from None
    return bits


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    return value


def distill_from_args(args: argparse.Namespace) -> DistillConfig | None:
    """The distillation settings of the options (``None`` without ``--teacher``)."""
    if args.teacher is None:
        if args.distill_weight is not None or args.temperature is not None:
            raise ValueError("--distill-weight and --temperature need --teacher")
        return None
    from ..quant.distill import DistillConfig

    return DistillConfig(
        args.teacher, DISTILL_WEIGHT if args.distill_weight is None else args.distill_weight,
        TEMPERATURE if args.temperature is None else args.temperature)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``compress`` subcommand; returns its parser."""
    p = subparsers.add_parser("compress", help=DESCRIPTION, description=DESCRIPTION)
    p.add_argument("checkpoint", help="trained checkpoint (.pt)")
    p.add_argument("-o", "--output", required=True,
                   help="checkpoint to write (.pt); a quantized one also gets its .npz")
    g = p.add_argument_group("passes (low rank first, then pruning)")
    target = g.add_mutually_exclusive_group()
    target.add_argument("--budget", type=count, help="global synapse budget over all layers")
    target.add_argument("--sparsity", type=_sparsity,
                        help="share of weights to prune: S, or S1,S2,... per layer incl. the "
                             "classifier")
    g.add_argument("--lanes", type=_lanes,
                   help="lane-balanced pruning for these lanes per layer (with --sparsity)")
    g.add_argument("--approximate", action="store_true",
                   help="lane-balanced pruning: take the nearest sparsity the lanes can reach "
                        "(with a warning) instead of refusing an unreachable one")
    g.add_argument("--min-per-unit", type=natural, default=1,
                   help="synapses every unit keeps at least (default 1)")
    g.add_argument("--low-rank", type=_low_rank_spec, action="append", default=[],
                   metavar="LAYER:RANK",
                   help="factorize a layer (index; the classifier is the last) with this rank; "
                        "repeatable")
    g.add_argument("--input-bits", type=_input_bits,
                   help="keep this many bits of every pixel (1..8) from the first fine-tune on")
    g = p.add_argument_group("fine-tune")
    g.add_argument("--epochs", type=natural, help="fine-tune epochs per pass (default 12)")
    g.add_argument("--lr", type=positive,
                   help="peak learning rate (default: the quantization-aware one)")
    g.add_argument("--weight-decay", type=non_negative,
                   help="Adam weight decay (default: the quantization-aware one)")
    g.add_argument("--batch-size", type=count, help="digits per step (default: that of train)")
    g.add_argument("--threads", type=threads, default=2, help="torch threads")
    add_max_shift(g)
    g.add_argument("--train-images", type=count, help="use only the first N training digits")
    g.add_argument("--seed", type=seed, default=0)
    g = p.add_argument_group("distillation (fine-tune against a teacher's logits)")
    g.add_argument("--teacher", help="teacher checkpoint (.pt), e.g. the float model")
    g.add_argument("--distill-weight", type=_unit_interval,
                   help=f"share of the teacher term in the loss, 0..1 (default {DISTILL_WEIGHT:g})")
    g.add_argument("--temperature", type=positive,
                   help=f"softening of the logits (default {TEMPERATURE:g})")
    p.add_argument("--data-dir", help="MNIST directory (default: search order of the loader)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the passes report as JSON")
    return p


def passes_from_args(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The pass list of the command-line options."""
    passes: list[dict[str, Any]] = [
        {"pass": "low_rank", "layer": layer, "rank": rank} for layer, rank in args.low_rank
    ]
    if args.budget is not None:
        passes.append({"pass": "prune", "budget": args.budget, "min_per_unit": args.min_per_unit})
    elif args.sparsity is not None and args.lanes is not None:
        spec = {"pass": "prune", "sparsity": args.sparsity, "lanes": args.lanes}
        if args.approximate:
            spec["approximate"] = True
        passes.append(spec)
    elif args.sparsity is not None:
        passes.append({"pass": "prune", "sparsity": args.sparsity,
                       "min_per_unit": args.min_per_unit})
    if args.approximate and args.lanes is None:
        raise ValueError("--approximate applies to lane-balanced pruning (--lanes) only")
    if args.lanes is not None and args.sparsity is None:
        raise ValueError("--lanes (lane-balanced pruning) needs --sparsity")
    if not passes:
        raise ValueError("nothing to do: give --budget, --sparsity or --low-rank")
    return passes


def command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces ``args``."""
    cmd = ["pynq-neuro", "compress", args.checkpoint, "-o", args.output]
    for layer, rank in args.low_rank:
        cmd += ["--low-rank", f"{layer}:{rank}"]
    if args.budget is not None:
        cmd += ["--budget", str(args.budget)]
    if args.sparsity is not None:
        s = args.sparsity
        cmd += ["--sparsity", ",".join(map(str, s)) if isinstance(s, list) else str(s)]
    if args.lanes is not None:
        cmd += ["--lanes", ",".join(map(str, args.lanes))]
    if args.approximate:
        cmd += ["--approximate"]
    if args.min_per_unit != 1:
        cmd += ["--min-per-unit", str(args.min_per_unit)]
    for opt in ("input_bits", "epochs", "lr", "weight_decay", "batch_size", "max_shift",
                "train_images", "data_dir"):
        if getattr(args, opt) is not None:
            cmd += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    distill = distill_from_args(args)
    if distill is not None:
        cmd += ["--teacher", distill.teacher, "--distill-weight", f"{distill.weight:g}",
                "--temperature", f"{distill.temperature:g}"]
    cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
    return shlex.join(cmd)


def _shape(row: dict[str, Any]) -> str:
    return "x".join(map(str, row["shape"]))


def format_pass(entry: dict[str, Any]) -> str:
    """A per-layer table of the connections before and after one pass."""
    before = {r["name"]: r for r in entry["before"]}
    w = max(len(r["name"]) + len(_shape(r)) for r in [*entry["before"], *entry["after"]]) + 2
    lines = [f"  {'before':<{w}}{'kept':>8}  | {'after':<{w}}{'kept':>8}{'of':>8}"]
    shown: set[str] = set()
    for row, origin in zip(entry["after"], entry["origin"]):
        left = " " * (w + 8)
        if origin not in shown:
            b = before[origin]
            left = f"{b['name'] + ' ' + _shape(b):<{w}}{b['kept']:>8}"
            shown.add(origin)
        lines.append(f"  {left}  | {row['name'] + ' ' + _shape(row):<{w}}{row['kept']:>8}"
                     f"{row['total']:>8}")
    lines.append(f"  {'total':<{w}}{entry['synapses_before']:>8}  | {'total':<{w}}"
                 f"{entry['synapses_after']:>8}")
    return "\n".join(lines)


def format_report(passes: list[dict[str, Any]]) -> str:
    out = []
    for n, entry in enumerate(passes):
        params = " ".join(f"{k}={v}" for k, v in entry["params"].items())
        out.append(f"pass {n + 1}: {entry['pass']} {params} ({entry['epochs']} epochs, "
                   f"lr {entry['lr']:g}): test accuracy {100 * entry['accuracy']:.2f} %, "
                   f"{entry['seconds']:.0f} s")
        out.append(format_pass(entry))
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Execute the ``compress`` subcommand."""
    from ..train import check_output_path
    from .factorize import DEFAULT_EPOCHS, compress

    passes = passes_from_args(args)
    distill = distill_from_args(args)
    check_output_path(args.output, network=True)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    ckpt = compress(
        args.checkpoint, passes,
        finetune_epochs=DEFAULT_EPOCHS if args.epochs is None else args.epochs, lr=args.lr,
        weight_decay=args.weight_decay, batch_size=args.batch_size,
        threads=args.threads, train_images=args.train_images, seed=args.seed,
        max_shift=args.max_shift, data_dir=args.data_dir, output=args.output, log=log,
        progress=not args.quiet, command=command_line(args), distill=distill,
        input_bits=args.input_bits,
    )
    if args.json:
        print(json.dumps(ckpt["passes"], indent=2))
        return 0
    print(format_report(ckpt["passes"]))
    src = ckpt["source"]
    if src.get("accuracy") is not None:
        print(f"source {src['synapses']} synapses, accuracy {100 * src['accuracy']:.2f} %; "
              f"result {ckpt['metrics']['synapses']} synapses, accuracy "
              f"{100 * ckpt['metrics']['test_accuracy']:.2f} %")
    return 0


COMMAND = Command("compress", add_parser, run)
