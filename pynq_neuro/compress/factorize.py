"""Factorization passes: magnitude pruning (at once or gradual) and low-rank factorization.

Each pass turns a trained network into a more sparsely connected one; :func:`compress` follows
every pass with a short quantization-aware fine-tune (``train.fit``, or with a teacher
:func:`pynq_neuro.quant.distill.fit_distilled`) and reports the connections of every layer
before and after.

* Pruning sets the layers' masks: a pruned synapse is absent (the weight grid has no zero level).
  Synapses compete by importance ``|w| / step`` (the weight in units of its output unit's
  quantizer step; the layer's RMS weight for a float model), so a global budget compares layers
  fairly. Every output unit keeps at least ``min_per_unit`` synapses and pruned synapses stay
  pruned.
* Gradual pruning (:class:`GradualPruner`, an ``on_epoch_start`` hook of ``train.fit``) reaches
  the target with the cubic schedule of Zhu & Gupta (2017) over the first 60 % of the epochs.
* Low-rank factorization (:func:`low_rank`) replaces a layer ``C -> O`` (K taps, stride S) by
  ``C -> 2r`` (K taps, stride S) and ``2r -> O`` (one tap). From ``W ~ U_r S_r V_r^T`` the first
  layer gets ``[A; -A]`` with ``A = sqrt(S_r) V_r^T`` and the second ``[B, -B]`` with
  ``B = U_r sqrt(S_r)``: since ``relu(z) - relu(-z) = z`` the ReLU of the bottleneck loses
  nothing. The result is an ordinary :class:`NeuroNet` with one more hidden layer, so lowering
  and the golden model apply unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..models import IMAGE_COLS, IMAGE_ROWS, NUM_CLASSES, ModelConfig, NeuroNet
from ..quant import PixelQuantizer, QuantTDConv
from ..quant.distill import DistillConfig, Teacher, fit_distilled
from ..quant.quantizers import effective_step
from ..data.datasets import DATASETS, recommended_max_shift
from ..train import (
    TrainConfig,
    check_output_path,
    checkpoint_dict,
    dataset_record,
    fit,
    load_checkpoint,
    model_from_checkpoint,
    predict,
    recommended_hparams,
    report_dead_layers,
    save_and_report,
    training_data,
)
from ..util import ceil_div

Target = Union[int, list]  # a global synapse count, or one count per layer
Sparsity = Union[float, Sequence[float]]

DEFAULT_EPOCHS = 12
LR_FACTOR = 1.0  # fine-tune peak learning rate relative to quantization-aware training
RAMP = 0.6  # share of the fine-tune epochs over which gradual pruning ramps
INIT_IMAGES = 2048  # training digits used to initialise new quantizer steps
EDGE = 0.01  # reclipped weights sit this fraction of a step inside the quantizer's range


# --------------------------------------------------------------------------- connections


def layer_modules(model: NeuroNet) -> list[nn.Module]:
    """Hidden layers, then the classifier."""
    return [*model.layers, model.classifier]


def layer_names(model: NeuroNet) -> list[str]:
    """State-dict names of :func:`layer_modules`: ``layers.0``, ..., ``classifier``."""
    return [f"layers.{i}" for i in range(len(model.layers))] + ["classifier"]


def kept_mask(layer: nn.Module) -> torch.Tensor:
    """Boolean mask (weight shape) of the synapses a layer keeps."""
    if layer.weight_mask is None:
        return torch.ones(layer.weight.shape, dtype=torch.bool, device=layer.weight.device)
    return layer.weight_mask != 0


def connections(model: NeuroNet) -> list[dict[str, Any]]:
    """Per layer (hidden layers, then the classifier): name, kind, weight shape, total weights
    and kept (unmasked) synapses."""
    rows = []
    for name, layer in zip(layer_names(model), layer_modules(model)):
        rows.append({
            "name": name,
            "kind": "time-delay" if isinstance(layer, QuantTDConv) else "dense",
            "shape": list(layer.weight.shape),
            "total": int(layer.weight.numel()),
            "kept": int(kept_mask(layer).sum()),
        })
    return rows


def total_kept(rows: list[dict[str, Any]]) -> int:
    return sum(r["kept"] for r in rows)


# --------------------------------------------------------------------------- pruning


@torch.no_grad()
def importance(layer: nn.Module) -> torch.Tensor:
    """``|w|`` of every synapse in units of its output unit's weight step, or of the RMS of the
    layer's kept weights for a float layer (weight-shaped)."""
    w = layer.weight.detach().abs()
    if layer.weight_quant is not None:
        step = effective_step(layer.weight_quant.step.detach())
        return w / step.reshape([-1] + [1] * (w.dim() - 1))
    kept = w[kept_mask(layer)]
    rms = kept.pow(2).mean().sqrt() if kept.numel() else w.new_tensor(1.0)
    return w / rms.clamp_min(1e-12)


