"""Shared helpers for the RTL testbenches (cocotb 2.x on Icarus Verilog).

* :func:`make_network` builds small random integer networks whose thresholds are set from
  the accumulators of sample digits, so that every layer has zero and nonzero activations
  of all levels;
* :func:`build_artifact` compiles a network with explicit foldings into an artifact
  directory (``mem/*.mem``, ``neuro_params.vh``, ``manifest.json``);
* :func:`header_parameters` reads the ``PN_*`` macros of an artifact's ``neuro_params.vh``;
  :func:`loader_parameters` turns them into the parameters of ``pn_loader`` built as a top
  level; :func:`net_parameters` gives ``pn_net`` its memory images (the network comes from the
  header on the include path);
* :func:`run_cocotb` builds and runs a cocotb test module through ``cocotb_tools.runner``.

Test benches read their configuration (a JSON file) from ``$PN_SIM_CONFIG``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HDL_DIR = REPO / "hdl"
SIM_DIR = REPO / "sim"
BUILD_ROOT = Path(os.environ.get("PN_SIM_BUILD", REPO / "build" / "sim"))

for _p in (str(REPO), str(SIM_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from pynq_neuro.compiler.artifact import load_artifact  # noqa: E402
from pynq_neuro.compiler.compile import CompileConfig, compile_network  # noqa: E402
from pynq_neuro.compiler.limits import DERIVED_FIELDS  # noqa: E402
from pynq_neuro.compiler.mapping import Folding  # noqa: E402
from pynq_neuro.golden.model import accumulate, threshold  # noqa: E402
from pynq_neuro.golden.network import IntegerNetwork, IntLayer  # noqa: E402
from pynq_neuro.golden.synthetic import random_digits  # noqa: E402

# the datapath modules (the AXI shell, input unit and loader are separate)
DATAPATH_SOURCES = ["pn_priority_encoder.v", "pn_frame_buffer.v", "pn_ram.v", "pn_adder_tree.v",
                    "pn_event_group.v", "pn_layer.v", "pn_argmax.v", "pn_net.v"]
LAYER_SOURCES = ["pn_ram.v", "pn_adder_tree.v", "pn_event_group.v", "pn_layer.v"]
CONFIG_ENV = "PN_SIM_CONFIG"


def have_simulator() -> str | None:
    """None if Icarus and cocotb are usable, else the reason why not."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        return "iverilog not installed"
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        return "cocotb not installed"
    return None


# ---------------------------------------------------------------------------------------------
# test networks and digits
# ---------------------------------------------------------------------------------------------

@dataclass
class LayerSpec:
    """One layer of a test network. The last layer of a network is the classifier (10
    outputs, ``out`` ignored); its ``taps`` default to all remaining frames."""

    out: int = 10
    taps: int | None = None
    stride: int = 1
    weight_bits: int = 2
    act_bits: int = 1
    density: float = 1.0


@dataclass
class NetSpec:
    """A test network, its foldings ``[(groups, lanes), ...]`` and how it is exercised."""

    name: str
    input_bits: int
    layers: list[LayerSpec]
    foldings: list[tuple[int, int]]
    seed: int = 0
    load_port: bool = False     # start from zeroed memories and load them through load_*
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return d


def digits(n: int, seed: int = 0, source: str = "mnist") -> np.ndarray:
    """``n`` uint8 digits (N, 28, 28): MNIST test digits (random picks) or synthetic ones."""
    rng = np.random.default_rng(seed)
    if source == "mnist":
        try:
            from pynq_neuro.data import load_mnist

            images = load_mnist("test", download=False)[0]
            return np.ascontiguousarray(images[rng.choice(len(images), n, replace=False)])
        except Exception:  # noqa: BLE001 - fall back to synthetic digits
            pass
    return random_digits(n, rng)


