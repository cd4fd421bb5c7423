# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Compile the network onto neuron arrays
#
# The compiler (`pynq_neuro.compiler`, `pynq-neuro compile`) turns an integer network into an
# **artifact**: memory images for every layer's synapses, indices and thresholds, a manifest,
# a Verilog header with the synthesis parameters and a packed stream that loads a network at
# run time. On the way it chooses each layer's **folding** — `G` event groups × `P` lanes of
# processing elements — so that the cycle model meets a throughput target within a resource
# budget on the xc7z020 (`pynq_neuro.compiler.resources.Budget`; by default the core leaves
# part of the device to the DMA and the interconnect).
#
# This notebook compiles the hardware default `tdnn-w2a2-sparse-in4`, looks at the result layer by
# layer, trades folding against throughput, and checks that the artifact's memory images
# still hold exactly the integer network. It needs numpy and matplotlib only.

# %%
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pynq_neuro
from pynq_neuro import plots, zoo
from pynq_neuro.compiler.artifact import ArtifactError, load_artifact, unpack_binary
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.inspect import summary_table
from pynq_neuro.data import DATASETS, load_dataset
from pynq_neuro.golden import run

DATASET = "mnist"  # a name in pynq_neuro.data.DATASETS, or a folder of IDX files or an .npz
DATA = {"name": DATASET} if DATASET in DATASETS else {"path": DATASET}
test_set = load_dataset(split="test", **DATA)
x_test, y_test = test_set.images, test_set.labels
NAME = zoo.hardware_default()
ARTIFACT = Path(os.environ.get("PYNQ_NEURO_BUILD", "~/pynq_neuro_build")).expanduser() / NAME
print(f"pynq-neuro {pynq_neuro.__version__}; compiling {NAME} into {ARTIFACT}; data "
      f"{test_set.describe()}")

# %% [markdown]
# ## The network
#
# Three time-delay layers and the classifier; `kept` is the share of synapses that the
# lane-balanced pruning left in each layer.

# %%
net = zoo.load_network(NAME)
print(f"{NAME}: W{net.weight_bits}A{net.act_bits}, {net.synapses:,} synapses, "
      f"zoo accuracy {100 * zoo.info(NAME)['accuracy']:.2f} %")
print(f"{'layer':>5} {'in':>9} {'out':>9} {'K/S':>4} {'synapses':>9} {'kept':>6}")
for i, L in enumerate(net.layers):
    print(f"{i:>5} {L.in_channels:>4}x{L.in_frames:<4} {L.out_channels:>4}x{L.out_frames:<4}"
          f" {L.taps}/{L.stride} {L.synapses:>9,} {L.synapses / L.codes.size:>6.1%}")

# %% [markdown]
# ## Compile
#
# `compile_network` runs the golden model on sample digits (1,000 test digits of `DATASET`,
# spread evenly over its test split; their activations drive the cycle model: a zero activation is no event and
# costs no cycle), searches the foldings, maps every layer to memory words and writes the
# artifact. The command line equivalent is `pynq-neuro compile tdnn-w2a2-sparse-in4 -o DIR`.

# %%
t0 = time.perf_counter()
manifest = compile_network(NAME, ARTIFACT, CompileConfig(), test_set)
compile_s = time.perf_counter() - t0
art = load_artifact(ARTIFACT)
perf = manifest["performance"]
print(summary_table(art))
budget = perf["budget"]
print(f"\ncompiled in {compile_s:.1f} s for a target of {perf['target_images_per_s']:,.0f} "
      f"digits/s within {budget['luts']:,} LUTs and {budget['bram36']} BRAM36 at "
      f"{budget['clock_mhz']:g} MHz; folding search: {perf['folding_note']}")

# %% [markdown]
# How to read the table: `G x P` is the folding (event groups × lanes); `words` is the depth of
# each group's synapse memory; `acc` the accumulator width; `cyc/digit` the busy cycles of
# the layer per digit in the cycle model; `LUT` and `BRAM36` the compiler's resource
# *estimate* (not synthesis).
#
# ## Sparsity maps
#
# Black where a synapse exists, one row per output unit, columns `tap × input channel`. The
# lane-balanced pruning keeps the same number of synapses in each processing element's share
# of every column, so the number of memory words per event (below) is the same for every
# input channel: no column is slower than another. The maps are the ones `pynq-neuro inspect`
# draws (`pynq_neuro.compiler.inspect.plot`, PNG files in the artifact's `inspect/` folder).

