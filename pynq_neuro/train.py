"""Training: a full-precision warm start, then UniQ quantization-aware training (needs torch).

Typical use is the ``pynq-neuro train`` command; :func:`train` is the library entry point. A
checkpoint (``.pt``) carries everything needed to rebuild and reproduce the model: the model and
training configurations, the state dict, the measured test accuracy and training time, the
per-epoch history and the command line that produced it.

Files: a checkpoint holds only tensors and plain data (dicts, lists, tuples, strings, numbers),
is written atomically and is read with ``torch.load(..., weights_only=True)``, so opening a
checkpoint never runs code; every failure to read one is a :class:`CheckpointError`. A quantized
checkpoint is written together with its integer network (``.npz`` beside it, recording the
checkpoint's SHA-256; see :func:`save_checkpoint_and_network`). Training refuses an output it
could not write before it starts (:func:`check_output_path`), stops on a non-finite loss
(:class:`TrainingError`) and reports layers that output only zeros (dead layers).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pickle
import secrets
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.torch_version import TorchVersion

from .data import DATASETS, DEFAULT_DATASET, DataError, Dataset, check_labels, check_record, \
    load_dataset, load_mnist
from .data.datasets import MNIST_DIGESTS, recommended_max_shift
from .errors import PynqNeuroError
from .fileio import UnsafeFileError, atomic_write_bytes, check_zip, read_regular, sha256_bytes
from .golden.network import CHECKPOINT_DIGEST_KEY, CHECKPOINT_MAX_BYTES
from .models import IMAGE_ROWS, NUM_CLASSES, ModelConfig, NeuroNet

CHECKPOINT_FORMAT = "pynq-neuro-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_SUFFIX = ".pt"
MAX_CHECKPOINT_MEMBERS = 10_000  # zip members of a torch checkpoint (one per tensor, plus a few)
CHANCE_ACCURACY = 0.1
DEAD_CHECK_IMAGES = 1000  # test digits on which a trained model's hidden layers are checked


class CheckpointError(PynqNeuroError, ValueError):
    """A checkpoint file that cannot be read, is not a pynq-neuro checkpoint, or does not fit
    the model it describes."""


class TrainingError(PynqNeuroError, ValueError):
    """Training cannot go on (e.g. the loss is no longer a finite number)."""


@dataclass
class TrainConfig:
    """Optimisation settings. ``None`` fields take :func:`recommended_hparams` for the precision.

    Attributes:
        epochs: passes over the 60,000 training digits.
        lr: peak learning rate of the Adam optimiser (one-cycle schedule).
        weight_decay: decoupled weight decay on weights only; never on step sizes, batch-norm
            parameters or biases.
        batch_size: digits per step.
        max_shift: random translation of each training digit by up to this many pixels;
            ``None``: the dataset's recommendation (:func:`dataset_defaults`: 2 for the digit
            and character sets MNIST and KMNIST, 0 for Fashion-MNIST and for data that is no
            registry dataset). The checkpoint records the value used.
        seed: seed of every random choice (initialisation, shuffling, augmentation).
        threads: torch intra-op threads.
        warm_start: checkpoint of a full-precision model to start quantization-aware training from.
        train_images: use only the first N training digits (smoke tests).
        data_dir: a folder of IDX files or an ``.npz`` with the training and test images.
        dataset: a named dataset (:data:`pynq_neuro.data.DATASETS`); with neither, MNIST.
    """

    epochs: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int = 128
    max_shift: int | None = None
    seed: int = 0
    threads: int = 2
    warm_start: str | None = None
    train_images: int | None = None
    data_dir: str | None = None
    dataset: str | None = None


def recommended_hparams(wbits: int | None, abits: int | None) -> dict[str, Any]:
    """Per-precision defaults: fewer bits need a gentler, longer fine-tune (binary most of all)."""
    if wbits is None:
        return {"epochs": 20, "lr": 3e-3, "weight_decay": 5e-4}
    low = min(wbits, abits or wbits)
    if low == 1:  # binary: long, gentle, no decay pulling latent weights into the sign flip
        return {"epochs": 30, "lr": 1e-3, "weight_decay": 0.0}
    if low == 2:
        return {"epochs": 30, "lr": 1e-3, "weight_decay": 5e-5}
    return {"epochs": 20, "lr": 5e-4, "weight_decay": 1e-4}


def resolve(cfg: TrainConfig, model_cfg: ModelConfig) -> TrainConfig:
    """Fill the ``None`` fields of ``cfg`` from :func:`recommended_hparams`."""
    rec = recommended_hparams(model_cfg.wbits, model_cfg.abits)
    return dataclasses.replace(
        cfg, **{k: v for k, v in rec.items() if getattr(cfg, k) is None}
    )


def dataset_defaults(cfg: TrainConfig, data: Dataset) -> TrainConfig:
    """Fill the dataset-dependent ``None`` fields of ``cfg`` (``max_shift``) with the
    recommendation for ``data`` (:func:`pynq_neuro.data.datasets.recommended_max_shift`)."""
    if cfg.max_shift is not None:
        return cfg
    return dataclasses.replace(cfg, max_shift=recommended_max_shift(data.name))


def augment(images: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each (N, 28, 28) digit by a random offset of up to ``max_shift`` pixels."""
    if max_shift == 0:
        return images
    n, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], rows, cols]