def make_network(spec: NetSpec, images: np.ndarray) -> IntegerNetwork:
    """A random integer network for ``spec``; thresholds and biases are drawn from the
    accumulator distribution of ``images`` so that activations are spread over all levels."""
    rng = np.random.default_rng(spec.seed)
    channels, frames = 28, 28
    acts = images >> (8 - spec.input_bits)
    in_max = 2**spec.input_bits - 1
    layers = []
    for i, ls in enumerate(spec.layers):
        last = i == len(spec.layers) - 1
        out = 10 if last else ls.out
        taps = frames if ls.taps is None else ls.taps
        stride = ls.stride
        wb = ls.weight_bits
        codes = rng.integers(-(2 ** (wb - 1)), 2 ** (wb - 1), (out, taps, channels))
        mask = None
        if ls.density < 1.0:
            mask = rng.random(codes.shape) < ls.density
            codes[~mask] = 0
        layer = IntLayer(channels, out, taps, stride, frames, wb, codes, mask=mask)
        acc = accumulate(layer, acts, in_max).astype(np.int64)
        if last:
            spread = max(1, int(acc.std()))
            layer.bias = rng.integers(-spread, spread + 1, out).astype(np.int64)
            tie = spec.options.get("tie")
            if tie:
                # two equal units that usually win: the lower index must be the class
                a, b = tie
                layer.codes[b] = layer.codes[a]
                if mask is not None:
                    mask[b] = mask[a]
                layer.bias[a] = layer.bias[b] = int(layer.bias.max()) + 3 * spread
        else:
            q = ls.act_bits
            bound = layer.accumulator_bound(in_max)
            th = np.zeros((out, 2**q - 1), np.int64)
            for o in range(out):
                vals = acc[:, :, o].ravel()
                qs = np.sort(rng.uniform(0.25, 0.97, 2**q - 1))
                th[o] = np.ceil(np.quantile(vals, qs)).astype(np.int64)
            th = np.clip(np.sort(th, axis=1), -bound, bound + 1)
            layer.act_bits = q
            layer.thresholds = th
            acts = threshold(layer, acc).astype(np.int64)
            in_max = 2**q - 1
        layers.append(layer)
        channels, frames = out, layer.out_frames
    net = IntegerNetwork(spec.input_bits, layers, 10, {"name": f"rtl-{spec.name}"})
    net.validate()
    return net


def build_artifact(net: IntegerNetwork, foldings: Sequence[tuple[int, int] | Folding],
                   out_dir: str | Path, images: np.ndarray | None = None) -> Path:
    """Compile ``net`` with explicit foldings into the artifact directory ``out_dir``."""
    out = Path(out_dir)
    folds = [f if isinstance(f, Folding) else Folding(*f) for f in foldings]
    if images is None:
        images = digits(8, 0)
    if out.exists():
        shutil.rmtree(out)
    compile_network(net, out, CompileConfig(foldings=folds, sample_digits=len(images)), images)
    return out


def artifact_banks(artifact_dir: str | Path) -> list[dict[str, Any]]:
    """Every memory bank of an artifact: layer, kind (0 synapse, 1 index, 2 params), bank,
    words."""
    art = load_artifact(artifact_dir)
    kinds = {"synapse": 0, "index": 1, "params": 2}
    return [{"layer": b.layer, "kind": kinds[b.kind], "bank": b.bank, "words": list(b.words)}
            for b in art.banks]


# ---------------------------------------------------------------------------------------------
# HDL tops and the cocotb runner
# ---------------------------------------------------------------------------------------------

HW_FIELDS = ("in_channels", "out_channels", "taps", "stride", "in_frames", "out_frames",
             "frames_used", "frames_emitted", "weight_bits", "act_bits", "groups", "lanes",
             "locals", "local_channels", "local_bits", "entry_bits", "word_bits", "acc_bits",
             "levels", "param_bits", "synapse_depth", "addr_bits", "count_bits", "index_bits",
             "index_depth")


def verilog_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DEFINE = re.compile(r"`define\s+(PN_\w+)\s+(.+?)\s*$", re.MULTILINE)
_SIZED = re.compile(r"(\d+)'([dh])([0-9a-fA-F]+)")
LOADER_FIELDS = ("groups", "word_bits", "synapse_depth", "index_bits", "index_depth", "lanes",
                 "param_bits", "locals")


def _verilog_int(text: str) -> int:
    """A decimal, a sized constant (``32'd6``, ``64'h1f``) or a concatenation of sized
    constants (``{32'd6, 32'd8}``, most significant first) as an integer."""
    text = text.strip()
    items = text[1:-1].split(",") if text.startswith("{") and text.endswith("}") else [text]
    value = 0
    for item in items:
        m = _SIZED.fullmatch(item.strip())
        if m is None:
            if len(items) > 1:
                raise ValueError(f"not a sized constant: {item!r} in {text!r}")
            return int(text)
        width, digits = int(m[1]), int(m[3], 16 if m[2] == "h" else 10)
        value = (value << width) | digits
    return value


