"""RTL regression: neuro_core on MNIST digits through the Verilator fast path.

``sim/fast/tb_neuro_core.v`` is a plain Verilog bench: it optionally loads a ``network.bin``
through the stream (LOAD_MODE), then streams the pixels of every digit back to back, collects
class, logits and cycle stamps of each result and writes them to a text file. This module builds
it with ``verilator --binary`` for an artifact (``neuro_params.vh`` and the ``mem/`` images),
writes the stimulus, runs it, and compares every class and logit with the golden model. It also
reports the measured cycles next to the compiler's cycle model (``compiler/cycles.py``).

Stimulus (``pixels.hex``): one 32-bit word per line in hex, the artifact's pixel stream
(:func:`pynq_neuro.driver.core.pixel_words`: 196 words per digit, pixel ``4m+b`` of a row in bits
``8b+7:8b``, or fewer for a packed stream; ``+beats`` tells the bench). Network (``network.hex``): the words of ``network.bin``, one per
line. Results (``results.txt``): one line per digit ``index class logit0 .. logit9
first_beat_cycle result_cycle`` (decimal), then ``counters DIGITS CYCLES STALL INPUT_STALL``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..golden.synthetic import random_digits
from ..golden.synthetic import random_network as tiny_network
from . import (REPO, RtlError, bench_headers, bench_include_dir, hdl_headers, hdl_sources,
               require, sim_dir)
from ..driver.core import pixel_words
from ..driver.registers import beats_per_digit
from .verilator import command as verilator_command
from .verilator import NO_DFG, build_once, files_key

FAST_TB = "fast/tb_neuro_core.v"


# ------------------------------------------------------------------------------------------------
# small networks for the benches


def variant_network(net, seed: int = 1):
    """A different network with exactly the same hardware parameters: codes negated on a
    random subset of neurons (same magnitudes), thresholds and biases permuted across neurons
    (same ranges). It compiles onto the hardware of ``net``."""
    import copy

    rng = np.random.default_rng(seed)
    other = copy.deepcopy(net)
    other.meta = {**net.meta, "name": f"{net.meta.get('name', 'net')}-variant{seed}"}
    for layer in other.layers:
        flip = rng.random(layer.out_channels) < 0.5
        layer.codes[flip] = -layer.codes[flip] - 1
        if layer.mask is not None:
            layer.codes[~layer.mask] = 0
        perm = rng.permutation(layer.out_channels)
        if layer.is_classifier:
            layer.bias = layer.bias[perm]
        else:
            layer.thresholds = layer.thresholds[perm]
    other.validate()
    return other


def sample_images(n: int, seed: int = 0, data_dir: str | None = None) -> np.ndarray:
    """The first ``n`` MNIST test digits, or random sparse digits without the data set."""
    try:
        from ..data import load_mnist

        x = load_mnist("test", data_dir)[0]
        return np.ascontiguousarray(x[:n])
    except Exception:  # noqa: BLE001 - any loader failure: synthetic digits
        return random_digits(n, seed)


def tiny_artifacts(directory: str | Path, seed: int = 0, foldings=None,
                   **network_args) -> tuple[Path, Path]:
    """Compile a tiny network (``A``) and a variant of it mapped onto A's hardware (``B``)."""
    from ..compiler.compile import CompileConfig, compile_network
    from ..compiler.mapping import Folding

    out = Path(directory)
    a, b = out / "A", out / "B"
    net = tiny_network(seed, **network_args)
    folds = foldings or [Folding(2, 4), Folding(2, 3), Folding(1, 5)][-len(net.layers):]
    if len(folds) != len(net.layers):
        folds = [Folding(1, min(4, l.out_channels)) for l in net.layers]
    images = sample_images(32)
    # compiled every time (a second each): a folder left by another version of the compiler
    # or for another network is never reused
    compile_network(net, a, CompileConfig(foldings=list(folds), sample_digits=32), images,
                    force=True)
    compile_network(variant_network(net, seed + 1), b,
                    CompileConfig(hardware=str(a), sample_digits=32), images, force=True)
    return a, b


# ------------------------------------------------------------------------------------------------
# stimulus and results


