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
# # 1 · Train and quantize a time-delay network for MNIST
#
# This notebook follows a network from floating point to the integers that the FPGA computes:
#
# 1. the MNIST digits and the time-delay network (TDNN) that reads them row by row;
# 2. the **UniQ** quantizer: weights on odd multiples of Δ/2, 1 to 8 bits;
# 3. weight histograms of the shipped models (`pynq_neuro/zoo`) at 1, 2 and 4 bits, and
#    their training curves;
# 4. a short real training run (float warm start, then quantization-aware training) on a
#    subset of the training digits;
# 5. lowering the quantized model to an **integer network**, and checking that the numpy
#    golden model (what the hardware implements) agrees with PyTorch digit by digit.
#
# It needs PyTorch, so it runs on the host, not on the board. The next notebook compiles the
# shipped hardware model; the board notebook (4) needs numpy and pynq only.

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import pynq_neuro
from pynq_neuro import plots, zoo
from pynq_neuro.data import DATASETS, load_dataset

DATASET = "mnist"  # a name in pynq_neuro.data.DATASETS, or a folder of IDX files or an .npz
DATA = {"name": DATASET} if DATASET in DATASETS else {"path": DATASET}

torch.set_num_threads(1)  # the runs below are small; one thread leaves the machine free
BUILD = Path(os.environ.get("PYNQ_NEURO_BUILD", "~/pynq_neuro_build")).expanduser()
BUILD.mkdir(parents=True, exist_ok=True)
print(f"pynq-neuro {pynq_neuro.__version__}, torch {torch.__version__}; files go to {BUILD}")

# %% [markdown]
# ## The digits
#
# `load_dataset` reads the dataset that `DATASET` names. For MNIST it looks in
# `$PYNQ_NEURO_DATA`, the test split bundled with the package, the user cache, and finally
# downloads it; every file is checked against its SHA-256. The other named datasets are
# downloaded into the user cache on first use; a path is read as it is.

# %%
train_set = load_dataset(split="train", **DATA)
test_set = load_dataset(split="test", **DATA)
x_train, y_train = train_set.images, train_set.labels
x_test, y_test = test_set.images, test_set.labels
print(f"dataset {test_set.describe()}: training digits {x_train.shape} {x_train.dtype}, "
      f"test digits {x_test.shape}")
print("test digits per class:", np.bincount(y_test).tolist())
plots.digit_gallery(x_train[:20], y_train[:20], title="the first training digits and their labels");

# %% [markdown]
# ## The network: rows are frames
#
# A TDNN treats the 28 rows of a digit as 28 time steps (*frames*) of 28 channels (the pixels
# of a row). Each hidden layer looks at `taps` consecutive frames, and a stride of two
# halves the frame rate. The classifier spans the frames that remain. Weights are
# shared across frames, so the whole network has few synapses. In hardware, the rows stream
# in one after another.

# %%
from pynq_neuro.models import ModelConfig, NeuroNet

cfg = ModelConfig(wbits=2, abits=2)
print(NeuroNet(cfg))
print(f"frames entering each layer: {cfg.frames()}; synapses: {NeuroNet(cfg).synapses():,}")

# %% [markdown]
# ## The UniQ quantizer
#
# A `b`-bit weight is stored as an integer code `k` in `[-2^(b-1), 2^(b-1) - 1]` and means
# `(k + 1/2)·Δ`: the levels are the **odd multiples of Δ/2**, symmetric around zero and
# without a zero level. One bit is plain binarization (±Δ/2), and every width uses the same
# code path. In integers, a weight is `2k + 1`, so the hardware only ever adds odd numbers.
# Activations are unsigned (`a·Δ`, `a` in `0 … 2^b - 1`) and replace the ReLU. The step Δ is
# learned (LSQ gradients with straight-through rounding).

# %%
from pynq_neuro.quant import SymmetricWeightQuantizer, UnsignedActQuantizer