def header_parameters(artifact_dir: str | Path) -> dict[str, int]:
    """The ``PN_*`` macros of the artifact's ``neuro_params.vh`` as integers."""
    text = (Path(artifact_dir) / "neuro_params.vh").read_text()
    return {name: _verilog_int(value) for name, value in _DEFINE.findall(text)}


def net_parameters(artifact_dir: str | Path, load_port: bool = False) -> dict[str, Any]:
    """pn_net's one parameter: MEM_DIR = the artifact's ``mem/``, or "" when ``load_port``
    (the network itself comes from the artifact's ``neuro_params.vh`` on the include path)."""
    art = Path(artifact_dir).resolve()
    return {"MEM_DIR": verilog_string("" if load_port else str(art / "mem") + "/")}


def loader_parameters(artifact_dir: str | Path) -> dict[str, int]:
    """pn_loader parameters from the artifact's ``neuro_params.vh``."""
    pn = header_parameters(artifact_dir)
    p = {f"V_{f.upper()}": pn[f"PN_V_{f.upper()}"] for f in LOADER_FIELDS}
    p.update(NUM_LAYERS=pn["PN_NUM_LAYERS"], LOAD_BITS=pn["PN_LOAD_BITS"],
             FORMAT_VERSION=pn["PN_FORMAT_VERSION"])
    return p


def layer_parameters(manifest: dict[str, Any], index: int, mem_prefix: str = "",
                     load_bits: int | None = None) -> dict[str, Any]:
    """pn_layer parameters of layer ``index`` of an artifact manifest."""
    hw = manifest["hardware"]["layers"]
    h = hw[index]
    p: dict[str, Any] = {f.upper(): h[f] for f in HW_FIELDS if f not in DERIVED_FIELDS}
    p["IN_BITS"] = manifest["network"]["input_bits"] if index == 0 else hw[index - 1]["act_bits"]
    p["IS_CLASSIFIER"] = int(index == len(hw) - 1)
    p["MEM_PREFIX"] = verilog_string(mem_prefix)
    p["LOAD_BITS"] = load_bits or max(h["word_bits"], h["index_bits"],
                                      h["lanes"] * h["param_bits"])
    return p


