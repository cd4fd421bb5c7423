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
# # 3 · Simulate the Verilog core
#
# Before a bitstream exists, the Verilog of `neuro_core` (`hdl/`) runs in simulation two ways:
#
# * the **fast path** (`pynq_neuro.rtl.regression`): the core and a plain Verilog bench that
#   streams digits back to back, compiled by Verilator: hundreds of digits in seconds, every
#   class and logit compared with the golden model, and the measured cycles compared with the
#   compiler's cycle model;
# * the **driver's simulation backend** (`NeuroAccelerator(backend="sim")`): the core behind
#   simulated AXI-Lite registers and AXI DMA channels, so that the *same driver* that talks
#   to the board reads the registers, loads the network through the stream and classifies.
#   It runs on Verilator when it is installed, else on Icarus Verilog with cocotb (far
#   slower).
#
# Both need the repository checkout (the Verilog sources) and a simulator
# (`apt-get install verilator iverilog`, `pip install pynq-neuro[sim]`). Cells whose tools
# are missing say so and skip; nothing here runs on the board.

# %%
import importlib.util
import os
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pynq_neuro
from pynq_neuro import plots, rtl, zoo
from pynq_neuro.compiler.artifact import load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.data import DATASETS, load_dataset
from pynq_neuro.golden import run

DATASET = "mnist"  # a name in pynq_neuro.data.DATASETS, or a folder of IDX files or an .npz
DATA = {"name": DATASET} if DATASET in DATASETS else {"path": DATASET}
test_set = load_dataset(split="test", **DATA)
x_test, y_test = test_set.images, test_set.labels
BUILD = Path(os.environ.get("PYNQ_NEURO_BUILD", "~/pynq_neuro_build")).expanduser()
print(f"pynq-neuro {pynq_neuro.__version__}; builds in {BUILD}; data {test_set.describe()}")


def have_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


sources = rtl.have_datapath()
tools = {t: shutil.which(t) for t in ("verilator", "iverilog", "vvp")}
python_sim = {m: have_module(m) for m in ("cocotb", "cocotbext.axi")}
HAVE_VERILATOR = sources and bool(tools["verilator"])
try:
    from pynq_neuro.driver.sim_bus import resolve_engine, sim_unavailable

    SIM_REASON = sim_unavailable()
    SIM_ENGINE = resolve_engine()
except ImportError as e:
    SIM_REASON, SIM_ENGINE = f"the simulation backend is not installed ({e})", None
HAVE_COSIM = SIM_REASON is None
print(f"Verilog sources: {rtl.hdl_dir() if sources else 'not found (repository checkout needed)'}")
for name, path in {**tools, **python_sim}.items():
    print(f"  {name:<14} {path if path else 'missing'}")
print(f"fast path (Verilator): {'yes' if HAVE_VERILATOR else 'skipped'}; driver simulation: "
      + (f"yes, on {SIM_ENGINE}" if HAVE_COSIM else f"skipped ({SIM_REASON})"))

# %% [markdown]
# ## The artifact
#
# The simulators build the core for an artifact's parameters (`neuro_params.vh`) and load its
# memory images, exactly like synthesis. Compiling is quick and deterministic, so this
# notebook compiles the hardware default into the build folder (the same place notebook 2
# uses), with 1,000 test digits of `DATASET`, spread over its test split, as the cycle model's
# sample.

# %%
NAME = zoo.hardware_default()
ARTIFACT = BUILD / NAME
manifest = compile_network(NAME, ARTIFACT, CompileConfig(), test_set)
art = load_artifact(ARTIFACT)
print(f"{ARTIFACT}: {manifest['network']['name']}, fingerprint {art.fingerprint}, "
      f"cycle model {manifest['performance']['cycle_model']['cycles_per_digit']:.1f} "
      f"cycles/digit")

# %% [markdown]
# ## Verilator: a few hundred digits, bit-exact
#
# `regression` builds the Verilator model (once: about two minutes on two cores; later runs
# reuse the build in `BUILD/verilator`), streams the first test digits of `DATASET` back to
# back with logits enabled, and checks every class and every logit against the golden model.

# %%
DIGITS = 300
report = None
if not HAVE_VERILATOR:
    print("skipped: the Verilator fast path needs verilator and the Verilog sources")
else:
    from pynq_neuro.rtl.regression import format_report, regression

    t0 = time.perf_counter()
    report = regression(ARTIFACT, x_test[:DIGITS], labels=y_test[:DIGITS],
                        workdir=BUILD / "rtl_run", build_root=BUILD / "verilator")
    print(format_report(report))
    print(f"({time.perf_counter() - t0:.0f} s including the build)")
    assert report["passed"], "the RTL disagrees with the golden model"

# %% [markdown]
# ### Cycles per digit: RTL against the cycle model
#
# The bench stamps the cycle of every digit's first pixel beat and of its result. With digits
# back to back, the spacing of results is the throughput and first beat to result the
# latency. The compiler's cycle model predicts both from the same digits.

# %%
if report is None:
    print("skipped (no Verilator run)")