w = torch.linspace(-4.5, 4.5, 3001)
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
with torch.no_grad():
    for ax, bits in zip(axes, (1, 2, 3)):
        q = SymmetricWeightQuantizer(bits, channels=1, per_channel=False)  # step Δ = 1
        ax.plot(w, q(w), lw=2, label="quantized")
        ax.plot(w, w, "k:", lw=0.8, label="identity")
        ax.set_title(f"{bits}-bit weights, Δ = 1", fontsize=10)
        ax.set_xlabel("latent weight / Δ")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    act = UnsignedActQuantizer(2)
    axes[3].plot(w, act(w), lw=2, color="tab:orange")
    axes[3].set_title("2-bit activation (replaces ReLU)", fontsize=10)
    axes[3].set_xlabel("pre-activation / Δ")
    axes[3].grid(alpha=0.3)
fig.tight_layout()

print(f"{'bits':>4} {'levels':>6}  levels in units of Δ/2")
with torch.no_grad():
    for bits in range(1, 9):
        q = SymmetricWeightQuantizer(bits, channels=1, per_channel=False)
        half_steps = torch.unique(q(torch.linspace(-300, 300, 60001))) * 2
        odd = bool(torch.all(half_steps.round() % 2 == 1))
        shown = half_steps.int().tolist()
        text = shown if len(shown) <= 8 else shown[:3] + ["..."] + shown[-3:]
        print(f"{bits:>4} {len(shown):>6}  {text}  all odd: {odd}")
        assert odd and len(shown) == 2**bits

# %% [markdown]
# ### Where does Δ start?
#
# Quantization-aware training starts from a full-precision model, with Δ set to the step that
# minimises the mean squared error of a Gaussian with the weights' standard deviation:
# `Δ = c_b·σ`. The constants `c_b` come from a closed-form error (`pynq_neuro.quant.gaussian`).
# Below, a numerical check on 200,000 Gaussian samples: scaling Δ away from `c_b·σ` does not
# make the error smaller (beyond sampling noise), and every extra bit adds a roughly constant
# number of decibels to the signal-to-quantization-noise ratio (the fitted slope is printed
# on the right).

# %%
from pynq_neuro.quant import mse_optimal_step

samples = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
scales = np.linspace(0.6, 1.4, 33)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 3.8))
sqnr = []
print(f"{'bits':>4} {'c_b':>8} {'MSE at c_b':>11} {'best scale':>11}")
with torch.no_grad():
    for bits in range(1, 9):
        q = SymmetricWeightQuantizer(bits, channels=1, per_channel=False)
        c = mse_optimal_step(bits, signed=True)
        errors = []
        for s in scales:
            q.step.fill_(c * s)
            errors.append(float(((q(samples) - samples) ** 2).mean()))
        errors = np.array(errors)
        at_c = errors[np.argmin(np.abs(scales - 1.0))]
        best = scales[np.argmin(errors)]
        sqnr.append(10 * np.log10(float(samples.var()) / at_c))
        print(f"{bits:>4} {c:>8.4f} {at_c:>11.2e} {best:>11.3f}")
        a1.plot(scales, errors / at_c, label=f"{bits} bit")
a1.axvline(1.0, color="k", lw=0.8)
a1.set_xlabel("Δ / (c_b σ)")
a1.set_ylabel("MSE relative to Δ = c_b σ")
a1.set_ylim(0.95, 2.0)
a1.legend(fontsize=7, ncol=2)
a2.plot(range(1, 9), sqnr, "o-")
slope = np.polyfit(range(1, 9), sqnr, 1)[0]
a2.set_xlabel("weight bits")
a2.set_ylabel("SQNR (dB)")
a2.set_title(f"{slope:.1f} dB per bit", fontsize=10)
for a in (a1, a2):
    a.grid(alpha=0.3)
fig.tight_layout()

