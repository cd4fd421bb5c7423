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
# # 4 · Classify digits on the PYNQ-Z2
#
# `NeuroAccelerator` is the driver of the neuron-array core. With `backend="auto"` it uses
# the board when the pynq-neuro overlay is available, else the RTL in simulation (Verilator,
# or Icarus + cocotb, with the repository checkout), else a numpy model of the core
# (`golden`). The calls are the same in all three cases, so this notebook runs anywhere; on
# the board it needs numpy and pynq only.
#
# Steps: find or compile the artifact, open the accelerator, load the network,
# classify the 10,000 test digits (a small subset in simulation), look at the answers, and
# measure throughput against batch size. Set `PYNQ_NEURO_BACKEND` (or edit `BACKEND` below)
# to choose a backend instead of `auto`.

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pynq_neuro
from pynq_neuro import plots, zoo
from pynq_neuro.compiler.artifact import load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.data import load_mnist
from pynq_neuro.driver import NeuroAccelerator
from pynq_neuro.golden import run

BUILD = Path(os.environ.get("PYNQ_NEURO_BUILD", "~/pynq_neuro_build")).expanduser()
BUILD.mkdir(parents=True, exist_ok=True)
BACKEND = os.environ.get("PYNQ_NEURO_BACKEND", "auto")
NAME = zoo.hardware_default()
x_test, y_test = load_mnist("test")
print(f"pynq-neuro {pynq_neuro.__version__}; {len(x_test):,} test digits; backend {BACKEND!r}")

# %% [markdown]
# ## The artifact
#
# The core on the board was synthesized for one compiled network; the driver refuses an
# artifact whose hardware fingerprint differs from the core's. When the overlay is installed
# with the package, its artifact lies beside the bitstream (`pynq_neuro.overlays.ARTIFACT_DIR`)
# and this notebook uses it. Without an overlay, the hardware model is compiled with the
# default settings into the build folder, and the simulated or golden core is built for it.

# %%
from pynq_neuro import overlays

if (overlays.ARTIFACT_DIR / "manifest.json").is_file():
    ARTIFACT = overlays.ARTIFACT_DIR
    origin = "installed with the overlay"
else:
    ARTIFACT = BUILD / NAME
    t0 = time.perf_counter()
    compile_network(NAME, ARTIFACT, CompileConfig(), x_test[:1000])
    origin = f"compiled in {time.perf_counter() - t0:.1f} s"
art = load_artifact(ARTIFACT)
print(f"{ARTIFACT} ({origin}): {art.manifest['network']['name']}, hardware {art.fingerprint}")

# %% [markdown]
# ## Bring-up check
#
# `pynq-neuro selftest` in a cell: the environment (pynq, image, versions, whether `neuro.bit`
# and `neuro.hwh` belong together, the PL clock against the artifact's clock), the core's
# parameters against the artifact, loading the network, the test digits bit for bit against
# the golden model, throughput against the cycle model, and recovery from a deliberate short
# frame. Each failed step says the likely cause and the fix. On the board it tests the overlay
# with all 10,000 digits; off the board (backend `auto`) it runs on the golden model of the
# core with 1,000.

# %%
from pynq_neuro.driver import board
from pynq_neuro.driver.selftest import SelftestConfig, run_selftest

if BACKEND != "auto":
    CHECK = BACKEND
else:
    CHECK = "board" if board.board_available() else "golden"
quick = CHECK == "golden"   # the board: 10,000 digits; sim: a few (the simulator is slow)
report = run_selftest(SelftestConfig(backend=CHECK, artifact=ARTIFACT,
                                     digits=1000 if quick else None,
                                     throughput_digits=200 if quick else None), log=print)
print(report.verdict())

# %% [markdown]
# ## Open the accelerator and load the network
#
# The driver first reads the core's identification and parameter registers. `load_network`
# compares them with the artifact (fingerprint and every layer field), streams `network.bin`
# into the core's memories and checks the core's `LOAD_OK` flag. (On the board the
# constructor has already loaded the artifact it was given; loading again shows the step.)

# %%
acc = NeuroAccelerator(backend=BACKEND, artifact=ARTIFACT)
print(f"backend: {acc.backend}")
if acc.backend != "board":
    print(f"not on the board: the '{acc.backend}' backend stands in for the core, so the "
          "times and rates below are not PYNQ-Z2 measurements")
info = acc.hardware()
print(f"core ID {info['id']:#010x}, core version {info['core_version']}, artifact format "
      f"{info['format_version']}, {info['input_bits']}-bit pixels, fingerprint "
      f"{info['fingerprint']}")
