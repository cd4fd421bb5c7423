"""The ``pynq-neuro`` command line: train, eval, compile, inspect, classify, compress, explore,
verify, estimate, selftest, zoo and demo.

Evaluation of an integer network (``.npz`` or a zoo name) needs numpy only; training and
evaluation of checkpoints import torch on demand.

Each subcommand is a :class:`~pynq_neuro.cli_core.Command` (``add_parser``, ``run``);
:func:`commands` lists them: the ones below, ``compress`` (:mod:`pynq_neuro.compress.cli`),
``explore`` (:mod:`pynq_neuro.explore.cli`),
``verify`` / ``estimate`` (:mod:`pynq_neuro.rtl.cli`) and ``selftest``
(:mod:`pynq_neuro.driver.cli`). Those modules build on
:mod:`pynq_neuro.cli_core` and never import this one.

Exit status and error output (the same for every subcommand):

* 0: done. 1: a check ran and failed (``verify``: the core disagrees with the golden model;
  ``estimate``: the core does not fit; ``zoo``: no model shipped).
* 2: an error, reported as one line ``pynq-neuro: error: ...`` on stderr and no traceback:
  unreadable, missing or corrupt files (artifacts, ``.npz``, ``.pt``, datasets), data
  other than the dataset a network records (without ``--other-data``), operating-system
  errors (permissions, symbolic-link loops, a folder where a file belongs), networks the
  compiler or the core refuses. An unexpected exception (a bug) is also status 2, with its
  type in the line and the hint to set ``PYNQ_NEURO_DEBUG=1``, which prints the traceback
  (of every error). Bad arguments are refused by the parser before anything runs: it prints
  the usage and one line ``pynq-neuro CMD: error: argument --NAME: ...``, status 2.
* 130: interrupted (Ctrl-C), one line ``pynq-neuro: interrupted``.
* 141: standard output was closed early (``pynq-neuro ... | head -1``); nothing more is printed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from . import cli_core
from .cli_core import (  # noqa: F401 - the exit statuses and the debug switch, re-exported
    DEBUG_ENV, EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, PROG, Command, add_max_shift,
    bits, count, guard, int_list, int_range, natural, non_negative, positive, run_command, seed,
    threads)
from .data.datasets import add_data_options, data_options
from .evaluation import evaluate

DESCRIPTION = ("pynq-neuro: train and quantize networks, compile them onto the event-driven core, "
               "verify the Verilog against the golden model and run them on the board")


def _add_train(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a float or quantized (UniQ) model")
    p.add_argument("-o", "--output", required=True, help="checkpoint to write (.pt)")
    g = p.add_argument_group("model")
    g.add_argument("--family", choices=("tdnn", "mlp"), default="tdnn")
    g.add_argument("--channels", type=int_list(1), default=(128, 128, 128),
                   help="hidden widths (default 128,128,128)")
    g.add_argument("--taps", type=int_list(1),
                   help="TDNN taps per hidden layer (default 3,4,4: all 28 rows)")
    g.add_argument("--strides", type=int_list(1),
                   help="TDNN strides per hidden layer (default 1,2,2)")
    g.add_argument("--rows", type=int_range(1, 28),
                   help="image rows the TDNN reads, top down (default: what the taps and "
                        "strides read; refused when they would drop some of these rows)")
    g.add_argument("--wbits", type=bits, help="weight bits 1..8 (omit for float)")
    g.add_argument("--abits", type=bits, help="activation bits 1..8 (omit for float)")
    g.add_argument("--input-bits", type=bits, default=8, help="pixel bits kept (default 8)")
    g.add_argument("--per-tensor", action="store_true", help="one weight step per layer")
    g = p.add_argument_group("optimisation (defaults depend on the bit widths)")
    g.add_argument("--epochs", type=count)
    g.add_argument("--lr", type=positive)
    g.add_argument("--weight-decay", type=non_negative)
    g.add_argument("--batch-size", type=count, default=128)
    add_max_shift(g)
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--threads", type=threads, default=2, help="torch threads")
    g.add_argument("--warm-start", help="float checkpoint to start quantization-aware training")
    g.add_argument("--train-images", type=count, help="use only the first N training digits")
    add_data_options(p, other_data=False, default="MNIST")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _add_eval(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="accuracy of a model on the test split of its dataset")
    p.add_argument("model", help="zoo name, checkpoint (.pt), integer network (.npz) or "
                                 "artifact folder")
    p.add_argument("--images", type=count, help="evaluate only the first N test images")
    add_data_options(p)
    p.add_argument("--check-torch", action="store_true",
                   help="also run the fake-quantized torch model and count disagreements")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _foldings(text: str):
    from .compiler.mapping import Folding

    try:
        folds = [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]
        if any(len(f) != 2 or min(f) < 1 for f in folds):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected GROUPSxLANES per layer (integers >= 1), e.g. 4x128,4x128,2x64,1x5; "
            f"got {text!r}") from None
    return [Folding(*f) for f in folds]


def _add_compile(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("compile", help="map a quantized network onto neuron arrays")
    p.add_argument("source", help="zoo name, integer network (.npz), checkpoint (.pt) or "
                                  "artifact directory")
    p.add_argument("-o", "--output", required=True, help="artifact directory to write")
    p.add_argument("--target", type=positive, default=250_000.0,
                   help="throughput target in digits/s (default 250000)")
    p.add_argument("--clock-mhz", type=positive, default=100.0,
                   help="clock of the core in MHz (default 100)")
    p.add_argument("--luts", type=count, default=40_000,
                   help="LUT budget of the core (default 40000 of the xc7z020's 53200: the "
                        "rest is for the DMA, interconnect and placement slack)")
    p.add_argument("--bram36", type=natural, default=140, help="BRAM36 budget")
    p.add_argument("--dsp", type=natural, default=220, help="DSP48 budget")
    p.add_argument("--folding", type=_foldings, help="explicit GROUPSxLANES per layer")
    p.add_argument("--hardware", help="map onto the hardware of this artifact (run-time load)")
    p.add_argument("--sample-digits", type=count, default=1000,
                   help="test images of the network's dataset for the folding search and cycle "
                        "model")
    p.add_argument("--allow-over-budget", action="store_true",
                   help="write the artifact even if the resource estimate exceeds the budget")
    p.add_argument("--packed-pixels", action="store_true",
                   help="stream the pixels packed at the network's input bits (a row a beat "
                        "for binary pixels) instead of four bytes a beat; the driver packs them")
    p.add_argument("--force", action="store_true",
                   help="overwrite a non-empty output folder that holds no artifact")
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    return p


def _add_inspect(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help="summary and plots of a compiled artifact")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--plots", help="folder for the plots (default: ARTIFACT/inspect)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--json", action="store_true", help="print the manifest's summary as JSON")
    return p


def _add_classify(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("classify", help="classify pictures of single digits (MNIST-style "
                                        "preparation)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="picture files: PNG, JPEG, ... (needs Pillow) or .npy arrays")
    p.add_argument("--artifact", help="compiled network (default: the zoo's hardware model)")
    p.add_argument("--backend", choices=("golden", "sim", "board"), default="golden",
                   help="golden model (default), RTL simulation or the board")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _add_zoo(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("zoo", help="list the shipped models")


def _add_demo(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="evaluate the shipped models and plot the results")
    p.add_argument("--images", type=count, help="evaluate only the first N test digits")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("-o", "--output", default="build/demo", help="folder for the plots")
    return p


# ------------------------------------------------------------------------------------------------
# commands


def cmd_train(args: argparse.Namespace) -> int:
    from .models import IMAGE_ROWS, ModelConfig
    from .train import TrainConfig, check_output_path, train

    check_output_path(args.output, network=args.wbits is not None)
    geometry = {k: v for k, v in (("taps", args.taps), ("strides", args.strides),
                                  ("rows", args.rows)) if v is not None}
    model_cfg = ModelConfig(
        family=args.family, channels=args.channels, wbits=args.wbits, abits=args.abits,
        input_bits=args.input_bits, per_channel=not args.per_tensor, **geometry,
    )
    if args.rows is None and model_cfg.family == "tdnn" and model_cfg.rows < IMAGE_ROWS:
        print(f"note: taps {','.join(map(str, model_cfg.taps))} / strides "
              f"{','.join(map(str, model_cfg.strides))} read rows 0..{model_cfg.rows - 1} of "
              f"{IMAGE_ROWS}; pass --rows {model_cfg.rows} to declare it, or choose taps that "
              f"read all rows", file=sys.stderr)
    cfg = TrainConfig(
        epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
        batch_size=args.batch_size, max_shift=args.max_shift, seed=args.seed,
        threads=args.threads, warm_start=args.warm_start, train_images=args.train_images,
        data_dir=args.data, dataset=args.dataset,
    )
    command = shlex.join([PROG, *args.argv])
    # writes the checkpoint and, for a quantized model, its integer network with the
    # checkpoint's digest
    train(model_cfg, cfg, args.output, progress=not args.quiet, command=command)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    opts = data_options(args)
    r = evaluate(args.model, args.images, opts["path"], args.check_torch, dataset=opts["name"],
                 other_data=opts["other_data"])
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['model']}: accuracy {100 * r['accuracy']:.2f} % ({r['correct']}/{r['images']} "
          f"{r['dataset']} test images), "
          f"W{r['wbits']}A{r['abits']}, {r['synapses']} synapses, {r['engine']} "
          f"({r['seconds']:.2f} s)")
    if "torch_golden_mismatches" in r:
        print(f"torch (float64) vs golden: {r['torch_golden_mismatches']} mismatches; "
              f"torch (float32) vs golden: {r['torch_float32_golden_mismatches']}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from .compiler.artifact import load_artifact
    from .compiler.compile import CompileConfig, compile_network, sample_data
    from .compiler.inspect import summary_table
    from .compiler.resources import Budget

    start = time.perf_counter()
    cfg = CompileConfig(
        target_images_per_s=args.target,
        budget=Budget(luts=args.luts, bram36=args.bram36, dsp=args.dsp,
                      clock_mhz=args.clock_mhz),
        foldings=args.folding, hardware=args.hardware, sample_digits=args.sample_digits,
        allow_over_budget=args.allow_over_budget, packed_pixels=args.packed_pixels)
    # the network's dataset, or the given data (checked against it), before any work
    sample = sample_data(args.source, **data_options(args)).sample(args.sample_digits)
    manifest = compile_network(args.source, args.output, cfg, sample, force=args.force)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({**manifest, "compile_seconds": seconds}, indent=2))
    else:
        print(summary_table(load_artifact(args.output)))
        print(f"compiled in {seconds:.2f} s -> {args.output}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .compiler.artifact import load_artifact
    from .compiler.inspect import plot, summary_table

    art = load_artifact(args.artifact)
    if args.json:
        m = art.manifest
        print(json.dumps({"network": m["network"], "hardware": m["hardware"],
                          "performance": m.get("performance")}, indent=2))
    else:
        print(summary_table(art))
    if not args.no_plots:
        for path in plot(art, Path(args.plots or Path(args.artifact) / "inspect")):
            print(f"plot: {path}")
    return 0


def _picture(path: str):
    """A picture file's pixels: ``.npy`` arrays with numpy alone, anything else via Pillow."""
    from .data.prepare import MAX_FILE_BYTES, prepare_digit

    if path.endswith(".npy"):
        import io

        import numpy as np

        from .data import DataError
        from .fileio import UnsafeFileError, read_regular

        try:
            array = np.load(io.BytesIO(read_regular(path, MAX_FILE_BYTES)), allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"image {path} does not exist") from None
        except (OSError, ValueError, UnsafeFileError) as e:
            raise DataError(f"{path} is not a readable .npy array "
                            f"({getattr(e, 'strerror', None) or e})") from None
        return prepare_digit(array)
    return prepare_digit(path)