# %% [markdown]
# ## Weights of the shipped models
#
# The zoo holds a float TDNN and its W1A1, W2A2 and W4A4 versions, trained from it
# (`pynq-neuro zoo` prints the commands that reproduce them). Top row: the *latent* weights of
# the second hidden layer, divided by each neuron's learned step Δ; the grey lines mark the
# quantization levels (odd multiples of 1/2) and the dashed lines the clipping range. Bottom
# row: the integer weights `2k + 1` that the lowered network stores (the `.npz` files).

# %%
from pynq_neuro.train import model_from_checkpoint

LAYER = 1
quantized = [n for n in ("tdnn-w1a1", "tdnn-w2a2", "tdnn-w4a4") if n in zoo.names()]
fig, axes = plt.subplots(2, len(quantized) + 1, figsize=(4 * (len(quantized) + 1), 6.2))
fmodel = model_from_checkpoint(zoo.checkpoint_path("tdnn-float"))
wf = fmodel.layers[LAYER].weight.detach()
wf = (wf / wf.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()).flatten().numpy()
axes[0, 0].hist(wf, bins=121, color="grey")
axes[0, 0].set_title("tdnn-float: weight / RMS", fontsize=10)
axes[1, 0].axis("off")
axes[1, 0].text(0, 0.5, "Training keeps float latent weights;\nonly their codes k are "
                "stored.\nThe hardware multiplies by 2k+1.", fontsize=10, va="center")
for col, name in enumerate(quantized, start=1):
    model = model_from_checkpoint(zoo.checkpoint_path(name))
    layer = model.layers[LAYER]
    bits = layer.weight_quant.bits
    with torch.no_grad():
        u = (layer.weight / layer.weight_quant.step.clamp_min(1e-8).view(-1, 1, 1)).flatten()
    lo, hi = -(2 ** (bits - 1)) + 0.5, 2 ** (bits - 1) - 0.5
    ax = axes[0, col]
    ax.hist(u.numpy(), bins=np.linspace(lo - 2, hi + 2, 121), color="tab:blue")
    for level in np.arange(lo, hi + 1):
        ax.axvline(level, color="grey", lw=0.6)
    for edge in (lo, hi):
        ax.axvline(edge, color="k", ls="--", lw=1)
    ax.set_title(f"{name}: latent weight / Δ", fontsize=10)
    ints = zoo.load_network(name).layers[LAYER].weights().reshape(-1)
    values, counts = np.unique(ints, return_counts=True)
    axes[1, col].bar(values, counts, width=1.2 if bits < 4 else 1.6, color="tab:green")
    axes[1, col].set_title(f"{name}: integer weights 2k+1 ({len(values)} values)",
                           fontsize=10)
    axes[1, col].set_xticks(values if len(values) <= 8 else values[::2])
    # the stored codes are exactly the quantizer's codes of the latent weights
    codes = layer.weight_quant.codes(layer.weight).numpy().astype(np.int64)
    assert np.array_equal(2 * codes.transpose(0, 2, 1) + 1,
                          zoo.load_network(name).layers[LAYER].weights())
fig.suptitle(f"hidden layer {LAYER} of each zoo model", fontsize=11)
fig.tight_layout()

# %% [markdown]
# ## Training curves of the zoo models
#
# Every checkpoint carries the history of its run (loss and accuracy on the augmented training
# digits). The quantized models start from the float model's weights rather than from
# scratch; the sparse models are pruning fine-tunes of the dense quantized ones.

# %%
from pynq_neuro.train import load_checkpoint

histories, rows = {}, []
for name in zoo.names():
    ckpt = load_checkpoint(zoo.checkpoint_path(name))
    histories[name] = ckpt["history"]
    rows.append((name, len(ckpt["history"]), ckpt["metrics"]["test_accuracy"],
                 ckpt["metrics"]["train_seconds"], ckpt["metrics"]["synapses"]))
print(f"{'model':<18}{'epochs':>7}{'test acc':>10}{'train s':>9}{'synapses':>10}")
for name, epochs, acc, secs, syn in rows:
    print(f"{name:<18}{epochs:>7}{100 * acc:>9.2f}%{secs:>9.0f}{syn:>10,}")