# %%
from IPython.display import Image, display

from pynq_neuro.compiler.inspect import plot as inspect_plots
from pynq_neuro.compiler.mapping import Folding, map_layer

plot_files = inspect_plots(art, ARTIFACT / "inspect")
display(Image(filename=str(plot_files[0])))
hw = art.manifest["hardware"]["layers"]
maps = [map_layer(art.network, i, Folding(h["groups"], h["lanes"]), pack=False,
                  acc_bits=h["acc_bits"], depth=h["synapse_depth"],
                  count_bits=h["count_bits"])
        for i, h in enumerate(hw)]
layers = art.network.layers
print(f"{'layer':>5} {'words per event and tap: min':>29} {'mean':>6} {'max':>5}")
for i, lm in enumerate(maps):
    print(f"{i:>5} {lm.words.min():>29} {lm.words.mean():>6.2f} {lm.words.max():>5}")

# %% [markdown]
# ## Memory: block RAM per bank
#
# Each layer has a synapse memory and an index memory per event group, and one parameter
# memory (thresholds, or the classifier's biases) shared by its lanes. Large synapse and
# index memories go to block RAM, small ones to distributed RAM (LUTs); the parameters are
# read by every lane in the same cycle, so they always live in distributed RAM. The numbers
# are the compiler's estimate, the same it used to choose the foldings.

# %%
from pynq_neuro.compiler.resources import bank_resources

mems = art.manifest["memories"]
bram = np.zeros((len(layers), 2))          # synapse, index memories in BRAM36
lutram = np.zeros(len(layers))             # LUTs of the memories kept in distributed RAM
for m in mems:
    # synapse memories are block RAM, index tables by size, thresholds distributed RAM (all
    # lanes read theirs at once)
    r = bank_resources(m["kind"], m["depth"], m["width"])
    if m["kind"] != "params":
        bram[m["layer"], ("synapse", "index").index(m["kind"])] += r.bram36
    lutram[m["layer"]] += r.luts
est = perf["resources_estimate"]
assert np.allclose(bram.sum(axis=1), [r["bram36"] for r in est["layers"]])
print(f"{len(mems)} memory banks, {sum(m['depth'] * m['width'] for m in mems) / 8192:.1f} KiB")
print(f"{'layer':>5} {'synapse BRAM36':>15} {'index BRAM36':>13} {'LUTRAM LUTs':>12} "
      f"{'LUTs (all)':>11}")
for i in range(len(layers)):
    print(f"{i:>5} {bram[i, 0]:>15g} {bram[i, 1]:>13g} {lutram[i]:>12.0f} "
          f"{est['layers'][i]['luts']:>11,}")
t = est["total"]
print(f"total with the AXI shell: {t['bram36']:g} BRAM36 (budget {budget['bram36']}), "
      f"{t['luts']:,} LUTs (budget {budget['luts']:,})")

fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
a1.bar(range(len(layers)), bram[:, 0], label="synapse memories")
a1.bar(range(len(layers)), bram[:, 1], bottom=bram[:, 0], label="index memories")
a1.set_xlabel("layer")
a1.set_ylabel("BRAM36")
a1.set_title(f"block RAM: {t['bram36']:g} BRAM36 (budget {budget['bram36']})", fontsize=10)
a1.legend(fontsize=8)
a2.bar(range(len(layers)), [r["luts"] for r in est["layers"]], color="tab:purple",
       label="all logic")
a2.bar(range(len(layers)), lutram, color="tab:pink", label="distributed RAM")
a2.set_xlabel("layer")
a2.set_ylabel("LUTs (estimate)")
a2.set_title(f"logic: {t['luts']:,} LUTs (budget {budget['luts']:,})", fontsize=10)
a2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## The cycle model
#
# The neuron arrays are event driven: a layer spends cycles only on nonzero activations, so
# each digit takes its own time. The layers form a pipeline with frame buffers between
# neighbours (three behind layer 0, two elsewhere), and the slowest layer sets the steady-state
# rate. `simulate` streams the digits back to back through the model of that pipeline; here the
# compile's own sample, 1,000 digits spread over the test split.

