"""Knowledge distillation: a quantized (student) model learns from a trained teacher's logits.

The loss mixes the hard-label cross-entropy with the Kullback-Leibler divergence between the
teacher's and the student's softened output distributions (Hinton et al., 2015)::

    loss = (1 - weight) * CE(student, label)
           + weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))

``T^2`` keeps the gradient of the soft term on the scale of the hard one. The teacher sees the
same (augmented) 8-bit digits as the student and applies its own input quantizer, so a student
with fewer input bits still learns from the full-precision pixels. :func:`fit_distilled` is the
fine-tune loop of ``train.fit`` with this loss; the teacher is frozen in evaluation mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..fileio import sha256_bytes

@dataclass(frozen=True)
class DistillConfig:
    """Distillation settings.

    Attributes:
        teacher: checkpoint (``.pt``) of the teacher model (any precision).
        weight: share of the soft (teacher) term in the loss, in [0, 1]; 0 is plain
            cross-entropy, 1 ignores the labels.
        temperature: softening of both distributions (> 0); higher spreads the teacher's
            probability over the wrong classes, whose ranking is what the student learns.
    """

    teacher: str
    weight: float
    temperature: float

    def __post_init__(self) -> None:
        w, t = self.weight, self.temperature
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (
                math.isfinite(w) and 0 <= w <= 1):
            raise ValueError(f"distillation weight must be a number in [0, 1], got {w!r}")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (
                math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {t!r}")
        object.__setattr__(self, "teacher", str(self.teacher))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                 weight: float, temperature: float) -> torch.Tensor:
    """``(1 - weight) * CE + weight * T^2 * KL(teacher || student)`` on softened logits (mean
    over the batch); ``weight`` 0 is exactly the cross-entropy."""
    ce = F.cross_entropy(student, labels)
    if weight == 0:
        return ce
    t = float(temperature)
    kl = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher.detach() / t, dim=1),
                  reduction="batchmean", log_target=True)
    return (1.0 - weight) * ce + weight * t * t * kl


class Teacher:
    """A frozen model (evaluation mode, no gradients) loaded from a checkpoint; calling it on
    8-bit digits (N, 28, 28) returns its logits."""

    def __init__(self, model: torch.nn.Module, info: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.info = dict(info or {})

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Teacher:
        """Load a teacher; :attr:`info` records its path, SHA-256, name and test accuracy."""
        from ..train import checkpoint_from_bytes, model_from_checkpoint, read_checkpoint_bytes

        data = read_checkpoint_bytes(path, "teacher checkpoint")
        ckpt = checkpoint_from_bytes(data, f"teacher {path}")
        model = model_from_checkpoint(ckpt, f"teacher {path}")
        return cls(model, {"path": str(path), "sha256": sha256_bytes(data),
                           "name": model.config.name,
                           "accuracy": ckpt.get("metrics", {}).get("test_accuracy")})

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)


def fit_distilled(
    model: torch.nn.Module,
    xs: torch.Tensor,
    ys: torch.Tensor,
    cfg: Any,
    gen: torch.Generator,
    teacher: Teacher,
    distill: DistillConfig,
    log: Callable[[str], None] = print,
    progress: bool = True,
    on_epoch_start: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """``train.fit`` with :func:`distill_loss` against ``teacher``: the same optimiser (Adam,
    decoupled weight decay on weights), one-cycle schedule, augmentation, shuffling, hooks,
    dead-layer warnings and history (``loss`` is the distillation loss)."""
    from ..train import fit

    def loss_fn(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return distill_loss(logits, teacher(x), y, distill.weight, distill.temperature)

    return fit(model, xs, ys, cfg, gen, log=log, progress=progress,
               on_epoch_start=on_epoch_start, loss_fn=loss_fn, loss_name="distillation loss")
