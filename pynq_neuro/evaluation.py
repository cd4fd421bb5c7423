"""Accuracy of a zoo model, checkpoint, integer network or artifact on the test split of the
dataset it records (numpy; torch only for checkpoints)."""

from __future__ import annotations

import pickle
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from .data import MNIST_RECORD, check_labels, data_for, record_of
from .data.datasets import warn
from .errors import one_line

NUM_CLASSES = 10  # of a floating-point checkpoint (pynq_neuro.models.NUM_CLASSES)


CHECKPOINT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, EOFError,
    ImportError, pickle.UnpicklingError, zipfile.BadZipFile)


def load_checkpoint_and_model(path: str | Path) -> tuple[dict[str, Any], Any]:
    """The checkpoint dictionary and model of a checkpoint file (needs torch). Whatever makes
    the file unusable (not a zip or pickle, truncated, another program's file, a state dict
    that does not fit its configuration) is a ``ValueError`` naming the file; ``OSError``
    passes unchanged. (The loader raises ``CheckpointError`` itself; anything else torch
    raises is wrapped here.)"""
    try:
        from .train import CheckpointError, load_checkpoint, model_from_checkpoint
    except ModuleNotFoundError as e:
        raise ValueError(f"{path}: reading a checkpoint (.pt) needs torch ({e})") from None
    try:
        ckpt = load_checkpoint(path)
        return ckpt, model_from_checkpoint(ckpt, str(path))
    except (OSError, CheckpointError):
        raise
    except CHECKPOINT_ERRORS as e:
        raise ValueError(f"{path}: not a usable pynq-neuro checkpoint ({one_line(e)})") from e


def load_checkpoint_model(path: str | Path) -> Any:
    """The model of a checkpoint file (see :func:`load_checkpoint_and_model`)."""
    return load_checkpoint_and_model(path)[1]


def torch_disagreements(logits: Any, golden_classes: Any) -> int:
    """Digits whose golden class is not a maximum of the torch ``logits``. The golden model
    resolves ties of its integer logits to the lowest index; torch's argmax may pick another
    class of a tied maximum, which is an agreement. Torch computes the scaled logits in
    floating point, so integer ties arrive up to a few ulps apart: values within
    ``TIE_RTOL`` of the maximum (far below one integer step) count as tied."""
    import numpy as np

    logits = np.asarray(logits, np.float64)
    at_golden = logits[np.arange(len(logits)), np.asarray(golden_classes)]
    top = logits.max(axis=1)
    return int((at_golden < top - TIE_RTOL * np.maximum(np.abs(top), 1.0)).sum())


TIE_RTOL = 1e-9


def evaluate(model: str, images: int | None = None, data_dir: str | None = None,
             check_torch: bool = False, *, dataset: str | None = None, other_data: bool = False,
             log: Callable[[str], None] = warn) -> dict[str, Any]:
    """Accuracy of a zoo model, checkpoint, integer network or artifact on the test split of
    the dataset it records (MNIST for a zoo model or a file without a record). ``data_dir`` (a
    folder of IDX files or an ``.npz``) or ``dataset`` (a name) give other data, which must be
    the recorded dataset unless ``other_data`` (then ``log`` warns); see
    :func:`pynq_neuro.data.data_for`."""
    from . import zoo
    from .golden import IntegerNetwork, run

    if images is not None and (isinstance(images, bool) or images < 1):
        raise ValueError(f"--images must be >= 1, got {images}")
    ckpt_path: Path | None = None
    net = None
    ckpt: dict[str, Any] | None = None
    torch_model = None
    if model in zoo.names():
        ckpt_path = zoo.checkpoint_path(model)
        if zoo.network_path(model) is not None:
            net = zoo.load_network(model)
        # the zoo's models are trained on MNIST (zoo.json)
        record = (net.meta.get("dataset") if net is not None else None) or dict(MNIST_RECORD)
        record = record_of(record, model, log)
    elif Path(model).is_dir():
        from .compiler.artifact import dataset_record, load_artifact

        art = load_artifact(model)
        net = art.network
        record = record_of(dataset_record(art.manifest), model, log)
    elif model.endswith(".npz"):
        net = IntegerNetwork.load(model)
        record = record_of(net.meta.get("dataset"), model, log)
    elif model.endswith(".pt"):
        ckpt_path = Path(model)
        ckpt, torch_model = load_checkpoint_and_model(ckpt_path)
        record = record_of(ckpt.get("dataset"), model, log)
    else:
        raise ValueError(f"{model!r} is neither a zoo model ({', '.join(zoo.names())}), "
                         "a checkpoint (.pt), an integer network (.npz) nor an artifact folder")
    if check_torch and ckpt_path is None:
        raise ValueError("--check-torch needs a quantized checkpoint or zoo model")
    data = data_for(record, model, name=dataset, path=data_dir, other_data=other_data, log=log)
    x, y = data.images, data.labels
    if images is not None:
        x, y = x[:images], y[:images]
    result: dict[str, Any] = {"model": model, "images": int(len(x)), "dataset": data.name,
                              "dataset_sha256": data.sha256}
    if ckpt_path is not None and torch_model is None and (net is None or check_torch):
        torch_model = load_checkpoint_model(ckpt_path)
    if ckpt_path is not None and net is None and torch_model.config.quantized:
        from .lower import lower

        net = lower(torch_model)
    if check_torch and net is None:
        raise ValueError("--check-torch needs a quantized checkpoint or zoo model")
    check_labels(y, net.num_classes if net is not None else NUM_CLASSES, data.source)
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
