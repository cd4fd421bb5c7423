"""Choose each layer's folding to meet a throughput target within a resource budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PynqNeuroError
from ..golden.model import run
from ..golden.network import IntegerNetwork
from ..util import ceil_div
from .artifact import layer_hw
from .cycles import (BEATS_PER_ROW, CycleReport, completions, event_phase_cycles, simulate,
                     threshold_busy_cycles)
from .limits import CoreLimitError, layer_violations
from .mapping import Folding, LayerMap, map_layer
from .resources import Budget, Resources, layer_resources, network_resources

# event groups tried per layer, and local indices per lane (LOCALS = ceil(out / lanes))
GROUP_CHOICES = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16)
LOCAL_CHOICES = (1, 2, 3, 4, 5, 6, 8, 12, 16, 32)
MAX_ROUNDS = 4  # bounds the upgrade loop (x16 upgrades)
# the refinement's moves (Pareto candidates on either side of a layer's folding) and its bound
# on pipeline simulations (about 0.3 s each on 1,000 digits)
REFINE_STEPS = 2
REFINE_SIMULATIONS = 160


def folding_text(foldings: list[Folding]) -> str:
    """Foldings as the command line writes them: ``4x32,4x32,2x32,1x5``."""
    return ",".join(f"{f.groups}x{f.lanes}" for f in foldings)


class BudgetError(PynqNeuroError, ValueError):
    """The design exceeds the resource budget (``searched``: the smallest one the folding
    search found)."""

    def __init__(self, foldings: list[Folding], estimate: Resources, budget: Budget,
                 searched: bool) -> None:
        self.foldings, self.estimate, self.budget = foldings, estimate, budget
        what = "the smallest design found" if searched else "the design"
        super().__init__(
            f"{what} (foldings {folding_text(foldings)}) exceeds the resource budget: "
            f"estimate {'; '.join(budget.excess(estimate))}; raise the budget"
            f"{'' if searched else ', choose smaller foldings'} or allow an over-budget design "
            f"(--allow-over-budget)")


@dataclass
class FoldingChoice:
    folding: Folding
    cycles_mean: float
    cycles_p99: float
    resources: Resources


def lane_choices(out_channels: int) -> list[int]:
    """Lane counts with the local indices per lane of :data:`LOCAL_CHOICES`."""
    return sorted({ceil_div(out_channels, m) for m in LOCAL_CHOICES if m <= out_channels})


def layer_cycles(lm: LayerMap, acts: np.ndarray) -> np.ndarray:
    """Busy cycles per digit of one layer in isolation."""
    ev = event_phase_cycles(lm, acts)[:, : lm.frames_used]
    return ev.sum(axis=1) + sum(completions(lm)) * threshold_busy_cycles(lm)


def _cost(r: Resources, budget: Budget) -> float:
    """Share of the budget a folding takes (LUTs and block RAM weighed by their budgets)."""
    return r.luts / budget.luts + r.bram36 / max(budget.bram36, 1)


def candidates(net: IntegerNetwork, index: int, acts: np.ndarray,
               in_bits: int) -> list[FoldingChoice]:
    """The foldings of layer ``index`` that the core can hold, with their cycles and
    resources; raises :class:`CoreLimitError` when there is none."""
    layer = net.layers[index]
    last = index == len(net.layers) - 1
    out, refused = [], []
    for g in GROUP_CHOICES:
        if g > layer.in_channels:
            continue
        for p in lane_choices(layer.out_channels):
            lm = map_layer(net, index, Folding(g, p), pack=False)
            found = layer_violations(index, layer_hw(lm), last)
            if found:
                refused.append(found)
                continue
            cyc = layer_cycles(lm, acts)
            out.append(FoldingChoice(lm.folding, float(cyc.mean()),
                                     float(np.percentile(cyc, 99)), layer_resources(lm, in_bits)))
    if not out:
        raise CoreLimitError(min(refused, key=len))
    return out


def _pareto(cands: list[FoldingChoice]) -> list[FoldingChoice]:
    """The candidates that no cheaper one matches in busy cycles (``cands`` cheapest first)."""
    out: list[FoldingChoice] = []
    for c in cands:
        if not out or c.cycles_mean < out[-1].cycles_mean:
            out.append(c)
    return out


def _refine(net: IntegerNetwork, images: np.ndarray, activations: list[np.ndarray],
            beats_per_row: int, cands: list[list[FoldingChoice]],
            chosen: list[FoldingChoice], rep: CycleReport,
            fits, cost, target: float) -> tuple[list[FoldingChoice], CycleReport]:
    """Coordinate descent on the simulated pipeline, for a selection that misses the target.

    The uniform bound prices each layer in isolation. In the pipeline, a layer can hold back
    others: layer 0 must keep pace with the pixel stream (two row buffers), and a layer of
    uneven frames stalls its neighbours through the two-frame rings. So each round tries, for
    every layer, the ``REFINE_STEPS`` Pareto candidates (the cheapest folding for its busy
    cycles) on either side of its current one, simulates the pipeline, and keeps the change
    that lowers the cycles per digit most within the budget, or, at equal cycles, the cost; a
    change that saves cost at the same cycles frees budget for the next round. It stops at the
    target, when no change helps, or after ``REFINE_SIMULATIONS`` simulations.
    """
    fronts = [_pareto(cs) for cs in cands]
    front_costs = [[cost([c]) for c in front] for front in fronts]
    seen: dict[tuple, CycleReport] = {}

    def key(sel):
        return tuple((c.folding.groups, c.folding.lanes) for c in sel)

    def score(sel, r):
        return (round(r.cycles_per_digit, 3), cost(sel))

    def neighbours(i: int, current: FoldingChoice) -> list[FoldingChoice]:
        """The ``REFINE_STEPS`` Pareto candidates of layer ``i`` on either side of
        ``current`` (by cost)."""
        front = fronts[i]
        at = next((j for j, c in enumerate(front) if c.folding == current.folding),
                  sum(1 for x in front_costs[i] if x < cost([current])))
        return [front[j] for j in range(max(0, at - REFINE_STEPS),
                                        min(len(front), at + REFINE_STEPS + 1))
                if front[j].folding != current.folding]

    seen[key(chosen)] = rep
    best, best_rep = chosen, rep
    while best_rep.cycles_per_digit > target and len(seen) < REFINE_SIMULATIONS:
        step = None
        for i in range(len(fronts)):
            for c in neighbours(i, best[i]):
                sel = best[:i] + [c] + best[i + 1:]
                k = key(sel)
                if k in seen or not fits(sel) or len(seen) >= REFINE_SIMULATIONS:
                    continue
                maps = [map_layer(net, j, s.folding, pack=False) for j, s in enumerate(sel)]
                seen[k] = r = simulate(maps, net, images, activations, beats_per_row)
                if score(sel, r) < score(*(step or (best, best_rep))):
                    step = (sel, r)
        if step is None:
            break
        best, best_rep = step
    return best, best_rep


def choose_foldings(net: IntegerNetwork, images: np.ndarray, target_images_per_s: float,
                    budget: Budget, activations: list[np.ndarray] | None = None,
                    beats_per_row: int = BEATS_PER_ROW) -> tuple[list[Folding], str]:
    """Foldings that meet the throughput target at the lowest cost within the budget.

    For a bound ``T`` on every layer's busy cycles per digit, each layer takes its cheapest
    folding (share of the LUT budget plus share of the BRAM budget) that is busy at most ``T``
    cycles. The
    search takes ``T`` from the target; if that does not fit the budget, the smallest ``T``
    (over all candidates' cycle counts) whose selection fits, i.e. the fastest design within
    the budget. The pipeline is then simulated (:func:`simulate`), and while coupling between
    layers still misses the target ``T`` is tightened. Returns the foldings and a note saying
    whether the target was met.
    """
    if activations is None:
        activations = run(net, images, trace=True).activations
    in_bits = [net.input_bits] + [l.act_bits for l in net.layers[:-1]]
    cands = [sorted(candidates(net, i, activations[i], in_bits[i]),
                    key=lambda c: (_cost(c.resources, budget), c.cycles_mean))
             for i in range(len(net.layers))]
    target = budget.clock_mhz * 1e6 / target_images_per_s
    shell = network_resources([], net.input_bits)[0]

    def fits(sel: list[FoldingChoice]) -> bool:
        """The design of these foldings (with the shell) is within the budget."""
        return sum((c.resources for c in sel), shell).fits(budget)

    def cost(sel: list[FoldingChoice]) -> float:
        return sum(_cost(c.resources, budget) for c in sel)

    def select(bound: float) -> list[FoldingChoice] | None:
        """Cheapest folding of every layer with at most ``bound`` busy cycles; None if a
        layer has none or the design exceeds the budget."""
        sel = []
        for cs in cands:
            ok = [c for c in cs if c.cycles_mean <= bound]
            if not ok:
                return None
            sel.append(ok[0])  # cheapest first
        return sel if fits(sel) else None

    bounds = sorted({c.cycles_mean for cs in cands for c in cs})
    feasible = [b for b in bounds if select(b) is not None]
    if not feasible:  # even the cheapest foldings exceed the budget: take them anyway
        chosen = [cs[0] for cs in cands]
    else:
        fastest = feasible[0]
        bound = max(fastest, target)
        chosen = select(bound) or select(fastest)
    rep = None
    for _ in range(MAX_ROUNDS * 16):
        maps = [map_layer(net, i, c.folding, pack=False) for i, c in enumerate(chosen)]
        rep = simulate(maps, net, images, activations, beats_per_row)
        if rep.cycles_per_digit <= target or not feasible:
            break
        # coupling between layers: tighten the bound below the current slowest layer
        slowest = max(c.cycles_mean for c in chosen)
        tighter = [b for b in feasible if b < slowest]
        if not tighter:
            break
        chosen = select(tighter[-1])
    if rep.cycles_per_digit > target and feasible:
        chosen, rep = _refine(net, images, activations, beats_per_row, cands, chosen, rep,
                              fits, cost, target)
    folds = [c.folding for c in chosen]
    achieved = rep.images_per_s(budget.clock_mhz)
    if rep.cycles_per_digit <= target:
        note = "target met"
    else:
        note = (f"target {target_images_per_s:,.0f} digits/s not met within the resource "
                f"budget: the model predicts {achieved:,.0f}")
    return folds, note
