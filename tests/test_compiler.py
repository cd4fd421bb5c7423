"""Compiler: mapping round trips, artifacts rebuild the exact network, corrupt artifacts are
refused, the cycle model behaves, and the CLI compiles and inspects."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pynq_neuro.compiler.artifact import (VERSION, ArtifactError, load_artifact, pack_binary,
                                          unpack_binary, banks_of)
from pynq_neuro.compiler.compile import (BudgetError, CompileConfig, HardwareMismatchError,
                                         compile_network)
from pynq_neuro.compiler.cycles import simulate
from pynq_neuro.compiler.mapping import Folding, map_layer, map_network, unpack_layer
from pynq_neuro.compiler.resources import Budget
from pynq_neuro.golden import run

from test_golden import digits, random_network  # noqa: E402  (shared generators)


def sparse_network(seed: int, wbits: int = 3, abits: int = 2, density: float = 0.3):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [(13, 3, 1), (9, 2, 2), (0, 0, 0)], wbits, abits)
    for layer in net.layers:
        layer.mask = rng.random(layer.codes.shape) < density
        layer.codes[~layer.mask] = 0
    net.validate()
    return net


FOLDINGS = [Folding(1, 1), Folding(2, 3), Folding(3, 5), Folding(4, 13), Folding(8, 2)]


@pytest.mark.parametrize("fold", FOLDINGS, ids=str)
@pytest.mark.parametrize("wbits", [1, 2, 5, 8])
def test_memory_images_reproduce_the_layer(fold, wbits):
    net = sparse_network(wbits, wbits=wbits)
    for i, layer in enumerate(net.layers):
        f = Folding(min(fold.groups, layer.in_channels), min(fold.lanes, layer.out_channels))
        lm = map_layer(net, i, f)
        codes, mask, params = unpack_layer(lm)
        assert np.array_equal(mask, layer.mask)
        assert np.array_equal(codes[mask], layer.codes[layer.mask])
        want = layer.bias[:, None] if layer.is_classifier else layer.thresholds
        assert np.array_equal(params, want)
        # geometry-only mapping agrees with the packed one
        light = map_layer(net, i, f, pack=False)
        assert np.array_equal(light.words, lm.words) and light.synapse_depth == lm.synapse_depth
        # each column takes as many words as its fullest lane
        for g in range(f.groups):
            assert sum(len(w) for w in [lm.synapse_words[g]]) == int(lm.words[g].sum())


def test_sparsity_shortens_columns():
    dense = sparse_network(1, density=1.0)
    sparse = sparse_network(1, density=0.2)
    f = Folding(1, 3)
    assert map_layer(sparse, 1, f).synapse_depth < map_layer(dense, 1, f).synapse_depth


@pytest.mark.parametrize("source", ["mem", "bin"])
def test_artifact_rebuilds_the_exact_network(tmp_path, source):
    net = sparse_network(7)
    images = digits(np.random.default_rng(0), 64)
    manifest = compile_network(net, tmp_path / "a", CompileConfig(foldings=[
        Folding(2, 4), Folding(3, 9), Folding(1, 10)]), images)
    art = load_artifact(tmp_path / "a", source=source)
    a, b = run(net, images), run(art.network, images)
    assert np.array_equal(a.logits, b.logits)
    assert art.fingerprint == manifest["hardware"]["fingerprint"]
    assert (tmp_path / "a" / "neuro_params.vh").read_text().count("`define PN_L2_LANES 10") == 1
    coe = (tmp_path / "a" / "coe" / "L0_syn_g0.coe").read_text()
    assert "memory_initialization_radix=16;" in coe


def test_binary_stream_round_trip_and_layout(tmp_path):
    net = sparse_network(8)
    maps = map_network(net, [Folding(2, 4), Folding(3, 9), Folding(1, 10)])
    banks = banks_of(maps)
    blob = pack_binary(banks)
    assert blob[:4] == b"PNNB" and len(blob) % 4 == 0
    back = unpack_binary(blob)
    assert [(b.layer, b.kind, b.bank, b.words) for b in back] == \
        [(b.layer, b.kind, b.bank, b.words) for b in banks]


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("art") / "a"
    compile_network(sparse_network(9), path, CompileConfig(foldings=[
        Folding(2, 4), Folding(3, 9), Folding(1, 10)]), digits(np.random.default_rng(1), 32))
    return path


def _copy(src, tmp_path):
    dst = tmp_path / "c"
    shutil.copytree(src, dst)
    return dst


def _edit_manifest(path, change):
    m = json.loads((path / "manifest.json").read_text())
    change(m)
    (path / "manifest.json").write_text(json.dumps(m))


CORRUPTIONS = {
    "no manifest": (lambda p: (p / "manifest.json").unlink(), "no manifest"),
    "bad json": (lambda p: (p / "manifest.json").write_text("{"), "not valid JSON"),
    "other format": (lambda p: _edit_manifest(p, lambda m: m.update(format="x")), "not a"),
    "future version": (lambda p: _edit_manifest(p, lambda m: m.update(version=VERSION + 1)),
                       f"version {VERSION + 1}"),
    "hardware edited": (lambda p: _edit_manifest(
        p, lambda m: m["hardware"]["layers"][0].update(lanes=5)), "fingerprint"),
    "mem edited": (lambda p: (p / "mem" / "L1_syn_g0.mem").write_text(
        (p / "mem" / "L1_syn_g0.mem").read_text().replace("1", "3", 1)), "SHA-256"),
    "mem missing": (lambda p: (p / "mem" / "L0_par.mem").unlink(), "missing file"),
    "bin edited": (lambda p: (p / "network.bin").write_bytes(
        (p / "network.bin").read_bytes()[:-1] + b"\0"), "SHA-256"),
    "depth lie": (lambda p: _edit_manifest(
        p, lambda m: m["memories"][0].update(depth=m["memories"][0]["depth"] + 1)), "words"),
    "memories dropped": (lambda p: _edit_manifest(p, lambda m: m["memories"].pop()), "manifest"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_artifacts_are_refused(artifact_dir, tmp_path, case):
    corrupt, message = CORRUPTIONS[case]
    path = _copy(artifact_dir, tmp_path)
    corrupt(path)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(path)


def test_fuzzed_load_streams_are_refused_or_exact(artifact_dir):
    """Random byte flips, truncations and extensions of network.bin: never a wrong network."""
    blob = (artifact_dir / "network.bin").read_bytes()
    good = unpack_binary(blob)
    rng = np.random.default_rng(3)
    for trial in range(300):
        data = bytearray(blob)
        kind = trial % 3
        if kind == 0:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(0, len(data))] ^= 1 << rng.integers(0, 8)
        elif kind == 1:
            data = data[: rng.integers(0, len(data))]
        else:
            data += bytes(rng.integers(0, 256, rng.integers(1, 9)).astype(np.uint8))
        try:
            banks = unpack_binary(bytes(data))
        except ArtifactError:
            continue
        assert [b.words for b in banks] == [b.words for b in good]  # only harmless edits pass


def test_fuzzed_mem_images_are_refused(artifact_dir, tmp_path):
    """A .mem with a valid checksum but garbage content is caught by the structural checks."""
    rng = np.random.default_rng(4)
    refused = 0
    for trial in range(20):
        path = tmp_path / f"f{trial}"
        shutil.copytree(artifact_dir, path)
        m = json.loads((path / "manifest.json").read_text())
        entry = m["memories"][rng.integers(0, len(m["memories"]))]
        lines = (path / entry["mem"]).read_text().splitlines()
        i = rng.integers(0, len(lines))
        lines[i] = "f" * len(lines[i]) if trial % 2 else "zz"
        text = "\n".join(lines) + "\n"
        (path / entry["mem"]).write_text(text)
        import hashlib

        m["files"][entry["mem"]] = hashlib.sha256(text.encode()).hexdigest()
        m["sizes"][entry["mem"]] = len(text)
        (path / "manifest.json").write_text(json.dumps(m))
        try:
            load_artifact(path)
        except ArtifactError:
            refused += 1
            continue
        # what passes is an all-ones word that still decodes to something valid: a full
        # synapse word, a -1 parameter row; never a non-hex line
        assert trial % 2 and entry["kind"] in ("synapse", "params")
    assert refused >= 10


def test_hardware_compatibility(artifact_dir, tmp_path):
    art = load_artifact(artifact_dir)
    art.check_hardware(art.manifest["hardware"])
    other = json.loads(json.dumps(art.manifest["hardware"]))
    other["layers"][1]["lanes"] = 3
    with pytest.raises(ArtifactError, match="lanes"):
        art.check_hardware(other)
    with pytest.raises(ArtifactError, match="layers"):
        art.check_hardware({"layers": other["layers"][:2]})


def test_compile_onto_existing_hardware(artifact_dir, tmp_path):
    """A different network of the same shape maps onto the same build (run-time load)."""
    net = sparse_network(10, density=0.25)
    images = digits(np.random.default_rng(5), 16)
    cfg = CompileConfig(hardware=str(artifact_dir))
    compile_network(net, tmp_path / "b", cfg, images)
    a, b = load_artifact(artifact_dir), load_artifact(tmp_path / "b")
    a.check_hardware(b.manifest["hardware"])
    assert b.fingerprint == a.fingerprint
    assert np.array_equal(run(b.network, images).logits, run(net, images).logits)
    too_big = sparse_network(10, density=1.0)
    with pytest.raises(ValueError, match="needs .* the hardware has"):
        compile_network(too_big, tmp_path / "c", cfg, images)


def test_cycle_model_counts_events():
    net = sparse_network(11, density=0.5)
    maps = map_network(net, [Folding(1, 13), Folding(1, 9), Folding(1, 10)])
    blank = np.zeros((4, 28, 28), np.uint8)
    busy = digits(np.random.default_rng(6), 4)
    r0, r1 = simulate(maps, net, blank), simulate(maps, net, busy)
    # a blank digit has no input events: layer 0 costs only frame overheads and thresholds
    assert r0.layer_cycles[0].max() < r1.layer_cycles[0].min()
    assert r1.cycles_per_digit >= 28 * 7  # never faster than the pixel stream
    assert np.all(r1.latency > 0) and np.all(np.diff(r1.result_times) > 0)
    more = map_network(net, [Folding(4, 13), Folding(4, 9), Folding(1, 10)])
    assert simulate(more, net, busy).layer_cycles[1].mean() < r1.layer_cycles[1].mean()


@pytest.mark.parametrize("family", ["mlp", "tdnn"])
def test_checkpoint_families_compile_to_exact_artifacts(tmp_path, family):
    """Both model families become time-delay layers and compile; the artifact's golden model
    equals the torch model (float64) bit for bit."""
    pytest.importorskip("torch")
    from pynq_neuro.lower import lower
    from pynq_neuro.models import ModelConfig

    from helpers import torch_codes
    from test_lowering import random_model

    cfg = (ModelConfig("mlp", (23, 11), wbits=2, abits=2) if family == "mlp"
           else ModelConfig("tdnn", (12, 7), (4, 2), (3, 1), wbits=3, abits=2))
    model = random_model(cfg, seed=21)
    net = lower(model)
    if family == "mlp":  # a dense layer over the image is one output frame with 28 taps
        assert (net.layers[0].taps, net.layers[0].in_channels, net.layers[0].out_frames) == \
            (28, 28, 1)
    images = digits(np.random.default_rng(9), 40)
    compile_network(net, tmp_path / "a", CompileConfig(sample_digits=40), images)
    art = load_artifact(tmp_path / "a")
    logits, _ = torch_codes(model, images)
    res = run(art.network, images)
    assert np.array_equal(res.classes, logits.argmax(axis=1))
    assert np.array_equal(res.logits, run(net, images).logits)


# ------------------------------------------------------------------------------------------------
# budgets, configuration values, existing hardware, replacing an output folder


def test_a_budget_the_search_cannot_meet_is_an_error(tmp_path):
    """Even the smallest design exceeds 1,000 LUTs: refused, naming its foldings and
    estimate; nothing is written."""
    images = digits(np.random.default_rng(12), 16)
    cfg = CompileConfig(budget=Budget(luts=1000), sample_digits=16)
    with pytest.raises(BudgetError) as e:
        compile_network(sparse_network(9), tmp_path / "o", cfg, images)
    msg = str(e.value)
    assert "smallest design found (foldings " in msg and "LUTs > 1,000" in msg
    assert len(e.value.foldings) == 3 and e.value.estimate.luts > 1000
    assert not (tmp_path / "o").exists()


def test_explicit_foldings_over_the_budget_are_an_error_unless_allowed(tmp_path):
    images = digits(np.random.default_rng(13), 16)
    folds = [Folding(2, 4), Folding(3, 9), Folding(1, 10)]
    tight = Budget(luts=2000, bram36=1)
    with pytest.raises(BudgetError, match=r"the design \(foldings 2x4,3x9,1x10\) exceeds"):
        compile_network(sparse_network(9), tmp_path / "o", CompileConfig(
            foldings=folds, budget=tight, sample_digits=16), images)
    assert not (tmp_path / "o").exists()
    m = compile_network(sparse_network(9), tmp_path / "o", CompileConfig(
        foldings=folds, budget=tight, sample_digits=16, allow_over_budget=True), images)
    perf = m["performance"]
    assert perf["over_budget"] is True and perf["resources_estimate"]["fits_budget"] is False
    assert "over the resource budget" in perf["folding_note"] and "LUTs > 2,000" in \
        perf["folding_note"]
    assert load_artifact(tmp_path / "o").manifest["performance"]["over_budget"] is True
    m = compile_network(sparse_network(9), tmp_path / "p", CompileConfig(
        foldings=folds, sample_digits=16), images)
    assert m["performance"]["over_budget"] is False


BAD_CONFIGS = {
    "target 0": (lambda: CompileConfig(target_images_per_s=0), "target_images_per_s"),
    "target nan": (lambda: CompileConfig(target_images_per_s=float("nan")),
                   "target_images_per_s"),
    "target inf": (lambda: CompileConfig(target_images_per_s=float("inf")),
                   "target_images_per_s"),
    "target negative": (lambda: CompileConfig(target_images_per_s=-5.0), "target_images_per_s"),
    "clock 0": (lambda: Budget(clock_mhz=0), "clock_mhz"),
    "clock nan": (lambda: Budget(clock_mhz=float("nan")), "clock_mhz"),
    "luts 0": (lambda: Budget(luts=0), "luts"),
    "luts inf": (lambda: Budget(luts=float("inf")), "luts"),
    "bram negative": (lambda: Budget(bram36=-1), "bram36"),
    "dsp negative": (lambda: Budget(dsp=-1), "dsp"),
    "ffs bool": (lambda: Budget(ffs=True), "ffs"),
    "budget type": (lambda: CompileConfig(budget={"luts": 5}), "budget"),
    "sample digits 0": (lambda: CompileConfig(sample_digits=0), "sample_digits"),
    "sample digits float": (lambda: CompileConfig(sample_digits=2.5), "sample_digits"),
    "no foldings": (lambda: CompileConfig(foldings=[]), "foldings"),
    "folding tuples": (lambda: CompileConfig(foldings=[(1, 2)]), "foldings"),
    "folding zero": (lambda: Folding(0, 3), "groups"),
    "foldings and hardware": (lambda: CompileConfig(foldings=[Folding(1, 1)], hardware="a"),
                              "either foldings or hardware"),
    "allow not bool": (lambda: CompileConfig(allow_over_budget="yes"), "allow_over_budget"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_compile_config_values_are_checked(case):
    make, message = BAD_CONFIGS[case]
    with pytest.raises(ValueError, match=message) as e:
        make()
    assert "\n" not in str(e.value)


def test_values_changed_after_construction_and_bad_images_are_refused(tmp_path):
    net = sparse_network(9)
    images = digits(np.random.default_rng(14), 4)
    cfg = CompileConfig(foldings=[Folding(2, 4), Folding(3, 9), Folding(1, 10)])
    cfg.sample_digits = 0
    with pytest.raises(ValueError, match="sample_digits"):
        compile_network(net, tmp_path / "o", cfg, images)
    cfg.sample_digits = 4
    cfg.foldings = cfg.foldings[:2]
    with pytest.raises(ValueError, match="2 foldings given for 3 layers"):
        compile_network(net, tmp_path / "o", cfg, images)
    cfg.foldings = [Folding(2, 4), Folding(3, 9), Folding(1, 10)]
    for bad in (images[:0], images[:, :27], images.astype(np.int64) + 256):
        with pytest.raises(ValueError, match="images"):
            compile_network(net, tmp_path / "o", cfg, bad)
    assert not (tmp_path / "o").exists()


def _retyped(seed, wbits, abits, spec=((13, 3, 1), (9, 2, 2), (0, 0, 0)), input_bits=8):
    rng = np.random.default_rng(seed)
    net = random_network(rng, list(spec), wbits, abits, input_bits)
    net.validate()
    return net


@pytest.mark.parametrize("case,net,fields", [
    ("W1A1 onto W3A2", lambda: _retyped(20, 1, 1),
     ["layer 0 weight_bits: the network has 1, the hardware 3",
      "layer 0 act_bits: the network has 1, the hardware 2",
      "layer 2 weight_bits: the network has 1, the hardware 3"]),
    ("other taps", lambda: _retyped(21, 3, 2, ((13, 4, 1), (9, 2, 2), (0, 0, 0))),
     ["layer 0 taps: the network has 4, the hardware 3",
      "layer 0 out_frames: the network has 25, the hardware 26"]),
    ("other widths", lambda: _retyped(22, 3, 2, ((12, 3, 1), (9, 2, 2), (0, 0, 0))),
     ["layer 0 out_channels: the network has 12, the hardware 13",
      "layer 1 in_channels: the network has 12, the hardware 13"]),
    ("other input bits", lambda: _retyped(23, 3, 2, input_bits=4),
     ["input_bits: the network has 4, the hardware 8"]),
    ("more layers", lambda: _retyped(24, 3, 2, ((13, 3, 1), (9, 2, 2), (7, 2, 1), (0, 0, 0))),
     ["layers: the network has 4, the hardware 3"]),
])
def test_networks_that_would_change_the_hardware_are_refused(artifact_dir, tmp_path, case,
                                                             net, fields):
    cfg = CompileConfig(hardware=str(artifact_dir))
    with pytest.raises(HardwareMismatchError) as e:
        compile_network(net(), tmp_path / "o", cfg, digits(np.random.default_rng(15), 8))
    for f in fields:
        assert f in str(e.value), str(e.value)
    assert "\n" not in str(e.value) and not (tmp_path / "o").exists()


def test_force_replaces_a_folder_that_holds_something_else(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    cfg = CompileConfig(foldings=[Folding(2, 4), Folding(3, 9), Folding(1, 10)])
    images = digits(np.random.default_rng(16), 4)
    with pytest.raises(ArtifactError, match="force"):
        compile_network(sparse_network(9), out, cfg, images)
    assert (out / "notes.txt").read_text() == "mine\n"
    compile_network(sparse_network(9), out, cfg, images, force=True)
    assert load_artifact(out).network.layers[0].out_channels == 13


def test_the_manifest_keeps_the_whole_compile_configuration(tmp_path):
    """``compile_config`` reads back as the configuration, and compiling again from it gives
    the same memory images."""
    import json

    from pynq_neuro.compiler.compile import CompileConfig, compile_network
    from pynq_neuro.compiler.mapping import Folding
    from pynq_neuro.compiler.resources import Budget
    from pynq_neuro.golden.synthetic import random_digits, random_network

    net = random_network(np.random.default_rng(3), input_bits=8)
    images = random_digits(64, seed=1)
    cfg = CompileConfig(target_images_per_s=123_456.0,
                        budget=Budget(luts=50_000, bram36=100, clock_mhz=125.0),
                        foldings=[Folding(2, 4), Folding(2, 3), Folding(1, 5)], sample_digits=64)
    m = compile_network(net, tmp_path / "a", cfg, images)
    stored = json.loads((tmp_path / "a" / "manifest.json").read_text())["compile_config"]
    assert stored == m["compile_config"] == cfg.to_dict()
    again = CompileConfig.from_dict(stored)
    assert again == cfg
    compile_network(net, tmp_path / "b", again, images)
    assert (tmp_path / "a" / "network.bin").read_bytes() == \
        (tmp_path / "b" / "network.bin").read_bytes()
    with pytest.raises(ValueError, match="unknown compile configuration keys"):
        CompileConfig.from_dict({**stored, "luts": 5})
    with pytest.raises(ValueError, match="compile configuration"):
        CompileConfig.from_dict({**stored, "budget": {"luts": -1}})


def test_the_search_refines_a_missed_target_on_the_simulated_pipeline(monkeypatch):
    """Where the uniform bound misses the target, the refinement simulates the pipeline and
    keeps a faster design within the budget: on the hardware default at 85 % of the LUTs and
    500,000 digits/s, the pixel stream and the rings hold the uniform selection back."""
    from pynq_neuro import zoo
    from pynq_neuro.compiler import folding
    from pynq_neuro.compiler.resources import network_resources
    from pynq_neuro.data import load_mnist
    from pynq_neuro.golden.network import IntegerNetwork

    net = IntegerNetwork.load(zoo.network_path(zoo.hardware_default()))
    x, _ = load_mnist("test")
    images = x[np.linspace(0, len(x) - 1, 300).astype(int)]
    acts = run(net, images, trace=True).activations
    budget = Budget(luts=45220)

    def design(limit):
        monkeypatch.setattr(folding, "REFINE_SIMULATIONS", limit)
        folds, note = folding.choose_foldings(net, images, 500_000, budget, acts)
        maps = [map_layer(net, i, f, pack=False) for i, f in enumerate(folds)]
        res = network_resources(maps, net.input_bits)
        return folds, note, simulate(maps, net, images, acts).cycles_per_digit, \
            sum(res[1:], res[0])

    uniform, _, uniform_cycles, _ = design(0)
    refined, note, cycles, total = design(400)
    assert refined != uniform and cycles < uniform_cycles
    assert total.fits(budget)
    assert "not met" in note and f"{1e8 / cycles:,.0f}" in note
