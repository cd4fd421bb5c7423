"""Source of the notebooks: writes ``01_*.ipynb`` .. ``04_*.ipynb`` next to this file.

The notebooks are generated so that the committed files never hold outputs and every edit is a
readable diff of this script. Run ``python notebooks/build_notebooks.py`` after changing a cell;
``--check`` exits with status 1 when a committed notebook differs from what this script writes.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str):
    """A code cell; a line ``#BUILD_DIR#`` becomes the build-folder convention below."""
    return new_code_cell(textwrap.dedent(text).strip("\n").replace("#BUILD_DIR#", BUILD_DIR))


# Every notebook starts with the same build-folder convention: generated files (checkpoints,
# artifacts, simulator builds) go to $PYNQ_NEURO_BUILD or ~/pynq_neuro_build, never next to the
# notebook, so that a copied notebooks folder works as well as the repository checkout.
BUILD_DIR = '''
BUILD = Path(os.environ.get("PYNQ_NEURO_BUILD", "~/pynq_neuro_build")).expanduser()
BUILD.mkdir(parents=True, exist_ok=True)
'''.strip("\n")


# ------------------------------------------------------------------------------------------------
# 01: train and quantize

NB1 = [
    md("""
    # 1 · Train and quantize a time-delay network for MNIST

    This notebook follows a network from floating point to the integers that the FPGA computes:

    1. the MNIST digits and the time-delay network (TDNN) that reads them row by row;
    2. the **UniQ** quantizer: weights on odd multiples of Δ/2, 1 to 8 bits;
    3. weight histograms of the shipped models (`pynq_neuro/zoo`) at 1, 2 and 4 bits, and
       their training curves;
    4. a short real training run (float warm start, then quantization-aware training) on a
       subset of the training digits;
    5. lowering the quantized model to an **integer network**, and checking that the numpy
       golden model (what the hardware implements) agrees with PyTorch digit by digit.

    It needs PyTorch, so it runs on the host, not on the board. The next notebook compiles the
    shipped hardware model; the board notebook (4) needs numpy and pynq only.
    """),
    code("""
    import os
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    import pynq_neuro
    from pynq_neuro import plots, zoo
    from pynq_neuro.data import load_mnist

    torch.set_num_threads(1)  # the runs below are small; one thread leaves the machine free
    #BUILD_DIR#
    print(f"pynq-neuro {pynq_neuro.__version__}, torch {torch.__version__}; files go to {BUILD}")
    """),
    md("""
    ## The digits

    `load_mnist` looks for MNIST in `$PYNQ_NEURO_DATA`, the test split bundled with the package,
    the user cache, and finally downloads it; every file is checked against its SHA-256.
    """),
    code("""
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    print(f"training digits {x_train.shape} {x_train.dtype}, test digits {x_test.shape}")
    print("test digits per class:", np.bincount(y_test).tolist())
    plots.digit_gallery(x_train[:20], y_train[:20], title="the first training digits and their labels");
    """),
    md("""
    ## The network: rows are frames

    A TDNN treats the 28 rows of a digit as 28 time steps (*frames*) of 28 channels (the pixels
    of a row). Each hidden layer looks at `taps` consecutive frames, and a stride of two
    halves the frame rate. The classifier spans the frames that remain. Weights are
    shared across frames, so the whole network has few synapses. In hardware, the rows stream
    in one after another.
    """),
    code("""
    from pynq_neuro.models import ModelConfig, NeuroNet

    cfg = ModelConfig(wbits=2, abits=2)
    print(NeuroNet(cfg))
    print(f"frames entering each layer: {cfg.frames()}; synapses: {NeuroNet(cfg).synapses():,}")
    """),
    md("""
    ## The UniQ quantizer

    A `b`-bit weight is stored as an integer code `k` in `[-2^(b-1), 2^(b-1) - 1]` and means
    `(k + 1/2)·Δ`: the levels are the **odd multiples of Δ/2**, symmetric around zero and
    without a zero level. One bit is plain binarization (±Δ/2), and every width uses the same
    code path. In integers, a weight is `2k + 1`, so the hardware only ever adds odd numbers.
    Activations are unsigned (`a·Δ`, `a` in `0 … 2^b - 1`) and replace the ReLU. The step Δ is
    learned (LSQ gradients with straight-through rounding).
    """),
    code("""
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
    """),
    md("""
    ### Where does Δ start?

    Quantization-aware training starts from a full-precision model, with Δ set to the step that
    minimises the mean squared error of a Gaussian with the weights' standard deviation:
    `Δ = c_b·σ`. The constants `c_b` come from a closed-form error (`pynq_neuro.quant.gaussian`).
    Below, a numerical check on 200,000 Gaussian samples: scaling Δ away from `c_b·σ` does not
    make the error smaller (beyond sampling noise), and every extra bit adds a roughly constant
    number of decibels to the signal-to-quantization-noise ratio (the fitted slope is printed
    on the right).
    """),
    code("""
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
    """),
    md("""
    ## Weights of the shipped models

    The zoo holds a float TDNN and its W1A1, W2A2 and W4A4 versions, trained from it
    (`pynq-neuro zoo` prints the commands that reproduce them). Top row: the *latent* weights of
    the second hidden layer, divided by each neuron's learned step Δ; the grey lines mark the
    quantization levels (odd multiples of 1/2) and the dashed lines the clipping range. Bottom
    row: the integer weights `2k + 1` that the lowered network stores (the `.npz` files).
    """),
    code("""
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
    axes[1, 0].text(0, 0.5, "Training keeps float latent weights;\\nonly their codes k are "
                    "stored.\\nThe hardware multiplies by 2k+1.", fontsize=10, va="center")
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
    """),
    md("""
    ## Training curves of the zoo models

    Every checkpoint carries the history of its run (loss and accuracy on the augmented training
    digits). The quantized models start from the float model's weights rather than from
    scratch; the sparse models are pruning fine-tunes of the dense quantized ones.
    """),
    code("""
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
    """),
    md("""
    ## A short training run of our own

    The full recipe takes minutes per model (see `docs/quantization.md`). Here is the same
    recipe on a small budget: a float TDNN trained from scratch on the first 6,000 training
    digits for three epochs, then two epochs of W2A2 quantization-aware training that start
    from it (its steps initialised MSE-optimally). `train` evaluates each model on the full
    test set and returns a checkpoint dictionary; the checkpoints go to the build folder.
    """),
    code("""
    from pynq_neuro.train import TrainConfig, train

    SUBSET = 6000
    t0 = time.perf_counter()
    float_ckpt = train(ModelConfig(), TrainConfig(epochs=3, threads=1, train_images=SUBSET),
                       output=BUILD / "nb_float.pt", progress=False,
                       command="notebook 01: float warm start")
    qat_ckpt = train(ModelConfig(wbits=2, abits=2),
                     TrainConfig(epochs=2, threads=1, train_images=SUBSET,
                                 warm_start=str(BUILD / "nb_float.pt")),
                     output=BUILD / "nb_w2a2.pt", progress=False,
                     command="notebook 01: W2A2 from the float run")
    print(f"both runs: {time.perf_counter() - t0:.0f} s")
    offset = len(float_ckpt["history"])
    qat_history = [{**h, "epoch": h["epoch"] + offset} for h in qat_ckpt["history"]]
    plots.training_curves({"float (from scratch)": float_ckpt["history"],
                           "W2A2 (quantization-aware, from the float run)": qat_history},
                          title=f"our run on {SUBSET:,} digits");
    """),
    md("""
    ## Lowering to an integer network

    `lower` folds batch norm, the step sizes and the biases into per-neuron integer
    **thresholds**: a hidden neuron adds `(2k + 1)·a` over its synapses and emits the number of
    thresholds its accumulator reaches. The classifier adds an integer bias and the largest
    logit wins (the lowest index on ties). The result is an `IntegerNetwork` that numpy runs
    exactly (`pynq_neuro.golden.run`) — the golden model the hardware must match bit for bit.
    """),
    code("""
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
    """),
    md("""
    ### PyTorch versus the golden model

    The fake-quantized PyTorch model (run in float64) and the integer network must give the
    same class for every digit, and the PyTorch logits must be the integer logits times one
    scale (the classifier's accumulator step). Up to float rounding, that is exactly what we
    see.
    """),
    code("""
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
    """),
    md("""
    ## The hardware model

    The model that the default hardware runs (`zoo.hardware_default()`) is the lane-balanced
    sparse W2A2 model, pruned so that every processing element holds the same number of
    synapses. Lowering its
    shipped checkpoint again must reproduce the shipped integer network exactly; then the
    golden model classifies the whole test set.
    """),
    code("""
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
    """),
    md("""
    ## Accuracy against weight memory

    All integer models of the zoo on the full test set, as the golden model computes them,
    against the bits their weights occupy.
    """),
    code("""
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
    """),
    md("""
    **Next:** [2 · Compile and inspect](02_compile_and_inspect.ipynb) maps `tdnn-w2a2-sparse`
    onto neuron arrays.
    """),
]


