"""Helpers shared by the test modules."""

from __future__ import annotations

import numpy as np

from pynq_neuro.data import DataError, load_mnist


def train_split_available() -> bool:
    """True when the MNIST training split can be loaded without a download."""
    try:
        load_mnist("train", download=False)
        return True
    except DataError:
        return False


def torch_codes(model, images: np.ndarray):
    """Logits and every hidden layer's activation codes (N, frames, units) of ``model``,
    evaluated in float64."""
    import torch

    from pynq_neuro.quant import effective_step

    with torch.no_grad():
        model.double()
        logits, hidden = model(torch.from_numpy(images).double(), return_hidden=True)
        model.float()
        codes = []
        for h, act in zip(hidden, model.acts):
            a = torch.round(h / effective_step(act.step.double())).numpy().astype(np.int64)
            codes.append(a.transpose(0, 2, 1) if a.ndim == 3 else a[:, None, :])
    return logits.numpy(), codes
