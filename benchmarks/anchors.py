"""Published MNIST results of FPGA and neuromorphic systems, drawn beside ours in the plots."""

from __future__ import annotations

ANCHORS = [
    {"system": "BNN-PYNQ LFC W1A1 (PYNQ-Z2)", "accuracy": 0.9847, "synapses": 2_913_000},
    {"system": "INsight neuromorphic", "accuracy": 0.9764, "synapses": None},
]


def draw_anchors(ax, text_x: float) -> None:
    """Points for systems with a known synapse count, dotted lines for the others."""
    for a in ANCHORS:
        if a["synapses"]:
            ax.scatter(a["synapses"], 100 * a["accuracy"], marker="x", color="k")
            ax.annotate(a["system"], (a["synapses"], 100 * a["accuracy"]), fontsize=7,
                        textcoords="offset points", xytext=(-70, 6))
        else:
            ax.axhline(100 * a["accuracy"], color="gray", ls=":", lw=1)
            ax.text(text_x, 100 * a["accuracy"] + 0.03, a["system"], fontsize=7, color="gray")