def param_groups(model: NeuroNet, weight_decay: float) -> list[dict[str, Any]]:
    """Weights decay; step sizes, batch-norm parameters and biases do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith("weight") and p.dim() > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@torch.no_grad()
def predict(model: NeuroNet, images: np.ndarray | torch.Tensor, batch: int = 2000,
            dtype: torch.dtype = torch.float32) -> tuple[np.ndarray, np.ndarray]:
    """Logits and predicted classes of ``model`` (evaluation mode) for uint8 digits."""
    model.eval()
    model = model.to(dtype)
    x = torch.from_numpy(np.array(images))
    logits = [model(x[i:i + batch].to(dtype)) for i in range(0, len(x), batch)]
    out = torch.cat(logits).numpy()
    model.float()
    return out, out.argmax(axis=1)


@torch.no_grad()
def init_quantizers(model: NeuroNet, images: torch.Tensor) -> None:
    """MSE-optimal initial steps from the warm-started weights and pre-activation statistics."""
    for layer in [*model.layers, model.classifier]:
        layer.weight_quant.init_from(layer.weight)
    model.eval()
    x = model.frontend(images.float())
    for layer, norm, act in zip(model.layers, model.norms, model.acts):
        pre = norm(F.conv1d(x, layer.weight, stride=layer.stride) if x.dim() == 3
                   else F.linear(x, layer.weight))
        act.init_from(pre)
        x = torch.relu(pre)


def _one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    text = text or type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _refusal(e: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line."""
    if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e):
        detail = next((line.strip() for line in str(e).splitlines()
                       if "Unsupported" in line or "unsupported" in line), "")
        detail = detail.split(" was not an allowed global")[0].split(". Please")[0]
        return ("it holds Python objects other than tensors and plain data, which are not "
                f"loaded ({detail[:200] or 'weights-only load refused it'})")
    return _one_line(e)