plots.training_curves(histories, title="zoo checkpoints: one point per epoch");

# %% [markdown]
# ## A short training run of our own
#
# The full recipe takes minutes per model (see `docs/quantization.md`). Here is the same
# recipe on a small budget: a float TDNN trained from scratch on the first 6,000 training
# digits for three epochs, then two epochs of W2A2 quantization-aware training that start
# from it (its steps initialised MSE-optimally). `train` evaluates each model on the full
# test set and returns a checkpoint dictionary; the checkpoints go to the build folder.

# %%
from pynq_neuro.train import TrainConfig, train

SUBSET = 6000
t0 = time.perf_counter()
float_ckpt = train(ModelConfig(), TrainConfig(epochs=3, threads=1, train_images=SUBSET,
                                              dataset=DATA.get("name"),
                                              data_dir=DATA.get("path")),
                   output=BUILD / "nb_float.pt", progress=False,
                   command="notebook 01: float warm start")
qat_ckpt = train(ModelConfig(wbits=2, abits=2),
                 TrainConfig(epochs=2, threads=1, train_images=SUBSET,
                             dataset=DATA.get("name"), data_dir=DATA.get("path"),
                             warm_start=str(BUILD / "nb_float.pt")),
                 output=BUILD / "nb_w2a2.pt", progress=False,
                 command="notebook 01: W2A2 from the float run")
print(f"both runs: {time.perf_counter() - t0:.0f} s")
offset = len(float_ckpt["history"])
qat_history = [{**h, "epoch": h["epoch"] + offset} for h in qat_ckpt["history"]]
plots.training_curves({"float (from scratch)": float_ckpt["history"],
                       "W2A2 (quantization-aware, from the float run)": qat_history},
                      title=f"our run on {SUBSET:,} digits");

# %% [markdown]
# ## Lowering to an integer network
#
# `lower` folds batch norm, the step sizes and the biases into per-neuron integer
# **thresholds**: a hidden neuron adds `(2k + 1)·a` over its synapses and emits the number of
# thresholds its accumulator reaches. The classifier adds an integer bias and the largest
# logit wins (the lowest index on ties). The result is an `IntegerNetwork` that numpy runs
# exactly (`pynq_neuro.golden.run`) — the golden model the hardware must match bit for bit.

# %%
from pynq_neuro.golden import run
from pynq_neuro.lower import lower

qmodel = model_from_checkpoint(qat_ckpt)
net = lower(qmodel, meta={"checkpoint": "nb_w2a2.pt"})
net.save(BUILD / "nb_w2a2.npz")
print(f"{'layer':>5} {'in':>9} {'out':>9} {'K/S':>4} {'weights 2k+1':>14}  thresholds / bias")
for i, L in enumerate(net.layers):
    ws = np.unique(L.weights()).tolist()
    if L.is_classifier:
        extra = f"bias {L.bias.min()} .. {L.bias.max()}"
    else:
        extra = (f"{L.thresholds.shape[1]} per neuron, {L.thresholds.min()} .. "
                 f"{L.thresholds.max()}")
    print(f"{i:>5} {L.in_channels:>4}x{L.in_frames:<4} {L.out_channels:>4}x{L.out_frames:<4}"
          f" {L.taps}/{L.stride} {str(ws):>14}  {extra}")
print(f"saved {BUILD / 'nb_w2a2.npz'} ({net.synapses:,} synapses)")

# %% [markdown]
# ### PyTorch versus the golden model
#
# The fake-quantized PyTorch model (run in float64) and the integer network must give the
# same class for every digit, and the PyTorch logits must be the integer logits times one
# scale (the classifier's accumulator step). Up to float rounding, that is exactly what we
# see.

# %%
from pynq_neuro.train import predict

