"""Peers benchmark: Brevitas against UniQ, event skipping, and published anchors.

1. Brevitas 0.13 (FINN-style quantizers, see ``peers_brevitas.py``) against UniQ
   (``pynq_neuro.train``) on the TDNN and the MLP of ``pynq_neuro.models`` at W1A1 and W2A2:
   both warm-start from the same float model, train with the same loop
   (:func:`pynq_neuro.train.fit`: data, order, augmentation, optimiser, schedule, epochs, seed)
   and are evaluated in float torch on the 10,000 test digits; UniQ also through its integer
   network (golden model). The default protocol is reduced so that the whole script runs in
   under 30 minutes with one torch thread (17 minutes on a shared 2-core machine);
   ``--epochs``, ``--float-epochs`` and ``--train-images`` give the full one.
2. Event skipping: every shipped quantized model, default compile, cycle model on the 10,000
   test digits, against the same arrays with event skipping disabled (every input an event).
3. Published anchors (``anchors.py`` and the ones below), with their sources.

Writes ``benchmarks/results/peers.json`` and the peers section of ``README.md``
(``--readme-only`` rewrites that section from the JSON without running anything).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from anchors import ANCHORS
import report
from hardware import ANCHORS as HARDWARE_ANCHORS

from pynq_neuro.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "peers"

SOURCES = {
    "BNN-PYNQ LFC W1A1 (PYNQ-Z2)": "github.com/Xilinx/BNN-PYNQ (LFC W1A1, measured on the board)",
    "INsight neuromorphic": "J. Chung, T. Shin, Y. Kang, \"INsight: A Neuromorphic Computing "
                            "System for Evaluation of Large Neural Networks\", arXiv:1508.01008 "
                            "(2015)",
}
# anchors that the plots of the other benchmarks do not draw
EXTRA_ANCHORS = [
    {"system": "finn-examples TFC-w1a1 (Pynq-Z1)", "accuracy": 0.9296,
     "images_per_s": 441_567, "images_per_s_core": 837_019,
     "source": "github.com/Xilinx/finn-examples, finn_examples/notebooks/"
               "0_mnist_with_fc_networks.ipynb (recorded outputs: full test set; "
               "441,567 digits/s with data movement, 837,019 digits/s throughput_test)"},
    {"system": "INsight neuromorphic, journal version (2020)", "accuracy": 0.9937,
     "source": "T. Hong, Y. Kang, J. Chung, \"InSight: An FPGA-Based Neuromorphic Computing "
               "System for Deep Neural Networks\", J. Low Power Electron. Appl. 10(4), 36 "
               "(2020), doi:10.3390/jlpea10040036"},
]


@dataclass
class Protocol:
    """Training protocol shared by both trainers."""

    epochs: int = 5            # quantization-aware epochs (UniQ and Brevitas)
    float_epochs: int = 3      # epochs of the float model both warm-start from
    train_images: int | None = None  # None: all 60,000
    seed: int = 0
    threads: int = 1
    families: tuple[str, ...] = ("tdnn", "mlp")
    bits: tuple[int, ...] = (1, 2)
    channels: tuple[int, ...] | None = None  # None: the ModelConfig default widths
    # the TDNN of the zoo (rows 0..24; results/peers.json was measured on it)
    taps: tuple[int, ...] = (3, 3, 3)
    strides: tuple[int, ...] = (1, 2, 2)
    max_shift: int = 2         # MNIST's translation augmentation

    def model_config(self, family: str, bits: int | None = None):
        from pynq_neuro.models import ModelConfig

        kw: dict[str, Any] = {"family": family, "wbits": bits, "abits": bits}
        if self.channels is not None:
            kw["channels"] = self.channels
        if family == "tdnn":
            n = len(self.channels) if self.channels is not None else len(self.taps)
            kw["taps"], kw["strides"] = self.taps[:n], self.strides[:n]
        return ModelConfig(**kw)

    def train_config(self, epochs: int, warm_start: str | None = None):
        from pynq_neuro.train import TrainConfig

        return TrainConfig(epochs=epochs, seed=self.seed, threads=self.threads,
                           warm_start=warm_start, train_images=self.train_images,
                           max_shift=self.max_shift)


@dataclass
class Entry:
    """One trained point: accuracy of the torch model (and of the integer network for UniQ)."""

    family: str
    bits: int
    trainer: str
    accuracy: float
    train_seconds: float
    golden_accuracy: float | None = None
    quantizers: dict[str, str] = field(default_factory=dict)
    lr: float = 0.0
    weight_decay: float = 0.0
    final_loss: float = math.nan


def _quiet(_: str) -> None:
    pass


def train_float(protocol: Protocol, family: str, work: Path,
                log: Callable[[str], None] = _quiet) -> tuple[Path, dict]:
    """The float model both trainers warm-start from."""
    from pynq_neuro.train import train

    out = work / f"{family}-float.pt"
    ckpt = train(protocol.model_config(family), protocol.train_config(protocol.float_epochs),
                 output=out, log=log, progress=False, command="benchmarks/peers.py")
    return out, {"family": family, "accuracy": ckpt["metrics"]["test_accuracy"],
                 "train_seconds": ckpt["metrics"]["train_seconds"]}


def train_uniq(protocol: Protocol, family: str, bits: int, warm: Path, work: Path,
               log: Callable[[str], None] = _quiet) -> Entry:
    from pynq_neuro.data import load_mnist
    from pynq_neuro.golden import IntegerNetwork, run
    from pynq_neuro.train import train

    out = work / f"{family}-w{bits}a{bits}-uniq.pt"
    cfg = protocol.train_config(protocol.epochs, str(warm))
    ckpt = train(protocol.model_config(family, bits), cfg, output=out, log=log,
                 progress=False, command="benchmarks/peers.py")
    x, y = load_mnist("test")
    golden = run(IntegerNetwork.load(out.with_suffix(".npz")), x)
    tc = ckpt["train_config"]
    return Entry(family, bits, "UniQ (pynq-neuro)", ckpt["metrics"]["test_accuracy"],
                 ckpt["metrics"]["train_seconds"], float((golden.classes == y).mean()),
                 {"weight": "UniQ symmetric (Gaussian MSE-initialised, learned step)",
                  "act": "UniQ unsigned (learned step)"},
                 tc["lr"], tc["weight_decay"], ckpt["history"][-1]["loss"])


def train_brevitas(protocol: Protocol, family: str, bits: int, warm: Path,
                   log: Callable[[str], None] = _quiet) -> Entry:
    """Brevitas network, warm-started from ``warm``, through the UniQ training loop."""
    import torch

    from peers_brevitas import BrevitasNet, quantizer_names, warm_start
    from pynq_neuro.train import fit, load_checkpoint, predict, resolve, training_data

    model_cfg = protocol.model_config(family, bits)
    cfg = resolve(protocol.train_config(protocol.epochs, str(warm)), model_cfg)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_ds, test_ds = training_data(cfg)
    n = cfg.train_images or len(train_ds.labels)
    xs = torch.from_numpy(np.array(train_ds.images[:n])).float()
    ys = torch.from_numpy(np.array(train_ds.labels[:n])).long()
    model = BrevitasNet(model_cfg)
    warm_start(model, load_checkpoint(warm)["state_dict"])
    history = fit(model, xs, ys, cfg, gen, log=log, progress=False)
    _, pred = predict(model, test_ds.images)
    return Entry(family, bits, f"Brevitas {_brevitas_version()}",
                 float((pred == test_ds.labels).mean()), history[-1]["seconds"], None,
                 quantizer_names(bits, model_cfg.per_channel), cfg.lr, cfg.weight_decay,
                 history[-1]["loss"])


def _brevitas_version() -> str:
    import brevitas

    return brevitas.__version__


def compare_trainers(protocol: Protocol, work: Path,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Float warm starts, then UniQ and Brevitas at every family and bit width."""
    work.mkdir(parents=True, exist_ok=True)
    floats, entries = [], []
    for family in protocol.families:
        warm, info = train_float(protocol, family, work)
        floats.append(info)
        log(json.dumps(info))
        for bits in protocol.bits:
            for e in (train_uniq(protocol, family, bits, warm, work),
                      train_brevitas(protocol, family, bits, warm)):
                entries.append(asdict(e))
                log(json.dumps(asdict(e)))
    return {"protocol": asdict(protocol), "float": floats, "results": entries}