# %%
from pynq_neuro.compiler.cycles import simulate

x_sample = test_set.sample(CompileConfig().sample_digits).images
report = simulate(maps, art.network, x_sample)
s = report.summary(budget["clock_mhz"])
assert np.isclose(s["cycles_per_digit"], perf["cycle_model"]["cycles_per_digit"])
print(f"{s['cycles_per_digit']:.1f} cycles per digit -> {s['images_per_s']:,.0f} digits/s at "
      f"{budget['clock_mhz']:g} MHz; latency {s['latency_cycles_mean']:.0f} cycles "
      f"(p99 {s['latency_cycles_p99']:.0f}); bottleneck: layer {s['bottleneck_layer']}")

fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 3.8))
bins = np.arange(0, report.layer_cycles.max() + 10, 5)
for i, cyc in enumerate(report.layer_cycles):
    a1.hist(cyc, bins=bins, histtype="step", lw=1.5, label=f"layer {i}")
a1.axvline(s["cycles_per_digit"], color="k", ls="--", lw=1, label="pipeline cycles/digit")
a1.set_xlabel("busy cycles per digit")
a1.set_ylabel("digits")
a1.legend(fontsize=8)
ink = (x_sample > 0).sum(axis=(1, 2))
a2.scatter(ink, report.layer_cycles[0], s=4, label="layer 0")
a2.scatter(ink, report.layer_cycles[s["bottleneck_layer"]], s=4,
           label=f"layer {s['bottleneck_layer']}")
a2.set_xlabel("nonzero pixels of the digit")
a2.set_ylabel("busy cycles")
a2.set_title("more ink, more events, more cycles", fontsize=10)
a2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## Folding against throughput
#
# More groups and lanes process more events per cycle and cost more logic and memory ports.
# The folding search upgrades the bottleneck layer until the target is met or no upgrade fits
# the budget. Compiling the same network for a range of targets, once within the default
# budget and once with every LUT of the xc7z020, shows the trade-off (each compile writes a
# throwaway artifact into a temporary folder).

# %%
import dataclasses

from pynq_neuro.compiler.resources import Budget

budgets = {"default budget": Budget(), "whole xc7z020": dataclasses.replace(Budget(), luts=53_200)}
targets = [25_000, 50_000, 100_000, 200_000, 400_000]
sweep = []
with tempfile.TemporaryDirectory() as tmp:
    for label, b in budgets.items():
        for target in targets:
            m = compile_network(net, Path(tmp) / f"{label}-{target}",
                                CompileConfig(target_images_per_s=target, budget=b,
                                              sample_digits=300),
                                test_set)
            p = m["performance"]
            sweep.append({
                "budget": label, "target": target,
                "folding": " ".join(f"{h['groups']}x{h['lanes']}"
                                    for h in m["hardware"]["layers"]),
                "digits_per_s": p["cycle_model"]["images_per_s"],
                "luts": p["resources_estimate"]["total"]["luts"],
                "bram36": p["resources_estimate"]["total"]["bram36"],
                "met": p["folding_note"] == "target met",
            })
print(f"{'budget':<15} {'target':>8} {'foldings (G x P per layer)':<28} {'digits/s':>9} "
      f"{'LUTs':>7} {'BRAM36':>7}  target met")
for r in sweep:
    print(f"{r['budget']:<15} {r['target']:>8,} {r['folding']:<28} {r['digits_per_s']:>9,.0f} "
          f"{r['luts']:>7,} {r['bram36']:>7g}  {'yes' if r['met'] else 'no'}")

fig, ax = plt.subplots(figsize=(8, 4.2))
for label, marker in zip(budgets, ("o-", "s--")):
    rows = sorted({r["folding"]: r for r in sweep if r["budget"] == label}.values(),
                  key=lambda r: r["luts"])
    ax.plot([r["luts"] for r in rows], [r["digits_per_s"] for r in rows], marker,
            label=f"{label} ({budgets[label].luts:,} LUTs)")
