"""Helpers shared by the test modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def sparse_digits(n: int, seed: int) -> np.ndarray:
    """``n`` random digits with about 60 % zero pixels (the training tests' inputs)."""
    from pynq_neuro.golden.synthetic import random_digits

    return random_digits(n, seed, zero_share=0.6)


def tiny_config():
    """A small W2A2 TDNN: 8 and 6 units, taps 3, strides 2."""
    from pynq_neuro.models import ModelConfig

    return ModelConfig("tdnn", (8, 6), (3, 3), (2, 2), wbits=2, abits=2)


def tiny_model(seed: int = 0, cfg=None):
    """:func:`tiny_config` (or ``cfg``) with seeded weights and, when quantized, quantizers
    initialised on :func:`sparse_digits`; in eval mode."""
    import torch

    from pynq_neuro.models import NeuroNet
    from pynq_neuro.train import init_quantizers

    cfg = cfg or tiny_config()
    torch.manual_seed(seed)
    model = NeuroNet(cfg)
    if cfg.quantized:
        init_quantizers(model, torch.from_numpy(sparse_digits(256, seed)).float())
    return model.eval()


class WrappedBus:
    """A bus that passes everything to ``inner``; test doubles override what they change."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name

    def read(self, offset):
        return self.inner.read(offset)

    def write(self, offset, value):
        self.inner.write(offset, value)

    def transfer(self, send, recv_words, timeout_s):
        return self.inner.transfer(send, recv_words, timeout_s)

    def reset_dma(self):
        self.inner.reset_dma()

    def cycles(self):
        return self.inner.cycles()

    def close(self):
        self.inner.close()


# a child Python started with this prelude refuses what the board's image does not have
BOARD_BLOCKER = textwrap.dedent("""
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {'torch', 'pynq', 'matplotlib', 'tqdm', 'scipy'}:
                raise ImportError('blocked on the board: ' + name)
    sys.meta_path.insert(0, Block())
""")


def run_numpy_only(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a child Python that cannot import torch, pynq, matplotlib,
    tqdm or scipy, as on the board."""
    return subprocess.run([sys.executable, "-c", BOARD_BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, check=False)
