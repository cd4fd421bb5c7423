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
# classify the 10,000 test digits (a small subset in simulation), look at the answers,
# measure throughput against batch size, and classify digits drawn with the mouse. Set
# `PYNQ_NEURO_BACKEND` (or edit `BACKEND` below) to choose a backend instead of `auto`, and
# `DATASET` to test on other data.

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
from pynq_neuro.data import DATASETS, load_dataset
from pynq_neuro.driver import NeuroAccelerator
from pynq_neuro.golden import run

DATASET = "mnist"  # a name in pynq_neuro.data.DATASETS, or a folder of IDX files or an .npz
DATA = {"name": DATASET} if DATASET in DATASETS else {"path": DATASET}
test_set = load_dataset(split="test", **DATA)
x_test, y_test = test_set.images, test_set.labels
BUILD = Path(os.environ.get("PYNQ_NEURO_BUILD", "~/pynq_neuro_build")).expanduser()
BACKEND = os.environ.get("PYNQ_NEURO_BACKEND", "auto")
NAME = zoo.hardware_default()
print(f"pynq-neuro {pynq_neuro.__version__}; {len(x_test):,} test digits of "
      f"{test_set.describe()}; backend {BACKEND!r}")

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
    compile_network(NAME, ARTIFACT, CompileConfig(), test_set)
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
print(f"{NAME} on '{acc.backend}': accuracy {100 * accuracy:.2f} % on {N:,} digits, "
      f"core {tp['digits_per_s']:,.0f} digits/s")

# %% [markdown]
# ## Draw a digit
#
# The pad below takes a digit drawn with the mouse; **classify** sends it through the same
# steps as any picture: the strokes are drawn into a grayscale picture with a round,
# anti-aliased pen (`pynq_neuro.data.strokes.render_strokes`), `prepare_digit` makes an MNIST
# digit of it (crop to the ink, scale the larger side to 20 pixels, centre the ink in 28x28),
# and the accelerator classifies it and returns its ten logits. With
# [ipycanvas](https://ipycanvas.readthedocs.io) installed (`pip install ipycanvas`) the pad
# is a canvas to draw on; otherwise it is a 16x16 grid of buttons, and a click inks a cell.
#
# First a fixed drawing stands in for a person: the strokes of a 3 and of a 7
# (`pynq_neuro.data.strokes.EXAMPLES`, polylines in a unit square) placed on the pad, drawn
# with the pad's pen and classified.

# %%
from IPython.display import display

from pynq_neuro.data import DataError, prepare_digit
from pynq_neuro.data.strokes import EXAMPLES, cell_strokes, render_strokes, transform_strokes

PAD = 280    # side of the drawing pad, in screen pixels
PEN = 20.0   # width of the pen, in screen pixels


def classify_drawing(strokes, pen=PEN, title="your drawing"):
    """Draw the strokes, prepare the digit, classify it on the accelerator and show the
    drawing, the digit the core receives and the logits; the class."""
    picture = render_strokes(strokes, (PAD, PAD), pen)
    digit = prepare_digit(picture)
    classes, scores = acc.classify(digit[None], logits=True)
    answer, scores = int(classes[0]), scores[0]
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(9, 2.6),
                                     gridspec_kw={"width_ratios": [1, 1, 2]})
    a0.imshow(picture, cmap="gray")
    a0.set_title(title, fontsize=9)
    a1.imshow(digit, cmap="gray")
    a1.set_title("the digit the core receives", fontsize=9)
    for a in (a0, a1):
        a.set_xticks([])
        a.set_yticks([])
    a2.bar(range(10), scores, color=["tab:green" if c == answer else "tab:gray"
                                     for c in range(10)])
    a2.set_xticks(range(10))
    a2.set_xlabel("class")
    a2.set_ylabel("logit")
    a2.set_title(f"answer {answer} ({acc.backend})", fontsize=10)
    fig.tight_layout()
    display(fig)
    plt.close(fig)
    return answer


