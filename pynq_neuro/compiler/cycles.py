"""Cycle model of the event-driven neuron arrays (numpy only).

The model follows the microarchitecture of ``docs/compiler.md``; its constants are hardware
parameters that the RTL reproduces:

* pixels arrive as 32-bit beats, at most one beat a cycle: four per beat, seven beats per row
  (``BEATS_PER_ROW``), or packed at the input bits (``beats_per_row`` of the compile: one beat a
  row for binary pixels, :func:`~pynq_neuro.compiler.limits.beats_per_row`); rows go into a
  ring of ``ROW_BUFFERS`` row buffers;
* layer ``l`` handles its input frames in order. For frame ``t`` the *event phase* takes
  ``FRAME_OVERHEAD + max_g sum_{events e of group g} sum_{active taps k} max(1, words(k, c_e))``
  cycles (a zero activation is no event and costs nothing; an event that reaches no output
  frame still takes one cycle); then every output frame that is complete gets a *threshold
  phase*: each cycle every lane reads one neuron's partial sums from all G groups at once,
  adds them in a pipelined adder tree, compares the thresholds and writes the activation. The
  layer is busy for ``1 + locals - min(THRESHOLD_OVERLAP, locals)`` cycles (the next frame's
  events may be selected in the last ``THRESHOLD_OVERLAP`` cycles: they reach the partial
  accumulators after the last clear); the output frame is complete ``locals +
  THRESHOLD_LATENCY`` cycles after the phase starts (the next event phase overlaps the end of
  the pipeline), and the next threshold phase starts no earlier than that;
* output frames go into a ring of ``FRAME_BUFFERS`` frame buffers (``FIRST_FRAME_BUFFERS``
  behind layer 0, which follows the pixel stream and so absorbs the other layers' uneven
  frames); a threshold phase waits for a free buffer, which the next layer frees when its event
  phase for that frame ends;
* the classifier's threshold phase is the argmax; the result leaves ``RESULT_LATENCY`` cycles
  later;
* a digit's first beat is accepted (by the register slice in front of the input unit, which
  holds two beats) once the previous digit's second-to-last beat has reached the input unit,
  even when its first row waits for a row buffer (with one beat a row, also while the previous
  digit's last row waits); the
  latency runs from that beat to the first result beat on m_axis (``SHELL_LATENCY``: the
  register slices of the shell). The first digit after a reset can also wait for the
  accumulator flush of the layers (``slots * locals`` cycles), which the model leaves out.

Digits stream back to back; the model returns per-digit latency and per-layer busy cycles, and
the steady-state throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..golden.model import run
from ..golden.network import IntegerNetwork
from ..util import ceil_div
from .limits import LIMITS, beats_per_row as stream_beats_per_row
from .mapping import LayerMap

# rows of a digit and the beats of a row of four bytes a beat (the byte stream's 7)
ROWS = LIMITS.input_frames
BEATS_PER_ROW = stream_beats_per_row(8, False)
ROW_BUFFERS = 2
FRAME_BUFFERS = 2
FIRST_FRAME_BUFFERS = 3
FRAME_OVERHEAD = 1
THRESHOLD_LATENCY = 4
THRESHOLD_OVERLAP = 2
RESULT_LATENCY = 2
# register slices of neuro_core around the datapath: a beat accepted on s_axis reaches the
# input unit one cycle later, a result reaches m_axis two cycles after the datapath presents
# it; the latency (first beat accepted to first result beat accepted) includes both
SHELL_LATENCY = 3


@dataclass
class CycleReport:
    """Predicted cycles for a set of digits streamed back to back."""

    digits: int
    layer_cycles: np.ndarray        # (layers, digits): busy cycles of each layer per digit
    latency: np.ndarray             # (digits,): first beat accepted to result (neuro_core)
    result_times: np.ndarray        # (digits,): cycle of each result
    input_cycles: int = ROWS * BEATS_PER_ROW
    constants: dict = field(default_factory=lambda: {
        "BEATS_PER_ROW": BEATS_PER_ROW, "ROW_BUFFERS": ROW_BUFFERS,
        "FRAME_BUFFERS": FRAME_BUFFERS, "FIRST_FRAME_BUFFERS": FIRST_FRAME_BUFFERS,
        "FRAME_OVERHEAD": FRAME_OVERHEAD,
        "THRESHOLD_LATENCY": THRESHOLD_LATENCY, "THRESHOLD_OVERLAP": THRESHOLD_OVERLAP,
        "RESULT_LATENCY": RESULT_LATENCY, "SHELL_LATENCY": SHELL_LATENCY})
    # (digits,): first pixel write of the datapath (pn_net) to its result
    datapath_latency: np.ndarray | None = None

    @property
    def cycles_per_digit(self) -> float:
        """Steady-state cycles between results with back-to-back digits."""
        if self.digits < 2:
            return float(self.result_times[0])
        return float(self.result_times[-1] - self.result_times[0]) / (self.digits - 1)

    def images_per_s(self, clock_mhz: float) -> float:
        return clock_mhz * 1e6 / self.cycles_per_digit

    def summary(self, clock_mhz: float = 100.0) -> dict:
        lc = self.layer_cycles
        return {
            "digits": self.digits,
            "cycles_per_digit": self.cycles_per_digit,
            "images_per_s": self.images_per_s(clock_mhz),
            "latency_cycles_mean": float(self.latency.mean()),
            "latency_cycles_p99": float(np.percentile(self.latency, 99)),
            "layer_cycles_mean": [float(v) for v in lc.mean(axis=1)],
            "layer_cycles_p99": [float(v) for v in np.percentile(lc, 99, axis=1)],
            "bottleneck_layer": int(np.argmax(lc.mean(axis=1))),
            "input_cycles": self.input_cycles,
        }


def active_taps(lm: LayerMap) -> list[list[int]]:
    """For each input frame, the taps ``k`` through which it reaches an emitted output frame."""
    L = lm.layer
    out = []
    for t in range(L.in_frames):
        taps = [t - tau * L.stride for tau in range(lm.frames_emitted)
                if 0 <= t - tau * L.stride < L.taps and t < lm.frames_used]
        out.append(taps)
    return out


def event_costs(lm: LayerMap) -> np.ndarray:
    """Cycles of one event at (frame t, channel c): ``sum over active taps of max(1, words)``
    (at least 1); 0 for frames past ``frames_used``, whose events are never produced."""
    L, G = lm.layer, lm.groups
    cost = np.zeros((L.in_frames, L.in_channels), np.int64)
    c = np.arange(L.in_channels)
    w = lm.words[c % G, :, c // G]  # (C, K)
    for t, taps in enumerate(active_taps(lm)):
        if t < lm.frames_used:
            cost[t] = np.maximum(1, w[:, taps]).sum(axis=1) if taps else 1
    return cost


def event_phase_cycles(lm: LayerMap, acts: np.ndarray) -> np.ndarray:
    """(digits, in_frames) event-phase cycles for input activations (digits, T, C)."""
    cost = event_costs(lm)
    work = (acts > 0) * cost[None]  # (N, T, C)
    G = lm.groups
    C = work.shape[2]
    pad = (-C) % G
    if pad:
        work = np.concatenate([work, np.zeros(work.shape[:2] + (pad,), work.dtype)], axis=2)
    per_group = work.reshape(work.shape[0], work.shape[1], -1, G).sum(axis=2)
    return per_group.max(axis=2) + FRAME_OVERHEAD


def threshold_cycles(lm: LayerMap) -> int:
    """Cycles from the start of a threshold phase to the complete output frame."""
    return lm.locals + THRESHOLD_LATENCY


def threshold_busy_cycles(lm: LayerMap) -> int:
    """Cycles a threshold phase keeps the layer from its next event phase: one to start, then
    one per local index, of which the last ``THRESHOLD_OVERLAP`` may already select the next
    frame's operations."""
    return 1 + lm.locals - min(THRESHOLD_OVERLAP, lm.locals)


