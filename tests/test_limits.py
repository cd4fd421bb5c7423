"""The core's limits have one description (``pynq_neuro/compiler/limits.py``): the compiler
refuses one step past every limit (naming layer, field, value and limit) and accepts networks
at the edges, the Verilog carries the same values (generated block, port widths) and
``docs/hardware.md`` lists them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pynq_neuro.compiler import limits as L
from pynq_neuro.compiler.artifact import layer_hw, load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.limits import LIMITS, CoreLimitError
from pynq_neuro.compiler.mapping import Folding, _accumulator_bits, map_layer
from pynq_neuro.golden.network import IntegerNetwork, IntLayer
from pynq_neuro.golden.synthetic import random_network

REPO = Path(__file__).resolve().parents[1]


def sparse_digits(n: int, seed: int = 0) -> np.ndarray:
    """Random digits with about 30 % lit pixels (no data set needed)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    img[rng.random(img.shape) < 0.7] = 0
    return img


DIGITS = sparse_digits(4)


# ------------------------------------------------------------------------------------------------
# networks at (and one step past) the edges


def _thresholds(acc: np.ndarray, act_bits: int, bound: int) -> np.ndarray:
    """Thresholds at quantiles of sample accumulators ``acc`` (samples, out): activations of
    every level occur."""
    levels = 2**act_bits - 1
    q = np.quantile(acc, [(j + 1) / (levels + 1) for j in range(levels)], axis=0).T
    th = np.maximum.accumulate(np.round(q).astype(np.int64), axis=1)
    return np.clip(th, -bound - 1, bound + 1)


def edge_network(seed: int = 0, layers: int = 8, synapses: int = 65536, logit_bits: int = 32,
                 input_bits: int = 8, hidden: int = 12) -> IntegerNetwork:
    """Layer 0 folds all 28 rows into one frame of 84 units with exactly ``synapses`` synapses
    (on one group and one lane every synapse is a word of its own: the synapse memory is
    ``synapses`` words deep), dense hidden layers of ``hidden`` units follow, and the
    classifier's biases span the whole ``logit_bits``-bit range (its accumulator is exactly
    that wide)."""
    rng = np.random.default_rng(seed)
    x = sparse_digits(64, seed + 100).astype(np.int64) >> (8 - input_bits)   # (N, 28, 28)
    acts = x.reshape(len(x), 1, 28 * 28)     # one frame: the 28 rows are its taps
    in_max = 2**input_bits - 1
    net_layers: list[IntLayer] = []
    shape = [(84, 28, 28)] + [(hidden, 1, 84 if i == 1 else hidden) for i in range(1, layers)]
    for i, (out, taps, cin) in enumerate(shape):
        last = i == layers - 1
        out = 10 if last else out
        frames = 28 if i == 0 else 1
        codes = rng.integers(-2, 2, (out, taps, cin))
        layer = IntLayer(cin, out, taps, 1, frames, 2, codes)
        if i == 0:
            mask = np.zeros(out * taps * cin, bool)
            mask[rng.choice(mask.size, synapses, replace=False)] = True
            layer.mask = mask.reshape(codes.shape)
            layer.codes[~layer.mask] = 0
        w = layer.weights().reshape(out, -1)
        acc = acts.reshape(len(x), -1) @ w.T     # (N, out)
        if last:
            layer.bias = np.zeros(out, np.int64)
            bound = layer.accumulator_bound(in_max)
            top = 2 ** (logit_bits - 1) - 1 - (bound + 1)
            bottom = -(2 ** (logit_bits - 1)) + bound + 1
            layer.bias = top - rng.integers(0, 1 << 12, out)
            layer.bias[0], layer.bias[1] = top, bottom
        else:
            layer.act_bits = 2
            layer.thresholds = _thresholds(acc, 2, layer.accumulator_bound(in_max))
            a = (acc[:, :, None] >= layer.thresholds[None]).sum(axis=2)
            acts, in_max = a.reshape(len(x), 1, out), 3
        net_layers.append(layer)
    net = IntegerNetwork(input_bits, net_layers, meta={"name": f"edge-{layers}-{synapses}"})
    net.validate()
    return net


def edge_foldings(net: IntegerNetwork) -> list[Folding]:
    """One group and one lane for layer 0 (its synapse memory is as deep as it has synapses),
    a few lanes elsewhere."""
    return [Folding(1, 1)] + [Folding(1, min(4, l.out_channels)) for l in net.layers[1:]]