def event_skipping(models: list[str] | None = None, images: int | None = None,
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Cycle model of the default compile with and without event skipping."""
    from pynq_neuro import zoo
    from pynq_neuro.compiler.compile import CompileConfig, compile_network
    from pynq_neuro.compiler.cycles import event_costs, simulate
    from pynq_neuro.compiler.mapping import Folding, map_layer
    from pynq_neuro.data import load_dataset, load_mnist
    from pynq_neuro.golden import run

    names = models or [n for n in zoo.names() if zoo.info(n)["wbits"] is not None]
    x = load_mnist("test")[0][:images]
    cfg = CompileConfig()
    sample = load_dataset("mnist").sample(cfg.sample_digits).images  # the default sample
    out = []
    for name in names:
        net = zoo.load_network(name)
        with tempfile.TemporaryDirectory() as tmp:
            manifest = compile_network(zoo.network_path(name), Path(tmp) / "artifact", cfg,
                                       sample)
        folds = [Folding(l["groups"], l["lanes"]) for l in manifest["hardware"]["layers"]]
        maps = [map_layer(net, i, f, pack=False) for i, f in enumerate(folds)]
        acts = run(net, x, trace=True).activations
        events = simulate(maps, net, x, acts)
        dense = simulate(maps, net, x, [np.ones_like(a) for a in acts])
        layers = []
        for lm, a in zip(maps, acts):
            cost = event_costs(lm)
            layers.append({"inputs_nonzero": float((a > 0).mean()),
                           "work_skipped": 1.0 - float(((a > 0) * cost[None]).sum())
                           / float(cost.sum() * len(a))})
        total_work = sum(float(event_costs(lm).sum()) * len(x) for lm in maps)
        done_work = sum(float(((a > 0) * event_costs(lm)[None]).sum())
                        for lm, a in zip(maps, acts))
        entry = {
            "model": name,
            "digits": int(len(x)),
            "foldings": [[f.groups, f.lanes] for f in folds],
            "cycles_per_digit_events": events.cycles_per_digit,
            "cycles_per_digit_dense": dense.cycles_per_digit,
            "speedup": dense.cycles_per_digit / events.cycles_per_digit,
            "latency_cycles_mean_events": float(events.latency.mean()),
            "latency_cycles_mean_dense": float(dense.latency.mean()),
            "work_skipped": 1.0 - done_work / total_work,
            "layers": layers,
            "compiler_cycles_per_digit_sample":
                manifest["performance"]["cycle_model"]["cycles_per_digit"],
        }
        out.append(entry)
        log(json.dumps(entry))
    return out


def anchors() -> list[dict[str, Any]]:
    base = [{**a, "source": SOURCES.get(a["system"], "benchmarks/anchors.py")} for a in ANCHORS]
    rates = {a["system"].split(" (")[0]: a["images_per_s"] for a in HARDWARE_ANCHORS}
    for a in base:
        a.setdefault("images_per_s", rates.get(a["system"].split(" (")[0]))
    return base + EXTRA_ANCHORS


def _brevitas_quantizers(result: dict[str, Any]) -> str:
    """The Brevitas quantizers of each bit width, as the results record them."""
    seen: dict[int, dict[str, str]] = {}
    for e in result["trainers"]["results"]:
        if e["golden_accuracy"] is None:
            seen.setdefault(e["bits"], e["quantizers"])
    def code(name: str) -> str:  # "Int8WeightPerTensorFloat at 2 bits" -> `...` at 2 bits
        head, sep, tail = name.partition(" at ")
        return f"`{head}`" + (f" at {tail}" if sep else "")

    parts = [f"W{b}A{b} weights {code(q['weight'])} (classifier "
             f"{code(q['classifier_weight'])}), activations {code(q['act'])}"
             for b, q in sorted(seen.items())]
    heads = {q["head"] for q in seen.values()}
    return "; ".join(parts) + (f"; after the classifier {', '.join(sorted(heads))}"
                               if heads else "")


def readme_body(result: dict[str, Any]) -> str:
    """The README's peers section (between its markers) from a peers.json result."""
    p = result["trainers"]["protocol"]
    imgs = "all 60,000" if p["train_images"] is None else f"the first {p['train_images']:,}"
    from pynq_neuro.train import recommended_hparams

    full_float = recommended_hparams(None, None)["epochs"]
    full_qat = recommended_hparams(1, 1)["epochs"]
    floats = ", ".join(f"{f['family'].upper()} {100 * f['accuracy']:.2f} %"
                       for f in result["trainers"]["float"])
    lines = [report.para(
        f"Peers (`benchmarks/peers.py`, `peers.json`; Brevitas {result['brevitas_version']} "
        "from `pip install -e .[peers]`). UniQ against Brevitas on the same TDNN and MLP "
        "(`ModelConfig` defaults), with a reduced protocol that is identical for both trainers: "
        f"a float model trained {p['float_epochs']} epochs ({floats}) warm-starts both, then "
        f"{p['epochs']} quantization-aware epochs on {imgs} training digits through the same "
        f"training loop (data order, augmentation, Adam with one-cycle schedule, the learning "
        f"rate and decay of `recommended_hparams`, seed {p['seed']}, {p['threads']} torch "
        "thread(s)). Accuracy: the torch model on the 10,000 test digits, and for UniQ also its "
        "integer network (golden model). Train time: wall time of the quantization-aware epochs "
        f"on a shared 2-core machine. The zoo's W1A1 and W2A2 models train {full_float} + "
        f"{full_qat} epochs (`--float-epochs {full_float} --epochs {full_qat}`). Brevitas "
        f"quantizers (FINN-style): {_brevitas_quantizers(result)}."),
        "", *report.table(
            ["model", "bits", "trainer", "accuracy (torch)", "accuracy (integer)", "train time"],
            ([e["family"].upper(), f"W{e['bits']}A{e['bits']}", e["trainer"],
              f"{100 * e['accuracy']:.2f} %",
              "-" if e["golden_accuracy"] is None else f"{100 * e['golden_accuracy']:.2f} %",
              f"{e['train_seconds']:.0f} s"] for e in result["trainers"]["results"])),
    ]
    digits = result["event_skipping"][0]["digits"] if result["event_skipping"] else 0
    lines += ["", report.para(
        f"Event skipping: cycle model of the default compile on {digits:,} test digits back to "
        "back, against the same arrays with event skipping disabled (every input, zero or not, "
        "is an event); work skipped: share of the event-phase cycles (synapse words) that zero "
        "inputs save. Foldings per model are in `peers.json`."),
        "", *report.table(
            ["model", "cycles/digit (events)", "cycles/digit (no skipping)", "speed-up",
             "work skipped"],
            ([f"`{e['model']}`", f"{e['cycles_per_digit_events']:.1f}",
              f"{e['cycles_per_digit_dense']:.1f}", f"{e['speedup']:.2f}x",
              f"{100 * e['work_skipped']:.1f} %"] for e in result["event_skipping"])),
        "", "Published anchors (MNIST, full test set):", "", *report.table(
            ["system", "accuracy", "digits/s", "source"],
            ([a["system"], f"{100 * a['accuracy']:.2f} %",
              f"{a['images_per_s']:,}" if a.get("images_per_s") else "-", a["source"]]
             for a in result["anchors"])),
    ]
    return "\n".join(lines)


def update_readme(result: dict[str, Any], path: Path = report.README) -> None:
    report.update_readme("peers", readme_body(result), path)


def _event_skipping_only(result: dict[str, Any], output: Path) -> int:
    """Replace the event-skipping part (and the anchors) of an earlier result."""
    start = time.perf_counter()
    result["event_skipping"] = event_skipping()
    result["anchors"] = anchors()
    result["event_skipping_seconds"] = time.perf_counter() - start
    _write(result, output)
    print(f"wrote the event-skipping part of {output} ({result['event_skipping_seconds']:.0f} s)")
    return 0


def _write(result: dict[str, Any], output: Path) -> None:
    """Write a result; the default output also rewrites the README's section."""
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, json.dumps(result, indent=2) + "\n")
    if output.resolve() == (report.RESULTS / "peers.json").resolve():
        update_readme(result)


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Protocol()
    parser.add_argument("--epochs", type=_count, default=d.epochs,
                        help="quantization-aware epochs for both trainers (full: 30)")
    parser.add_argument("--float-epochs", type=_count, default=d.float_epochs,
                        help="epochs of the shared float model (full: 20)")
    parser.add_argument("--train-images", type=_count, default=None,
                        help="first N training digits (default: all 60,000)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=_count, default=d.threads,
                        help="torch threads (1 is robust when other jobs share the cores)")
    parser.add_argument("--readme-only", action="store_true",
                        help="rewrite the README section from peers.json, run nothing")
    parser.add_argument("--event-skipping-only", action="store_true",
                        help="run the event-skipping part again (the cycle model and foldings of "
                             "this compiler, a few minutes) and keep the trainers' results of "
                             "the output file")
    parser.add_argument("--output", type=Path, default=report.RESULTS / "peers.json")
    args = parser.parse_args(argv)
    if args.readme_only:
        update_readme(json.loads(args.output.read_text()))
        return 0
    if args.event_skipping_only:
        try:
            earlier = json.loads(args.output.read_text())
        except (OSError, ValueError) as e:
            parser.error(f"--event-skipping-only needs an earlier result in {args.output}: {e}")
        if not isinstance(earlier, dict) or "trainers" not in earlier:
            parser.error(f"--event-skipping-only needs an earlier result in {args.output}: "
                         f"it holds no trainers' results")
        return _event_skipping_only(earlier, args.output)
    try:
        _brevitas_version()
    except ImportError:
        parser.error("Brevitas is not installed (pip install -c constraints.txt -e .[peers])")
    import torch

    torch.set_num_threads(args.threads)
    protocol = Protocol(epochs=args.epochs, float_epochs=args.float_epochs,
                        train_images=args.train_images, seed=args.seed, threads=args.threads)
    start = time.perf_counter()
    trainers = compare_trainers(protocol, WORK)
    result = {
        "brevitas_version": _brevitas_version(),
        "torch_version": torch.__version__,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "trainers": trainers,
        "event_skipping": event_skipping(),
        "anchors": anchors(),
    }
    result["seconds"] = time.perf_counter() - start
    _write(result, args.output)
    print(f"wrote {args.output} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
