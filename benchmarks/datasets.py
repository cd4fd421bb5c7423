"""Datasets benchmark: every 28x28 grayscale dataset available here through the whole flow.

Each dataset goes through the commands a user runs, with one recipe for all (:class:`Recipe`):
``pynq-neuro train`` (float warm start, then W2A2 quantization-aware training), ``eval`` (float
model; integer network with ``--check-torch``), ``compile`` (default budget) and ``verify
--rtl`` (Verilator, every test image, class and logits against the golden model).

Datasets: the registered ones (``pynq_neuro.data.DATASETS``; a row with status
``unavailable`` and the loader's message when their files can be neither found nor
downloaded) and the UCI optical-recognition digits bundled with scikit-learn
(``sklearn.datasets.load_digits``: 1,797 8x8 images, levels 0..16), brought to MNIST form the
way a user brings their own data: levels scaled to 0..255, each digit prepared by
:func:`pynq_neuro.data.prepare_digit` (20x20 box, centre of mass at the centre), the first
1,297 for training and the last 500 for testing in scikit-learn's order, written as an
``.npz`` for ``--data`` (:func:`uci_digits_npz`). scikit-learn is needed by this benchmark only.

Writes ``benchmarks/results/datasets.json`` and ``datasets.png``; the work files go to
``build/datasets/``. ``--quick`` runs the UCI digits alone with one epoch per stage and writes
to ``build/datasets/quick/`` (a check of the script). MNIST is found as the package finds it
(``PYNQ_NEURO_DATA``, the cache, a download).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pynq_neuro.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "build" / "datasets"

UCI_NAME = "uci-digits"
UCI_LEVELS = 16          # the UCI digits count 0..16 pixels of a 4x4 block
UCI_TRAIN = 1297         # the first 1,297 train, the last 500 test (scikit-learn's order)
EXAMPLES = 8             # example test images per dataset in the figure
MAX_LISTED = 20          # mismatching digits a verify report lists (regression's default)


@dataclass(frozen=True)
class Recipe:
    """One training recipe for every dataset.

    Both stages are given in passes over ``reference_images`` training images (the 60,000 of
    the MNIST-shaped datasets): a dataset with fewer training images gets proportionally more
    epochs, so that every dataset sees the same number of training images and optimiser steps
    (batch 128). ``literal_epochs`` (``--quick``) uses the epoch counts as they are."""

    family: str = "tdnn"
    channels: tuple[int, ...] = (128, 128, 128)
    taps: tuple[int, ...] = (3, 4, 4)   # all 28 rows (ModelConfig default)
    strides: tuple[int, ...] = (1, 2, 2)
    wbits: int = 2
    abits: int = 2
    float_epochs: int = 2
    qat_epochs: int = 3
    reference_images: int = 60_000
    seed: int = 0
    threads: int = 1
    literal_epochs: bool = False

    def epochs(self, stage_epochs: int, train_images: int) -> int:
        """Epochs of a stage on a training split of ``train_images``."""
        if self.literal_epochs:
            return stage_epochs
        return max(1, round(stage_epochs * self.reference_images / train_images))

    def describe(self) -> str:
        return (f"{self.family.upper()} {'-'.join(map(str, self.channels))} (taps "
                f"{','.join(map(str, self.taps))}, strides {','.join(map(str, self.strides))}), "
                f"float warm start {self.float_epochs} epoch(s) then W{self.wbits}A{self.abits} "
                f"QAT {self.qat_epochs} epoch(s)"
                + ("" if self.literal_epochs else
                   f" of {self.reference_images:,} images (smaller training splits get "
                   f"proportionally more epochs: the same images seen and optimiser steps)")
                + f"; the learning rates, weight decay, batch 128 and shift augmentation of "
                  f"recommended_hparams and the train defaults; seed {self.seed}, "
                  f"{self.threads} torch thread(s); compile at the default budget; RTL on "
                  f"every test image")


# ------------------------------------------------------------------------ the UCI digits


def uci_digits_npz(images: np.ndarray, labels: np.ndarray, path: str | Path,
                   train: int = UCI_TRAIN, levels: int = UCI_LEVELS) -> dict[str, Any]:
    """Write the UCI optical-recognition digits (``images`` (N, H, W), levels 0..``levels``,
    ``labels`` 0..9) as an ``.npz`` that ``--data`` reads: each digit scaled to 0..255 and
    prepared like MNIST (:func:`pynq_neuro.data.prepare_digit`); the first ``train`` digits
    are the training split (``train_images``, ``train_labels``), the rest the test split
    (``images``, ``labels``). Written atomically; returns the split sizes and the file's
    SHA-256. Raises ``ValueError`` for arrays that are not such digits."""
    from pynq_neuro.data import prepare_digits
    from pynq_neuro.fileio import atomic_write_bytes, sha256_bytes

    x = np.asarray(images)
    y = np.asarray(labels)
    if x.ndim != 3 or not (np.issubdtype(x.dtype, np.integer)
                           or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"images must be a numeric (N, H, W) array, got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > levels:
        raise ValueError(f"image levels must lie in 0..{levels}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or \
            (len(y) and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"labels must be {len(x)} integers 0..9, got {y.dtype} {y.shape}")
    if not 0 < train < len(x):
        raise ValueError(f"the training split must keep 1..{len(x) - 1} of {len(x)} digits, "
                         f"got {train}")
    scaled = np.rint(x.astype(np.float64) * (255.0 / levels)).astype(np.uint8)
    digits = prepare_digits(list(scaled))
    y = y.astype(np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, train_images=digits[:train], train_labels=y[:train],
                        images=digits[train:], labels=y[train:])
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return {"file": str(path), "file_sha256": sha256_bytes(data), "train_images": train,
            "test_images": len(x) - train}


def make_uci_digits(path: Path) -> dict[str, Any]:
    """The UCI digits from scikit-learn, written by :func:`uci_digits_npz`."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("the UCI digits come from scikit-learn: pip install scikit-learn") \
            from None
    d = load_digits()
    info = uci_digits_npz(d.images, d.target, path)
    info["origin"] = (f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__}): UCI "
                      f"ML optical recognition of handwritten digits, 1,797 8x8 images with "
                      f"levels 0..16; scaled to 0..255, prepare_digit to 28x28; first "
                      f"{UCI_TRAIN} train, last {len(d.images) - UCI_TRAIN} test, in "
                      f"scikit-learn's order")
    return info