def wide_network(weight_bits: int) -> IntegerNetwork:
    """Layer 0 on 1024 lanes has synapse words of 1024 * (1 + weight_bits) bits (one local
    index per lane): 8,192 bits, the widest the loader assembles, for 7-bit codes. Codes are
    only -1 and 0 and the input one bit, so that the parameter words stay narrow."""
    rng = np.random.default_rng(3)
    l0 = IntLayer(28, 1024, 1, 1, 28, weight_bits, rng.integers(-1, 1, (1024, 1, 28)))
    l0.mask = rng.random(l0.codes.shape) < 0.1
    l0.codes[~l0.mask] = 0
    l0.act_bits = 1
    l0.thresholds = np.zeros((1024, 1), np.int64) - 1
    l1 = IntLayer(1024, 10, 28, 1, 28, 1, rng.integers(-1, 1, (10, 28, 1024)),
                  bias=rng.integers(-5, 5, 10))
    net = IntegerNetwork(1, [l0, l1], meta={"name": f"wide-w{weight_bits}"})
    net.validate()
    return net


def grouped_network(groups: int) -> IntegerNetwork:
    """A classifier over 260 input channels: up to 260 event groups."""
    net = random_network(5, spec=((260, 28, 1),), wbits=1, abits=1, density=0.05)
    net.meta["name"] = f"grouped-{groups}"
    return net


def _compile(net, out, foldings=None, **cfg):
    return compile_network(net, out, CompileConfig(foldings=foldings, sample_digits=4, **cfg),
                           DIGITS)


def assert_refused(net, tmp_path, layer, field, value, foldings=None):
    out = tmp_path / "refused"
    with pytest.raises(CoreLimitError) as e:
        _compile(net, out, foldings)
    assert not out.exists(), "nothing may be written for a refused network"
    where = "network" if layer is None else f"layer {layer}"
    assert f"{where}: {field} = {value}, the core allows" in str(e.value)
    assert any(v.layer == layer and v.field == field and v.value == value
               for v in e.value.violations)
    return e.value


# ------------------------------------------------------------------------------------------------
# the compiler: past the edge refused, at the edge accepted


def test_most_layers_deepest_memory_widest_logits_compile(tmp_path):
    net = edge_network()
    m = _compile(net, tmp_path / "a", edge_foldings(net))
    hw = m["hardware"]["layers"]
    assert len(hw) == LIMITS.max_layers
    assert hw[0]["synapse_depth"] == LIMITS.max_depth and hw[0]["addr_bits"] == 16
    assert hw[-1]["acc_bits"] == LIMITS.logit_bits_max
    assert L.violations(hw, net.input_bits, net.num_classes) == []
    assert load_artifact(tmp_path / "a").network.layers[0].synapses == LIMITS.max_depth


def test_nine_layers_are_refused(tmp_path):
    net = edge_network(layers=9, synapses=1000, logit_bits=20)
    err = assert_refused(net, tmp_path, None, "num_layers", 9)
    assert "1 .. 8" in str(err)


def test_synapse_memory_one_word_too_deep_is_refused(tmp_path):
    net = edge_network(layers=2, synapses=LIMITS.max_depth + 1, logit_bits=20)
    err = assert_refused(net, tmp_path, 0, "synapse_depth", 65537, edge_foldings(net))
    assert "65536 words" in str(err) and "16 bits" in str(err)


def test_the_search_skips_foldings_the_core_cannot_hold(tmp_path):
    """One group and one lane would need 65,537 words; the search takes a folding that fits."""
    net = edge_network(layers=2, synapses=LIMITS.max_depth + 1, logit_bits=20)
    m = _compile(net, tmp_path / "a")
    assert m["hardware"]["layers"][0]["synapse_depth"] <= LIMITS.max_depth


def test_logits_one_bit_too_wide_are_refused(tmp_path):
    net = edge_network(layers=2, synapses=1000, logit_bits=33)
    assert _accumulator_bits(net, 1) == 33
    err = assert_refused(net, tmp_path, 1, "acc_bits", 33)
    assert "32-bit beat" in str(err)