def reset_flush_cycles(layers: list[dict]) -> int:
    """The longest accumulator flush after a reset (``slots * locals`` cycles of a layer;
    ``layers``: a manifest's ``hardware.layers``), by which the first digit's latency may
    exceed the model's."""
    return max(ceil_div(h["taps"], h["stride"]) * h["locals"] for h in layers)


def frame_buffers(layer: int) -> int:
    """Frames in the ring that holds the output frames of ``layer``."""
    return FIRST_FRAME_BUFFERS if layer == 0 else FRAME_BUFFERS


def completions(lm: LayerMap) -> list[int]:
    """Number of emitted output frames that complete at each input frame."""
    L = lm.layer
    done = [0] * L.in_frames
    for tau in range(lm.frames_emitted):
        done[tau * L.stride + L.taps - 1] += 1
    return done


def simulate(maps: list[LayerMap], net: IntegerNetwork, images: np.ndarray,
             activations: list[np.ndarray] | None = None,
             beats_per_row: int = BEATS_PER_ROW) -> CycleReport:
    """Predict cycles for ``images`` (uint8 (N, 28, 28)) streamed back to back.

    ``activations`` (the golden model's trace of ``images``) saves running the network again;
    ``beats_per_row``: the pixel stream's beats per row (an artifact's ``beats_per_row``).
    """
    if activations is None:
        activations = run(net, images, trace=True).activations
    n = len(images)
    ev = [event_phase_cycles(lm, activations[i]) for i, lm in enumerate(maps)]
    frames = [lm.frames_used for lm in maps]
    done_at = [completions(lm) for lm in maps]
    thr = [threshold_cycles(lm) for lm in maps]
    thr_busy = [threshold_busy_cycles(lm) for lm in maps]
    ring = [frame_buffers(l) for l in range(len(maps))]
    L = len(maps)

    # Global frame streams: layer l handles frames_used frames per digit.
    total = [n * f for f in frames]
    ev_end = [np.zeros(t, np.int64) for t in total]       # event phase end of each frame
    out_end: list[list[int]] = [[] for _ in range(L)]      # end of each emitted output frame
    busy = np.zeros((L, n), np.int64)
    pos = [0] * L
    free_at = [0] * L  # layer l busy until
    row_end = np.zeros(n * ROWS, np.int64)
    first_beat = np.zeros(n, np.int64)
    first_write = np.zeros(n, np.int64)
    result = np.zeros(n, np.int64)

    # rows: accepted one beat per cycle. A row that layer 0 uses goes into one of
    # ROW_BUFFERS buffers and waits until the row written ROW_BUFFERS used rows earlier has
    # been consumed; a row past frames_used is not written and never waits.
    def row_ready(w: int) -> int | None:
        """End of acceptance of global row w, or None if it waits for layer 0."""
        digit, r = divmod(w, ROWS)
        prev = row_end[w - 1] if w else 0
        if r < frames[0]:
            u = digit * frames[0] + r - ROW_BUFFERS
            if u >= 0:
                if u >= pos[0]:
                    return None
                prev = max(prev, ev_end[0][u])
        if r == 0:
            first_write[digit] = prev
            # the register slice in front of the input unit holds two beats: it takes a beat
            # once the beat two before it has reached the input unit, so the digit's first
            # beat comes right after the previous digit's second-to-last beat left, even while
            # this row or (one beat a row) the previous digit's last row waits for a buffer
            if not w:
                first_beat[digit] = 0
            elif beats_per_row > 1:
                first_beat[digit] = row_end[w - 1]
            else:
                first_beat[digit] = row_end[w - 2] + 1
        return prev + beats_per_row

    rows_done = 0
    progress = True
    while progress:
        progress = False
        while rows_done < n * ROWS:
            e = row_ready(rows_done)
            if e is None:
                break
            row_end[rows_done] = e
            rows_done += 1
            progress = True
        for l in range(L):
            while pos[l] < total[l]:
                u = pos[l]
                digit, t = divmod(u, frames[l])
                if l == 0:
                    w = digit * ROWS + t
                    if w >= rows_done:
                        break
                    avail = row_end[w]
                else:
                    if u >= len(out_end[l - 1]):
                        break
                    avail = out_end[l - 1][u]
                k = done_at[l][t]
                # a threshold phase needs a free output buffer (freed by the next layer)
                need = len(out_end[l]) + k - ring[l]
                if l + 1 < L and k and need >= 0 and need >= pos[l + 1]:
                    break
                start = max(free_at[l], avail)
                end = start + ev[l][digit, t]
                ev_end[l][u] = end
                for j in range(k):
                    v = len(out_end[l])
                    if l + 1 < L and v >= ring[l]:
                        end = max(end, ev_end[l + 1][v - ring[l]])
                    if v:  # the previous threshold pipeline has drained
                        end = max(end, out_end[l][-1])
                    out_end[l].append(end + thr[l])
                    if l == L - 1:
                        result[digit] = end + thr[l] + RESULT_LATENCY
                    end += thr_busy[l]
                busy[l, digit] += ev[l][digit, t] + k * thr_busy[l]
                free_at[l] = end
                pos[l] += 1
                progress = True
    if any(p < t for p, t in zip(pos, total)):
        raise RuntimeError("cycle model deadlocked; check the frame rings and the layer chain")
    return CycleReport(n, busy, result - first_beat + SHELL_LATENCY, result,
                       input_cycles=ROWS * beats_per_row, datapath_latency=result - first_write)