def run_cocotb(toplevel: str, module: str, parameters: Mapping[str, Any] | None = None,
               defines: Mapping[str, Any] | None = None,
               sources: Sequence[str | Path] | None = None,
               includes: Sequence[str | Path] = (), build_dir: str | Path | None = None,
               extra_env: Mapping[str, str] | None = None, config: Any = None,
               testcase: str | None = None, waves: bool = False) -> Path:
    """Build ``sources`` (default: the datapath modules) with Icarus and run the cocotb test
    module ``module`` (importable from ``sim/``) on ``toplevel``.

    ``config`` (JSON-serialisable) is written to ``build_dir/config.json`` and passed in
    ``$PN_SIM_CONFIG``. Raises ``AssertionError`` when a test fails; returns the results file.
    """
    from cocotb_tools.runner import get_results, get_runner

    build = Path(build_dir) if build_dir else BUILD_ROOT / f"{toplevel}_{module}"
    build.mkdir(parents=True, exist_ok=True)
    build = build.resolve()
    srcs = [Path(s) for s in (sources or [HDL_DIR / s for s in DATAPATH_SOURCES])]
    env = {"PYTHONPATH": os.pathsep.join([str(SIM_DIR), str(REPO)] + sys.path)}
    env.update(extra_env or {})
    if config is not None:
        cfg_path = build / "config.json"
        cfg_path.write_text(json.dumps(config, indent=1, default=_json_default))
        env[CONFIG_ENV] = str(cfg_path)
    runner = get_runner("icarus")
    runner.build(sources=[str(s) for s in srcs], hdl_toplevel=toplevel,
                 parameters=dict(parameters or {}), defines=dict(defines or {}),
                 includes=[str(i) for i in (*includes, HDL_DIR)], build_dir=build, always=True,
                 timescale=("1ns", "1ps"), waves=waves, log_file=build / "build.log")
    results = build / "results.xml"
    log = build / "sim.log"
    try:
        runner.test(test_module=module, hdl_toplevel=toplevel, build_dir=build, test_dir=build,
                    extra_env=env, results_xml=str(results), testcase=testcase, waves=waves,
                    log_file=log)
    except SystemExit as e:
        raise AssertionError(f"cocotb {module} on {toplevel} failed (exit {e.code}):\n"
                             + _tail(log)) from None
    n, failed = get_results(results)
    if failed or n == 0:
        raise AssertionError(f"cocotb {module} on {toplevel}: {failed} of {n} tests failed:\n"
                             + _tail(log))
    return results


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_config() -> dict[str, Any]:
    """The configuration of the running test bench (``$PN_SIM_CONFIG``)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"${CONFIG_ENV} is not set: run the bench through run_cocotb")
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------------------------------------
# the networks of the datapath regression (tests/test_rtl_datapath.py)
# ---------------------------------------------------------------------------------------------

L = LayerSpec
NET_SPECS: list[NetSpec] = [
    # TDNN, 1-bit weights, groups and lanes dividing nothing
    NetSpec("tdnn_w1", 8, [L(7, 3, 2, 1, 2), L(5, 2, 2, 5, 1, 0.5), L(weight_bits=3, density=0.6)],
            [(3, 3), (2, 2), (1, 3)], seed=1),
    # 1-bit pixels, 8-bit weights, 4-bit activations, taps 4 stride 3 (two slots)
    NetSpec("wide_w8", 1, [L(9, 4, 3, 8, 4, 0.3), L(weight_bits=2)], [(4, 2), (4, 4)], seed=2),
    # stride > taps (frames without active taps); classifier with taps < frames, stride 2
    # (classes 3 and 8 are equal and usually the largest: ties go to the lower index)
    NetSpec("gaps", 4, [L(6, 2, 3, 2, 3, 0.7), L(11, 3, 1, 7, 1, 0.5),
                        L(taps=6, stride=2, weight_bits=4)],
            [(2, 4), (3, 5), (2, 7)], seed=3, options={"tie": [3, 8]}),
    # dense (MLP) layers: one output frame, one local per lane; memories via the load port
    NetSpec("mlp_load", 6, [L(8, 28, 1, 3, 2, 0.2), L(taps=1, weight_bits=6)],
            [(4, 8), (2, 10)], seed=4, load_port=True),
    # a slow middle layer: the first layer waits for free frame buffers, the pixels for rows
    NetSpec("slow_mid", 5, [L(16, 2, 1, 2, 2), L(12, 3, 2, 3, 2, 0.7), L(weight_bits=5)],
            [(4, 16), (1, 1), (1, 2)], seed=6),
    # four layers
    NetSpec("deep4", 3, [L(12, 5, 2, 4, 1, 0.5), L(10, 2, 1, 6, 2), L(7, 3, 3, 1, 3, 0.8),
                         L(weight_bits=8, density=0.4)],
            [(4, 5), (3, 4), (2, 3), (3, 4)], seed=5),
]
del L


def spec_by_name(name: str) -> NetSpec:
    for s in NET_SPECS:
        if s.name == name:
            return s
    raise KeyError(name)


def prepare_net_test(spec: NetSpec, n_digits: int = 8, build_root: Path | None = None,
                     source: str = "mnist") -> tuple[Path, dict[str, Any]]:
    """Network, artifact and top level of ``spec`` in ``build_root/<name>``; returns the build
    directory and the test-bench configuration."""
    build = (build_root or BUILD_ROOT) / f"net_{spec.name}"
    build.mkdir(parents=True, exist_ok=True)
    images = digits(n_digits, spec.seed, source)
    net = make_network(spec, images)
    art = build_artifact(net, spec.foldings, build / "artifact", images)
    cfg = {"artifact": str(art), "digits": images, "seed": spec.seed,
           "load_port": spec.load_port, **spec.options}
    return build, cfg


def run_net_test(spec: NetSpec, n_digits: int = 8, testcase: str | None = None,
                 build_root: Path | None = None) -> Path:
    """Run the pn_net benches (sim/test_pn_net.py) on ``spec``."""
    build, cfg = prepare_net_test(spec, n_digits, build_root)
    return run_cocotb("pn_net", "test_pn_net",
                      parameters=net_parameters(cfg["artifact"], spec.load_port),
                      includes=[cfg["artifact"]], build_dir=build, config=cfg,
                      testcase=testcase)


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description="run the pn_net benches on the test networks")
    ap.add_argument("names", nargs="*", help="networks (default: all)")
    ap.add_argument("--testcase", default=None)
    ap.add_argument("--digits", type=int, default=8)
    args = ap.parse_args()
    for s in NET_SPECS:
        if args.names and s.name not in args.names:
            continue
        t0 = time.time()
        run_net_test(s, args.digits, args.testcase)
        print(f"{s.name}: passed in {time.time() - t0:.1f} s")


# frame buffer shapes of the unit test: (CHANNELS, BITS, NBUF, GROUPS, WR_WIDTH); the read
# frame's flags held in a register (more than 8 local channels: 28, 20 and 30 here, with 1, 2
# and 8 bits and 2 or 3 frames), else per frame stored (NBUF 2 with 3 bits and more, NBUF 3 with
# 2 bits) or derived from the activations (NBUF 2 with 1 or 2 bits, NBUF 3 with 1 bit)
FRAME_BUFFER_CASES = [(13, 3, 2, 3, 4), (28, 8, 2, 1, 4), (11, 1, 3, 5, 3), (7, 4, 2, 4, 2),
                      (20, 2, 2, 3, 4), (19, 2, 3, 7, 4), (9, 1, 2, 2, 2), (40, 2, 3, 2, 4),
                      (30, 1, 2, 1, 3)]


def run_frame_buffer_test(case: tuple[int, int, int, int, int],
                          build_root: Path | None = None) -> Path:
    c, b, n, g, w = case
    build = (build_root or BUILD_ROOT) / f"fb_{c}_{b}_{n}_{g}_{w}"
    return run_cocotb("pn_frame_buffer", "test_pn_frame_buffer",
                      parameters={"CHANNELS": c, "BITS": b, "NBUF": n, "GROUPS": g,
                                  "WR_WIDTH": w},
                      sources=[HDL_DIR / "pn_priority_encoder.v", HDL_DIR / "pn_frame_buffer.v"],
                      build_dir=build)


# pn_layer unit tests: (network, layer index, load through the port)
L = LayerSpec
LAYER_CASES: list[tuple[NetSpec, int, bool]] = [
    (NetSpec("l0_in7", 7, [L(11, 3, 1, 2, 2, 0.8), L(weight_bits=3)], [(3, 4), (2, 3)],
             seed=11), 0, False),
    (NetSpec("l0_in2", 2, [L(9, 5, 4, 6, 4), L(weight_bits=1)], [(2, 5), (4, 10)],
             seed=12), 0, True),
    (NetSpec("cls_in5", 5, [L(13, 4, 2, 5, 3, 0.5), L(taps=11, stride=3, weight_bits=7,
                                                      density=0.7)],
             [(4, 6), (3, 4)], seed=13), 1, True),
    (NetSpec("mid_w1", 8, [L(8, 2, 2, 3, 1), L(7, 3, 3, 1, 3, 0.6), L(weight_bits=2)],
             [(2, 8), (3, 2), (1, 10)], seed=14), 1, False),
]
del L


def run_layer_test(spec: NetSpec, layer: int, load_port: bool, n_digits: int = 3,
                   build_root: Path | None = None) -> Path:
    """Run sim/test_pn_layer.py on one layer of ``spec``."""
    build = (build_root or BUILD_ROOT) / f"layer_{spec.name}_{layer}"
    build.mkdir(parents=True, exist_ok=True)
    images = digits(n_digits, spec.seed)
    net = make_network(spec, images)
    art = build_artifact(net, spec.foldings, build / "artifact", images)
    manifest = json.loads((art / "manifest.json").read_text())
    prefix = "" if load_port else f"{art.resolve()}/mem/L{layer}_"
    params = layer_parameters(manifest, layer, prefix)
    cfg = {"artifact": str(art), "layer": layer, "digits": images, "load_port": load_port,
           "seed": spec.seed}
    return run_cocotb("pn_layer", "test_pn_layer", parameters=params,
                      sources=[HDL_DIR / s for s in LAYER_SOURCES], build_dir=build, config=cfg)
