"""Numpy golden model: runs an :class:`IntegerNetwork` exactly, digit batch by digit batch.

Accumulations use BLAS matrix products in floating point; they are exact because every partial
sum is an integer below the format's exact range (2^24 for float32, 2^53 for float64), which is
checked per layer from the accumulator bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .network import IMAGE_COLS, IMAGE_ROWS, IntegerNetwork, IntLayer


@dataclass
class GoldenResult:
    """Integer logits (N, classes), classes (N,) and, when traced, every layer's activations."""

    logits: np.ndarray
    classes: np.ndarray
    activations: list[np.ndarray] | None = None


def check_images(images: np.ndarray) -> np.ndarray:
    """Validate digits: uint8 of shape (N, 28, 28) or (28, 28); returns (N, 28, 28)."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"digits must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"digits must be uint8 pixels 0..255, got dtype {images.dtype}")
    if images.shape == (IMAGE_ROWS, IMAGE_COLS):
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_ROWS, IMAGE_COLS):
        raise ValueError(f"digits must have shape (N, 28, 28) or (28, 28), got {images.shape}")
    return images


def input_codes(net: IntegerNetwork, images: np.ndarray) -> np.ndarray:
    """First-layer activations (N, frames = rows, channels = columns): ``pixel >> shift``."""
    return images >> net.input_shift


def _exact_dtype(bound: int) -> type:
    """float32 when every integer up to ``bound`` is exact in it, else float64."""
    return np.float32 if bound < 2**24 else np.float64


def accumulate(layer: IntLayer, acts: np.ndarray, in_max: int) -> np.ndarray:
    """Accumulators (N, out_frames, out_channels) of one layer for activations (N, T, C).

    The result holds exact integers in a floating-point dtype (see :func:`_exact_dtype`).
    """
    n = acts.shape[0]
    dtype = _exact_dtype(layer.accumulator_bound(in_max) + 1)
    windows = sliding_window_view(acts.astype(dtype), layer.taps, axis=1)[:, :: layer.stride]
    windows = windows[:, : layer.out_frames]  # (N, T_out, C, K)
    flat = windows.transpose(0, 1, 3, 2).reshape(n * layer.out_frames, -1)  # tap-major, like codes
    w = layer.weights().reshape(layer.out_channels, -1).T.astype(dtype)
    return (flat @ w).reshape(n, layer.out_frames, layer.out_channels)


def threshold(layer: IntLayer, acc: np.ndarray) -> np.ndarray:
    """Activations: how many of each neuron's thresholds the accumulator reaches."""
    th = layer.thresholds.T.astype(acc.dtype)  # (levels, out_channels), exact: |th| <= bound + 1
    count = np.zeros(acc.shape, dtype=np.int16)
    for level in th:
        np.add(count, acc >= level, out=count, casting="unsafe")
    return count


def run(net: IntegerNetwork, images: np.ndarray, batch: int = 1000,
        trace: bool = False) -> GoldenResult:
    """Classify uint8 digits with the integer network."""
    images = check_images(images)
    logits, traces = [], []
    for start in range(0, len(images), batch):
        acts = input_codes(net, images[start:start + batch])
        layer_acts = [acts]
        for i, layer in enumerate(net.layers):
            acc = accumulate(layer, acts, net.in_max(i))
            if layer.is_classifier:
                logits.append(acc[:, 0, :].astype(np.int64) + layer.bias.astype(np.int64))
            else:
                acts = threshold(layer, acc)
                if trace:
                    layer_acts.append(acts)
        if trace:
            traces.append(layer_acts)
    all_logits = np.concatenate(logits) if logits else np.zeros((0, net.num_classes), np.int64)
    activations = None
    if trace:
        activations = [np.concatenate([t[i] for t in traces]).astype(np.int64)
                       for i in range(len(traces[0]))]
    return GoldenResult(all_logits, all_logits.argmax(axis=1), activations)


def predict(net: IntegerNetwork, images: np.ndarray) -> np.ndarray:
    """Predicted classes (N,) of uint8 digits."""
    return run(net, images).classes