seen = set()
for r in sorted(sweep, key=lambda r: r["luts"]):
    if r["folding"] not in seen:
        seen.add(r["folding"])
        ax.annotate(r["folding"], (r["luts"], r["digits_per_s"]), fontsize=7,
                    textcoords="offset points", xytext=(6, -10))
ax.set_xlabel("LUTs (estimate)")
ax.set_ylabel("digits/s (cycle model, 100 MHz)")
ax.set_xlim(0, 1.25 * max(r["luts"] for r in sweep))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()

# %% [markdown]
# ## The artifact
#
# `docs/artifact-format.md` describes every file bit by bit. The `.mem` images are what
# synthesis initialises the block RAMs with; `network.bin` carries the same banks as one
# stream (a header, one block per bank and a CRC) that the driver sends through the DMA to
# load a network into a core that was built for the same hardware parameters (the
# *fingerprint*).

# %%
files = sorted(p for p in ARTIFACT.rglob("*") if p.is_file() and p.parent.name != "inspect")
by_folder = {}
for p in files:
    key = p.parent.relative_to(ARTIFACT).as_posix() + "/" if p.parent != ARTIFACT else p.name
    n, size = by_folder.get(key, (0, 0))
    by_folder[key] = (n + 1, size + p.stat().st_size)
for key, (n, size) in by_folder.items():
    print(f"  {key:<18} {n:>3} file{'s' if n > 1 else ' '} {size / 1024:>8.1f} KiB")
print(f"hardware fingerprint: {art.fingerprint}")

print("\nneuro_params.vh (first lines):")
print("\n".join((ARTIFACT / "neuro_params.vh").read_text().splitlines()[:14]))
first = mems[0]
print(f"\n{first['mem']} ({first['depth']} words of {first['width']} bits), first words:")
print("\n".join((ARTIFACT / first["mem"]).read_text().splitlines()[:3]))

blob = (ARTIFACT / "network.bin").read_bytes()
magic, version, n_banks, n_words = struct.unpack_from("<4sIII", blob)
print(f"\nnetwork.bin: magic {magic!r}, version {version}, {n_banks} banks, {n_words:,} "
      f"payload words, {len(blob):,} bytes")
banks = unpack_binary(blob)
assert [b.words for b in banks] == [b.words for b in art.banks]
print("the stream holds exactly the banks of the .mem images")

# %% [markdown]
# ## The artifact still holds the network
#
# `load_artifact` verifies checksums and rebuilds the integer network from the memory images
# alone — from the `.mem` files or from `network.bin`. Its golden model must give the same
# logits as the zoo's integer network on every test digit.

# %%
t0 = time.perf_counter()
ref = run(net, x_test)
from_mem = run(art.network, x_test)
from_bin = run(load_artifact(ARTIFACT, source="bin").network, x_test)
same_mem = int((ref.logits == from_mem.logits).all(axis=1).sum())
same_bin = int((ref.logits == from_bin.logits).all(axis=1).sum())
print(f"identical logits on {same_mem:,}/{len(x_test):,} digits (.mem images) and "
      f"{same_bin:,}/{len(x_test):,} (network.bin); {time.perf_counter() - t0:.1f} s")
print(f"accuracy of the artifact: {100 * (from_mem.classes == y_test).mean():.2f} %")
assert same_mem == same_bin == len(x_test)
plots.confusion_plot(plots.confusion_matrix(y_test, from_mem.classes),
                     title=f"{NAME} from the artifact (golden model)");

# %% [markdown]
# A damaged artifact is refused with a message that names the file, before anything reaches
# the hardware:

# %%
with tempfile.TemporaryDirectory() as tmp:
    damaged = Path(tmp) / "damaged"
    shutil.copytree(ARTIFACT, damaged)
    mem_file = damaged / mems[0]["mem"]
    text = mem_file.read_text()
    mem_file.write_text(("1" if text[0] == "0" else "0") + text[1:])
    try:
        load_artifact(damaged)
    except ArtifactError as e:
        print(f"refused: {e}")
    else:
        raise AssertionError("a damaged artifact was accepted")

# %% [markdown]
# **Next:** [3 · Simulate the RTL](03_simulate_rtl.ipynb) runs this artifact on the Verilog
# core, cycle by cycle.
