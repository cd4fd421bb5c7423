"""``pynq-neuro inspect``: a summary table and plots of an artifact (numpy; plots need
matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes
from .artifact import Artifact
from .resources import bank_resources


def summary_table(art: Artifact) -> str:
    m = art.manifest
    hw = m["hardware"]["layers"]
    perf = m.get("performance", {})
    cyc = perf.get("cycle_model", {})
    res = perf.get("resources_estimate", {})
    rows = art.network.input_rows  # recorded, or what the layers read (older artifacts)
    lines = [f"artifact {art.path} (format {m['version']}, hardware {art.fingerprint})",
             f"network {m['network']['name']}: {m['network']['synapses']} synapses, "
             f"{m['network']['input_bits']}-bit pixels, reads rows 0..{rows - 1} "
             f"({rows} of {hw[0]['in_frames']})"]
    head = (f"{'layer':>5} {'in x frames':>12} {'out':>5} {'K/S':>5} {'W/A':>5} {'syn':>7} "
            f"{'dens':>6} {'G x P':>8} {'words':>7} {'acc':>4} {'cyc/digit':>10} {'LUT':>7} "
            f"{'BRAM36':>7}")
    lines.append(head)
    for i, (h, layer) in enumerate(zip(hw, art.network.layers)):
        dens = layer.synapses / layer.codes.size
        cycles = cyc.get("layer_cycles_mean", [None] * len(hw))[i]
        r = res.get("layers", [{}] * len(hw))[i]
        ab = "-" if layer.is_classifier else str(h["act_bits"])
        lines.append(
            f"{i:>5} {h['in_channels']:>5} x {h['in_frames']:<4} {h['out_channels']:>5} "
            f"{h['taps']:>2}/{h['stride']:<2} {h['weight_bits']:>3}/{ab:<1} {layer.synapses:>7} "
            f"{dens:>6.1%} {h['groups']:>3} x {h['lanes']:<3} {h['synapse_depth']:>7} "
            f"{h['acc_bits']:>4} {cycles if cycles is None else round(cycles):>10} "
            f"{r.get('luts', ''):>7} {r.get('bram36', ''):>7}")
    if cyc:
        lines.append(
            f"cycle model ({cyc['digits']} digits): {cyc['cycles_per_digit']:.0f} cycles/digit "
            f"-> {cyc['images_per_s']:,.0f} digits/s at {perf['budget']['clock_mhz']:.0f} MHz; "
            f"latency mean {cyc['latency_cycles_mean']:.0f}, p99 {cyc['latency_cycles_p99']:.0f}")
    if res:
        t, u = res["total"], res["utilisation"]
        lines.append(f"estimate: {t['luts']} LUT ({u['luts']:.0%} of the xc7z020), "
                     f"{t['bram36']} BRAM36 ({u['bram36']:.0%}), {t['ffs']} FF, {t['dsp']} DSP")
    return "\n".join(lines)


def plot(art: Artifact, output: Path) -> list[Path]:
    """Sparsity patterns, memory use per bank and predicted cycles per layer, as PNG files in
    ``output`` (written atomically). The figures are drawn off screen without pyplot, so the
    caller's matplotlib backend (a notebook's inline one) is left alone."""
    from matplotlib.figure import Figure

    def save(fig: Figure, path: Path) -> Path:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write_bytes(path, buf.getvalue())
        return path

    output.mkdir(parents=True, exist_ok=True)
    layers = art.network.layers
    fig = Figure(figsize=(4 * len(layers), 3.6))
    axes = fig.subplots(1, len(layers))
    for ax, (i, layer) in zip(np.atleast_1d(axes), enumerate(layers)):
        mask = np.ones(layer.codes.shape, bool) if layer.mask is None else layer.mask
        ax.imshow(mask.reshape(layer.out_channels, -1), aspect="auto", cmap="Greys",
                  interpolation="nearest")
        ax.set_title(f"layer {i}: {layer.synapses} synapses ({mask.mean():.0%})", fontsize=9)
        ax.set_xlabel("tap x input channel")
        ax.set_ylabel("output unit")
    fig.suptitle("synapse pattern (black: present)")
    fig.tight_layout()
    paths = [save(fig, output / "sparsity.png")]

    fig = Figure(figsize=(11, 4))
    a1, a2 = fig.subplots(1, 2)
    names = [m["name"] for m in art.manifest["memories"]]
    bits = [m["depth"] * m["width"] for m in art.manifest["memories"]]
    bram = [bank_resources(m["kind"], m["depth"], m["width"]).bram36
            for m in art.manifest["memories"]]
    a1.barh(names, np.array(bits) / 1024, color="tab:blue", label="kbit")
    for y, b in enumerate(bram):
        if b:
            a1.text(bits[y] / 1024, y, f" {b:g} BRAM36", va="center", fontsize=7)
    a1.set_xlabel("kbit per bank")
    a1.tick_params(axis="y", labelsize=6)
    a1.set_title("memory banks")
    cyc = art.manifest.get("performance", {}).get("cycle_model")
    if cyc:
        x = np.arange(len(cyc["layer_cycles_mean"]))
        a2.bar(x - 0.2, cyc["layer_cycles_mean"], 0.4, label="mean")
        a2.bar(x + 0.2, cyc["layer_cycles_p99"], 0.4, label="99th percentile")
        a2.axhline(cyc["cycles_per_digit"], color="k", ls="--", lw=1,
                   label=f"pipeline: {cyc['cycles_per_digit']:.0f} cycles/digit")
        a2.set_xticks(x)
        a2.set_xlabel("layer")
        a2.set_ylabel("busy cycles per digit")
        a2.legend(fontsize=8)
        a2.set_title("cycle model")
    fig.tight_layout()
    paths.append(save(fig, output / "memory_cycles.png"))
    return paths