N = 2000
gold = run(net, x_test[:N])
torch_logits, torch_classes = predict(qmodel, x_test[:N], dtype=torch.float64)
with torch.no_grad():
    scale = float(qmodel.double().classifier_bias_step())
qmodel.float()
agree = int((torch_classes == gold.classes).sum())
err = float(np.abs(torch_logits - scale * gold.logits).max())
print(f"classes: {agree}/{N} digits agree; largest |torch logit - scale * integer logit| = "
      f"{err:.2e} (scale {scale:.4g})")
print(f"accuracy on these digits: golden {100 * (gold.classes == y_test[:N]).mean():.2f} %, "
      f"torch {100 * (torch_classes == y_test[:N]).mean():.2f} %")
assert agree == N and err < 1e-6 * max(1.0, float(np.abs(torch_logits).max()))

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(gold.logits[:300].ravel(), torch_logits[:300].ravel(), s=3)
ax.set_xlabel("integer logit (golden model)")
ax.set_ylabel("PyTorch logit (float64)")
ax.set_title(f"300 digits x 10 classes; slope = {scale:.4g}", fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## The hardware model
#
# The model that the default hardware runs (`zoo.hardware_default()`) is the lane-balanced
# sparse W2A2 model with 4-bit pixels, pruned so that every processing element holds the same
# number of synapses. Lowering its
# shipped checkpoint again must reproduce the shipped integer network exactly; then the
# golden model classifies the whole test set.

# %%
HW = zoo.hardware_default()
relowered = lower(model_from_checkpoint(zoo.checkpoint_path(HW)))
shipped = zoo.load_network(HW)
for a, b in zip(relowered.layers, shipped.layers):
    assert np.array_equal(a.weights(), b.weights())
    assert (a.thresholds is None and b.thresholds is None) or np.array_equal(a.thresholds,
                                                                             b.thresholds)
    assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)
print(f"{HW}: lowering the checkpoint reproduces the shipped integer network exactly")

t0 = time.perf_counter()
res = run(shipped, x_test)
wrong = np.flatnonzero(res.classes != y_test)
print(f"golden model on {len(x_test):,} test digits: accuracy "
      f"{100 * (1 - len(wrong) / len(x_test)):.2f} % ({time.perf_counter() - t0:.1f} s); "
      f"zoo.json says {100 * zoo.info(HW)['accuracy']:.2f} %")
plots.digit_gallery(x_test[wrong[:20]], y_test[wrong[:20]], res.classes[wrong[:20]],
                    title=f"{HW}: the first misclassified test digits (prediction, truth)");

# %% [markdown]
# ## Accuracy against weight memory
#
# All integer models of the zoo on the full test set, as the golden model computes them,
# against the bits their weights occupy.

# %%
rows = []
for name in zoo.names():
    if zoo.network_path(name) is None:
        continue
    n = zoo.load_network(name)
    acc = 100 * float((run(n, x_test).classes == y_test).mean())
    rows.append((name, n.synapses, n.synapses * n.weight_bits, acc))
print(f"{'model':<18}{'synapses':>10}{'weight kbit':>12}{'accuracy':>10}")
for name, syn, bits, acc in rows:
    print(f"{name:<18}{syn:>10,}{bits / 1000:>12.1f}{acc:>9.2f}%")
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.scatter([r[2] / 1000 for r in rows], [r[3] for r in rows])
for name, syn, bits, acc in rows:
    ax.annotate(name, (bits / 1000, acc), fontsize=8, textcoords="offset points",
                xytext=(5, -9))
ax.set_xscale("log")
ax.set_xlabel("weight memory (kbit = synapses x weight bits)")
ax.set_ylabel("test accuracy (%)")
ax.set_xlim(15, 1200)
ax.grid(alpha=0.3)
fig.tight_layout()

# %% [markdown]
# **Next:** [2 · Compile and inspect](02_compile_and_inspect.ipynb) maps `tdnn-w2a2-sparse-in4`
# onto neuron arrays.