def _per_unit(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def minimum_kept(model: NeuroNet, min_per_unit: int) -> list[int]:
    """Per layer, the synapses that keeping ``min_per_unit`` per output unit requires."""
    return [int(_per_unit(kept_mask(m)).sum(1).clamp(max=min_per_unit).sum())
            for m in layer_modules(model)]


def _forced(scores: torch.Tensor, kept: torch.Tensor, min_per_unit: int) -> torch.Tensor:
    """The ``min_per_unit`` most important kept synapses of each unit (2-D, unit by row)."""
    forced = torch.zeros_like(kept)
    n = min(min_per_unit, scores.shape[1])
    if n > 0:
        forced.scatter_(1, scores.topk(n, dim=1).indices, True)
    return forced & kept


def _select(scores: list[torch.Tensor], kept: list[torch.Tensor], keep: int,
            min_per_unit: int) -> list[torch.Tensor]:
    """Masks keeping exactly ``keep`` of the kept synapses of the given layers: the per-unit
    minimum first, then the most important of the rest over all layers together."""
    shapes = [s.shape for s in scores]
    scores = [_per_unit(s).masked_fill(~_per_unit(k), -math.inf) for s, k in zip(scores, kept)]
    kept = [_per_unit(k) for k in kept]
    forced = [_forced(s, k, min_per_unit) for s, k in zip(scores, kept)]
    flat = torch.cat([s.masked_fill(f, -math.inf).flatten() for s, f in zip(scores, forced)])
    rest = min(keep - sum(int(f.sum()) for f in forced), int(torch.isfinite(flat).sum()))
    chosen = torch.zeros(flat.shape, dtype=torch.bool)
    if rest > 0:
        chosen[flat.topk(rest).indices] = True
    masks, offset = [], 0
    for f, shape in zip(forced, shapes):
        n = f.numel()
        masks.append((f | chosen[offset:offset + n].reshape(f.shape)).reshape(shape))
        offset += n
    return masks


def apply_target(model: NeuroNet, target: Target, min_per_unit: int = 1) -> None:
    """Prune to ``target``: a global synapse count, or one count per layer (incl. classifier).

    Counts must lie between :func:`minimum_kept` and the synapses kept now (see
    :func:`resolve_target`)."""
    layers = layer_modules(model)
    scores = [importance(m) for m in layers]
    kept = [kept_mask(m) for m in layers]
    if isinstance(target, int):
        masks = _select(scores, kept, target, min_per_unit)
    else:
        masks = [_select([s], [k], t, min_per_unit)[0] for s, k, t in zip(scores, kept, target)]
    for layer, mask in zip(layers, masks):
        if layer.weight_mask is not None or not bool(mask.all()):
            layer.set_mask(mask)


def _sparsities(model: NeuroNet | int, sparsity: Sparsity) -> list[float]:
    n = model if isinstance(model, int) else len(model.layers) + 1
    if isinstance(sparsity, (int, float)):
        values = [float(sparsity)] * n
    else:
        values = [float(s) for s in sparsity]
        if len(values) != n:
            raise ValueError(f"sparsity needs one value per layer including the classifier "
                             f"({n}), got {len(values)}")
    for s in values:
        if not 0.0 <= s < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {s}")
    return values


def resolve_target(model: NeuroNet, sparsity: Sparsity | None = None, budget: int | None = None,
                   min_per_unit: int = 1) -> Target:
    """The pruning target of a sparsity (per-layer counts) or a budget (a global count).

    Sparsity is the share of a layer's weights to remove; a layer already sparser stays as it
    is, and the per-unit minimum wins over the sparsity. A budget must be reachable: at most the
    synapses kept now, at least the per-unit minimum.
    """
    if (sparsity is None) == (budget is None):
        raise ValueError("give either a sparsity or a connection budget")
    if isinstance(min_per_unit, bool) or not isinstance(min_per_unit, int) or min_per_unit < 0:
        raise ValueError(f"min_per_unit must be an integer >= 0, got {min_per_unit!r}")
    rows = connections(model)
    minimum = minimum_kept(model, min_per_unit)
    if budget is not None:
        if isinstance(budget, bool) or int(budget) != budget:
            raise ValueError(f"budget must be an integer, got {budget!r}")
        budget = int(budget)
        total, kept = sum(r["total"] for r in rows), total_kept(rows)
        if budget > total:
            raise ValueError(f"budget {budget} is larger than the network ({total} weights)")
        if budget > kept:
            raise ValueError(f"budget {budget} exceeds the {kept} synapses the network keeps; "
                             "pruning cannot restore pruned synapses")
        if budget < sum(minimum):
            raise ValueError(f"budget {budget} is below the {sum(minimum)} synapses needed to "
                             f"keep {min_per_unit} per unit")
        return budget
    return [min(r["kept"], max(m, round((1.0 - s) * r["total"])))
            for r, m, s in zip(rows, minimum, _sparsities(model, sparsity))]


def prune_magnitude(model: NeuroNet, sparsity: Sparsity | None = None,
                    budget: int | None = None, min_per_unit: int = 1) -> list[dict[str, Any]]:
    """Magnitude pruning at once, by setting masks; returns :func:`connections` after.

    Args:
        sparsity: share of each layer's weights to remove, one value or one per layer
            (hidden layers, then the classifier).
        budget: total synapses to keep over all layers (layers compete by importance).
        min_per_unit: synapses every output unit keeps at least (no dead neurons).
    """
    apply_target(model, resolve_target(model, sparsity, budget, min_per_unit), min_per_unit)
    return connections(model)


@dataclass
class GradualPruner:
    """Gradual magnitude pruning as the ``on_epoch_start`` hook of ``train.fit``.

    Before epoch ``e`` of the first ``ramp_epochs`` (about ``ramp`` of ``epochs``) the model is
    pruned to ``final + (initial - final) * (1 - (e + 1) / ramp_epochs)^3`` synapses (per layer
    for a sparsity, over all layers for a budget); afterwards the masks stay fixed.
    """

    model: NeuroNet = field(repr=False)
    epochs: int
    sparsity: Sparsity | None = None
    budget: int | None = None
    min_per_unit: int = 1
    ramp: float = RAMP
    initial: Target = field(init=False)
    final: Target = field(init=False)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"gradual pruning needs at least one epoch, got {self.epochs}")
        if not 0.0 < self.ramp <= 1.0:
            raise ValueError(f"ramp must be in (0, 1], got {self.ramp}")
        self.final = resolve_target(self.model, self.sparsity, self.budget, self.min_per_unit)
        rows = connections(self.model)
        self.initial = (total_kept(rows) if isinstance(self.final, int)
                        else [r["kept"] for r in rows])

    @property
    def ramp_epochs(self) -> int:
        return max(1, min(self.epochs, round(self.ramp * self.epochs)))

    def fraction(self, epoch: int) -> float:
        """Share of the pruning done before ``epoch``: ``1 - (1 - t)^3``."""
        t = min(epoch + 1, self.ramp_epochs) / self.ramp_epochs
        return 1.0 - (1.0 - t) ** 3

    def target(self, epoch: int) -> Target:
        left = 1.0 - self.fraction(epoch)
        if isinstance(self.final, int):
            return self.final + round((self.initial - self.final) * left)
        return [f + round((i - f) * left) for i, f in zip(self.initial, self.final)]

    def schedule(self) -> list[int]:
        """Total synapses kept during each epoch."""
        return [t if isinstance(t, int) else sum(t)
                for t in (self.target(e) for e in range(self.epochs))]

    def __call__(self, epoch: int) -> None:
        if epoch < self.ramp_epochs:
            apply_target(self.model, self.target(epoch), self.min_per_unit)
            reclip_latent(self.model)