for drawn in (3, 7):
    strokes = transform_strokes(EXAMPLES[drawn], 0.7 * PAD, (0.15 * PAD, 0.15 * PAD))
    answer = classify_drawing(strokes, title=f"a fixed drawing of a {drawn}")
    print(f"a drawing of a {drawn} ({sum(len(s) for s in strokes)} points): classified as "
          f"{answer}")
    assert answer == drawn, f"the drawing of a {drawn} was classified as {answer}"

# %% [markdown]
# Now draw: hold the mouse button down to draw (canvas) or click cells (grid), then press
# **classify**; **clear** starts again. The pad needs ipywidgets (part of Jupyter on the
# PYNQ image); where there is none, as in a headless run, the cell says so.


# %%
def canvas_pad():
    """An ipycanvas pad: (widget, strokes, clear, pen width). Raises ImportError without
    ipycanvas."""
    from ipycanvas import Canvas

    canvas = Canvas(width=PAD, height=PAD, layout={"border": "1px solid gray"})
    strokes, pen_down = [], [False]

    def blank():
        canvas.fill_style = "black"
        canvas.fill_rect(0, 0, PAD, PAD)
        canvas.stroke_style = canvas.fill_style = "white"
        canvas.line_width, canvas.line_cap, canvas.line_join = PEN, "round", "round"

    def down(x, y):
        pen_down[0] = True
        strokes.append([(x, y)])
        canvas.fill_circle(x, y, PEN / 2)

    def move(x, y):
        if pen_down[0]:
            canvas.stroke_line(*strokes[-1][-1], x, y)
            strokes[-1].append((x, y))

    def up(x, y):
        pen_down[0] = False

    def clear():
        strokes.clear()
        blank()

    blank()
    canvas.on_mouse_down(down)
    canvas.on_mouse_move(move)
    canvas.on_mouse_up(up)
    canvas.on_mouse_out(up)
    return canvas, lambda: strokes, clear, PEN


def grid_pad(n=16):
    """A grid of n x n toggle buttons (ipywidgets only): (widget, strokes, clear, pen
    width). Each inked cell is a dot as wide as 1.4 cells, so neighbours join."""
    import ipywidgets as widgets

    cell = PAD / n
    size = f"{cell:.0f}px"
    buttons = [widgets.ToggleButton(layout=widgets.Layout(width=size, height=size,
                                                          padding="0", margin="0"))
               for _ in range(n * n)]
    grid = widgets.GridBox(buttons, layout=widgets.Layout(
        grid_template_columns=f"repeat({n}, {size})", grid_gap="0"))

    def strokes():
        return cell_strokes(np.array([b.value for b in buttons]).reshape(n, n), cell)

    def clear():
        for b in buttons:
            b.value = False

    return grid, strokes, clear, 1.4 * cell


try:
    import ipywidgets as widgets
except ImportError:
    widgets = None
if widgets is None:
    print("no drawing pad here: it needs ipywidgets (pip install ipywidgets); the fixed "
          "drawings above went through the same steps")
else:
    try:
        pad, pad_strokes, clear_pad, pad_pen = canvas_pad()
    except ImportError:
        pad, pad_strokes, clear_pad, pad_pen = grid_pad()
    answer_area = widgets.Output()
    classify_button = widgets.Button(description="classify", button_style="primary")
    clear_button = widgets.Button(description="clear")

    def on_classify(_):
        answer_area.clear_output(wait=True)
        with answer_area:
            try:
                classify_drawing(pad_strokes(), pad_pen)
            except DataError as e:
                print(f"nothing to classify yet: {e}")

    def on_clear(_):
        clear_pad()
        answer_area.clear_output()

    classify_button.on_click(on_classify)
    clear_button.on_click(on_clear)
    display(widgets.VBox([pad, widgets.HBox([classify_button, clear_button]), answer_area]))

# %% [markdown]
# When you are done, `acc.close()` releases the core (on the board the DMA buffers, in
# simulation the simulator); shutting the kernel down does the same.