def cmd_classify(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import DATASETS

    x = np.stack([_picture(p) for p in args.images])
    if args.artifact is None and args.backend == "golden":
        from . import zoo
        from .golden import run

        name = zoo.hardware_default()
        res = run(zoo.load_network(name), x)
        classes, logits, dataset = res.classes, res.logits, "mnist"  # the zoo is MNIST
    else:
        from .compiler.artifact import dataset_record, load_artifact
        from .driver import NeuroAccelerator

        name = args.artifact or "the board's network"
        art = load_artifact(args.artifact) if args.artifact else None
        record = dataset_record(art.manifest) if art is not None else None
        dataset = record["name"] if record else "mnist"
        with NeuroAccelerator(args.backend, artifact=art) as acc:
            classes, logits = acc.classify(x, logits=True)
    names = DATASETS[dataset].classes if dataset in DATASETS else None
    rows = [{"image": p, "class": int(c),
             "label": names[int(c)] if names and int(c) < len(names) else str(int(c)),
             "logits": [int(v) for v in l]}
            for p, c, l in zip(args.images, np.atleast_1d(classes), np.atleast_2d(logits))]
    if args.json:
        print(json.dumps({"model": name, "backend": args.backend, "dataset": dataset,
                          "results": rows}, indent=2))
        return 0
    for r in rows:
        label = "" if r["label"] == str(r["class"]) else f" ({r['label']})"
        print(f"{r['image']}: {r['class']}{label}  logits {r['logits']}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from . import zoo

    if not zoo.names():
        print("no models shipped")
        return 1
    print(f"{'model':<14}{'bits':>6}{'synapses':>10}{'accuracy':>10}  reproduce with")
    for name in zoo.names():
        m = zoo.info(name)
        bits = "float" if m["wbits"] is None else f"W{m['wbits']}A{m['abits']}"
        print(f"{name:<14}{bits:>6}{m['synapses']:>10}{100 * m['accuracy']:>9.2f}%  "
              f"{' && '.join(m['commands'])}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.output), args.images, args.data_dir)
    return 0


def commands() -> list[Command]:
    """Every subcommand, in the order of the help text."""
    from .compress.cli import COMMAND as COMPRESS
    from .driver.cli import COMMAND as SELFTEST
    from .explore.cli import COMMAND as EXPLORE
    from .rtl.cli import COMMANDS as RTL_COMMANDS

    return [
        Command("train", _add_train, cmd_train),
        Command("eval", _add_eval, cmd_eval),
        Command("compile", _add_compile, cmd_compile),
        Command("inspect", _add_inspect, cmd_inspect),
        Command("classify", _add_classify, cmd_classify),
        COMPRESS,
        EXPLORE,
        *RTL_COMMANDS,
        SELFTEST,
        Command("zoo", _add_zoo, cmd_zoo),
        Command("demo", _add_demo, cmd_demo),
    ]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    return cli_core.build_parser(commands(), DESCRIPTION, __version__)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return guard(lambda: run_command(commands(), build_parser(), argv))


if __name__ == "__main__":
    sys.exit(main())