def checkpoint_from_bytes(data: bytes, name: str = "checkpoint") -> dict[str, Any]:
    """Parse checkpoint bytes (weights-only: no code runs) and check that they form one."""
    try:
        check_zip(data, MAX_CHECKPOINT_MEMBERS, CHECKPOINT_MAX_BYTES)  # torch stores, unpacked
    except UnsafeFileError as e:
        raise CheckpointError(f"{name}: not a readable checkpoint ({e})") from None
    try:
        # torch.__version__ (a str subclass) was stored as is by earlier versions
        with torch.serialization.safe_globals([TorchVersion]):
            ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever the unpickler raises, the file is refused
        raise CheckpointError(f"{name}: not a readable checkpoint: {_refusal(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{name} is not a pynq-neuro checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{name}: unsupported checkpoint version {ckpt.get('version')!r}")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{name}: missing or malformed state_dict")
    for key in ("model_config", "train_config", "metrics"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            raise CheckpointError(f"{name}: {key} must be a dict")
    if ckpt.get("dataset") is not None:
        try:
            check_record(ckpt["dataset"], f"{name}: dataset")
        except DataError as e:
            raise CheckpointError(str(e)) from None
    return ckpt


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint (a regular file, weights-only) and check that it is one.

    Raises :class:`CheckpointError` for anything but a readable pynq-neuro checkpoint and
    ``FileNotFoundError`` for a missing file."""
    return checkpoint_from_bytes(read_checkpoint_bytes(path), str(path))


def read_checkpoint_bytes(path: str | Path, what: str = "checkpoint") -> bytes:
    """The bytes of the checkpoint file ``path`` (a regular file, size-limited); a missing file
    raises ``FileNotFoundError``, an unreadable one :class:`CheckpointError` (``what`` names
    it in the message)."""
    try:
        return read_regular(path, CHECKPOINT_MAX_BYTES)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except (OSError, UnsafeFileError) as e:
        label = str(path) if what == "checkpoint" else f"{what} {path}"
        raise CheckpointError(f"{label}: cannot read the checkpoint "
                              f"({getattr(e, 'strerror', None) or e})") from None


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path,
                          name: str | None = None) -> NeuroNet:
    """Rebuild the model of a checkpoint (a loaded dict or a path) in evaluation mode.

    Raises :class:`CheckpointError` if the configuration is missing or invalid, or the state
    dict does not fit it (missing or unexpected keys, wrong shapes, non-finite values)."""
    if not isinstance(ckpt, dict):
        name = name or str(ckpt)
        ckpt = load_checkpoint(ckpt)
    name = name or "checkpoint"
    cfg = ckpt.get("model_config")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{name}: missing model_config")
    try:
        model = NeuroNet(ModelConfig.from_dict(cfg))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: invalid model_config ({_one_line(e)})") from None
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{name}: missing state_dict")
    for key, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(
                torch.isfinite(t).all()):
            raise CheckpointError(f"{name}: {key} holds values that are not finite")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{name}: the state_dict does not fit the model_config "
                              f"({_one_line(e)})") from None
    return model.eval()


@torch.no_grad()
def dead_layers(model: NeuroNet, images: np.ndarray | torch.Tensor) -> list[int]:
    """Hidden layers whose output is zero for every one of ``images`` (evaluation mode)."""
    model.eval()
    x = torch.from_numpy(np.array(images)) if not isinstance(images, torch.Tensor) else images
    _, hidden = model(x.float(), return_hidden=True)
    return [i for i, h in enumerate(hidden) if not bool(h.ne(0).any())]


class _ZeroWatch:
    """Forward hooks (while in a ``with`` block) that record which hidden layers output only
    zeros; :meth:`take` returns them and starts a new record."""

    def __init__(self, model: NeuroNet) -> None:
        self.silent = [True] * len(model.acts)
        self.handles = [act.register_forward_hook(self._hook(i))
                        for i, act in enumerate(model.acts)]

    def __enter__(self) -> _ZeroWatch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def _hook(self, i: int):
        def hook(module, inputs, output):
            if self.silent[i] and bool(output.detach().ne(0).any()):
                self.silent[i] = False
        return hook

    def take(self) -> list[int]:
        dead = [i for i, s in enumerate(self.silent) if s]
        self.silent = [True] * len(self.silent)
        return dead

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def fit(
    model: NeuroNet,
    xs: torch.Tensor,
    ys: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    log: Callable[[str], None] = print,
    progress: bool = True,
    on_epoch_start: Callable[[int], None] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    loss_name: str = "loss",
) -> list[dict[str, Any]]:
    """Optimise ``model`` on digits ``xs`` (float pixels) and labels ``ys``; returns the history.

    ``cfg`` must be resolved (no ``None`` fields). ``on_epoch_start(epoch)`` runs before each
    epoch (gradual pruning uses it). ``loss_fn(logits, x, y)`` replaces the cross-entropy
    (distillation uses it; ``loss_name`` names it in the log). A hidden layer that outputs only zeros during an epoch is
    reported through ``log``; a loss that is not finite raises :class:`TrainingError`.
    """
    if cfg.epochs == 0:
        return []
    if cfg.max_shift is None:
        raise ValueError("max_shift is not set; dataset_defaults(cfg, data) gives the "
                         "dataset's recommendation")
    # Adam moments of pruned (zero-gradient) weights decay into denormal floats, which are
    # orders of magnitude slower on CPUs; flushing them to zero changes nothing else.
    torch.set_flush_denormal(True)
    opt = torch.optim.Adam(param_groups(model, 0.0), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(xs) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    decayed = opt.param_groups[0]["params"]
    history = []
    start = time.perf_counter()
    with _ZeroWatch(model) as watch:
        for epoch in range(cfg.epochs):
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            model.train()
            perm = torch.randperm(len(xs), generator=gen)
            loss_sum, correct = 0.0, 0
            batches = range(0, len(xs), cfg.batch_size)
            desc = f"epoch {epoch + 1}/{cfg.epochs}"
            for i in _progress(batches, steps_per_epoch, desc, progress):
                idx = perm[i:i + cfg.batch_size]
                x = augment(xs[idx], cfg.max_shift, gen)
                logits = model(x)
                loss = (F.cross_entropy(logits, ys[idx]) if loss_fn is None
                        else loss_fn(logits, x, ys[idx]))
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        f"training diverged: the loss is {loss_value} in epoch {epoch + 1}, "
                        f"batch {i // cfg.batch_size + 1}; lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if cfg.weight_decay:
                    lr = opt.param_groups[0]["lr"]
                    with torch.no_grad():
                        for p in decayed:
                            p.mul_(1.0 - lr * cfg.weight_decay)
                sched.step()
                loss_sum += loss_value * len(idx)
                correct += int((logits.argmax(1) == ys[idx]).sum())
            entry = {
                "epoch": epoch + 1,
                "loss": loss_sum / len(xs),
                "train_accuracy": correct / len(xs),
                "seconds": time.perf_counter() - start,
            }
            history.append(entry)
            log(f"epoch {epoch + 1}/{cfg.epochs}: {loss_name} {entry['loss']:.4f} "
                f"train acc {entry['train_accuracy']:.4f} ({entry['seconds']:.0f} s)")
            for layer in watch.take():
                log(f"warning: hidden layer {layer} output only zeros in epoch {epoch + 1} "
                    "(a dead layer: nothing reaches the classifier through it)")
    return history


def plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` with only the types a weights-only load reads: tensors, dicts, lists, tuples,
    ``str``, ``int``, ``float``, ``bool`` and ``None`` (str subclasses such as
    ``torch.__version__``, numpy scalars and paths are converted; anything else is refused)."""
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, np.generic) and obj.shape == ():
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        if not all(type(k) in (str, int) for k in obj):
            raise TypeError(f"{where}: dictionary keys must be str or int")
        return {k: plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    raise TypeError(f"{where} holds a {type(obj).__name__}, which a checkpoint cannot store "
                    "(tensors and plain data only)")


def checkpoint_dict(model: NeuroNet, cfg: TrainConfig, history: list[dict[str, Any]],
                    accuracy: float, command: str, **extra: Any) -> dict[str, Any]:
    """The checkpoint of a trained model (see the module docstring); plain data only."""
    info = plain({
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "train_config": asdict(cfg),
        "metrics": {
            "test_accuracy": accuracy,
            "train_seconds": history[-1]["seconds"] if history else 0.0,
            "synapses": model.synapses(),
            "threads": cfg.threads,
        },
        "history": history,
        "command": command,
        "torch_version": torch.__version__,
        **extra,
    })
    return {**info, "state_dict": model.state_dict()}


def checkpoint_bytes(ckpt: dict[str, Any]) -> bytes:
    """The file content of a checkpoint (``torch.save`` of its plain form)."""
    state = ckpt.get("state_dict")
    body = plain({k: v for k, v in ckpt.items() if k != "state_dict"})
    if state is not None:
        body["state_dict"] = state
    buf = io.BytesIO()
    torch.save(body, buf)
    return buf.getvalue()


def check_output_path(path: str | Path, network: bool = False) -> Path:
    """Raise ``ValueError`` (one line) unless a checkpoint can be written to ``path``.

    ``path`` must end in ``.pt``, must not be a folder or another non-regular file, and its
    folder must exist and accept new files (tried by creating and removing a probe file).
    ``network``: the integer network ``path.with_suffix('.npz')`` will be written too.
    """
    path = Path(path)
    if path.suffix != CHECKPOINT_SUFFIX:
        raise ValueError(f"output {path} must end in {CHECKPOINT_SUFFIX}")
    for target in [path] + ([path.with_suffix(".npz")] if network else []):
        if target.is_dir():
            raise ValueError(f"output {target} is a folder")
        if target.exists() and not target.is_file():
            raise ValueError(f"output {target} exists and is not a regular file")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ValueError(f"cannot write {path}: folder {folder} {what}")
    probe = folder / f".{path.name}.{secrets.token_hex(6)}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as e:
        raise ValueError(f"cannot write {path}: folder {folder} is not writable "
                         f"({e.strerror})") from None
    os.unlink(probe)
    return path


def save_checkpoint(ckpt: dict[str, Any], output: str | Path) -> None:
    """Write a checkpoint atomically (its folder must exist)."""
    check_output_path(output)
    atomic_write_bytes(output, checkpoint_bytes(ckpt))


def _network_of(ckpt: dict[str, Any], model: NeuroNet | None, name: str, data: bytes):
    from .lower import lower

    model = model if model is not None else model_from_checkpoint(ckpt)
    meta = {"checkpoint": name, CHECKPOINT_DIGEST_KEY: sha256_bytes(data)}
    if ckpt.get("dataset") is not None:
        meta["dataset"] = dict(ckpt["dataset"])
    return lower(model, meta=meta)


def save_checkpoint_and_network(ckpt: dict[str, Any], output: str | Path,
                                model: NeuroNet | None = None) -> Path | None:
    """Write ``ckpt`` to ``output`` (``.pt``) and, for a quantized model, its integer network to
    ``output.with_suffix('.npz')``, recording the checkpoint's name and SHA-256 in the network's
    meta; returns the ``.npz`` path (``None`` for a float model).

    Everything is prepared before anything is written; then the checkpoint and the network are
    each replaced atomically, checkpoint first. An interruption between the two leaves a new
    checkpoint beside the old network, which :meth:`IntegerNetwork.load` then refuses as stale.
    ``model`` is the model of ``ckpt`` (rebuilt from it when omitted). Should the network be
    impossible to make, the checkpoint is still written and a ``ValueError`` says so.
    """
    output = Path(output)
    cfg = ckpt.get("model_config")
    quantized = model.config.quantized if model is not None else bool(
        isinstance(cfg, dict) and cfg.get("wbits") is not None)
    check_output_path(output, network=quantized)
    data = checkpoint_bytes(ckpt)
    try:
        network = _network_of(ckpt, model, output.name, data).to_bytes() if quantized else None
    except ValueError as e:  # keep the (expensive) checkpoint, then report
        atomic_write_bytes(output, data)
        raise ValueError(f"saved {output}, but its integer network could not be made: "
                         f"{_one_line(e)}") from e
    atomic_write_bytes(output, data)
    if network is None:
        return None
    npz = output.with_suffix(".npz")
    atomic_write_bytes(npz, network)
    return npz



def save_and_report(ckpt: dict[str, Any], output: str | Path, model: Any,
                    log: Callable[[str], None] = print) -> None:
    """:func:`save_checkpoint_and_network`, then say what was written."""
    npz = save_checkpoint_and_network(ckpt, output, model)
    log(f"saved {output}")
    if npz is not None:
        log(f"saved {npz} (integer network)")

def lower_checkpoint(path: str | Path) -> Path:
    """Lower the quantized checkpoint ``path`` again and write its integer network beside it
    (``.npz``, recording the checkpoint's SHA-256); returns the ``.npz`` path."""
    path = Path(path)
    data = read_checkpoint_bytes(path)
    ckpt = checkpoint_from_bytes(data, str(path))
    model = model_from_checkpoint(ckpt, str(path))
    if not model.config.quantized:
        raise ValueError(f"{path} is a floating-point model and has no integer form")
    npz = path.with_suffix(".npz")
    _network_of(ckpt, model, path.name, data).save(npz)
    return npz


def _check_config(cfg: TrainConfig) -> None:
    """Refuse settings that would fail only once training runs."""
    for name, low in (("epochs", 0), ("batch_size", 1), ("max_shift", 0), ("threads", 1)):
        v = getattr(cfg, name)
        if name == "max_shift" and v is None:
            continue  # the dataset's recommendation, once the data is known
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    if cfg.train_images is not None and (not isinstance(cfg.train_images, int)
                                         or cfg.train_images < 1):
        raise ValueError(f"train_images must be an integer >= 1, got {cfg.train_images!r}")
    if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"lr must be a positive number, got {cfg.lr!r}")
    if not (isinstance(cfg.weight_decay, (int, float)) and math.isfinite(cfg.weight_decay)
            and cfg.weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {cfg.weight_decay!r}")
    if cfg.dataset is not None and cfg.dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {cfg.dataset!r}")
    if cfg.dataset is not None and cfg.data_dir is not None:
        raise ValueError("give a dataset name or a data path (data_dir), not both")


def training_data(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    """The training and test splits ``cfg`` names (MNIST unless ``data_dir`` or ``dataset``);
    labels must be classes of the network."""
    if cfg.data_dir is None and cfg.dataset in (None, DEFAULT_DATASET):
        splits = [Dataset("mnist", s, *load_mnist(s), MNIST_DIGESTS[s], "mnist")
                  for s in ("train", "test")]
    else:
        splits = [load_dataset(cfg.dataset, s, path=cfg.data_dir) for s in ("train", "test")]
    for ds in splits:
        check_labels(ds.labels, NUM_CLASSES, f"{ds.source} ({ds.split} split)")
    return splits[0], splits[1]


def dataset_record(train_ds: Dataset, test_ds: Dataset) -> dict[str, str]:
    """The dataset record of a checkpoint: the test split's record and the training digest."""
    return {**test_ds.record(), "train_sha256": train_ds.sha256}


def report_dead_layers(model: NeuroNet, images: np.ndarray, log: Callable[[str], None]) -> None:
    """Log a warning for every hidden layer that outputs only zeros on ``images``."""
    for i in dead_layers(model, images[:DEAD_CHECK_IMAGES]):
        log(f"warning: hidden layer {i} outputs 0 for all of the first "
            f"{min(len(images), DEAD_CHECK_IMAGES)} test digits (a dead layer)")


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    output: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a model and return its checkpoint dictionary.

    With ``output`` (``.pt``, checked before training starts) the checkpoint is saved, and for a
    quantized model also its integer network (``.npz``), by :func:`save_checkpoint_and_network`.
    """
    cfg = resolve(cfg, model_cfg)
    _check_config(cfg)
    if output is not None:
        check_output_path(output, network=model_cfg.quantized)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    train_ds, test_ds = training_data(cfg)
    train_x, train_y = train_ds.images, train_ds.labels
    test_x, test_y = test_ds.images, test_ds.labels
    log(f"dataset: {test_ds.describe()}, {len(train_x)} training and {len(test_x)} test images")
    if cfg.max_shift is None:
        cfg = dataset_defaults(cfg, test_ds)
        whose = f"'{test_ds.name}'" if test_ds.name in DATASETS else "data outside the registry"
        log(f"augmentation: shifts of up to {cfg.max_shift} px (the default for {whose}; "
            f"--max-shift sets it)")
    if model_cfg.rows < IMAGE_ROWS:
        log(f"model: reads rows 0..{model_cfg.rows - 1} of {IMAGE_ROWS} (rows = "
            f"{model_cfg.rows})")
    if cfg.train_images is not None:
        train_x, train_y = train_x[: cfg.train_images], train_y[: cfg.train_images]
    xs = torch.from_numpy(np.array(train_x)).float()
    ys = torch.from_numpy(np.array(train_y)).long()

    model = NeuroNet(model_cfg)
    warm_info = None
    if cfg.warm_start is not None:
        warm = load_checkpoint(cfg.warm_start)
        try:
            missing, unexpected = model.load_state_dict(warm["state_dict"], strict=False)
        except RuntimeError as e:
            raise ValueError(f"warm start {cfg.warm_start} does not match the architecture: "
                             f"{_one_line(e)}") from None
        if unexpected or any(not k.endswith("step") for k in missing):
            raise ValueError(
                f"warm start {cfg.warm_start} does not match the architecture "
                f"(missing {missing}, unexpected {unexpected})"
            )
        warm_info = {"path": str(cfg.warm_start),
                     "accuracy": warm.get("metrics", {}).get("test_accuracy")}
    if model_cfg.quantized:
        if cfg.warm_start is None:
            log("note: quantization-aware training without a warm start")
        init_quantizers(model, xs[:2048])

    history = fit(model, xs, ys, cfg, gen, log=log, progress=progress)
    train_seconds = history[-1]["seconds"] if history else 0.0
    _, pred = predict(model, test_x)
    accuracy = float((pred == test_y).mean())
    log(f"{model_cfg.name}: test accuracy {accuracy:.4f} ({model.synapses()} synapses, "
        f"{train_seconds:.0f} s)")
    report_dead_layers(model, test_x, log)
    if accuracy < 2 * CHANCE_ACCURACY:
        log(f"warning: test accuracy {accuracy:.4f} is close to chance ({CHANCE_ACCURACY})")
    if command is None:
        command = shlex.join(["pynq-neuro", *sys.argv[1:]])
    ckpt = checkpoint_dict(model, cfg, history, accuracy, command, warm_start=warm_info,
                           dataset=dataset_record(train_ds, test_ds))
    if output is not None:
        save_and_report(ckpt, output, model, log)
    return ckpt
