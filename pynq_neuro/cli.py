"""The ``pynq-neuro`` command line: train, compress, eval, compile, inspect, zoo and demo.

Evaluation of an integer network (``.npz`` or a zoo name) needs numpy only; training and
evaluation of checkpoints import torch on demand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence



def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a float or quantized (UniQ) model")
    p.add_argument("-o", "--output", required=True, help="checkpoint to write (.pt)")
    g = p.add_argument_group("model")
    g.add_argument("--family", choices=("tdnn", "mlp"), default="tdnn")
    g.add_argument("--channels", type=_ints, default=(128, 128, 128),
                   help="hidden widths (default 128,128,128)")
    g.add_argument("--taps", type=_ints, default=(3, 3, 3), help="TDNN taps per hidden layer")
    g.add_argument("--strides", type=_ints, default=(1, 2, 2), help="TDNN strides per hidden layer")
    g.add_argument("--wbits", type=int, help="weight bits 1..8 (omit for float)")
    g.add_argument("--abits", type=int, help="activation bits 1..8 (omit for float)")
    g.add_argument("--input-bits", type=int, default=8, help="pixel bits kept (default 8)")
    g.add_argument("--per-tensor", action="store_true", help="one weight step per layer")
    g = p.add_argument_group("optimisation (defaults depend on the bit widths)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--max-shift", type=int, default=2, help="augmentation: max translation (px)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=2, help="torch threads")
    g.add_argument("--warm-start", help="float checkpoint to start quantization-aware training")
    g.add_argument("--train-images", type=int, help="use only the first N training digits")
    p.add_argument("--data-dir", help="MNIST directory (default: search order of the loader)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy of a model on the MNIST test set")
    p.add_argument("model", help="zoo name, checkpoint (.pt) or integer network (.npz)")
    p.add_argument("--images", type=int, help="evaluate only the first N test digits")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("--check-torch", action="store_true",
                   help="also run the fake-quantized torch model and count disagreements")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _foldings(text: str):
    from .compiler.mapping import Folding

    try:
        return [Folding(*(int(v) for v in item.lower().split("x"))) for item in text.split(",")]
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected GROUPSxLANES per layer, e.g. 4x128,4x128,2x64,1x5; got {text!r}")


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="map a quantized network onto neuron arrays")
    p.add_argument("source", help="zoo name, integer network (.npz), checkpoint (.pt) or "
                                  "artifact directory")
    p.add_argument("-o", "--output", required=True, help="artifact directory to write")
    p.add_argument("--target", type=float, default=250_000.0,
                   help="throughput target in digits/s (default 250000)")
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.add_argument("--luts", type=int, default=40_000,
                   help="LUT budget of the core (default 40000 of the xc7z020's 53200: the "
                        "rest is for the DMA, interconnect and placement slack)")
    p.add_argument("--bram36", type=int, default=140, help="BRAM36 budget")
    p.add_argument("--dsp", type=int, default=220, help="DSP48 budget")
    p.add_argument("--folding", type=_foldings, help="explicit GROUPSxLANES per layer")
    p.add_argument("--hardware", help="map onto the hardware of this artifact (run-time load)")
    p.add_argument("--sample-digits", type=int, default=1000,
                   help="test digits for the folding search and cycle model")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pynq-neuro", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pynq-neuro {__version__}")
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
    p.add_argument("--images", type=int, help="evaluate only the first N test digits")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("-o", "--output", default="build/demo", help="folder for the plots")
    return parser


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .lower import lower
    from .models import ModelConfig, NeuroNet
    from .train import TrainConfig, train

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
    command = shlex.join(["pynq-neuro", *argv])
    ckpt = train(model_cfg, cfg, args.output, progress=not args.quiet, command=command)
    if model_cfg.quantized:
        model = NeuroNet(model_cfg)
        model.load_state_dict(ckpt["state_dict"])
        out = Path(args.output).with_suffix(".npz")
        lower(model, meta={"checkpoint": Path(args.output).name}).save(out)
        print(f"saved {out} (integer network)")
    return 0


def evaluate(model: str, images: int | None = None, data_dir: str | None = None,
             check_torch: bool = False) -> dict[str, Any]:
    """Accuracy of a zoo model, checkpoint or integer network on the MNIST test set."""
    from . import zoo
    from .data import load_mnist
    from .golden import IntegerNetwork, run

    x, y = load_mnist("test", data_dir)
    if images is not None:
        if images < 1:
            raise ValueError("--images must be >= 1")
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
    result: dict[str, Any] = {"model": model, "images": int(len(x))}
    torch_model = None
    if ckpt_path is not None and (net is None or check_torch):
        from .lower import lower
        from .train import model_from_checkpoint

        torch_model = model_from_checkpoint(ckpt_path)
        if net is None and torch_model.config.quantized:
            net = lower(torch_model)
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
        if torch_model is None or net is None:
            raise ValueError("--check-torch needs a quantized checkpoint or zoo model")
        from .train import predict

        _, p64 = predict(torch_model, x, dtype=__import__("torch").float64)
        _, p32 = predict(torch_model, x)
        result["torch_golden_mismatches"] = int((p64 != pred).sum())
        result["torch_float32_golden_mismatches"] = int((p32 != pred).sum())
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
        foldings=args.folding, hardware=args.hardware, sample_digits=args.sample_digits)
    images = load_mnist("test", args.data_dir)[0][: args.sample_digits]
    manifest = compile_network(args.source, args.output, cfg, images)
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from .data import DataError
    from .golden import NetworkError

    try:
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
    except (DataError, NetworkError, ValueError, KeyError, FileNotFoundError) as e:
        # ArtifactError is a ValueError
        print(f"pynq-neuro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