def test_synapse_words_at_and_past_the_widest_load_word(tmp_path):
    edge = wide_network(7)
    m = _compile(edge, tmp_path / "a", [Folding(1, 1024), Folding(1, 10)],
                 allow_over_budget=True)   # 1,024 lanes: far above the default budget
    assert m["hardware"]["layers"][0]["word_bits"] == LIMITS.max_word_bits
    err = assert_refused(wide_network(8), tmp_path, 0, "word_bits", 9216,
                         [Folding(1, 1024), Folding(1, 10)])
    assert "8192 bits" in str(err)


def test_groups_at_and_past_the_bank_field(tmp_path):
    m = _compile(grouped_network(256), tmp_path / "a", [Folding(1, 4), Folding(256, 5)],
                 allow_over_budget=True)
    assert m["hardware"]["layers"][1]["groups"] == LIMITS.max_groups
    assert_refused(grouped_network(257), tmp_path, 1, "groups", 257,
                   [Folding(1, 4), Folding(257, 5)])


def test_other_class_counts_are_refused(tmp_path):
    net = random_network(6, spec=((8, 3, 2),))
    last = net.layers[-1]
    last.out_channels = 11
    last.codes = np.zeros((11, last.taps, last.in_channels), np.int64)
    last.bias = np.zeros(11, np.int64)
    net.num_classes = 11
    net.validate()
    assert_refused(net, tmp_path, None, "num_classes", 11)


@pytest.mark.parametrize("field,value", [("input_bits", 9), ("weight_bits", 9),
                                         ("act_bits", 9), ("input_bits", 0)])
def test_bit_widths_past_the_datapath_are_refused(tmp_path, field, value):
    net = random_network(7, spec=((8, 3, 2),))
    if field == "input_bits":
        net.input_bits = value
    else:
        setattr(net.layers[0], field, value)
    with pytest.raises(ValueError, match=field):
        _compile(net, tmp_path / "o")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# violations() on hardware descriptions (what artifact loading checks too)


@pytest.fixture(scope="module")
def tiny_hw():
    net = random_network(8, spec=((8, 3, 2), (6, 3, 2)))
    maps = [map_layer(net, i, f) for i, f in
            enumerate([Folding(2, 4), Folding(2, 3), Folding(1, 5)])]
    return net, [layer_hw(lm) for lm in maps]


EDITS = [
    # (layer, field, new value, field named in the violation)
    (0, "synapse_depth", LIMITS.max_depth + 1, "synapse_depth"),
    (1, "index_depth", LIMITS.max_depth + 1, "index_depth"),
    (1, "locals", LIMITS.max_depth + 1, "locals"),
    (1, "out_channels", LIMITS.max_channels + 1, "out_channels"),
    (0, "groups", LIMITS.max_groups + 1, "groups"),
    (1, "lanes", 7, "lanes"),
    (0, "weight_bits", 0, "weight_bits"),
    (0, "act_bits", LIMITS.max_act_bits + 1, "act_bits"),
    (2, "act_bits", 2, "act_bits"),
    (2, "acc_bits", LIMITS.logit_bits_max + 1, "acc_bits"),
    (0, "in_channels", 27, "in_channels"),
    (0, "in_frames", 29, "in_frames"),
    (1, "in_channels", 9, "in_channels"),
    (2, "frames_used", 99, "frames_used"),
    (0, "local_bits", 2, "local_bits"),
    (1, "word_bits", LIMITS.max_word_bits + 1, "word_bits"),
    (0, "taps", 2**32, "taps"),
    (0, "stride", -1, "stride"),
    (0, "count_bits", "2", "count_bits"),
    (0, "addr_bits", None, "addr_bits"),
]


@pytest.mark.parametrize("layer,field,value,named", EDITS,
                         ids=[f"L{e[0]}-{e[1]}-{e[2]}" for e in EDITS])
def test_each_field_past_its_limit_is_named(tiny_hw, layer, field, value, named):
    net, hw = tiny_hw
    assert L.violations(hw, net.input_bits, net.num_classes) == []
    bad = copy.deepcopy(hw)
    bad[layer][field] = value
    found = L.violations(bad, net.input_bits, net.num_classes)
    assert any(v.layer == layer and v.field == named for v in found), found
    with pytest.raises(CoreLimitError, match=f"layer {layer}: {named} = "):
        L.require(bad, net.input_bits, net.num_classes)