else:
    from pynq_neuro.compiler.cycles import simulate
    from pynq_neuro.compiler.mapping import Folding, map_layer
    from pynq_neuro.rtl.regression import parse_results

    fast = parse_results(Path(report["workdir"]) / "results.txt")
    hw = art.manifest["hardware"]["layers"]
    maps = [map_layer(art.network, i, Folding(h["groups"], h["lanes"]), pack=False,
                      acc_bits=h["acc_bits"], depth=h["synapse_depth"],
                      count_bits=h["count_bits"])
            for i, h in enumerate(hw)]
    model = simulate(maps, art.network, x_test[:DIGITS])
    rtl_interval, model_interval = np.diff(fast.result), np.diff(model.result_times)
    rtl_latency = fast.result - fast.first_beat
    print(f"{'':22}{'RTL':>10}{'model':>10}")
    print(f"{'cycles/digit (mean)':<22}{rtl_interval.mean():>10.1f}{model_interval.mean():>10.1f}")
    print(f"{'latency (mean)':<22}{rtl_latency.mean():>10.1f}{model.latency.mean():>10.1f}")
    print(f"RTL / model, cycles per digit: {rtl_interval.mean() / model_interval.mean():.4f}; "
          f"latency: {rtl_latency.mean() / model.latency.mean():.4f}")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 3.8))
    bins = np.arange(min(rtl_interval.min(), model_interval.min()) - 5,
                     max(rtl_interval.max(), model_interval.max()) + 10, 5)
    same = int((rtl_interval == model_interval).sum())
    a1.hist(rtl_interval, bins=bins, alpha=0.5, label="RTL (Verilator)")
    a1.hist(model_interval, bins=bins, histtype="step", lw=1.5, color="k", label="cycle model")
    a1.set_xlabel("cycles between consecutive results")
    a1.set_ylabel("digits")
    a1.set_title(f"{same} of {len(rtl_interval)} intervals identical", fontsize=10)
    a1.legend(fontsize=8)
    a2.scatter(model.latency, rtl_latency, s=5)
    lims = [min(model.latency.min(), rtl_latency.min()), max(model.latency.max(), rtl_latency.max())]
    a2.plot(lims, lims, "k:", lw=1)
    a2.set_xlabel("latency, cycle model (cycles)")
    a2.set_ylabel("latency, RTL (cycles)")
    a2.set_title("one point per digit", fontsize=10)
    fig.tight_layout()

# %%
if report is None:
    print("skipped (no Verilator run)")
else:
    plots.digit_gallery(x_test[:20], y_test[:20], fast.classes[:20],
                        title="the RTL's answers (Verilator)");

# %% [markdown]
# ## The driver on the simulated core
#
# `NeuroAccelerator(backend="sim")` builds the core for the artifact (once; the build is
# shared by every artifact of the same hardware), starts the simulator in a child process and
# speaks to it with the same register reads and DMA transfers as on the board: read the
# identification registers, load the network through the stream, classify. The simulator
# counts clock cycles, so the core's own counters are meaningful. The number of digits is
# chosen so that the classification takes about ten seconds: hundreds on Verilator, a couple
# on Icarus.

# %%
SIM_SECONDS = 10.0
if not HAVE_COSIM:
    print(f"skipped: {SIM_REASON}")
else:
    from pynq_neuro.driver import NeuroAccelerator

    t0 = time.perf_counter()
    with NeuroAccelerator(backend="sim", artifact=ARTIFACT) as acc:
        print(f"simulator ready after {time.perf_counter() - t0:.0f} s "
              f"(engine {SIM_ENGINE}; the first run builds it)")
        info = acc.hardware()
        print(f"core ID {info['id']:#010x}, fingerprint {info['fingerprint']}, "
              f"{info['num_layers']} layers, foldings "
              + " ".join(f"{l['groups']}x{l['lanes']}" for l in info["layers"]))
        c0 = acc.bus.cycles()
        acc.load_network(ARTIFACT)
        print(f"network loaded through the stream in {acc.bus.cycles() - c0:,} simulated "
              f"cycles")
        t1 = time.perf_counter()
        acc.classify(x_test[:2])
        per_digit = (time.perf_counter() - t1) / 2
        n_sim = int(np.clip(SIM_SECONDS / per_digit, 2, 1000))
        before = acc.status()
        t1, c1 = time.perf_counter(), acc.bus.cycles()
        sim_classes, sim_logits = acc.classify(x_test[:n_sim], logits=True)
        wall, cycles = time.perf_counter() - t1, acc.bus.cycles() - c1
        after = acc.status()
    print(f"classified {n_sim} digits in one transfer: {cycles:,} simulated cycles "
          f"({cycles / n_sim:.0f} per digit, {100e6 * n_sim / cycles:,.0f} digits/s at "
          f"100 MHz) in {wall:.1f} s of wall time")
    busy = after["cycles"] - before["cycles"]
    print(f"the core's counters: {after['digits'] - before['digits']} digits, {busy:,} "
          f"cycles with a digit in flight; error: {after['error_meaning']}")
    gold = run(art.network, x_test[:n_sim])
    assert np.array_equal(sim_classes, gold.classes) and np.array_equal(sim_logits, gold.logits)
    print(f"classes and logits equal the golden model's on all {n_sim} digits; accuracy "
          f"{100 * (sim_classes == y_test[:n_sim]).mean():.2f} %")
    shown = min(n_sim, 20)
    plots.digit_gallery(x_test[:shown], y_test[:shown], sim_classes[:shown],
                        title="the driver's answers from the simulated core");

# %% [markdown]
# **Next:** [4 · Board inference](04_board_inference.ipynb) runs the same driver on the
# PYNQ-Z2.