# ------------------------------------------------------------------------------------------------
# 02: compile and inspect

NB2 = [
    md("""
    # 2 · Compile the network onto neuron arrays

    The compiler (`pynq_neuro.compiler`, `pynq-neuro compile`) turns an integer network into an
    **artifact**: memory images for every layer's synapses, indices and thresholds, a manifest,
    a Verilog header with the synthesis parameters and a packed stream that loads a network at
    run time. On the way it chooses each layer's **folding** — `G` event groups × `P` lanes of
    processing elements — so that the cycle model meets a throughput target within a resource
    budget on the xc7z020 (`pynq_neuro.compiler.resources.Budget`; by default the core leaves
    part of the device to the DMA and the interconnect).

    This notebook compiles the hardware default `tdnn-w2a2-sparse`, looks at the result layer by
    layer, trades folding against throughput, and checks that the artifact's memory images
    still hold exactly the integer network. It needs numpy and matplotlib only.
    """),
    code("""
    import json
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
    from pynq_neuro.data import load_mnist
    from pynq_neuro.golden import run

    #BUILD_DIR#
    NAME = zoo.hardware_default()
    ARTIFACT = BUILD / NAME
    x_test, y_test = load_mnist("test")
    print(f"pynq-neuro {pynq_neuro.__version__}; compiling {NAME} into {ARTIFACT}")
    """),
    md("""
    ## The network

    Three time-delay layers and the classifier; `kept` is the share of synapses that the
    lane-balanced pruning left in each layer.
    """),
    code("""
    net = zoo.load_network(NAME)
    print(f"{NAME}: W{net.weight_bits}A{net.act_bits}, {net.synapses:,} synapses, "
          f"zoo accuracy {100 * zoo.info(NAME)['accuracy']:.2f} %")
    print(f"{'layer':>5} {'in':>9} {'out':>9} {'K/S':>4} {'synapses':>9} {'kept':>6}")
    for i, L in enumerate(net.layers):
        print(f"{i:>5} {L.in_channels:>4}x{L.in_frames:<4} {L.out_channels:>4}x{L.out_frames:<4}"
              f" {L.taps}/{L.stride} {L.synapses:>9,} {L.synapses / L.codes.size:>6.1%}")
    """),
    md("""
    ## Compile

    `compile_network` runs the golden model on sample digits (their activations drive the cycle
    model: a zero activation is no event and costs no cycle), searches the foldings, maps every
    layer to memory words and writes the artifact. The command line equivalent is
    `pynq-neuro compile tdnn-w2a2-sparse -o DIR`.
    """),
    code("""
    t0 = time.perf_counter()
    manifest = compile_network(NAME, ARTIFACT, CompileConfig(), x_test[:1000])
    compile_s = time.perf_counter() - t0
    art = load_artifact(ARTIFACT)
    perf = manifest["performance"]
    print(summary_table(art))
    budget = perf["budget"]
    print(f"\\ncompiled in {compile_s:.1f} s for a target of {perf['target_images_per_s']:,.0f} "
          f"digits/s within {budget['luts']:,} LUTs and {budget['bram36']} BRAM36 at "
          f"{budget['clock_mhz']:g} MHz; folding search: {perf['folding_note']}")
    """),
    md("""
    How to read the table: `G x P` is the folding (event groups × lanes); `words` is the depth of
    each group's synapse memory; `acc` the accumulator width; `cyc/digit` the busy cycles of
    the layer per digit in the cycle model; `LUT` and `BRAM36` the compiler's resource
    *estimate* (not synthesis).

    ## Sparsity maps

    Black where a synapse exists, one row per output unit, columns `tap × input channel`. The
    lane-balanced pruning keeps the same number of synapses in each processing element's share
    of every column, so the number of memory words per event (below) is the same for every
    input channel: no column is slower than another.
    """),
    code("""
    from pynq_neuro.compiler.mapping import Folding, map_layer

    hw = art.manifest["hardware"]["layers"]
    maps = [map_layer(art.network, i, Folding(h["groups"], h["lanes"]), pack=False,
                      acc_bits=h["acc_bits"], depth=h["synapse_depth"],
                      count_bits=h["count_bits"])
            for i, h in enumerate(hw)]
    layers = art.network.layers
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.6))
    for ax, (i, L), lm in zip(axes, enumerate(layers), maps):
        mask = np.ones(L.codes.shape, bool) if L.mask is None else L.mask
        ax.imshow(mask.reshape(L.out_channels, -1), aspect="auto", cmap="Greys",
                  interpolation="nearest")
        ax.set_title(f"layer {i}: {L.synapses:,} synapses, {lm.groups}x{lm.lanes}", fontsize=9)
        ax.set_xlabel("tap x input channel")
        ax.set_ylabel("output unit")
    fig.tight_layout()
    print(f"{'layer':>5} {'words per event and tap: min':>29} {'mean':>6} {'max':>5}")
    for i, lm in enumerate(maps):
        print(f"{i:>5} {lm.words.min():>29} {lm.words.mean():>6.2f} {lm.words.max():>5}")
    """),
    md("""
    ## Memory: block RAM per bank

    Each layer has a synapse memory and an index memory per event group, and one parameter
    memory (thresholds, or the classifier's biases) shared by its lanes. Large synapse and
    index memories go to block RAM, small ones to distributed RAM (LUTs); the parameters are
    read by every lane in the same cycle, so they always live in distributed RAM. The numbers
    are the compiler's estimate, the same it used to choose the foldings.
    """),
    code("""
    from pynq_neuro.compiler.resources import lutram_luts, memory

    mems = art.manifest["memories"]
    bram = np.zeros((len(layers), 2))          # synapse, index memories in BRAM36
    lutram = np.zeros(len(layers))             # LUTs of the memories kept in distributed RAM
    for m in mems:
        if m["kind"] == "params":  # all lanes read their thresholds at once: distributed RAM
            lutram[m["layer"]] += lutram_luts(m["depth"], m["width"])
            continue
        r = memory(m["depth"], m["width"])
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
    """),
    md("""
    ## The cycle model

    The neuron arrays are event driven: a layer spends cycles only on nonzero activations, so
    each digit takes its own time. The layers form a pipeline with two frame buffers between
    neighbours, and the slowest layer sets the steady-state rate. `simulate` streams the digits
    back to back through the model of that pipeline.
    """),
    code("""
    from pynq_neuro.compiler.cycles import simulate

    SAMPLE = 1000
    report = simulate(maps, art.network, x_test[:SAMPLE])
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
    ink = (x_test[:SAMPLE] > 0).sum(axis=(1, 2))
    a2.scatter(ink, report.layer_cycles[0], s=4, label="layer 0")
    a2.scatter(ink, report.layer_cycles[s["bottleneck_layer"]], s=4,
               label=f"layer {s['bottleneck_layer']}")
    a2.set_xlabel("nonzero pixels of the digit")
    a2.set_ylabel("busy cycles")
    a2.set_title("more ink, more events, more cycles", fontsize=10)
    a2.legend(fontsize=8)
    fig.tight_layout()
    """),
    md("""
    ## Folding against throughput

    More groups and lanes process more events per cycle and cost more logic and memory ports.
    The folding search upgrades the bottleneck layer until the target is met or no upgrade fits
    the budget. Compiling the same network for a range of targets, once within the default
    budget and once with every LUT of the xc7z020, shows the trade-off (each compile writes a
    throwaway artifact into a temporary folder).
    """),
    code("""
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
                                    x_test[:300])
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
    """),
    md("""
    ## The artifact

    `docs/artifact-format.md` describes every file bit by bit. The `.mem` images are what
    synthesis initialises the block RAMs with; `network.bin` carries the same banks as one
    stream (a header, one block per bank and a CRC) that the driver sends through the DMA to
    load a network into a core that was built for the same hardware parameters (the
    *fingerprint*).
    """),
    code("""
    files = sorted(p for p in ARTIFACT.rglob("*") if p.is_file() and p.parent.name != "inspect")
    by_folder = {}
    for p in files:
        key = p.parent.relative_to(ARTIFACT).as_posix() + "/" if p.parent != ARTIFACT else p.name
        n, size = by_folder.get(key, (0, 0))
        by_folder[key] = (n + 1, size + p.stat().st_size)
    for key, (n, size) in by_folder.items():
        print(f"  {key:<18} {n:>3} file{'s' if n > 1 else ' '} {size / 1024:>8.1f} KiB")
    print(f"hardware fingerprint: {art.fingerprint}")

    print("\\nneuro_params.vh (first lines):")
    print("\\n".join((ARTIFACT / "neuro_params.vh").read_text().splitlines()[:14]))
    first = mems[0]
    print(f"\\n{first['mem']} ({first['depth']} words of {first['width']} bits), first words:")
    print("\\n".join((ARTIFACT / first["mem"]).read_text().splitlines()[:3]))

    blob = (ARTIFACT / "network.bin").read_bytes()
    magic, version, n_banks, n_words = struct.unpack_from("<4sIII", blob)
    print(f"\\nnetwork.bin: magic {magic!r}, version {version}, {n_banks} banks, {n_words:,} "
          f"payload words, {len(blob):,} bytes")
    banks = unpack_binary(blob)
    assert [b.words for b in banks] == [b.words for b in art.banks]
    print("the stream holds exactly the banks of the .mem images")
    """),
    md("""
    ## The artifact still holds the network

    `load_artifact` verifies checksums and rebuilds the integer network from the memory images
    alone — from the `.mem` files or from `network.bin`. Its golden model must give the same
    logits as the zoo's integer network on every test digit.
    """),
    code("""
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
    """),
    md("""
    A damaged artifact is refused with a message that names the file, before anything reaches
    the hardware:
    """),
    code("""
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
    """),
    md("""
    **Next:** [3 · Simulate the RTL](03_simulate_rtl.ipynb) runs this artifact on the Verilog
    core, cycle by cycle.
    """),
]