@pytest.mark.parametrize("layers,input_bits,classes,named", [
    (0, 8, 10, "num_layers"), (9, 8, 10, "num_layers"), (3, 0, 10, "input_bits"),
    (3, 9, 10, "input_bits"), (3, 8, 9, "num_classes"), (3, True, 10, "input_bits")])
def test_network_fields_past_their_limits_are_named(tiny_hw, layers, input_bits, classes,
                                                    named):
    _, hw = tiny_hw
    layer_list = (hw * 3)[:layers]
    found = L.violations(layer_list, input_bits, classes)
    assert any(v.layer is None and v.field == named for v in found), found


def test_out_channels_past_the_base_width_are_refused_before_the_search():
    layer = SimpleNamespace(out_channels=LIMITS.max_channels + 1, weight_bits=2)
    net = SimpleNamespace(layers=[layer], input_bits=8, num_classes=10)
    with pytest.raises(CoreLimitError, match="layer 0: out_channels = 65537"):
        L.require_network(net)


# ------------------------------------------------------------------------------------------------
# one description: Verilog and documentation agree with limits.py


def test_generated_verilog_is_up_to_date(tmp_path):
    assert L.stale_hdl() == []
    assert L.main(["--check"]) == 0
    # a stale copy is found and rewritten
    for name in L.HDL_FILES:
        text = (REPO / "hdl" / name).read_text()
        (tmp_path / name).write_text(text.replace("LIMIT_MAX_LAYERS = 8;", "LIMIT_MAX_LAYERS = 9;"))
    assert L.stale_hdl(tmp_path) == list(L.HDL_FILES)
    assert L.main(["--check", "--hdl", str(tmp_path)]) == 1
    assert sorted(L.write_hdl(tmp_path)) == sorted(L.HDL_FILES)
    assert L.stale_hdl(tmp_path) == []


def test_port_widths_of_the_verilog_match_the_limits():
    loader = (REPO / "hdl" / "pn_loader.v").read_text()

    def width(text: str, pattern: str) -> int:
        m = re.search(r"\[(\d+):0\]\s+" + pattern + r"\b", text)
        assert m, pattern
        return int(m.group(1)) + 1

    # the load port of pn_loader and pn_net (`PN_LOAD_PORTS)
    macros = (REPO / "hdl" / "pn_macros.vh").read_text()
    assert "`PN_LOAD_PORTS(output)" in loader
    assert 2 ** width(macros, "load_layer") == LIMITS.max_layers
    assert width(macros, "load_addr") == LIMITS.load_addr_bits
    assert width(macros, "load_bank") == LIMITS.bank_bits
    assert width(loader, "chunk_reg") == LIMITS.chunk_bits
    core = (REPO / "hdl" / "neuro_core.v").read_text()
    sizes = set(re.findall(r"parameter \[32\*(\d+)-1:0\] V_", loader))
    assert sizes == {str(LIMITS.max_layers)}
    header = (REPO / "hdl" / "pn_limits.vh").read_text()
    assert f"input [32*{LIMITS.max_layers}-1:0] vec;" in header
    assert "localparam NUM_CLASSES = LIMIT_NUM_CLASSES;" in core
    assert "localparam BASE_BITS = LIMIT_BASE_BITS;" in (REPO / "hdl" / "pn_net.v").read_text()
    assert "wire [15:0]          load_addr;" in core


def test_derived_fields_are_the_ones_the_compiler_derives():
    h = {"in_channels": 28, "out_channels": 10, "taps": 3, "stride": 1, "in_frames": 28,
         "groups": 4, "lanes": 5, "weight_bits": 2, "act_bits": 2, "acc_bits": 9,
         "synapse_depth": 40, "count_bits": 2}
    assert set(L._derived(h, last=False)) == set(L.DERIVED_FIELDS)


def test_documentation_lists_the_limits():
    doc = (REPO / "docs" / "hardware.md").read_text()
    assert L.markdown_table() in doc
    assert L.main(["--table"]) == 0


def test_driver_register_map_takes_the_limits():
    from pynq_neuro.driver import registers as R

    assert R.MAX_LAYERS == LIMITS.max_layers and R.NUM_CLASSES == LIMITS.num_classes
    assert R.layer_field_offset(LIMITS.max_layers - 1, 0) < R.LAYER_BASE + R.LAYER_STRIDE * 8
    with pytest.raises(ValueError):
        R.layer_field_offset(LIMITS.max_layers, 0)