def write_words(path: Path, words: np.ndarray) -> None:
    """One 8-digit hex word per line."""
    flat = np.asarray(words, dtype=np.uint32).reshape(-1)
    path.write_text("".join(f"{w:08x}\n" for w in flat.tolist()))


def network_words(artifact: str | Path) -> np.ndarray:
    data = (Path(artifact) / "network.bin").read_bytes()
    return np.frombuffer(data, "<u4")


@dataclass
class FastResult:
    """Parsed output of the fast bench."""

    index: np.ndarray        # (N,) digit counter of each result
    classes: np.ndarray      # (N,)
    logits: np.ndarray       # (N, 10)
    first_beat: np.ndarray   # (N,) cycle of the digit's first accepted beat
    result: np.ndarray       # (N,) cycle of the result's first beat on m_axis
    counters: dict[str, int] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)


def parse_results(path: Path) -> FastResult:
    rows, counters, load = [], {}, {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "counters":
            counters = dict(zip(("digits", "cycles", "stall_cycles", "input_stall_cycles"),
                                map(int, parts[1:5])))
        elif parts[0] == "load":
            load = dict(zip(("status", "cycles"), map(int, parts[1:3])))
        else:
            rows.append([int(p) for p in parts])
    a = np.array(rows, np.int64).reshape(-1, 14)
    return FastResult(a[:, 0], a[:, 1], a[:, 2:12], a[:, 12], a[:, 13], counters, load)


# ------------------------------------------------------------------------------------------------
# Verilator build and run


def build_fast(artifact: str | Path, build_root: str | Path | None = None,
               jobs: int = 2, verbose: bool = False, opt: str = "-O2",
               threads: int = 1, extra_args: tuple[str, ...] = NO_DFG) -> Path:
    """Build (or reuse) the Verilator binary of the fast bench for an artifact's parameters
    and memory images; returns the executable. ``-fno-dfg`` is the default (see
    :data:`pynq_neuro.rtl.verilator.NO_DFG`)."""
    verilator = require("verilator")
    art = Path(artifact).resolve()
    vh = art / "neuro_params.vh"
    if not vh.exists():
        raise RtlError(f"{art}: no neuro_params.vh (not an artifact directory)")
    tb = sim_dir() / FAST_TB
    sources = hdl_sources()
    if not any(p.name == "pn_net.v" for p in sources):
        raise RtlError(f"{sources[0].parent}: pn_net.v (the datapath) is missing")
    mem_dir = f"{art / 'mem'}/"
    key = files_key(sources + hdl_headers(sources[0].parent) + bench_headers() + [tb, vh],
                    f"{mem_dir} {opt} {threads} {' '.join(extra_args)}")
    root = Path(build_root or REPO / "build" / "rtl" / "verilator")

    def build(obj: Path) -> None:
        cmd = verilator_command(
            verilator, top="tb_neuro_core", mdir=obj, exe="Vtb_neuro_core",
            includes=[art, sources[0].parent, bench_include_dir()],
            defines=[f"PN_MEM_DIR=\"{mem_dir}\""],
            sources=[*sources, tb], jobs=jobs, opt=opt, threads=threads, extra_args=extra_args)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=obj, capture_output=True, text=True)
        (obj / "build.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not (obj / "Vtb_neuro_core").exists():
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise RtlError(f"verilator build failed (log {obj / 'build.log'}):\n{tail}")
        if verbose:
            print(f"verilator build {time.perf_counter() - start:.1f} s -> {root / key}")

    return build_once(root / key, "Vtb_neuro_core", build)


def run_fast(exe: Path, images: np.ndarray, workdir: str | Path,
             network: str | Path | None = None, logits: bool = True, stall: int = 0,
             timeout_cycles: int | None = None, seed: int = 1, input_bits: int = 8,
             packed: bool = False) -> tuple[FastResult, float]:
    """Run the fast bench on ``images``; ``network``: an artifact whose network.bin is loaded
    through the stream first; ``input_bits`` and ``packed``: the build's pixel stream (an
    artifact's ``packed_pixels``). Returns the results and the wall time of the simulation."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    write_words(work / "pixels.hex", pixel_words(images, input_bits, packed))
    args = [str(exe), f"+pixels={work / 'pixels.hex'}", f"+digits={len(images)}",
            f"+beats={beats_per_digit(input_bits, packed)}",
            f"+results={work / 'results.txt'}", f"+logits={int(logits)}", f"+stall={stall}",
            f"+seed={seed}"]
    if network is not None:
        words = network_words(network)
        write_words(work / "network.hex", words)
        args += [f"+network={work / 'network.hex'}", f"+network_words={len(words)}"]
    limit = timeout_cycles or 200_000 + 50_000 * len(images)
    args.append(f"+timeout={limit}")
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (work / "sim.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "TIMEOUT" in proc.stdout or not (work / "results.txt").exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise RtlError(f"fast bench failed (log {work / 'sim.log'}):\n{tail}")
    return parse_results(work / "results.txt"), wall


# ------------------------------------------------------------------------------------------------
# regression


def _stats(v: np.ndarray) -> dict[str, float]:
    if len(v) == 0:
        return {"mean": float("nan"), "p99": float("nan")}
    return {"mean": float(np.mean(v)), "p99": float(np.percentile(v, 99)),
            "min": float(np.min(v)), "max": float(np.max(v))}


def regression(artifact: str | Path, images: int | np.ndarray = 1000, *,
               load: str | Path | None = None, data_dir: str | None = None,
               labels: np.ndarray | None = None, workdir: str | Path | None = None,
               build_root: str | Path | None = None,
               clock_mhz: float = 100.0, stall: int = 0, max_mismatches: int = 20,
               verbose: bool = False) -> dict[str, Any]:
    """Run neuro_core (built for ``artifact``) on MNIST test digits (``images`` a count) or on
    ``images`` (an array, with their ``labels`` if given) and compare with the golden model.
    ``load``: an artifact (same hardware) whose network.bin is streamed in first and whose
    network is the reference. Returns a JSON-able report (with the accuracy when labels are
    known)."""
    from ..compiler.artifact import load_artifact
    from ..compiler.cycles import simulate
    from ..golden import run

    art = load_artifact(artifact)
    ref = art
    if load is not None:
        ref = load_artifact(load)
        ref.check_hardware(art.manifest["hardware"])
    if isinstance(images, np.ndarray):
        x = images
        if labels is not None and len(labels) != len(x):
            raise ValueError(f"{len(labels)} labels for {len(x)} images")
    else:
        from ..data import load_mnist

        xs, ys = load_mnist("test", data_dir)
        x, labels = xs[:images], ys[:images]
    t0 = time.perf_counter()
    exe = build_fast(artifact, build_root, verbose=verbose)
    build_s = time.perf_counter() - t0
    if workdir is None:  # a folder of its own: runs of one artifact at once do not collide
        runs = REPO / "build" / "rtl" / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{art.fingerprint}-", dir=runs))
    else:
        work = Path(workdir)
    res, sim_s = run_fast(exe, x, work, network=load, stall=stall,
                          input_bits=art.manifest["hardware"]["input_bits"],
                          packed=art.packed_pixels)
    if workdir is None:  # kept only when the bench failed (its log is named in the error)
        shutil.rmtree(work, ignore_errors=True)
    gold = run(ref.network, x)
    n = len(x)
    if len(res.classes) != n:
        raise RtlError(f"{len(res.classes)} results for {n} digits")
    bad_class = np.flatnonzero(res.classes != gold.classes)
    bad_logit = np.flatnonzero(np.any(res.logits != gold.logits, axis=1))
    bad = np.union1d(bad_class, bad_logit)
    mismatches = [{"digit": int(i), "rtl_class": int(res.classes[i]),
                   "golden_class": int(gold.classes[i]),
                   "rtl_logits": res.logits[i].tolist(),
                   "golden_logits": gold.logits[i].astype(np.int64).tolist()}
                  for i in bad[:max_mismatches]]
    latency = res.result - res.first_beat
    intervals = np.diff(res.result)
    steady = float(intervals.mean()) if n > 1 else float(res.result[0])
    predicted = simulate(ref.cycle_maps(), ref.network, x, beats_per_row=art.beats_per_row)
    model = predicted.summary(clock_mhz)
    report = {
        "artifact": str(artifact),
        "loaded": str(load) if load is not None else None,
        "fingerprint": art.fingerprint,
        "network": ref.manifest["network"]["name"],
        "digits": n,
        "class_mismatches": int(len(bad_class)),
        "logit_mismatches": int(len(bad_logit)),
        "mismatches": mismatches,
        "passed": bool(len(bad) == 0 and np.array_equal(res.index,
                                                         np.arange(n) & 0xFFFF)),
        "sequence_ok": bool(np.array_equal(res.index, np.arange(n) & 0xFFFF)),
        "rtl": {
            "cycles_per_digit": steady,
            "digit_interval": _stats(intervals),
            "latency_cycles": _stats(latency),
            "images_per_s": clock_mhz * 1e6 / steady,
            "counters": res.counters,
            "load": res.load,
        },
        "cycle_model": {
            "cycles_per_digit": model["cycles_per_digit"],
            "digit_interval": _stats(np.diff(predicted.result_times)),
            "latency_cycles": {"mean": model["latency_cycles_mean"],
                               "p99": model["latency_cycles_p99"]},
            "images_per_s": model["images_per_s"],
            "layer_cycles_mean": model["layer_cycles_mean"],
            "bottleneck_layer": model["bottleneck_layer"],
        },
        "clock_mhz": clock_mhz,
        "build_seconds": build_s,
        "sim_seconds": sim_s,
        "sim_cycles": int(res.result[-1]) if n else 0,
        "workdir": str(workdir) if workdir is not None else None,
    }
    if labels is not None:
        report["accuracy"] = float(np.mean(res.classes == labels))
        report["golden_accuracy"] = float(np.mean(gold.classes == labels))
    return report


def format_report(r: dict[str, Any]) -> str:
    """Human-readable summary of :func:`regression`."""
    rtl, cm = r["rtl"], r["cycle_model"]
    lines = [
        f"neuro_core RTL regression: {r['network']} ({r['digits']} digits, fingerprint "
        f"{r['fingerprint']})" + (f", loaded at run time from {r['loaded']}" if r["loaded"]
                                  else ""),
        f"  classes: {r['digits'] - r['class_mismatches']}/{r['digits']} match the golden model;"
        f" logits: {r['digits'] - r['logit_mismatches']}/{r['digits']}"
        + (f"; accuracy {100 * r['accuracy']:.2f} %" if "accuracy" in r else ""),
        f"  {'':24}{'RTL':>12}{'cycle model':>14}",
        f"  {'cycles/digit (steady)':<24}{rtl['cycles_per_digit']:>12.1f}"
        f"{cm['cycles_per_digit']:>14.1f}",
        f"  {'digits/s @ %g MHz' % r['clock_mhz']:<24}{rtl['images_per_s']:>12.0f}"
        f"{cm['images_per_s']:>14.0f}",
        f"  {'latency mean (cycles)':<24}{rtl['latency_cycles']['mean']:>12.1f}"
        f"{cm['latency_cycles']['mean']:>14.1f}",
        f"  {'latency p99 (cycles)':<24}{rtl['latency_cycles']['p99']:>12.1f}"
        f"{cm['latency_cycles']['p99']:>14.1f}",
        f"  {'digit interval p99':<24}{rtl['digit_interval']['p99']:>12.1f}"
        f"{cm['digit_interval']['p99']:>14.1f}",
        f"  simulation: {r['sim_cycles']} cycles in {r['sim_seconds']:.1f} s "
        f"({r['sim_cycles'] / max(r['sim_seconds'], 1e-9) / 1e6:.2f} M cycles/s), build "
        f"{r['build_seconds']:.1f} s",
    ]
    for m in r["mismatches"][:5]:
        lines.append(f"  mismatch digit {m['digit']}: rtl class {m['rtl_class']} logits "
                     f"{m['rtl_logits']}, golden {m['golden_class']} {m['golden_logits']}")
    lines.append("  PASS" if r["passed"] else "  FAIL")
    return "\n".join(lines)


__all__ = ["FastResult", "build_fast", "format_report", "network_words", "parse_results",
           "pixel_words", "regression", "run_fast", "sample_images", "tiny_artifacts",
           "tiny_network", "variant_network", "write_words"]
