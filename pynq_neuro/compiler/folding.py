"""Choose each layer's folding to meet a throughput target within a resource budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..golden.model import run
from ..golden.network import IntegerNetwork
from .cycles import completions, event_phase_cycles, simulate, threshold_busy_cycles
from .mapping import Folding, LayerMap, map_layer
from .resources import Budget, Resources, layer_resources, network_resources

GROUP_CHOICES = (1, 2, 4, 8)
BRAM_LUT_WEIGHT = 400  # one BRAM36 is worth this many LUTs when ranking foldings
MAX_ROUNDS = 4  # bounds the upgrade loop (x16 upgrades)


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
    return ev.sum(axis=1) + sum(completions(lm)) * threshold_busy_cycles(lm)


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
    """Foldings that meet the throughput target at the lowest cost within the budget.

    Every layer starts with its cheapest folding; then the bottleneck layer (most busy cycles
    per digit) is upgraded to the cheapest faster folding that keeps the whole design within
    the budget, until the slowest layer meets the target or no upgrade fits. The pipeline is
    then simulated (:func:`simulate`), and while coupling between layers still misses the target
    the upgrades continue. Returns the foldings and a note saying whether the target was met.
    """
    if activations is None:
        activations = run(net, images, trace=True).activations
    in_bits = [net.input_bits] + [l.act_bits for l in net.layers[:-1]]
    cands = [sorted(candidates(net, i, activations[i], in_bits[i]),
                    key=lambda c: (_cost(c.resources), c.cycles_mean))
             for i in range(len(net.layers))]
    target = budget.clock_mhz * 1e6 / target_images_per_s
    shell = network_resources([], net.input_bits)[0]
    chosen = [cs[0] for cs in cands]

    def total(sel: list[FoldingChoice]) -> Resources:
        return sum((c.resources for c in sel), shell)

    def upgrade(layer: int) -> bool:
        """Replace ``layer``'s folding by the cheapest faster one that fits; False if none."""
        now = chosen[layer].cycles_mean
        for c in cands[layer]:  # cheapest first
            if c.cycles_mean < now:
                trial = chosen[:layer] + [c] + chosen[layer + 1:]
                if total(trial).fits(budget):
                    chosen[layer] = c
                    return True
        return False

    rep = None
    for _ in range(MAX_ROUNDS * 16):
        slowest = max(range(len(chosen)), key=lambda i: chosen[i].cycles_mean)
        if chosen[slowest].cycles_mean <= target:
            maps = [map_layer(net, i, c.folding, pack=False) for i, c in enumerate(chosen)]
            rep = simulate(maps, net, images, activations)
            if rep.cycles_per_digit <= target:
                break
            busy = rep.layer_cycles.mean(axis=1)
            slowest = int(np.argmax(busy))
        if not upgrade(slowest):
            break
    folds = [c.folding for c in chosen]
    if rep is None or rep.cycles_per_digit > target:
        maps = [map_layer(net, i, f, pack=False) for i, f in enumerate(folds)]
        rep = simulate(maps, net, images, activations)
    achieved = rep.images_per_s(budget.clock_mhz)
    if rep.cycles_per_digit <= target:
        note = "target met"
    else:
        note = (f"target {target_images_per_s:,.0f} digits/s not met within the resource "
                f"budget: the model predicts {achieved:,.0f}")
    return folds, note
