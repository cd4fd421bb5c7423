"""The ``pynq-neuro`` command line: train, compress, eval, compile, inspect, verify, estimate,
zoo and demo.

Evaluation of an integer network (``.npz`` or a zoo name) needs numpy only; training and
evaluation of checkpoints import torch on demand.

Exit status and error output (the same for every subcommand):

* 0: done. 1: a check ran and failed (``verify``: the core disagrees with the golden model;
  ``estimate``: the core does not fit; ``zoo``: no model shipped).
* 2: an error, reported as one line ``pynq-neuro: error: ...`` on stderr and no traceback:
  unreadable, missing or corrupt files (artifacts, ``.npz``, ``.pt``, MNIST), operating-system
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
import math
import os
import pickle
import shlex
import sys
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

DEBUG_ENV = "PYNQ_NEURO_DEBUG"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
PROG = "pynq-neuro"


# ------------------------------------------------------------------------------------------------
# argument types: every numeric option is checked by the parser


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """Argument type: an integer in ``lo..hi`` (no upper limit for ``hi=None``)."""
    what = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"

    def parse(text: str) -> int:
        v = _integer(text, what)
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    parse.__name__ = "integer"
    return parse


def int_list(lo: int, hi: int | None = None) -> Callable[[str], tuple[int, ...]]:
    """Argument type: comma-separated integers, each in ``lo..hi``."""
    what = f"integers >= {lo}" if hi is None else f"integers in {lo}..{hi}"

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            values = ()
        if not values or any(v < lo or (hi is not None and v > hi) for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        return values

    parse.__name__ = "integer list"
    return parse


def real(lo: float = 0.0, *, inclusive: bool = False) -> Callable[[str], float]:
    """Argument type: a finite number above ``lo`` (from ``lo`` on with ``inclusive``)."""
    what = f"a finite number {'>=' if inclusive else '>'} {lo:g}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(v) or v < lo or (v == lo and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    parse.__name__ = "number"
    return parse


count = int_range(1)            # digits, images, epochs, sizes: at least one
natural = int_range(0)          # at least zero
positive = real(0.0)            # finite and > 0 (clocks, targets, rates, timeouts)
non_negative = real(0.0, inclusive=True)
seed = int_range(0, 2**64 - 1)  # what torch's generators take
threads = int_range(1, 256)
bits = int_range(1, 8)          # weight, activation and pixel bits (quantizers and core)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a float or quantized (UniQ) model")
    p.add_argument("-o", "--output", required=True, help="checkpoint to write (.pt)")
    g = p.add_argument_group("model")
    g.add_argument("--family", choices=("tdnn", "mlp"), default="tdnn")
    g.add_argument("--channels", type=int_list(1), default=(128, 128, 128),
                   help="hidden widths (default 128,128,128)")
    g.add_argument("--taps", type=int_list(1), default=(3, 3, 3),
                   help="TDNN taps per hidden layer")
    g.add_argument("--strides", type=int_list(1), default=(1, 2, 2),
                   help="TDNN strides per hidden layer")
    g.add_argument("--wbits", type=bits, help="weight bits 1..8 (omit for float)")
    g.add_argument("--abits", type=bits, help="activation bits 1..8 (omit for float)")
    g.add_argument("--input-bits", type=bits, default=8, help="pixel bits kept (default 8)")
    g.add_argument("--per-tensor", action="store_true", help="one weight step per layer")
    g = p.add_argument_group("optimisation (defaults depend on the bit widths)")
    g.add_argument("--epochs", type=count)
    g.add_argument("--lr", type=positive)
    g.add_argument("--weight-decay", type=non_negative)
    g.add_argument("--batch-size", type=count, default=128)
    g.add_argument("--max-shift", type=int_range(0, 27), default=2,
                   help="augmentation: max translation (px, 0..27)")
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--threads", type=threads, default=2, help="torch threads")
    g.add_argument("--warm-start", help="float checkpoint to start quantization-aware training")
    g.add_argument("--train-images", type=count, help="use only the first N training digits")
    p.add_argument("--data-dir", help="MNIST directory (default: search order of the loader)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy of a model on the MNIST test set")
    p.add_argument("model", help="zoo name, checkpoint (.pt) or integer network (.npz)")
    p.add_argument("--images", type=count, help="evaluate only the first N test digits")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("--check-torch", action="store_true",
                   help="also run the fake-quantized torch model and count disagreements")
    p.add_argument("--json", action="store_true", help="print one JSON object")


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


def _add_compile(sub: argparse._SubParsersAction) -> None:
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
                   help="test digits for the folding search and cycle model")
    p.add_argument("--allow-over-budget", action="store_true",
                   help="write the artifact even if the resource estimate exceeds the budget")
    p.add_argument("--force", action="store_true",
                   help="overwrite a non-empty output folder that holds no artifact")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")


class CliParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command:
    ``pynq-neuro: error: SUBCOMMAND: message``, exit status 2 (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"{PROG}: error: {where}{' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = CliParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_eval(sub)
    _add_compile(sub)
    p = sub.add_parser("inspect", help="summary and plots of a compiled artifact")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--plots", help="folder for the plots (default: ARTIFACT/inspect)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--json", action="store_true", help="print the manifest's summary as JSON")
    try:
        from .compiler.compress_cli import register
    except ImportError:  # torch-free installs have no compression passes
        pass
    else:
        register(sub)
    try:
        from .rtl.cli import add_estimate_parser, add_verify_parser
    except ImportError:  # installed without the RTL tooling
        pass
    else:
        add_verify_parser(sub)
        add_estimate_parser(sub)
    sub.add_parser("zoo", help="list the shipped models")
    p = sub.add_parser("demo", help="evaluate the shipped models and plot the results")
    p.add_argument("--images", type=count, help="evaluate only the first N test digits")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("-o", "--output", default="build/demo", help="folder for the plots")
    return parser


# ------------------------------------------------------------------------------------------------
# checkpoints


CHECKPOINT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, EOFError,
    ImportError, pickle.UnpicklingError, zipfile.BadZipFile)


def load_checkpoint_model(path: str | Path) -> Any:
    """The model of a checkpoint file (needs torch). Whatever makes the file unusable (not a
    zip or pickle, truncated, another program's file, a state dict that does not fit its
    configuration) is a ``ValueError`` naming the file; ``OSError`` passes unchanged. (The
    loader raises ``CheckpointError`` itself; anything else torch raises is wrapped here.)"""
    try:
        from .train import CheckpointError, model_from_checkpoint
    except ModuleNotFoundError as e:
        raise ValueError(f"{path}: reading a checkpoint (.pt) needs torch ({e})") from None
    try:
        return model_from_checkpoint(path)
    except (OSError, CheckpointError):
        raise
    except CHECKPOINT_ERRORS as e:
        raise ValueError(f"{path}: not a usable pynq-neuro checkpoint ({_one_line(e)})") from e


# ------------------------------------------------------------------------------------------------
# commands


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .models import ModelConfig
    from .train import TrainConfig, check_output_path, train

    check_output_path(args.output, network=args.wbits is not None)
    model_cfg = ModelConfig(
        family=args.family, channels=args.channels, taps=args.taps, strides=args.strides,
        wbits=args.wbits, abits=args.abits, input_bits=args.input_bits,
        per_channel=not args.per_tensor,
    )
    cfg = TrainConfig(
        epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
        batch_size=args.batch_size, max_shift=args.max_shift, seed=args.seed,
        threads=args.threads, warm_start=args.warm_start, train_images=args.train_images,
        data_dir=args.data_dir,
    )
    command = shlex.join([PROG, *argv])
    # writes the checkpoint and, for a quantized model, its integer network with the
    # checkpoint's digest
    train(model_cfg, cfg, args.output, progress=not args.quiet, command=command)
    return 0


def torch_disagreements(logits: Any, golden_classes: Any) -> int:
    """Digits whose golden class is not a maximum of the torch ``logits``. The golden model
    resolves exact ties to the lowest index; torch's argmax may pick another class of an
    exactly tied maximum, which is an agreement."""
    import numpy as np

    logits = np.asarray(logits, np.float64)
    at_golden = logits[np.arange(len(logits)), np.asarray(golden_classes)]
    return int((at_golden != logits.max(axis=1)).sum())


def evaluate(model: str, images: int | None = None, data_dir: str | None = None,
             check_torch: bool = False) -> dict[str, Any]:
    """Accuracy of a zoo model, checkpoint or integer network on the MNIST test set."""
    from . import zoo
    from .data import load_mnist
    from .golden import IntegerNetwork, run

    if images is not None and (isinstance(images, bool) or images < 1):
        raise ValueError(f"--images must be >= 1, got {images}")
    x, y = load_mnist("test", data_dir)
    if images is not None:
        x, y = x[:images], y[:images]
    ckpt_path: Path | None = None
    net = None
    if model in zoo.names():
        ckpt_path = zoo.checkpoint_path(model)
        if zoo.network_path(model) is not None:
            net = zoo.load_network(model)
    elif Path(model).is_dir():
        from .compiler.artifact import load_artifact

        net = load_artifact(model).network
    elif model.endswith(".npz"):
        net = IntegerNetwork.load(model)
    elif model.endswith(".pt"):
        ckpt_path = Path(model)
    else:
        raise ValueError(f"{model!r} is neither a zoo model ({', '.join(zoo.names())}), "
                         "a checkpoint (.pt), an integer network (.npz) nor an artifact folder")
    if check_torch and ckpt_path is None:
        raise ValueError("--check-torch needs a quantized checkpoint or zoo model")
    result: dict[str, Any] = {"model": model, "images": int(len(x))}
    torch_model = None
    if ckpt_path is not None and (net is None or check_torch):
        from .lower import lower

        torch_model = load_checkpoint_model(ckpt_path)
        if net is None and torch_model.config.quantized:
            net = lower(torch_model)
    if check_torch and net is None:
        raise ValueError("--check-torch needs a quantized checkpoint or zoo model")
    start = time.perf_counter()
    if net is not None:
        res = run(net, x)
        pred = res.classes
        result.update(engine="golden", wbits=net.weight_bits, abits=net.act_bits,
                      input_bits=net.input_bits, synapses=net.synapses)
    else:
        from .train import predict

        _, pred = predict(torch_model, x)
        cfg = torch_model.config
        result.update(engine="torch-float", wbits=32, abits=32, input_bits=cfg.input_bits,
                      synapses=torch_model.synapses())
    result["seconds"] = time.perf_counter() - start
    result["correct"] = int((pred == y).sum())
    result["accuracy"] = result["correct"] / len(y)
    if check_torch:
        import torch

        from .train import predict

        logits64, _ = predict(torch_model, x, dtype=torch.float64)
        logits32, _ = predict(torch_model, x)
        result["torch_golden_mismatches"] = torch_disagreements(logits64, pred)
        result["torch_float32_golden_mismatches"] = torch_disagreements(logits32, pred)
    return result


def cmd_eval(args: argparse.Namespace) -> int:
    r = evaluate(args.model, args.images, args.data_dir, args.check_torch)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['model']}: accuracy {100 * r['accuracy']:.2f} % ({r['correct']}/{r['images']}), "
          f"W{r['wbits']}A{r['abits']}, {r['synapses']} synapses, {r['engine']} "
          f"({r['seconds']:.2f} s)")
    if "torch_golden_mismatches" in r:
        print(f"torch (float64) vs golden: {r['torch_golden_mismatches']} mismatches; "
              f"torch (float32) vs golden: {r['torch_float32_golden_mismatches']}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from .compiler.artifact import load_artifact
    from .compiler.compile import CompileConfig, compile_network
    from .compiler.inspect import summary_table
    from .compiler.resources import Budget
    from .data import load_mnist

    start = time.perf_counter()
    cfg = CompileConfig(
        target_images_per_s=args.target,
        budget=Budget(luts=args.luts, bram36=args.bram36, dsp=args.dsp,
                      clock_mhz=args.clock_mhz),
        foldings=args.folding, hardware=args.hardware, sample_digits=args.sample_digits,
        allow_over_budget=args.allow_over_budget)
    images = load_mnist("test", args.data_dir)[0][: args.sample_digits]
    manifest = compile_network(args.source, args.output, cfg, images, force=args.force)
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


def cmd_zoo() -> int:
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


def _dispatch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.command == "train":
        return cmd_train(args, argv)
    if args.command == "eval":
        return cmd_eval(args)
    if args.command == "zoo":
        return cmd_zoo()
    if args.command == "compile":
        return cmd_compile(args)
    if args.command == "inspect":
        return cmd_inspect(args)
    if args.command in ("verify", "estimate"):
        from .rtl.cli import run_estimate, run_verify

        return run_verify(args) if args.command == "verify" else run_estimate(args)
    if args.command == "compress":
        from .compiler.compress_cli import run as run_compress

        return run_compress(args)
    return cmd_demo(args)


# ------------------------------------------------------------------------------------------------
# error reporting


def _one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (an ``OSError`` as ``FILE: reason``)."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror
        if e.filename is not None:
            text = f"{os.fsdecode(e.filename)}: {text}"
            if e.filename2 is not None:
                text += f" (-> {os.fsdecode(e.filename2)})"
    else:
        text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text or type(e).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe a problem of the input, the files or the system (status 2)."""
    from .data import DataError

    errors: list[type[BaseException]] = [DataError, ValueError, OSError, EOFError,
                                         pickle.UnpicklingError, zipfile.BadZipFile]
    try:
        from .rtl import RtlError
    except ImportError:
        pass
    else:
        errors.append(RtlError)
    try:
        from .driver.errors import DriverError
    except ImportError:
        pass
    else:
        errors.append(DriverError)
    return tuple(errors)


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def error(message: str) -> int:
    """Report an error as one line on stderr; returns the exit status."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _drop_stdout() -> None:
    """After a broken pipe: later writes (and the flush at exit) go to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a file descriptor (captured output)
        pass


def _run(body: Callable[[], int]) -> int:
    """``body()``'s status, or the status of the failure it raised (reported on stderr)."""
    try:
        return body()
    except SystemExit as e:  # the parser (usage and its one-line error, --help, --version)
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return error(_one_line(Exception(e.code)))
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        if _debug():
            traceback.print_exc()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - reported, never silent
        if _debug():
            traceback.print_exc()
        if isinstance(e, _user_errors()):
            return error(_one_line(e))
        return error(f"unexpected {type(e).__name__}: {_one_line(e)} (a bug; set "
                     f"{DEBUG_ENV}=1 to see the traceback)")


def guard(body: Callable[[], int]) -> int:
    """Run a command and return its exit status; every failure becomes the module's error
    contract (one line on stderr, no traceback unless ``PYNQ_NEURO_DEBUG`` is set). A closed
    standard output ends the command quietly (the Python documentation's recipe: later
    writes go to ``os.devnull``)."""
    try:
        status = _run(body)
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    try:
        if sys.stdout is not None:   # None: started with its file descriptor closed
            sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        return status or EXIT_BROKEN_PIPE
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return guard(lambda: _dispatch(build_parser().parse_args(argv), argv))


if __name__ == "__main__":
    sys.exit(main())
