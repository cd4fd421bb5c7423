"""Choose each layer's folding to meet a throughput target within a resource budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..golden.model import run
from ..golden.network import IntegerNetwork
from .cycles import completions, event_phase_cycles, simulate, threshold_cycles
from .mapping import Folding, LayerMap, map_layer
from .resources import Budget, Resources, layer_resources, network_resources

GROUP_CHOICES = (1, 2, 4, 8)
BRAM_LUT_WEIGHT = 400  # one BRAM36 is worth this many LUTs when ranking foldings
MAX_ROUNDS = 4  # pipeline checks, each tightening the per-layer target by 7 %


@dataclass
class FoldingChoice:
    folding: Folding
    cycles_mean: float
    cycles_p99: float
    resources: Resources


def lane_choices(out_channels: int) -> list[int]:
    """Lane counts with 1, 2, 4, ... 32 local indices per lane."""
    return sorted({-(-out_channels // m) for m in (1, 2, 4, 8, 16, 32) if m <= out_channels})


def layer_cycles(lm: LayerMap, acts: np.ndarray) -> np.ndarray:
    """Busy cycles per digit of one layer in isolation."""
    ev = event_phase_cycles(lm, acts)[:, : lm.frames_used]
    return ev.sum(axis=1) + sum(completions(lm)) * threshold_cycles(lm)


def _cost(r: Resources) -> float:
    return r.luts + BRAM_LUT_WEIGHT * r.bram36


def candidates(net: IntegerNetwork, index: int, acts: np.ndarray,
               in_bits: int) -> list[FoldingChoice]:
    layer = net.layers[index]
    out = []
    for g in GROUP_CHOICES:
        if g > layer.in_channels:
            continue
        for p in lane_choices(layer.out_channels):
            lm = map_layer(net, index, Folding(g, p), pack=False)
            cyc = layer_cycles(lm, acts)
            out.append(FoldingChoice(lm.folding, float(cyc.mean()),
                                     float(np.percentile(cyc, 99)), layer_resources(lm, in_bits)))
    return out


def choose_foldings(net: IntegerNetwork, images: np.ndarray, target_images_per_s: float,
                    budget: Budget,
                    activations: list[np.ndarray] | None = None) -> tuple[list[Folding], str]:
    """The cheapest folding per layer whose mean busy cycles meet the target.

    Returns the foldings and a note; when the target cannot be met the fastest foldings are
    returned and the note says so. The whole pipeline is then checked with :func:`simulate`
    and the per-layer target tightened until it is met (at most a few rounds).
    """
    if activations is None:
        activations = run(net, images, trace=True).activations
    in_bits = [net.input_bits] + [l.act_bits for l in net.layers[:-1]]
    cands = [candidates(net, i, activations[i], in_bits[i]) for i in range(len(net.layers))]
    target = budget.clock_mhz * 1e6 / target_images_per_s
    shell = network_resources([], net.input_bits)[0]
    per_layer = target
    limited = False
    for _ in range(MAX_ROUNDS + 12):
        chosen = []
        for cs in cands:
            ok = [c for c in cs if c.cycles_mean <= per_layer]
            chosen.append(min(ok, key=lambda c: _cost(c.resources)) if ok
                          else min(cs, key=lambda c: (c.cycles_mean, _cost(c.resources))))
        total = sum((c.resources for c in chosen), shell)
        if not total.fits(budget) and any(c.cycles_mean > 1 for c in chosen):
            per_layer *= 1.1  # over budget: trade throughput for resources
            limited = True
            continue
        folds = [c.folding for c in chosen]
        maps = [map_layer(net, i, f, pack=False) for i, f in enumerate(folds)]
        rep = simulate(maps, net, images, activations)
        if rep.cycles_per_digit <= target or limited:
            break
        per_layer *= 0.93
    achieved = rep.images_per_s(budget.clock_mhz)
    if rep.cycles_per_digit <= target:
        note = "target met"
    elif limited:
        note = (f"target {target_images_per_s:,.0f} digits/s not met within the resource "
                f"budget: the model predicts {achieved:,.0f}")
    else:
        note = (f"target {target_images_per_s:,.0f} digits/s not met: the model predicts "
                f"{achieved:,.0f} with the fastest foldings tried")
    return folds, note