# ------------------------------------------------------------------------------ the flow


def cli() -> list[str]:
    """The ``pynq-neuro`` command of this environment."""
    exe = Path(sys.executable).parent / "pynq-neuro"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "pynq_neuro"]


def rel(path: Path) -> str:
    """``path`` relative to the repository root (as the commands are given)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class StepFailed(Exception):
    """A command of the flow failed (exit status, last line of its error output)."""


class Flow:
    """Runs ``pynq-neuro`` commands from the repository root, logging each with its time."""

    def __init__(self, folder: Path, threads: int, log: Callable[[str], None]) -> None:
        self.folder = folder
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.log = log
        self.commands: list[str] = []
        self.seconds: dict[str, float] = {}

    def run(self, step: str, args: list[str], ok: tuple[int, ...] = (0,)) -> str:
        command = shlex.join(["pynq-neuro", *args])
        self.commands.append(command)
        self.log(f"  $ {command}")
        start = time.perf_counter()
        proc = subprocess.run(cli() + args, cwd=ROOT, env=self.env, capture_output=True,
                              text=True)
        self.seconds[step] = time.perf_counter() - start
        atomic_write_text(self.folder / f"{step}.log",
                          f"$ {command}\n# exit {proc.returncode}, {self.seconds[step]:.1f} s\n"
                          f"{proc.stdout}\n# stderr\n{proc.stderr}")
        if proc.returncode not in ok:
            lines = [s for s in proc.stderr.splitlines() if s.strip()]
            raise StepFailed(f"{step}: exit {proc.returncode}: "
                             f"{lines[-1] if lines else '(no error output)'}")
        return proc.stdout

    def run_json(self, step: str, args: list[str], ok: tuple[int, ...] = (0,)) -> Any:
        """:meth:`run` of a command given ``--json``: the object it printed."""
        out = self.run(step, args, ok)
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            raise StepFailed(f"{step}: its output is not JSON ({e})") from None


def probe(name: str) -> tuple[Any, Any] | str:
    """Both splits of a registered dataset (found or downloaded as the flow does), or the
    loader's error message."""
    from pynq_neuro.data import DataError, load_dataset

    try:
        return load_dataset(name, "train"), load_dataset(name, "test")
    except (DataError, OSError) as e:
        return str(e)