# ------------------------------------------------------------------------------------------------
# 03: simulate the RTL

NB3 = [
    md("""
    # 3 · Simulate the Verilog core

    Before a bitstream exists, the Verilog of `neuro_core` (`hdl/`) runs in simulation two ways:

    * the **fast path** (`pynq_neuro.rtl.regression`): the core and a plain Verilog bench that
      streams digits back to back, compiled by Verilator: hundreds of digits in seconds, every
      class and logit compared with the golden model, and the measured cycles compared with the
      compiler's cycle model;
    * the **driver's simulation backend** (`NeuroAccelerator(backend="sim")`): the core behind
      simulated AXI-Lite registers and AXI DMA channels, so that the *same driver* that talks
      to the board reads the registers, loads the network through the stream and classifies.
      It runs on Verilator when it is installed, else on Icarus Verilog with cocotb (far
      slower).

    Both need the repository checkout (the Verilog sources) and a simulator
    (`apt-get install verilator iverilog`, `pip install pynq-neuro[sim]`). Cells whose tools
    are missing say so and skip; nothing here runs on the board.
    """),
    code("""
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
    from pynq_neuro.data import load_mnist
    from pynq_neuro.golden import run

    #BUILD_DIR#
    NAME = zoo.hardware_default()
    ARTIFACT = BUILD / NAME
    x_test, y_test = load_mnist("test")


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
    """),
    md("""
    ## The artifact

    The simulators build the core for an artifact's parameters (`neuro_params.vh`) and load its
    memory images, exactly like synthesis. Compiling is quick and deterministic, so this
    notebook compiles the hardware default into the build folder (the same place notebook 2
    uses).
    """),
    code("""
    manifest = compile_network(NAME, ARTIFACT, CompileConfig(), x_test[:1000])
    art = load_artifact(ARTIFACT)
    print(f"{ARTIFACT}: {manifest['network']['name']}, fingerprint {art.fingerprint}, "
          f"cycle model {manifest['performance']['cycle_model']['cycles_per_digit']:.1f} "
          f"cycles/digit")
    """),
    md("""
    ## Verilator: a few hundred digits, bit-exact

    `regression` builds the Verilator model (once: about two minutes on two cores; later runs
    reuse the build in `BUILD/verilator`), streams the digits back to back with logits
    enabled, and checks every class and every logit against the golden model.
    """),
    code("""
    DIGITS = 300
    report = None
    if not HAVE_VERILATOR:
        print("skipped: the Verilator fast path needs verilator and the Verilog sources")
    else:
        from pynq_neuro.rtl.regression import format_report, regression

        t0 = time.perf_counter()
        report = regression(ARTIFACT, DIGITS, workdir=BUILD / "rtl_run",
                            build_root=BUILD / "verilator")
        print(format_report(report))
        print(f"({time.perf_counter() - t0:.0f} s including the build)")
        assert report["passed"], "the RTL disagrees with the golden model"
    """),
    md("""
    ### Cycles per digit: RTL against the cycle model

    The bench stamps the cycle of every digit's first pixel beat and of its result. With digits
    back to back, the spacing of results is the throughput and first beat to result the
    latency. The compiler's cycle model predicts both from the same digits.
    """),
    code("""
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
    """),
    code("""
    if report is None:
        print("skipped (no Verilator run)")
    else:
        plots.digit_gallery(x_test[:20], y_test[:20], fast.classes[:20],
                            title="the RTL's answers (Verilator)");
    """),
    md("""
    ## The driver on the simulated core

    `NeuroAccelerator(backend="sim")` builds the core for the artifact (once; the build is
    shared by every artifact of the same hardware), starts the simulator in a child process and
    speaks to it with the same register reads and DMA transfers as on the board: read the
    identification registers, load the network through the stream, classify. The simulator
    counts clock cycles, so the core's own counters are meaningful. The number of digits is
    chosen so that the classification takes about ten seconds: hundreds on Verilator, a couple
    on Icarus.
    """),
    code("""
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
    """),
    md("""
    **Next:** [4 · Board inference](04_board_inference.ipynb) runs the same driver on the
    PYNQ-Z2.
    """),
]


