"""Training: a full-precision warm start, then UniQ quantization-aware training (needs torch).

Typical use is the ``pynq-neuro train`` command; :func:`train` is the library entry point. A
checkpoint (``.pt``) carries everything needed to rebuild and reproduce the model: the model and
training configurations, the state dict, the measured test accuracy and training time, the
per-epoch history and the command line that produced it.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import load_mnist
from .models import ModelConfig, NeuroNet

CHECKPOINT_FORMAT = "pynq-neuro-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Optimisation settings. ``None`` fields take :func:`recommended_hparams` for the precision.

    Attributes:
        epochs: passes over the 60,000 training digits.
        lr: peak learning rate of the Adam optimiser (one-cycle schedule).
        weight_decay: decoupled weight decay on weights only; never on step sizes, batch-norm
            parameters or biases.
        batch_size: digits per step.
        max_shift: random translation of each training digit by up to this many pixels.
        seed: seed of every random choice (initialisation, shuffling, augmentation).
        threads: torch intra-op threads.
        warm_start: checkpoint of a full-precision model to start quantization-aware training from.
        train_images: use only the first N training digits (smoke tests).
        data_dir: MNIST directory (else the loader's search order applies).
    """

    epochs: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int = 128
    max_shift: int = 2
    seed: int = 0
    threads: int = 2
    warm_start: str | None = None
    train_images: int | None = None
    data_dir: str | None = None


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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint and check that it is one."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a pynq-neuro checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint version {ckpt.get('version')}")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> NeuroNet:
    """Rebuild the model of a checkpoint (a loaded dict or a path) in evaluation mode."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    model = NeuroNet(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


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
) -> list[dict[str, Any]]:
    """Optimise ``model`` on digits ``xs`` (float pixels) and labels ``ys``; returns the history.

    ``cfg`` must be resolved (no ``None`` fields). ``on_epoch_start(epoch)`` runs before each
    epoch (gradual pruning uses it).
    """
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
    for epoch in range(cfg.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        perm = torch.randperm(len(xs), generator=gen)
        loss_sum, correct = 0.0, 0
        batches = range(0, len(xs), cfg.batch_size)
        for i in _progress(batches, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", progress):
            idx = perm[i:i + cfg.batch_size]
            x = augment(xs[idx], cfg.max_shift, gen)
            logits = model(x)
            loss = F.cross_entropy(logits, ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if cfg.weight_decay:
                lr = opt.param_groups[0]["lr"]
                with torch.no_grad():
                    for p in decayed:
                        p.mul_(1.0 - lr * cfg.weight_decay)
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == ys[idx]).sum())
        entry = {
            "epoch": epoch + 1,
            "loss": loss_sum / len(xs),
            "train_accuracy": correct / len(xs),
            "seconds": time.perf_counter() - start,
        }
        history.append(entry)
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {entry['loss']:.4f} "
            f"train acc {entry['train_accuracy']:.4f} ({entry['seconds']:.0f} s)")
    return history


def checkpoint_dict(model: NeuroNet, cfg: TrainConfig, history: list[dict[str, Any]],
                    accuracy: float, command: str, **extra: Any) -> dict[str, Any]:
    """The checkpoint of a trained model (see the module docstring)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "train_config": asdict(cfg),
        "state_dict": model.state_dict(),
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
    }


def save_checkpoint(ckpt: dict[str, Any], output: str | Path) -> None:
    """Write a checkpoint, creating its folder."""
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, output)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    output: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a model and return (and optionally save) its checkpoint dictionary."""
    cfg = resolve(cfg, model_cfg)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    train_x, train_y = load_mnist("train", cfg.data_dir)
    test_x, test_y = load_mnist("test", cfg.data_dir)
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
                             f"{e}") from None
        if unexpected or any(not k.endswith("step") for k in missing):
            raise ValueError(
                f"warm start {cfg.warm_start} does not match the architecture "
                f"(missing {missing}, unexpected {unexpected})"
            )
        warm_info = {"path": str(cfg.warm_start), "accuracy": warm["metrics"]["test_accuracy"]}
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
    if command is None:
        command = shlex.join(["pynq-neuro", *sys.argv[1:]])
    ckpt = checkpoint_dict(model, cfg, history, accuracy, command, warm_start=warm_info)
    if output is not None:
        save_checkpoint(ckpt, output)
        log(f"saved {output}")
    return ckpt