def run_dataset(name: str, data_args: list[str], train_ds: Any, test_ds: Any, recipe: Recipe,
                log: Callable[[str], None]) -> dict[str, Any]:
    """The whole flow on one dataset; a row of the result."""
    from pynq_neuro.compiler.artifact import dataset_record
    from pynq_neuro.rtl.cli import MAX_IMAGES
    from pynq_neuro.train import load_checkpoint

    folder = WORK / ("quick" if recipe.literal_epochs else "full") / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    flow = Flow(folder, recipe.threads, log)
    n_train, n_test = len(train_ds), len(test_ds)
    epochs = {"float": recipe.epochs(recipe.float_epochs, n_train),
              "qat": recipe.epochs(recipe.qat_epochs, n_train)}
    row: dict[str, Any] = {"name": name, "status": "failed", "train_images": n_train,
                           "test_images": n_test, "epochs": epochs}
    fp, qp, art = folder / "float.pt", folder / "w2a2.pt", folder / "artifact"
    model = ["--family", recipe.family, "--channels", ",".join(map(str, recipe.channels)),
             "--taps", ",".join(map(str, recipe.taps)),
             "--strides", ",".join(map(str, recipe.strides))]
    common = ["--seed", str(recipe.seed), "--threads", str(recipe.threads), "--quiet"]
    rtl_images = min(n_test, MAX_IMAGES)
    try:
        flow.run("train-float", ["train", *data_args, *model, "-o", rel(fp),
                                 "--epochs", str(epochs["float"]), *common])
        flow.run("train-qat", ["train", *data_args, *model, "--wbits", str(recipe.wbits),
                               "--abits", str(recipe.abits), "--warm-start", rel(fp),
                               "-o", rel(qp), "--epochs", str(epochs["qat"]), *common])
        float_eval = flow.run_json("eval-float", ["eval", rel(fp), *data_args, "--json"])
        int_eval = flow.run_json("eval-integer", ["eval", rel(qp), *data_args,
                                                  "--check-torch", "--json"])
        compiled = flow.run_json("compile", ["compile", rel(qp.with_suffix(".npz")),
                                             "-o", rel(art), *data_args, "--json"])
        # exit 1: the RTL disagrees with the golden model (reported, not an error)
        verify = flow.run_json("verify-rtl", ["verify", rel(art), "--rtl", "--images",
                                              str(rtl_images), *data_args, "--json"],
                               ok=(0, 1))
    except StepFailed as e:
        row.update(error=str(e), commands=flow.commands, wall_seconds=flow.seconds)
        log(f"  failed: {e}")
        return row
    fck, qck = load_checkpoint(fp), load_checkpoint(qp)
    record = dict(qck["dataset"])
    art_record = dataset_record(compiled)  # the manifest that compile printed
    # the report lists the first 20 mismatching digits: the count is exact below that
    complete = verify["passed"] or len(verify["mismatches"]) < MAX_LISTED
    bit_exact = verify["digits"] - len(verify["mismatches"]) if complete else None
    row.update(
        status="ok",
        source=record.get("source", f"registered dataset '{name}' (--dataset {name})"),
        sha256=record["sha256"], train_sha256=record.get("train_sha256"), record=record,
        record_matches_data=(record["sha256"] == test_ds.sha256
                             and record.get("train_sha256") == train_ds.sha256),
        artifact_record_matches=(art_record or {}).get("sha256") == record["sha256"],
        float_accuracy=float_eval["accuracy"],
        w2a2_torch_accuracy=qck["metrics"]["test_accuracy"],
        integer_accuracy=int_eval["accuracy"],
        torch_golden_mismatches=int_eval["torch_golden_mismatches"],
        torch_float32_golden_mismatches=int_eval["torch_float32_golden_mismatches"],
        synapses=int_eval["synapses"],
        rtl={"digits": verify["digits"], "bit_exact": bit_exact,
             "class_mismatches": verify["class_mismatches"],
             "logit_mismatches": verify["logit_mismatches"], "passed": verify["passed"],
             "accuracy": verify.get("accuracy"), "golden_accuracy": verify.get("golden_accuracy"),
             "dataset": verify["dataset"], "dataset_sha256": verify["dataset_sha256"],
             "cycles_per_digit": verify["rtl"]["cycles_per_digit"],
             "cycle_model_cycles_per_digit": verify["cycle_model"]["cycles_per_digit"],
             "images_per_s": verify["rtl"]["images_per_s"], "clock_mhz": verify["clock_mhz"],
             "build_seconds": verify["build_seconds"], "sim_seconds": verify["sim_seconds"]},
        compile={"seconds": compiled.get("compile_seconds"),
                 "foldings": [f"{h['groups']}x{h['lanes']}"
                              for h in compiled["hardware"]["layers"]]},
        train_seconds={"float": fck["metrics"]["train_seconds"],
                       "qat": qck["metrics"]["train_seconds"]},
        wall_seconds=flow.seconds, commands=flow.commands)
    log(f"  {name}: float {100 * row['float_accuracy']:.2f} %, W2A2 torch "
        f"{100 * row['w2a2_torch_accuracy']:.2f} %, integer {100 * row['integer_accuracy']:.2f} %,"
        f" RTL bit-exact {bit_exact}/{verify['digits']}")
    return row