@torch.no_grad()
def reclip_latent(model: NeuroNet) -> None:
    """Move latent weights beyond the quantizer's range onto its edge.

    A weight outside ``[(qmin + 1/2) step, (qmax + 1/2) step]`` already quantizes to the extreme
    level but gets no gradient (the clamp blocks it). Magnitude pruning keeps exactly such
    weights, so without this a pruned binary network could hardly adapt; on the edge they
    quantize the same and learn again (``EDGE`` keeps rounding from pushing them back out)."""
    for layer in layer_modules(model):
        q = layer.weight_quant
        if q is None:
            continue
        step = effective_step(q.step.detach()).reshape([-1] + [1] * (layer.weight.dim() - 1))
        lo, hi = (q.qmin + 0.5 + EDGE) * step, (q.qmax + 0.5 - EDGE) * step
        layer.weight.copy_(torch.minimum(torch.maximum(layer.weight, lo), hi))


# ------------------------------------------------------------------ lane-balanced pruning


def lane_locals(layer: nn.Module, lanes: int) -> int:
    """Output units per lane when the layer runs on ``lanes`` processing elements."""
    if not 1 <= lanes <= layer.weight.shape[0]:
        raise ValueError(f"lanes must be in 1..{layer.weight.shape[0]}, got {lanes}")
    return ceil_div(layer.weight.shape[0], lanes)


@torch.no_grad()
def balanced_mask(layer: nn.Module, lanes: int, keep: int) -> torch.Tensor:
    """Mask keeping, for every column and lane, the ``keep`` most important kept synapses."""
    locals_ = lane_locals(layer, lanes)
    scores = _per_unit(importance(layer)).masked_fill(~_per_unit(kept_mask(layer)), -math.inf)
    out, cols = scores.shape
    padded = scores.new_full((locals_ * lanes, cols), -math.inf)
    padded[:out] = scores
    grid = padded.reshape(locals_, lanes, cols)
    k = min(keep, locals_)
    chosen = torch.zeros(grid.shape, dtype=torch.bool)
    chosen.scatter_(0, grid.topk(k, dim=0).indices, True)
    chosen &= torch.isfinite(grid)
    return chosen.reshape(locals_ * lanes, cols)[:out].reshape(layer.weight.shape)


def prune_balanced(model: NeuroNet, lanes: Sequence[int], keep: Sequence[int]) -> list[dict]:
    """Lane-balanced pruning: layer ``l`` keeps ``keep[l]`` synapses per lane and column with
    ``lanes[l]`` lanes (hidden layers, then the classifier); returns :func:`connections`."""
    layers = layer_modules(model)
    if len(lanes) != len(layers) or len(keep) != len(layers):
        raise ValueError(f"lanes and keep need one value per layer ({len(layers)})")
    for layer, p, k in zip(layers, lanes, keep):
        if k < 1:
            raise ValueError(f"keep must be >= 1 synapse per lane and column, got {k}")
        if k >= lane_locals(layer, p) and layer.weight_mask is None:
            continue
        layer.set_mask(balanced_mask(layer, p, k))
    return connections(model)