print("layers (groups x lanes):", " ".join(f"{l['groups']}x{l['lanes']}" for l in info["layers"]))
t0 = time.perf_counter()
acc.load_network(ARTIFACT)
status = acc.status()
print(f"network {status['network']} loaded in {time.perf_counter() - t0:.2f} s: "
      f"load_ok {status['load_ok']}, error: {status['error_meaning']}")

# %% [markdown]
# ## Classify the test set
#
# On the board and in the golden backend, all 10,000 digits. A simulation is much slower, so
# there the number of digits is chosen to take about `SIM_SECONDS` of wall time.

# %%
SIM_SECONDS = 15.0
if acc.backend in ("board", "golden"):
    N = len(x_test)
else:
    t0 = time.perf_counter()
    acc.classify(x_test[:2])
    N = int(np.clip(SIM_SECONDS / ((time.perf_counter() - t0) / 2), 2, len(x_test)))
t0 = time.perf_counter()
classes, logits = acc.classify(x_test[:N], logits=True)
wall = time.perf_counter() - t0
labels = y_test[:N]
accuracy = float((classes == labels).mean())
print(f"{N:,} digits in {wall:.2f} s on '{acc.backend}': accuracy {100 * accuracy:.2f} %")
gold = run(art.network, x_test[:N])
same = int((logits == gold.logits).all(axis=1).sum())
print(f"logits identical to the golden model on {same:,}/{N:,} digits")
assert same == N

# %%
shown = min(N, 30)
plots.digit_gallery(x_test[:shown], labels[:shown], classes[:shown],
                    title=f"the fabric's answers ({acc.backend}): green right, red wrong");
wrong = np.flatnonzero(classes != labels)
if len(wrong):
    plots.digit_gallery(x_test[wrong[:20]], labels[wrong[:20]], classes[wrong[:20]],
                        title=f"{len(wrong)} misclassified digits (first 20)");

# %%
plots.confusion_plot(plots.confusion_matrix(labels, classes),
                     title=f"{NAME} on '{acc.backend}'");

# %% [markdown]
# ## Throughput against batch size
#
# `classify` sends up to `max_batch` digits per DMA transfer (the core groups them into one
# packet, `BATCH` register). Small batches pay the per-transfer cost of the driver and the
# DMA for every few digits; large batches approach the core's compute rate. On the board the
# numbers are wall-clock times with data movement and the core's own cycle counter; in
# simulation they are simulated cycles at 100 MHz; the golden backend reports the
# compiler's cycle model. In simulation the test uses fewer digits (a quarter of `N`).

# %%
n_tp = 1000 if acc.backend in ("board", "golden") else max(2, min(1000, N // 4))
sizes = sorted({b for b in (1, 10, 100, 1000) if b < n_tp} | {n_tp})
tp = acc.throughput_test(n=n_tp, batch_sizes=tuple(sizes))
print(f"{tp['n']} digits per batch size on '{tp['backend']}' ({tp['source']}), "
      f"{tp['clock_mhz']:g} MHz")
rows = tp["per_batch_size"]
print(f"{'batch':>6} {'transfers':>9} {'cycles/digit':>13} {'digits/s':>10} "
      f"{'with data movement':>19} {'wall s':>8}")
for r in rows:
    print(f"{r['batch']:>6} {r['transfers']:>9} {r['cycles_per_digit']:>13.1f} "
          f"{r['digits_per_s']:>10,.0f} {r['digits_per_s_with_data_movement']:>19,.0f} "
          f"{r['wall_s']:>8.2f}")
model = art.manifest["performance"]["cycle_model"]["images_per_s"]

fig, ax = plt.subplots(figsize=(6.5, 3.8))
batches = [r["batch"] for r in rows]
ax.plot(batches, [r["digits_per_s"] for r in rows], "o-", label="core (CYCLES register)")
ax.plot(batches, [r["digits_per_s_with_data_movement"] for r in rows], "s--",
        label="with data movement")
ax.axhline(model, color="k", ls=":", lw=1, label="compiler's cycle model")
ax.set_xscale("log")
ax.set_xlabel("digits per DMA transfer")
ax.set_ylabel("digits per second")
ax.set_title(f"backend '{acc.backend}'", fontsize=10)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
acc.close()
print(f"{NAME} on '{acc.backend}': accuracy {100 * accuracy:.2f} % on {N:,} digits, "
      f"core {tp['digits_per_s']:,.0f} digits/s")