# ----------------------------------------------------------------------------- the figure


def plot(result: dict[str, Any], examples: dict[str, tuple[np.ndarray, np.ndarray]],
         path: Path) -> None:
    """Example test images of each dataset that ran, and its accuracies as bars."""
    from report import pyplot   # benchmarks/ (the script's folder)

    plt = pyplot()

    rows = [r for r in result["datasets"] if r["status"] == "ok"]
    if not rows:
        return
    fig = plt.figure(figsize=(12, 1.3 * len(rows) + 2.2))
    grid = fig.add_gridspec(len(rows), 2, width_ratios=(1.25, 1), wspace=0.15)
    for i, r in enumerate(rows):
        sub = grid[i, 0].subgridspec(1, EXAMPLES, wspace=0.05)
        x, y = examples[r["name"]]
        for j in range(min(EXAMPLES, len(x))):
            ax = fig.add_subplot(sub[0, j])
            ax.imshow(x[j], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(str(int(y[j])), fontsize=8)
            if j == 0:
                ax.set_ylabel(r["name"], fontsize=9)
    ax = fig.add_subplot(grid[:, 1])
    kinds = (("float_accuracy", "float (torch)"), ("w2a2_torch_accuracy", "W2A2 (torch)"),
             ("integer_accuracy", "W2A2 integer (golden)"), ("rtl", "RTL (Verilator)"))
    width = 0.8 / len(kinds)
    low = 100.0
    for k, (key, label) in enumerate(kinds):
        vals = [100 * (r["rtl"]["accuracy"] if key == "rtl" else r[key]) for r in rows]
        low = min(low, *vals)
        pos = np.arange(len(rows)) + (k - (len(kinds) - 1) / 2) * width
        bars = ax.bar(pos, vals, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks(np.arange(len(rows)), [f"{r['name']}\n({r['test_images']:,} test)"
                                         for r in rows])
    ax.set_ylim(max(0.0, math.floor(low / 5) * 5 - 5), 100.5)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.set_title(f"W{result['recipe']['wbits']}A{result['recipe']['abits']} TDNN, one recipe",
                 fontsize=10)
    missing = [r["name"] for r in result["datasets"] if r["status"] != "ok"]
    if missing:
        fig.text(0.02, 0.01, f"not run (files unavailable or flow failed): "
                              f"{', '.join(missing)}; see datasets.json", fontsize=8)
    from pynq_neuro.fileio import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------------- main


def run(recipe: Recipe, quick: bool, log: Callable[[str], None] = print) -> tuple[
        dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every dataset through the flow; the result and example images of each that ran."""
    import torch

    from pynq_neuro.data import DATASETS, load_dataset

    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    examples = {}
    todo: list[tuple[str, list[str], Any]] = []
    if not quick:
        for name in DATASETS:
            log(f"{name}: looking for its files")
            found = probe(name)
            if isinstance(found, str):
                log(f"  unavailable: {found}")
                rows.append({"name": name, "status": "unavailable", "reason": found})
            else:
                rows.append({"name": name, "status": "pending"})
                todo.append((name, ["--dataset", name], found))
    WORK.mkdir(parents=True, exist_ok=True)
    npz = WORK / f"{UCI_NAME}.npz"
    uci = make_uci_digits(npz)
    log(f"{UCI_NAME}: wrote {rel(npz)} (sha256 {uci['file_sha256'][:12]})")
    todo.append((UCI_NAME, ["--data", rel(npz)],
                 (load_dataset(split="train", path=npz), load_dataset(split="test", path=npz))))
    for name, data_args, (train_ds, test_ds) in todo:
        log(f"{name}: {len(train_ds)} training, {len(test_ds)} test images")
        row = run_dataset(name, data_args, train_ds, test_ds, recipe, log)
        if name == UCI_NAME:
            row["conversion"] = {k: (rel(Path(v)) if k == "file" else v)
                                 for k, v in uci.items()}
            rows.append(row)
        else:  # in the registry's order
            rows[[r["name"] for r in rows].index(name)] = row
        examples[name] = (test_ds.images[:EXAMPLES], test_ds.labels[:EXAMPLES])
    result = {
        "benchmark": "datasets",
        "recipe": {**asdict(recipe), "description": recipe.describe()},
        "environment": {"machine": f"{platform.machine()}, Python {platform.python_version()}",
                        "cpus": os.cpu_count(), "torch_version": torch.__version__,
                        "OMP_NUM_THREADS of the commands": str(recipe.threads),
                        "PYNQ_NEURO_DATA": os.environ.get("PYNQ_NEURO_DATA")},
        "columns": {
            "float_accuracy": "float model (torch), pynq-neuro eval FLOAT.pt",
            "w2a2_torch_accuracy": "fake-quantized W2A2 model (torch) after QAT, as train "
                                   "measured it (checkpoint metrics.test_accuracy)",
            "integer_accuracy": "integer network (golden model), pynq-neuro eval W2A2.pt "
                                "--check-torch",
            "rtl.bit_exact": "test images whose class and all logits from the RTL "
                             "(Verilator, pynq-neuro verify --rtl) equal the golden model's",
            "train_seconds": "training loop time of each stage, as train measured it",
            "wall_seconds": "wall time of each command"},
        "datasets": rows,
        "total_seconds": time.perf_counter() - start,
    }
    return result, examples


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = ["| dataset | train/test | float | W2A2 (torch) | integer | RTL bit-exact | "
             "training time (float + QAT) |", "|---|---|---|---|---|---|---|"]
    for r in result["datasets"]:
        if r["status"] != "ok":
            lines.append(f"| {r['name']} | - | {r['status']}: {r.get('reason') or r.get('error')}"
                         f" | | | | |")
            continue
        rtl = r["rtl"]
        exact = "-" if rtl["bit_exact"] is None else f"{rtl['bit_exact']:,}"
        lines.append(
            f"| {r['name']} | {r['train_images']:,}/{r['test_images']:,} | "
            f"{100 * r['float_accuracy']:.2f} % | {100 * r['w2a2_torch_accuracy']:.2f} % | "
            f"{100 * r['integer_accuracy']:.2f} % | {exact}/{rtl['digits']:,} | "
            f"{r['train_seconds']['float']:.0f} s + {r['train_seconds']['qat']:.0f} s "
            f"({r['epochs']['float']} + {r['epochs']['qat']} epochs) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the UCI digits alone, one epoch per stage (writes to "
                             "build/datasets/quick/)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on cores that other jobs share, two "
                             "threads made training ten times slower)")
    parser.add_argument("--float-epochs", type=int, default=Recipe.float_epochs,
                        help="float epochs of 60,000 images (default %(default)s)")
    parser.add_argument("--qat-epochs", type=int, default=Recipe.qat_epochs,
                        help="quantization-aware epochs of 60,000 images (default %(default)s)")
    args = parser.parse_args(argv)
    if args.quick:
        recipe = Recipe(float_epochs=1, qat_epochs=1, threads=args.threads, literal_epochs=True)
        out = WORK / "quick"
    else:
        recipe = Recipe(float_epochs=args.float_epochs, qat_epochs=args.qat_epochs,
                        threads=args.threads)
        out = RESULTS
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    result, examples = run(recipe, args.quick, log)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "datasets.json", json.dumps(result, indent=1) + "\n")
    plot(result, examples, out / "datasets.png")
    print(table(result))
    print(f"total {result['total_seconds']:.0f} s -> {rel(out / 'datasets.json')}, "
          f"{rel(out / 'datasets.png')}")
    return 0 if all(r["status"] != "failed" for r in result["datasets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