def balanced_sparsity(units: int, lanes: int, keep: int) -> float:
    """Sparsity of a dense layer of ``units`` output units after lane-balanced pruning to
    ``keep`` synapses per lane and column (lanes that hold fewer units keep all of theirs)."""
    per_lane = [len(range(p, units, lanes)) for p in range(lanes)]
    return 1.0 - sum(min(keep, n) for n in per_lane) / units


SPARSITY_TOLERANCE = 0.01  # a reachable sparsity this close to the requested one is taken


def _balanced_counts(names: Sequence[str], units: Sequence[int], lanes: Sequence[int],
                     sparsity: Sparsity, approximate: bool) -> list[int]:
    if len(lanes) != len(units):
        raise ValueError(f"lanes needs one value per layer including the classifier "
                         f"({len(units)}), got {len(lanes)}")
    keep = []
    for name, u, p, s in zip(names, units, lanes, _sparsities(len(units), sparsity)):
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= u:
            raise ValueError(f"lanes of {name} must be in 1..{u}, got {p!r}")
        locals_ = ceil_div(u, p)
        k = max(1, round((1.0 - s) * locals_))
        reach = {j: balanced_sparsity(u, p, j) for j in range(1, locals_ + 1)}
        if abs(reach[k] - s) > SPARSITY_TOLERANCE:  # padded lanes: another count may fit
            k = min(reach, key=lambda j: (abs(reach[j] - s), -j))
        if abs(reach[k] - s) > SPARSITY_TOLERANCE:
            values = sorted({round(v, 4) for v in reach.values()})
            shown = ", ".join(f"{v:g}" for v in values) if len(values) <= 12 else (
                f"{len(values)} values in {values[0]:g} .. {values[-1]:g}")
            msg = (f"lane-balanced pruning cannot reach sparsity {s:g} in {name}: {u} units on "
                   f"{p} lanes reach only {shown}; the nearest is {reach[k]:.4g}")
            if not approximate:
                raise ValueError(f"{msg} (request a reachable value or other lanes)")
            warnings.warn(f"{msg}, which is used", UserWarning, stacklevel=3)
        keep.append(k)
    return keep


def balanced_keep(model: NeuroNet, lanes: Sequence[int], sparsity: Sparsity,
                  approximate: bool = False) -> list[int]:
    """Synapses per lane and column that give each layer its requested sparsity.

    With ``lanes`` lanes a layer can only keep ``1..units per lane`` synapses per lane and
    column, so only a few sparsities are reachable. A request farther than
    ``SPARSITY_TOLERANCE`` from every reachable value raises ``ValueError`` naming the layer,
    the request and the reachable values; with ``approximate`` the nearest reachable sparsity
    is taken instead and a ``UserWarning`` reports it.
    """
    units = [m.weight.shape[0] for m in layer_modules(model)]
    return _balanced_counts(layer_names(model), units, list(lanes), sparsity, approximate)


@dataclass
class BalancedPruner:
    """Gradual lane-balanced pruning (``on_epoch_start`` hook of ``train.fit``): the synapses
    per lane and column fall from all to ``keep`` along the cubic schedule of
    :class:`GradualPruner`, then stay fixed."""

    model: NeuroNet = field(repr=False)
    epochs: int
    lanes: Sequence[int]
    sparsity: Sparsity
    ramp: float = RAMP
    approximate: bool = False
    keep: list[int] = field(init=False)
    start: list[int] = field(init=False)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"gradual pruning needs at least one epoch, got {self.epochs}")
        self.keep = balanced_keep(self.model, self.lanes, self.sparsity, self.approximate)
        self.start = [lane_locals(m, p) for m, p in zip(layer_modules(self.model), self.lanes)]

    @property
    def ramp_epochs(self) -> int:
        return max(1, min(self.epochs, round(self.ramp * self.epochs)))

    def target(self, epoch: int) -> list[int]:
        t = min(epoch + 1, self.ramp_epochs) / self.ramp_epochs
        left = (1.0 - t) ** 3
        return [k + round((s - k) * left) for s, k in zip(self.start, self.keep)]

    def __call__(self, epoch: int) -> None:
        if epoch < self.ramp_epochs:
            prune_balanced(self.model, self.lanes, self.target(epoch))
            reclip_latent(self.model)


# --------------------------------------------------------------------------- low rank


def factorized_config(cfg: ModelConfig, layer_index: int, rank: int) -> ModelConfig:
    """The configuration after :func:`low_rank` of layer ``layer_index`` (the classifier is
    ``len(cfg.channels)``): a bottleneck of ``2 * rank`` units is inserted before it."""
    i, width = layer_index, 2 * rank
    channels = cfg.channels[:i] + (width,) + cfg.channels[i:]
    if cfg.family != "tdnn":
        return dataclasses.replace(cfg, channels=channels)
    if i == len(cfg.channels):  # the bottleneck sees all frames; the classifier then one
        taps = cfg.taps + (cfg.frames()[-1],)
        strides = cfg.strides + (1,)
    else:
        taps = cfg.taps[:i] + (cfg.taps[i], 1) + cfg.taps[i + 1:]
        strides = cfg.strides[:i] + (cfg.strides[i], 1) + cfg.strides[i + 1:]
    return dataclasses.replace(cfg, channels=channels, taps=taps, strides=strides)


def factorized_origin(model: NeuroNet, layer_index: int) -> list[str]:
    """For each layer after :func:`low_rank`, the name of the layer it comes from."""
    names = layer_names(model)
    return names[:layer_index + 1] + names[layer_index:]


