"""Plots shared by the notebooks (numpy; matplotlib is imported inside each function).

Every function returns the matplotlib figure it drew; nothing is shown or saved here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import PynqNeuroError
from .util import ceil_div

NUM_CLASSES = 10


class PlotInputError(PynqNeuroError, ValueError):
    """Arrays handed to a plot do not fit together."""


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray,
                     classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts ``cm[true, predicted]`` (int64, ``classes`` x ``classes``)."""
    truth = np.asarray(truth).astype(np.int64).reshape(-1)
    predicted = np.asarray(predicted).astype(np.int64).reshape(-1)
    if truth.shape != predicted.shape:
        raise PlotInputError(f"{len(truth)} labels but {len(predicted)} predictions")
    for name, v in (("labels", truth), ("predictions", predicted)):
        if len(v) and (v.min() < 0 or v.max() >= classes):
            raise PlotInputError(f"{name} must lie in 0..{classes - 1}, got {v.min()}..{v.max()}")
    cm = np.zeros((classes, classes), np.int64)
    np.add.at(cm, (truth, predicted), 1)
    return cm


def digit_gallery(images: np.ndarray, labels: Sequence[int] | None = None,
                  predicted: Sequence[int] | None = None, columns: int = 10,
                  title: str | None = None, size: float = 1.1):
    """A grid of digits. With ``predicted`` each title is the prediction, green when it equals
    the label (or black without labels) and red when it does not."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    n = len(images)
    for name, v in (("labels", labels), ("predictions", predicted)):
        if v is not None and len(v) != n:
            raise PlotInputError(f"{n} digits but {len(v)} {name}")
    columns = max(1, min(columns, n))
    rows = max(1, ceil_div(n, columns))
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        if predicted is not None:
            p = int(predicted[i])
            ok = labels is None or p == int(labels[i])
            text = str(p) if labels is None or ok else f"{p} (is {int(labels[i])})"
            color = "black" if labels is None else ("tab:green" if ok else "tab:red")
            ax.set_title(text, fontsize=9, color=color)
        elif labels is not None:
            ax.set_title(str(int(labels[i])), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_plot(cm: np.ndarray, title: str = "confusion matrix"):
    """A confusion matrix (from :func:`confusion_matrix`) with its counts written in."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise PlotInputError(f"a confusion matrix is square, got shape {cm.shape}")
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(np.log1p(cm), cmap="Blues")
    top = np.log1p(cm).max() or 1.0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                dark = np.log1p(cm[i, j]) > 0.6 * top
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    ax.set_xticks(range(cm.shape[1]))
    ax.set_yticks(range(cm.shape[0]))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}\n{cm.sum()} digits, accuracy {100 * acc:.2f} %", fontsize=10)
    fig.tight_layout()
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]],
                    title: str | None = None):
    """Loss and training accuracy per epoch of several runs (``{name: history}``, the
    ``history`` list of a checkpoint)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, hist in histories.items():
        if not hist:
            continue
        epochs = [h["epoch"] for h in hist]
        a1.plot(epochs, [h["loss"] for h in hist], marker=".", label=name)
        a2.plot(epochs, [100 * h["train_accuracy"] for h in hist], marker=".", label=name)
    a1.set_yscale("log")
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss (cross entropy)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("training accuracy (%)")
    a2.legend(fontsize=8)
    for a in (a1, a2):
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def compare_histograms(samples: Mapping[str, np.ndarray], xlabel: str,
                       title: str | None = None, bins: int | Sequence[float] = 40):
    """Overlaid step histograms of several samples on common bins, each with its mean."""
    import matplotlib.pyplot as plt

    arrays = {k: np.asarray(v, float).reshape(-1) for k, v in samples.items() if len(v)}
    if not arrays:
        raise PlotInputError("no samples to plot")
    if isinstance(bins, int):
        lo = min(a.min() for a in arrays.values())
        hi = max(a.max() for a in arrays.values())
        bins = np.linspace(lo - 0.5, hi + 0.5, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for (name, a), color in zip(arrays.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        ax.hist(a, bins=bins, histtype="step", lw=1.5, color=color,
                label=f"{name} (mean {a.mean():.1f})")
        ax.axvline(a.mean(), color=color, ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("digits")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
