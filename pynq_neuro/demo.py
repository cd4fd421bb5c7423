"""``make demo``: evaluate every shipped model on the MNIST test set and plot the results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_demo(output: Path, images: int | None = None, data_dir: str | None = None) -> list[dict]:
    """Evaluate the zoo (golden model for integer networks), print a table, save plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import zoo
    from .data import load_mnist
    from .evaluation import evaluate
    from .fileio import atomic_write_text
    from .golden import run

    if images is not None and (isinstance(images, bool) or images < 1):
        raise ValueError(f"images must be >= 1, got {images}")
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output} is not a folder: choose another output folder for the plots")
    output.mkdir(parents=True, exist_ok=True)
    results = []
    width = max(len(n) for n in ["model", *zoo.names()]) + 2
    print(f"{'model':<{width}}{'engine':>11}{'bits':>7}{'synapses':>10}{'accuracy':>10}"
          f"{'time':>8}")
    for name in zoo.names():
        r = evaluate(name, images, data_dir)
        results.append(r)
        bits = "float" if r["engine"] == "torch-float" else f"W{r['wbits']}A{r['abits']}"
        print(f"{name:<{width}}{r['engine']:>11}{bits:>7}{r['synapses']:>10}"
              f"{100 * r['accuracy']:>9.2f}%{r['seconds']:>7.2f}s")
    atomic_write_text(output / "results.json", json.dumps(results, indent=2) + "\n")

    x, y = load_mnist("test", data_dir)
    quantized = [n for n in zoo.names() if zoo.network_path(n) is not None]
    fig = plt.figure(figsize=(14, 8))
    ax = fig.add_subplot(2, 2, 1)
    labels = [r["model"] for r in results]
    acc = [100 * r["accuracy"] for r in results]
    ax.bar(labels, acc, color="tab:blue")
    ax.set_ylim(min(acc) - 0.5, 100)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"MNIST test set ({results[0]['images']} digits)")
    for i, a in enumerate(acc):
        ax.text(i, a + 0.03, f"{a:.2f}", ha="center")
    if quantized:
        name = quantized[0]
        net = zoo.load_network(name)
        res = run(net, x[: results[0]["images"]])
        truth = y[: len(res.classes)]
        ax = fig.add_subplot(2, 2, 2)
        cm = np.zeros((10, 10), dtype=int)
        np.add.at(cm, (truth, res.classes), 1)
        ax.imshow(np.log1p(cm), cmap="Blues")
        for i in range(10):
            for j in range(10):
                if cm[i, j]:
                    ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: confusion matrix (golden model)")
        wrong = np.flatnonzero(res.classes != truth)[:8]
        right = np.flatnonzero(res.classes == truth)[:8]
        for i, idx in enumerate(np.concatenate([right, wrong])[:16]):
            a = fig.add_subplot(4, 16, 33 + i + (16 if i >= 8 else 0) - (8 if i >= 8 else 0))
            a.imshow(x[idx], cmap="gray_r")
            ok = res.classes[idx] == truth[idx]
            a.set_title(f"{res.classes[idx]}", color="green" if ok else "red", fontsize=9)
            a.axis("off")
    fig.suptitle("pynq-neuro model zoo, evaluated by the integer golden model")
    fig.tight_layout()
    path = output / "demo.png"
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")
    compile_default(output / "artifact", x, y, data_dir)
    return results


def compile_default(output: Path, x: np.ndarray, y: np.ndarray,
                    data_dir: str | None = None) -> None:
    """Compile the zoo's hardware model and check the artifact's golden model."""
    from . import zoo
    from .compiler.artifact import load_artifact
    from .compiler.compile import CompileConfig, compile_network
    from .compiler.inspect import plot, summary_table
    from .data import sample_indices
    from .golden import run

    name = zoo.hardware_default()
    print(f"\ncompiling {name} for the xc7z020 ...")
    cfg = CompileConfig()
    compile_network(name, output, cfg, x[sample_indices(len(x), cfg.sample_digits)])
    art = load_artifact(output)
    print(summary_table(art))
    res = run(art.network, x)
    ref = run(zoo.load_network(name), x)
    same = int((res.logits == ref.logits).all(axis=1).sum())
    print(f"artifact golden model: accuracy {100 * (res.classes == y).mean():.2f} %, "
          f"logits identical to the integer model on {same}/{len(x)} digits")
    for p in plot(art, output / "inspect"):
        print(f"plot: {p}")