def _check_low_rank(model: NeuroNet, layer_index: int, rank: int) -> torch.Tensor:
    n = len(model.layers)
    if isinstance(layer_index, bool) or not isinstance(layer_index, int) \
            or not 0 <= layer_index <= n:
        raise ValueError(f"layer index {layer_index!r} out of range: 0..{n - 1} are the hidden "
                         f"layers, {n} is the classifier")
    w = layer_modules(model)[layer_index].quantized_weight().detach().double()
    w = _per_unit(w)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(w.shape):
        raise ValueError(f"rank {rank!r} out of range for layer {layer_index} with a "
                         f"{w.shape[0]} x {w.shape[1]} weight matrix: 1..{min(w.shape)}")
    return w


def _copy_unchanged(src: NeuroNet, dst: NeuroNet, layer_index: int) -> None:
    for j in range(len(src.layers)):
        if j == layer_index:
            continue
        k = j if j < layer_index else j + 1
        dst.layers[k].load_state_dict(src.layers[j].state_dict())
        dst.norms[k].load_state_dict(src.norms[j].state_dict())
        dst.acts[k].load_state_dict(src.acts[j].state_dict())
    if layer_index < len(src.layers):
        dst.classifier.load_state_dict(src.classifier.state_dict())
        dst.norms[layer_index + 1].load_state_dict(src.norms[layer_index].state_dict())
        dst.acts[layer_index + 1].load_state_dict(src.acts[layer_index].state_dict())
    else:
        dst.classifier.bias.copy_(src.classifier.bias)


def _passthrough(norm: nn.BatchNorm1d) -> None:
    """Batch norm that is the identity in evaluation mode."""
    norm.weight.fill_(1.0)
    norm.bias.zero_()
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0 - norm.eps)


def _init_steps(model: NeuroNet, layer_index: int, images: Any) -> None:
    """MSE-optimal steps for the two new layers and the bottleneck's activations."""
    first = model.layers[layer_index]
    second = layer_modules(model)[layer_index + 1]
    first.weight_quant.init_from(first.weight)
    second.weight_quant.init_from(second.weight)
    model.eval()
    if not isinstance(images, torch.Tensor):
        images = torch.from_numpy(np.array(images))
    x = model.frontend(images.float())
    for j in range(layer_index):
        x = model.acts[j](model.norms[j](model.layers[j](x)))
    model.acts[layer_index].init_from(model.norms[layer_index](first(x)))


@torch.no_grad()
def low_rank(model: NeuroNet, layer_index: int, rank: int, images: Any = None) -> NeuroNet:
    """A new model in which layer ``layer_index`` is factorized with rank ``rank``.

    Hidden layer ``i`` (``C -> O``, K taps, stride S) becomes ``C -> 2r`` (K taps, stride S) +
    pass-through batch norm + activation, then ``2r -> O`` (one tap) followed by the original
    batch norm and activation; index ``len(model.layers)`` factorizes the classifier into a
    bottleneck over all frames and a one-tap classifier. The factorized weight is the one the
    model uses (quantized and masked); the new layers are dense, every other layer is copied.
    A quantized model needs ``images`` (uint8 training digits, (N, 28, 28)) to initialise the
    new steps. Raises ``ValueError`` for a layer index or rank out of range.
    """
    w = _check_low_rank(model, layer_index, rank)
    if model.config.quantized and images is None:
        raise ValueError("a quantized model needs training digits to initialise the new steps")
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    a = root[:, None] * vh[:rank]  # (r, C * K)
    b = u[:, :rank] * root[None, :]  # (O, r)
    new = NeuroNet(factorized_config(model.config, layer_index, rank))
    _copy_unchanged(model, new, layer_index)
    first = new.layers[layer_index]
    second = layer_modules(new)[layer_index + 1]
    first.weight.copy_(torch.cat([a, -a]).reshape(first.weight.shape))
    second.weight.copy_(torch.cat([b, -b], dim=1).reshape(second.weight.shape))
    _passthrough(new.norms[layer_index])
    if new.config.quantized:
        _init_steps(new, layer_index, images[:INIT_IMAGES])
    return new.train(model.training)


# --------------------------------------------------------------------------- compress


PASS_KEYS = {
    "low_rank": {"layer", "rank", "epochs", "lr"},
    "prune": {"budget", "sparsity", "min_per_unit", "lanes", "approximate", "epochs", "lr"},
}


