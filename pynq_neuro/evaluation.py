"""Accuracy of a zoo model, checkpoint, integer network or artifact on the MNIST test set
(numpy; torch only for checkpoints)."""

from __future__ import annotations

import pickle
import time
import zipfile
from pathlib import Path
from typing import Any

from .errors import one_line


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
        raise ValueError(f"{path}: not a usable pynq-neuro checkpoint ({one_line(e)})") from e


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
