"""The Pareto front of an exploration, its table and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .space import OBJECTIVES

PLOT = "pareto.png"


def dominates(a: dict[str, float], b: dict[str, float], objectives: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for name in objectives:
        sign = 1 if OBJECTIVES[name][0] == "max" else -1
        x, y = sign * a[name], sign * b[name]
        if x < y:
            return False
        better |= x > y
    return better


def pareto_front(records: Sequence[dict[str, Any]], objectives: Sequence[str]
                 ) -> list[dict[str, Any]]:
    """The completed trials no other completed trial dominates (ties: the first one), best
    accuracy first when accuracy is an objective."""
    done = [r for r in records if r.get("status") == "done"]
    front, seen = [], set()
    for r in done:
        key = tuple(r["objectives"][k] for k in objectives)
        if key in seen or any(dominates(o["objectives"], r["objectives"], objectives)
                              for o in done):
            continue
        seen.add(key)
        front.append(r)
    first = objectives[0]
    sign = -1 if OBJECTIVES[first][0] == "max" else 1
    return sorted(front, key=lambda r: sign * r["objectives"][first])


def best_line(records: Sequence[dict[str, Any]], objectives: Sequence[str]) -> str:
    """The best point so far (by the first objective) on one line."""
    done = [r for r in records if r.get("status") == "done"]
    if not done:
        return "no completed trial yet"
    first = objectives[0]
    sign = 1 if OBJECTIVES[first][0] == "max" else -1
    best = max(done, key=lambda r: sign * r["objectives"][first])
    return f"best {first}: trial {best['id']} " + ", ".join(
        f"{k} {_fmt(k, best['objectives'][k])}" for k in objectives)


def _fmt(name: str, v: Any) -> str:
    if v is None:
        return "-"
    if name == "accuracy":
        return f"{100 * v:.2f}%"
    if name == "images_per_s":
        return f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.0f}"


def front_table(front: Sequence[dict[str, Any]]) -> str:
    """One line per front member: the final figures (measured where the second pass ran) and
    where they come from."""
    head = (f"{'trial':<24}{'accuracy':>10}{'digits/s':>12}{'LUTs':>9}{'memory bits':>13}"
            f"{'synapses':>10}  {'figures':<14}design")
    lines = [head, "-" * len(head)]
    for f in front:
        o = f["final"]
        lines.append(
            f"{f['id'][:23]:<24}{_fmt('accuracy', o['accuracy']):>10}"
            f"{_fmt('images_per_s', o['images_per_s']):>12}{_fmt('luts', o['luts']):>9}"
            f"{_fmt('memory_bits', o['memory_bits']):>13}{_fmt('synapses', o['synapses']):>10}"
            f"  {f['source']:<14}{f.get('description', '')}")
    return "\n".join(lines)


def plot(records: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]],
         zoo: Sequence[dict[str, Any]], path: str | Path, clock_mhz: float = 100.0) -> Path:
    """Accuracy against digits/s of every completed trial, coloured by LUTs; the front
    (final figures) joined by a line, the zoo's models marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_write_bytes

    done = [r for r in records if r.get("status") == "done"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    luts = [r["metrics"]["luts"] for r in done] + [f["final"]["luts"] for f in front] + \
        [z["luts"] for z in zoo]
    vmin, vmax = (min(luts), max(luts)) if luts else (0, 1)
    if done:
        sc = ax.scatter([r["metrics"]["images_per_s"] for r in done],
                        [100 * r["metrics"]["accuracy"] for r in done],
                        c=[r["metrics"]["luts"] for r in done], cmap="viridis", vmin=vmin,
                        vmax=vmax, s=28, alpha=0.6, label="trials (modelled)")
        fig.colorbar(sc, ax=ax, label="LUTs")
    if front:
        pts = sorted((f["final"]["images_per_s"], 100 * f["final"]["accuracy"],
                      f["final"]["luts"]) for f in front)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color="0.4", lw=0.8, zorder=1)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=[p[2] for p in pts],
                   cmap="viridis", vmin=vmin, vmax=vmax, s=70, edgecolors="black",
                   linewidths=1.2, label="Pareto front (measured where verified)", zorder=2)
    for z in zoo:
        ax.scatter([z["images_per_s"]], [100 * z["accuracy"]], marker="*", s=160,
                   c=[z["luts"]], cmap="viridis", vmin=vmin, vmax=vmax, edgecolors="red",
                   zorder=3)
        ax.annotate(z["name"], (z["images_per_s"], 100 * z["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points", color="red")
    if zoo:
        ax.scatter([], [], marker="*", s=120, c="white", edgecolors="red", label="zoo models")
    ax.set_xlabel(f"digits/s at {clock_mhz:g} MHz (cycle model; RTL on the verified front)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("pynq-neuro design-space exploration")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


__all__ = ["PLOT", "best_line", "dominates", "front_table", "pareto_front", "plot"]