def check_pass(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate the form of one pass description (values are checked when it is applied)."""
    if not isinstance(spec, dict) or spec.get("pass") not in PASS_KEYS:
        raise ValueError(f"a pass is a dict with 'pass' in {sorted(PASS_KEYS)}, got {spec!r}")
    kind = spec["pass"]
    unknown = set(spec) - PASS_KEYS[kind] - {"pass"}
    if unknown:
        raise ValueError(f"unknown keys for a {kind} pass: {sorted(unknown)}")
    if kind == "low_rank" and not {"layer", "rank"} <= set(spec):
        raise ValueError("a low_rank pass needs 'layer' and 'rank'")
    if kind == "prune" and ("budget" in spec) == ("sparsity" in spec):
        raise ValueError("a prune pass needs either 'budget' or 'sparsity'")
    if kind == "prune" and "lanes" in spec and "sparsity" not in spec:
        raise ValueError("lane-balanced pruning ('lanes') takes a 'sparsity', not a budget")
    if kind == "prune" and "approximate" in spec and "lanes" not in spec:
        raise ValueError("'approximate' applies to lane-balanced pruning ('lanes') only")
    if spec.get("epochs", 0) < 0:
        raise ValueError(f"epochs must be >= 0, got {spec['epochs']}")
    return dict(spec)


def _layer_names(cfg: ModelConfig) -> list[str]:
    return [f"layers.{i}" for i in range(len(cfg.channels))] + ["classifier"]


@dataclass(frozen=True, kw_only=True)
class Pass:
    """One compression pass and its fine-tune (``epochs``, ``lr``: ``None`` takes the defaults
    of :func:`compress`). :meth:`to_dict` is the description a checkpoint records (the
    parameters that were given, in the form :func:`check_pass` reads)."""

    kind: ClassVar[str] = ""
    epochs: int | None = None
    lr: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")

    def params(self) -> dict[str, Any]:
        """The pass's own parameters (without ``epochs`` and ``lr``), as recorded."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("epochs", "lr") and getattr(self, f.name) is not None}

    def to_dict(self) -> dict[str, Any]:
        tune = {k: getattr(self, k) for k in ("epochs", "lr") if getattr(self, k) is not None}
        return {"pass": self.kind, **self.params(), **tune}

    def check(self, cfg: ModelConfig, n: int) -> ModelConfig:
        """Refuse what this pass (number ``n``, from 0) cannot do to a model of ``cfg``;
        returns the configuration after the pass."""
        return cfg

    def apply(self, model: NeuroNet, cfg: TrainConfig, data: _Data, gen: torch.Generator,
              log: Callable[[str], None],
              progress: bool) -> tuple[NeuroNet, list[str], list[dict[str, Any]]]:
        """Apply the pass and its fine-tune; returns the model, the layers' origins and the
        fine-tune's history."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class LowRank(Pass):
    """Factorize layer ``layer`` (the classifier is the last) with rank ``rank``."""

    kind: ClassVar[str] = "low_rank"
    layer: int
    rank: int

    def check(self, cfg: ModelConfig, n: int) -> ModelConfig:
        layer, rank = self.layer, self.rank
        if isinstance(layer, bool) or not isinstance(layer, int) \
                or not 0 <= layer <= len(cfg.channels):
            raise ValueError(f"pass {n + 1}: layer index {layer!r} out of range: "
                             f"0..{len(cfg.channels)} (the classifier is the last)")
        rows, cols = _weight_shape(cfg, layer)
        if isinstance(rank, bool) or not isinstance(rank, int) \
                or not 1 <= rank <= min(rows, cols):
            raise ValueError(f"pass {n + 1}: rank {rank!r} out of range for layer {layer} "
                             f"with a {rows} x {cols} weight matrix: 1..{min(rows, cols)}")
        return factorized_config(cfg, layer, rank)

    def apply(self, model, cfg, data, gen, log, progress):
        origin = factorized_origin(model, self.layer)
        model = low_rank(model, self.layer, self.rank, data.xs[:INIT_IMAGES])
        return model, origin, _finetune(model, cfg, data, gen, log, progress)


@dataclass(frozen=True, kw_only=True)
class Prune(Pass):
    """Magnitude pruning to a synapse ``budget`` or a ``sparsity`` (one of them), keeping
    ``min_per_unit`` synapses per unit (default 1); gradual during the fine-tune."""

    kind: ClassVar[str] = "prune"
    budget: Target | None = None
    sparsity: Sparsity | None = None
    min_per_unit: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.budget is None) == (self.sparsity is None):
            raise ValueError("a prune pass needs either 'budget' or 'sparsity'")

    def check(self, cfg: ModelConfig, n: int) -> ModelConfig:
        if self.sparsity is not None:
            _sparsities(len(_layer_names(cfg)), self.sparsity)
        return cfg

    def apply(self, model, cfg, data, gen, log, progress):
        origin = layer_names(model)
        prune = {"sparsity": self.sparsity, "budget": self.budget,
                 "min_per_unit": 1 if self.min_per_unit is None else self.min_per_unit}
        hook = None
        if cfg.epochs == 0:
            prune_magnitude(model, **prune)
        else:
            hook = GradualPruner(model, cfg.epochs, **prune)
        return model, origin, _finetune(model, cfg, data, gen, log, progress, hook)


@dataclass(frozen=True, kw_only=True)
class BalancedPrune(Pass):
    """Lane-balanced pruning to ``sparsity`` for ``lanes`` lanes per layer; ``approximate``
    takes the nearest reachable sparsity (with a warning) instead of refusing."""

    kind: ClassVar[str] = "prune"
    sparsity: Sparsity
    lanes: Sequence[int]
    approximate: bool | None = None

    def check(self, cfg: ModelConfig, n: int) -> ModelConfig:
        with warnings.catch_warnings():  # the pass itself reports an approximation
            warnings.simplefilter("ignore")
            _balanced_counts(_layer_names(cfg), [*cfg.channels, NUM_CLASSES], list(self.lanes),
                             self.sparsity, bool(self.approximate))
        return cfg

    def apply(self, model, cfg, data, gen, log, progress):
        origin = layer_names(model)
        lanes, approx = list(self.lanes), bool(self.approximate)
        hook = None
        if cfg.epochs == 0:
            prune_balanced(model, lanes, balanced_keep(model, lanes, self.sparsity, approx))
        else:
            hook = BalancedPruner(model, cfg.epochs, lanes, self.sparsity, approximate=approx)
        return model, origin, _finetune(model, cfg, data, gen, log, progress, hook)


def as_pass(spec: Pass | dict[str, Any]) -> Pass:
    """A pass from its description (``{"pass": "low_rank", "layer": 1, "rank": 16}``,
    ``{"pass": "prune", "budget": 30000}``, ...), checked by :func:`check_pass`."""
    if isinstance(spec, Pass):
        return spec
    args = check_pass(spec)
    kind = args.pop("pass")
    if kind == "low_rank":
        return LowRank(**args)
    if args.get("lanes") is not None:
        return BalancedPrune(**args)
    args.pop("lanes", None)
    args.pop("approximate", None)
    return Prune(**args)


def _weight_shape(cfg: ModelConfig, i: int) -> tuple[int, int]:
    """Rows (units) and columns (inputs times taps) of layer ``i``'s weight matrix."""
    n = len(cfg.channels)
    rows = cfg.channels[i] if i < n else NUM_CLASSES
    if cfg.family != "tdnn":
        return rows, cfg.channels[i - 1] if i > 0 else IMAGE_ROWS * IMAGE_COLS
    cin = cfg.channels[i - 1] if i > 0 else IMAGE_COLS
    return rows, cin * (cfg.taps[i] if i < n else cfg.frames()[-1])


def preflight(cfg: ModelConfig, passes: Sequence[Pass | dict[str, Any]]) -> None:
    """Refuse, before any fine-tune runs, a pass that would fail once earlier passes are done:
    a low-rank layer index out of range, or a lane-balanced sparsity that cannot be reached
    (from the layer widths each pass will see)."""
    for n, step in enumerate(passes):
        cfg = as_pass(step).check(cfg, n)


def accuracy(model: NeuroNet, images: np.ndarray, labels: np.ndarray) -> float:
    _, pred = predict(model, images)
    return float((pred == labels).mean())


@dataclass
class _Data:
    """The digits of the fine-tunes and, when distilling, the teacher and its settings."""

    xs: torch.Tensor
    ys: torch.Tensor
    test_x: np.ndarray
    test_y: np.ndarray
    teacher: Teacher | None = None
    distill: DistillConfig | None = None


def _load_data(data_dir: str | None, train_images: int | None,
               dataset: str | None = None) -> tuple[_Data, dict[str, str]]:
    """The fine-tune and test digits (``data_dir``, else the named ``dataset``, else MNIST)
    and the dataset record the compressed checkpoint carries."""
    train_ds, test_ds = training_data(TrainConfig(data_dir=data_dir,
                                                  dataset=None if data_dir else dataset))
    train_x, train_y, test_x, test_y = (train_ds.images, train_ds.labels, test_ds.images,
                                        test_ds.labels)
    if train_images is not None:
        if train_images < 1:
            raise ValueError(f"train_images must be >= 1, got {train_images}")
        train_x, train_y = train_x[:train_images], train_y[:train_images]
    data = _Data(torch.from_numpy(np.array(train_x)).float(),
                  torch.from_numpy(np.array(train_y)).long(), np.array(test_x), test_y)
    return data, dataset_record(train_ds, test_ds)


def _finetune(model: NeuroNet, cfg: TrainConfig, data: _Data, gen: torch.Generator,
              log: Callable[[str], None], progress: bool,
              hook: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    if not cfg.epochs:
        return []
    if data.teacher is not None and data.distill is not None:
        return fit_distilled(model, data.xs, data.ys, cfg, gen, data.teacher, data.distill,
                             log=log, progress=progress, on_epoch_start=hook)
    return fit(model, data.xs, data.ys, cfg, gen, log=log, progress=progress,
               on_epoch_start=hook)


def with_input_bits(model: NeuroNet, bits: int) -> NeuroNet:
    """Keep ``bits`` bits of every pixel (``pixel >> (8 - bits)``) from now on; the weights
    are unchanged (the pixel scale stays about [0, 1]), the fine-tune adapts them."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"input bits must be an integer in 1..8, got {bits!r}")
    model.config = dataclasses.replace(model.config, input_bits=bits)
    model.input_quant = PixelQuantizer(bits)
    return model


def compress(
    checkpoint: str | Path | dict[str, Any],
    passes: Sequence[Pass | dict[str, Any]],
    finetune_epochs: int = DEFAULT_EPOCHS,
    lr: float | None = None,
    *,
    weight_decay: float | None = None,
    batch_size: int | None = None,
    max_shift: int | None = None,
    threads: int = 2,
    train_images: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    output: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
    distill: DistillConfig | None = None,
    input_bits: int | None = None,
) -> dict[str, Any]:
    """Apply factorization passes to a checkpoint, each followed by a fine-tune on MNIST.

    ``passes`` (:class:`Pass` objects or their descriptions) run in order, e.g.
    ``[LowRank(layer=1, rank=16), Prune(budget=30000)]`` or ``[{"pass": "low_rank", "layer": 1,
    "rank": 16}, {"pass": "prune", "budget": 30000}]`` (a pass may override ``epochs`` and
    ``lr``; a prune pass takes ``budget`` or ``sparsity`` and ``min_per_unit``, and prunes
    gradually during its fine-tune). The learning rate defaults to ``LR_FACTOR`` times the quantization-aware one.
    ``weight_decay`` and ``batch_size`` default (``None``) to the quantization-aware decay and
    :class:`TrainConfig`'s batch size.
    Returns the checkpoint of the result, whose ``passes`` entry reports for each pass its
    parameters, the connections per layer before and after, the test accuracy after the
    fine-tune and the seconds taken. With ``output`` it is saved, and a quantized result is also
    lowered to an integer network next to it (``.npz``).

    ``distill`` fine-tunes every pass against a teacher (:mod:`pynq_neuro.quant.distill`); the
    checkpoint records it under ``distill`` (settings, the teacher's path, SHA-256 and
    accuracy). ``input_bits`` first reduces the pixels to that many bits
    (:func:`with_input_bits`), so that the fine-tunes adapt the model to them.
    """
    passes = [as_pass(p) for p in passes]
    if not passes:
        raise ValueError("no passes to apply")
    if finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be >= 0, got {finetune_epochs}")
    source = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    model = model_from_checkpoint(source, None if isinstance(checkpoint, dict) else str(checkpoint))
    if input_bits is not None:
        if not model.config.quantized:
            raise ValueError("input bits apply to a quantized model (the float model keeps 8)")
        with_input_bits(model, input_bits)
    teacher = Teacher.from_checkpoint(distill.teacher) if distill is not None else None
    if output is not None:
        check_output_path(output, network=model.config.quantized)
    preflight(model.config, passes)
    rec = recommended_hparams(model.config.wbits, model.config.abits)
    base = TrainConfig(
        epochs=finetune_epochs, lr=rec["lr"] * LR_FACTOR if lr is None else lr,
        weight_decay=rec["weight_decay"] if weight_decay is None else weight_decay,
        batch_size=TrainConfig.batch_size if batch_size is None else batch_size,
        max_shift=max_shift, seed=seed, threads=threads,
        train_images=train_images, data_dir=data_dir,
    )
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    # the source's dataset (a registered one) unless a folder is given
    recorded = source.get("dataset") if isinstance(source.get("dataset"), dict) else {}
    named = recorded.get("name") if recorded.get("name") in DATASETS else None
    data, record = _load_data(data_dir, train_images, named)
    data.teacher, data.distill = teacher, distill
    if base.max_shift is None:   # the dataset's recommended augmentation
        base = dataclasses.replace(base, max_shift=recommended_max_shift(record.get("name")))
    acc = accuracy(model, data.test_x, data.test_y)
    log(f"source: {model.config.name}, {model.synapses()} synapses, "
        f"{model.config.input_bits}-bit pixels, test accuracy {acc:.4f}")
    distill_info = None
    if teacher is not None:
        distill_info = {**teacher.info, "weight": distill.weight,
                        "temperature": distill.temperature}
        t_acc = accuracy(teacher.model, data.test_x, data.test_y)
        log(f"teacher: {teacher.info['name']}, test accuracy {t_acc:.4f}; distillation "
            f"weight {distill.weight:g}, temperature {distill.temperature:g}")

    report: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    elapsed = 0.0
    for n, step in enumerate(passes):
        start = time.perf_counter()
        cfg = dataclasses.replace(base, epochs=base.epochs if step.epochs is None else step.epochs,
                                  lr=base.lr if step.lr is None else step.lr)
        before = connections(model)
        params = step.params()
        log(f"pass {n + 1}/{len(passes)}: {step.kind} {params}")
        model, origin, hist = step.apply(model, cfg, data, gen, log, progress)
        history += [{**h, "pass": n + 1, "seconds": h["seconds"] + elapsed} for h in hist]
        elapsed += hist[-1]["seconds"] if hist else 0.0
        acc = accuracy(model, data.test_x, data.test_y)
        after = connections(model)
        report.append({
            "pass": step.kind, "params": params, "epochs": cfg.epochs, "lr": cfg.lr,
            "before": before, "after": after, "origin": origin,
            "synapses_before": total_kept(before), "synapses_after": total_kept(after),
            "accuracy": acc, "seconds": time.perf_counter() - start,
        })
        log(f"pass {n + 1}/{len(passes)}: {total_kept(before)} -> {total_kept(after)} "
            f"synapses, test accuracy {acc:.4f} ({report[-1]['seconds']:.0f} s)")

    if command is None:
        command = shlex.join(["pynq-neuro", *sys.argv[1:]])
    src_info = {"path": None if isinstance(checkpoint, dict) else str(checkpoint),
                "model_config": source["model_config"],
                "accuracy": source.get("metrics", {}).get("test_accuracy"),
                "synapses": source.get("metrics", {}).get("synapses"),
                "command": source.get("command")}
    report_dead_layers(model, data.test_x, log)
    ckpt = checkpoint_dict(model, base, history, acc, command, passes=report, source=src_info,
                           distill=distill_info, dataset=record)
    if output is not None:
        save_and_report(ckpt, output, model, log)
    return ckpt