# ------------------------------------------------------------------------------------------------
# 04: board inference

NB4 = [
    md("""
    # 4 · Classify digits on the PYNQ-Z2

    `NeuroAccelerator` is the driver of the neuron-array core. With `backend="auto"` it uses
    the board when the pynq-neuro overlay is available, else the RTL in simulation (Verilator,
    or Icarus + cocotb, with the repository checkout), else a numpy model of the core
    (`golden`). The calls are the same in all three cases, so this notebook runs anywhere; on
    the board it needs numpy and pynq only.

    Steps: find or compile the artifact, open the accelerator, load the network,
    classify the 10,000 test digits (a small subset in simulation), look at the answers, and
    measure throughput against batch size. Set `PYNQ_NEURO_BACKEND` (or edit `BACKEND` below)
    to choose a backend instead of `auto`.
    """),
    code("""
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

    #BUILD_DIR#
    BACKEND = os.environ.get("PYNQ_NEURO_BACKEND", "auto")
    NAME = zoo.hardware_default()
    x_test, y_test = load_mnist("test")
    print(f"pynq-neuro {pynq_neuro.__version__}; {len(x_test):,} test digits; backend {BACKEND!r}")
    """),
    md("""
    ## The artifact

    The core on the board was synthesized for one compiled network; the driver refuses an
    artifact whose hardware fingerprint differs from the core's. When the overlay is installed
    with the package, its artifact lies beside the bitstream (`pynq_neuro.overlays.ARTIFACT_DIR`)
    and this notebook uses it. Without an overlay, the hardware model is compiled with the
    default settings into the build folder, and the simulated or golden core is built for it.
    """),
    code("""
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
    """),
    md("""
    ## Open the accelerator and load the network

    The driver first reads the core's identification and parameter registers. `load_network`
    compares them with the artifact (fingerprint and every layer field), streams `network.bin`
    into the core's memories and checks the core's `LOAD_OK` flag. (On the board the
    constructor has already loaded the artifact it was given; loading again shows the step.)
    """),
    code("""
    acc = NeuroAccelerator(backend=BACKEND, artifact=ARTIFACT)
    print(f"backend: {acc.backend}")
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
    """),
    md("""
    ## Classify the test set

    On the board and in the golden backend, all 10,000 digits. A simulation is much slower, so
    there the number of digits is chosen to take about `SIM_SECONDS` of wall time.
    """),
    code("""
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
    """),
    code("""
    shown = min(N, 30)
    plots.digit_gallery(x_test[:shown], labels[:shown], classes[:shown],
                        title=f"the fabric's answers ({acc.backend}): green right, red wrong");
    wrong = np.flatnonzero(classes != labels)
    if len(wrong):
        plots.digit_gallery(x_test[wrong[:20]], labels[wrong[:20]], classes[wrong[:20]],
                            title=f"{len(wrong)} misclassified digits (first 20)");
    """),
    code("""
    plots.confusion_plot(plots.confusion_matrix(labels, classes),
                         title=f"{NAME} on '{acc.backend}'");
    """),
    md("""
    ## Throughput against batch size

    `classify` sends up to `max_batch` digits per DMA transfer (the core groups them into one
    packet, `BATCH` register). Small batches pay the per-transfer cost of the driver and the
    DMA for every few digits; large batches approach the core's compute rate. On the board the
    numbers are wall-clock times with data movement and the core's own cycle counter; in
    simulation they are simulated cycles at 100 MHz; the golden backend reports the
    compiler's cycle model. In simulation the test uses fewer digits (a quarter of `N`).
    """),
    code("""
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
    """),
    code("""
    acc.close()
    print(f"{NAME} on '{acc.backend}': accuracy {100 * accuracy:.2f} % on {N:,} digits, "
          f"core {tp['digits_per_s']:,.0f} digits/s")
    """),
]


NOTEBOOKS = {
    "01_train_and_quantize.ipynb": NB1,
    "02_compile_and_inspect.ipynb": NB2,
    "03_simulate_rtl.ipynb": NB3,
    "04_board_inference.ipynb": NB4,
}


def notebook(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    # stable cell ids keep regenerated files identical
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
        if cell.cell_type == "code":
            compile(cell.source, f"{name} cell {i}", "exec")  # a SyntaxError names the cell
    return nb


def render(name: str) -> str:
    return nbformat.writes(notebook(name, NOTEBOOKS[name]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare the committed notebooks with this script")
    parser.add_argument("-o", "--output", type=Path, default=HERE, help="folder to write to")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        text = render(name)
        path = args.output / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python {Path(__file__).name}): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
