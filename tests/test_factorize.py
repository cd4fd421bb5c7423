"""Factorization passes: magnitude pruning (budget, sparsity, gradual), low-rank factorization,
and the ``compress`` pipeline with its command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pynq_neuro.compress.cli import add_parser, run  # noqa: E402
from pynq_neuro.compress.factorize import (  # noqa: E402
    BalancedPrune,
    GradualPruner,
    LowRank,
    Prune,
    as_pass,
    check_pass,
    compress,
    connections,
    factorized_config,
    importance,
    low_rank,
    minimum_kept,
    prune_magnitude,
)
from pynq_neuro.data import load_mnist  # noqa: E402
from helpers import torch_codes, train_split_available  # noqa: E402
from pynq_neuro.golden import IntegerNetwork, run as golden_run  # noqa: E402
from pynq_neuro.golden.synthetic import random_digits  # noqa: E402
from pynq_neuro.lower import lower  # noqa: E402
from pynq_neuro.models import ModelConfig, NeuroNet  # noqa: E402
from pynq_neuro.train import (  # noqa: E402
    TrainConfig,
    init_quantizers,
    model_from_checkpoint,
    predict,
    train,
)

torch.set_num_threads(2)

TDNN = ModelConfig("tdnn", (12, 8), (3, 3), (2, 2), wbits=2, abits=2)
MLP = ModelConfig("mlp", (16, 10), wbits=3, abits=2)


def digits(n: int, seed: int) -> np.ndarray:
    return random_digits(n, seed, zero_share=0.6)


def random_model(cfg: ModelConfig, seed: int = 0) -> NeuroNet:
    """A model with random weights, quantizer steps (when quantized) and batch-norm statistics."""
    torch.manual_seed(seed)
    model = NeuroNet(cfg)
    gen = torch.Generator().manual_seed(seed)
    if cfg.quantized:
        init_quantizers(model, torch.from_numpy(digits(256, seed)).float())
    with torch.no_grad():
        for norm in model.norms:
            n = norm.num_features
            norm.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            norm.bias.copy_(torch.randn(n, generator=gen) * 0.3)
            norm.running_mean.copy_(torch.randn(n, generator=gen))
            norm.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.5)
        model.classifier.bias.copy_(torch.randn(10, generator=gen))
    return model.eval()


def layers_of(model: NeuroNet) -> list:
    return [*model.layers, model.classifier]


def per_unit_kept(layer) -> torch.Tensor:
    mask = layer.weight_mask if layer.weight_mask is not None else torch.ones_like(layer.weight)
    return (mask != 0).reshape(mask.shape[0], -1).sum(1)


# --------------------------------------------------------------------------- pruning


def test_connections_list_every_layer():
    rows = connections(random_model(TDNN))
    assert [r["name"] for r in rows] == ["layers.0", "layers.1", "classifier"]
    assert rows[0]["shape"] == [12, 28, 3] and rows[0]["kind"] == "time-delay"
    assert rows[-1]["shape"] == [10, 8, TDNN.frames()[-1]]
    assert all(r["kept"] == r["total"] for r in rows)
    assert [r["kind"] for r in connections(random_model(MLP))] == ["dense"] * 3


@pytest.mark.parametrize("cfg", [TDNN, MLP, ModelConfig("tdnn", (12, 8), (3, 3), (2, 2))],
                         ids=["tdnn-w2a2", "mlp-w3a2", "tdnn-float"])
def test_budget_is_hit_exactly_and_no_unit_dies(cfg):
    model = random_model(cfg)
    total = model.synapses()
    for budget in (total // 2, total // 5, sum(minimum_kept(model, 1)) + 3):
        rows = prune_magnitude(model, budget=budget)
        assert sum(r["kept"] for r in rows) == model.synapses() == budget
        assert all(int(per_unit_kept(m).min()) >= 1 for m in layers_of(model))
    # pruned synapses are absent: the forward pass zeroes them
    w = model.layers[0].quantized_weight()
    assert torch.all(w[model.layers[0].weight_mask == 0] == 0)


def test_budget_respects_existing_masks():
    model = random_model(TDNN)
    gen = torch.Generator().manual_seed(1)
    old = [torch.rand(m.weight.shape, generator=gen) > 0.3 for m in layers_of(model)]
    for m, mask in zip(layers_of(model), old):
        m.set_mask(mask)
        with torch.no_grad():  # pruned latent weights large: they must not come back
            m.weight[~mask] = 100.0
    budget = model.synapses() // 2
    prune_magnitude(model, budget=budget)
    assert model.synapses() == budget
    for m, mask in zip(layers_of(model), old):
        assert not torch.any((m.weight_mask != 0) & ~mask)


def test_every_unit_keeps_its_minimum():
    model = random_model(TDNN)
    with torch.no_grad():  # unit 0 of the first layer has tiny weights: it would die
        model.layers[0].weight[0] *= 1e-4
    budget = sum(minimum_kept(model, 2)) + 10
    prune_magnitude(model, budget=budget, min_per_unit=2)
    assert model.synapses() == budget
    for m in layers_of(model):
        assert int(per_unit_kept(m).min()) >= 2
    assert int(per_unit_kept(model.layers[0])[0]) == 2


def test_per_layer_sparsity():
    model = random_model(TDNN)
    totals = [r["total"] for r in connections(model)]
    rows = prune_magnitude(model, sparsity=0.75)
    assert [r["kept"] for r in rows] == [round(0.25 * t) for t in totals]
    model = random_model(TDNN)
    rows = prune_magnitude(model, sparsity=[0.9, 0.5, 0.0])
    assert [r["kept"] for r in rows] == [round(0.1 * totals[0]), round(0.5 * totals[1]), totals[2]]
    assert model.classifier.weight_mask is None  # an untouched layer stays dense
    # a layer already sparser than asked stays as it is
    rows = prune_magnitude(model, sparsity=[0.5, 0.5, 0.5])
    assert rows[0]["kept"] == round(0.1 * totals[0]) and rows[2]["kept"] == round(0.5 * totals[2])


def test_importance_is_normalised_per_unit_step():
    model = random_model(TDNN)
    ref = random_model(TDNN)
    with torch.no_grad():  # one unit on a 100x larger scale: same codes, same importance
        model.layers[0].weight[3] *= 100
        model.layers[0].weight_quant.step[3] *= 100
    torch.testing.assert_close(importance(model.layers[0]), importance(ref.layers[0]))
    budget = ref.synapses() // 3
    prune_magnitude(model, budget=budget)
    prune_magnitude(ref, budget=budget)
    for a, b in zip(layers_of(model), layers_of(ref)):
        assert torch.equal(a.weight_mask, b.weight_mask)


def test_float_importance_is_normalised_by_layer_rms():
    cfg = ModelConfig("tdnn", (12, 8), (3, 3), (2, 2))
    model, ref = random_model(cfg), random_model(cfg)
    with torch.no_grad():
        model.layers[1].weight *= 1000
    budget = ref.synapses() // 3
    prune_magnitude(model, budget=budget)
    prune_magnitude(ref, budget=budget)
    for a, b in zip(layers_of(model), layers_of(ref)):
        assert torch.equal(a.weight_mask, b.weight_mask)


@pytest.mark.parametrize("epochs", [1, 2, 3, 5, 10])
def test_gradual_schedule_is_monotone_and_ends_at_the_target(epochs):
    model = random_model(TDNN)
    start = model.synapses()
    target = start // 4
    pruner = GradualPruner(model, epochs, budget=target)
    plan = pruner.schedule()
    assert plan[-1] == target and all(a >= b for a, b in zip(plan, plan[1:]))
    assert plan[pruner.ramp_epochs - 1] == target  # reached after about 60 % of the epochs
    assert pruner.ramp_epochs == max(1, round(0.6 * epochs))
    if pruner.ramp_epochs > 1:
        assert start > plan[0] > target
    seen, masks = [], []
    for e in range(epochs):  # as train.fit calls it
        pruner(e)
        seen.append(model.synapses())
        masks.append([m.weight_mask.clone() for m in layers_of(model)])
    assert seen == plan
    for older, newer in zip(masks, masks[1:]):  # pruned stays pruned
        assert all(not torch.any((b != 0) & (a == 0)) for a, b in zip(older, newer))


def test_gradual_per_layer_sparsity_reaches_each_layer_target():
    model = random_model(TDNN)
    totals = [r["total"] for r in connections(model)]
    pruner = GradualPruner(model, 5, sparsity=[0.8, 0.5, 0.5])
    for e in range(5):
        pruner(e)
    want = [round(0.2 * totals[0]), round(0.5 * totals[1]), round(0.5 * totals[2])]
    assert [r["kept"] for r in connections(model)] == want


def test_pruning_arguments_are_checked():
    model = random_model(TDNN)
    total = model.synapses()
    with pytest.raises(ValueError, match="larger than the network"):
        prune_magnitude(model, budget=total + 1)
    with pytest.raises(ValueError, match="below"):
        prune_magnitude(model, budget=5)
    with pytest.raises(ValueError, match="either"):
        prune_magnitude(model)
    with pytest.raises(ValueError, match="either"):
        prune_magnitude(model, sparsity=0.5, budget=100)
    with pytest.raises(ValueError, match="one value per layer"):
        prune_magnitude(model, sparsity=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune_magnitude(model, sparsity=1.0)
    prune_magnitude(model, budget=total // 2)
    with pytest.raises(ValueError, match="cannot restore"):
        prune_magnitude(model, budget=total // 2 + 1)
    with pytest.raises(ValueError, match="at least one epoch"):
        GradualPruner(model, 0, budget=100)


# --------------------------------------------------------------------------- low rank


def float_model(cfg: ModelConfig) -> NeuroNet:
    return random_model(ModelConfig(cfg.family, cfg.channels, cfg.taps, cfg.strides))


@pytest.mark.parametrize("cfg", [TDNN, MLP], ids=["tdnn", "mlp"])
def test_full_rank_reproduces_the_float_logits(cfg):
    model = float_model(cfg).double()
    x = torch.from_numpy(digits(64, 3)).double()
    want = model(x)
    for i, layer in enumerate(layers_of(model)):
        full = min(layer.weight.shape[0], layer.weight[0].numel())
        new = low_rank(model, i, full).double().eval()
        assert new.config == factorized_config(model.config, i, full)
        assert len(new.layers) == len(model.layers) + 1
        assert new.layers[i].weight.shape[0] == 2 * full
        torch.testing.assert_close(new(x), want, rtol=1e-5, atol=1e-4)
    truncated = low_rank(model, 1, 2).double().eval()
    assert not torch.allclose(truncated(x), want, atol=1e-3)  # a real truncation


def test_low_rank_maps_to_a_plain_tdnn_config():
    cfg = ModelConfig("tdnn", (12, 8), (3, 3), (2, 2), wbits=2, abits=2)
    new = factorized_config(cfg, 1, 4)
    assert (new.channels, new.taps, new.strides) == ((12, 8, 8), (3, 3, 1), (2, 2, 1))
    assert new.frames()[-1] == cfg.frames()[-1]
    clf = factorized_config(cfg, 2, 3)  # the classifier: a bottleneck over all frames
    assert (clf.channels, clf.taps, clf.strides) == ((12, 8, 6), (3, 3, 6), (2, 2, 1))
    assert clf.frames()[-1] == 1
    assert factorized_config(MLP, 0, 5).channels == (10, 16, 10)


def test_low_rank_copies_every_other_layer():
    model = random_model(TDNN)
    model.layers[0].set_mask(torch.rand(model.layers[0].weight.shape) > 0.5)
    new = low_rank(model, 1, 3, digits(256, 1))
    old_sd, new_sd = model.state_dict(), new.state_dict()
    for key, value in old_sd.items():
        if key.startswith(("layers.0.", "norms.0.", "acts.0.", "classifier.")):
            assert torch.equal(new_sd[key], value), key
    for key in ("norms.1.", "acts.1."):  # the original batch norm and activation move on
        for name, value in old_sd.items():
            if name.startswith(key):
                assert torch.equal(new_sd[name.replace(".1.", ".2.")], value), name
    norm = new.norms[1]  # the bottleneck batch norm passes values through
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    assert torch.all(norm.running_mean == 0)
    assert new.acts[1].step.item() > 0 and new.acts[1].step.item() != 1.0
    assert torch.all(new.layers[1].weight_quant.step > 0)


@pytest.mark.parametrize("cfg,index,rank", [(TDNN, 1, 3), (TDNN, 0, 5), (MLP, 1, 4),
                                            (TDNN, 2, 2)],
                         ids=["tdnn-layer1", "tdnn-layer0", "mlp-layer1", "tdnn-classifier"])
def test_truncated_low_rank_lowers_bit_exactly(cfg, index, rank, tmp_path):
    model = random_model(cfg, seed=2)
    prune_magnitude(model, sparsity=0.3)  # masks of the other layers travel along
    new = low_rank(model, index, rank, digits(512, 4)).eval()
    net = lower(new)
    net.save(tmp_path / "net.npz")
    net = IntegerNetwork.load(tmp_path / "net.npz")
    assert len(net.layers) == len(model.layers) + 2 and net.synapses == new.synapses()
    images = digits(300, 5)
    logits, codes = torch_codes(new, images)
    result = golden_run(net, images, batch=128, trace=True)
    for layer, (want, got) in enumerate(zip(codes, result.activations[1:])):
        assert np.array_equal(got, want), f"layer {layer}: {np.sum(got != want)} differ"
        assert want.max() > 0
    scale = float(new.double().classifier_bias_step().detach())
    new.float()
    np.testing.assert_allclose(result.logits * scale, logits, rtol=1e-9, atol=1e-9)


def test_low_rank_arguments_are_checked():
    model = random_model(TDNN)
    images = digits(64, 0)
    with pytest.raises(ValueError, match="out of range"):
        low_rank(model, 3, 2, images)
    with pytest.raises(ValueError, match="out of range"):
        low_rank(model, -1, 2, images)
    with pytest.raises(ValueError, match="rank 9 out of range"):
        low_rank(model, 1, 9, images)  # layer 1 is 8 x 36: rank at most 8
    with pytest.raises(ValueError, match="rank 0 out of range"):
        low_rank(model, 0, 0, images)
    with pytest.raises(ValueError, match="training digits"):
        low_rank(model, 0, 2)


def test_pass_descriptions_are_checked():
    assert check_pass({"pass": "prune", "budget": 10})["budget"] == 10
    for bad in ({"pass": "shrink"}, {"pass": "low_rank", "layer": 1},
                {"pass": "prune"}, {"pass": "prune", "budget": 1, "sparsity": 0.5},
                {"pass": "prune", "budget": 1, "rank": 2}, "prune"):
        with pytest.raises(ValueError):
            check_pass(bad)


def test_passes_are_typed_and_record_their_description():
    specs = [{"pass": "low_rank", "layer": 1, "rank": 4},
             {"pass": "prune", "budget": 100, "min_per_unit": 2},
             {"pass": "prune", "sparsity": 0.5, "min_per_unit": 1, "lr": 1e-3},
             {"pass": "prune", "sparsity": [0.5, 0.5, 0.5], "lanes": [4, 3, 5],
              "approximate": True, "epochs": 0}]
    passes = [as_pass(spec) for spec in specs]
    assert [type(p) for p in passes] == [LowRank, Prune, Prune, BalancedPrune]
    assert [p.kind for p in passes] == ["low_rank", "prune", "prune", "prune"]
    assert [list(p.to_dict().items()) for p in passes] == [list(s.items()) for s in specs]
    assert [as_pass(p.to_dict()) for p in passes] == passes
    assert as_pass(passes[0]) is passes[0]
    assert passes[1].params() == {"budget": 100, "min_per_unit": 2}
    assert passes[2].params() == {"sparsity": 0.5, "min_per_unit": 1}
    assert passes[3].params() == {"sparsity": [0.5, 0.5, 0.5], "lanes": [4, 3, 5],
                                  "approximate": True}
    with pytest.raises(ValueError, match="either 'budget' or 'sparsity'"):
        Prune()
    with pytest.raises(ValueError, match="either 'budget' or 'sparsity'"):
        Prune(budget=10, sparsity=0.5)
    with pytest.raises(ValueError, match="epochs must be >= 0, got -1"):
        LowRank(layer=0, rank=1, epochs=-1)
    with pytest.raises(ValueError, match="epochs must be >= 0, got -2"):
        as_pass({"pass": "prune", "budget": 10, "epochs": -2})


# --------------------------------------------------------------------------- compress
# (one torch thread: these tiny models gain nothing from more, and it keeps them fast on a
# loaded machine)


needs_train = pytest.mark.skipif(not train_split_available(),
                                 reason="the MNIST training split is not available")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny quantized TDNN briefly trained on a few thousand digits."""
    path = tmp_path_factory.mktemp("source") / "tdnn.pt"
    cfg = ModelConfig("tdnn", (16, 12), (3, 3), (2, 2), wbits=2, abits=2)
    train(cfg, TrainConfig(epochs=3, lr=1e-2, batch_size=64, max_shift=0, train_images=3000,
                           threads=1), path, log=lambda m: None, progress=False, command="test")
    return path


@needs_train
def test_compress_end_to_end(source, tmp_path):
    out = tmp_path / "small.pt"
    model = model_from_checkpoint(source)
    budget = (model.synapses() - 16 * 12 * 3 + (8 * 16 * 3 + 12 * 8)) // 2
    ckpt = compress(source, [LowRank(layer=1, rank=4), {"pass": "prune", "budget": budget}],
                    finetune_epochs=2, lr=3e-3, batch_size=64, train_images=3000, threads=1,
                    output=out,
                    log=lambda m: None, progress=False, command="test")
    lr_pass, prune_pass = ckpt["passes"]
    assert lr_pass["params"] == {"layer": 1, "rank": 4} and lr_pass["epochs"] == 2
    assert [r["name"] for r in lr_pass["before"]] == ["layers.0", "layers.1", "classifier"]
    assert [r["shape"] for r in lr_pass["after"]][1:3] == [[8, 16, 3], [12, 8, 1]]
    assert lr_pass["origin"] == ["layers.0", "layers.1", "layers.1", "classifier"]
    assert prune_pass["before"] == lr_pass["after"]
    assert prune_pass["synapses_after"] == budget == ckpt["metrics"]["synapses"]
    for entry in ckpt["passes"]:
        assert 0.5 < entry["accuracy"] <= 1 and entry["seconds"] > 0
    assert ckpt["metrics"]["test_accuracy"] == prune_pass["accuracy"]
    assert [h["pass"] for h in ckpt["history"]] == [1, 1, 2, 2]
    # the checkpoint reloads with its masks, and its integer network agrees with it
    again = model_from_checkpoint(out)
    assert again.synapses() == budget and again.config.channels == (16, 8, 12)
    net = IntegerNetwork.load(out.with_suffix(".npz"))
    assert net.synapses == budget
    x = np.array(load_mnist("test")[0][:500])
    _, pred = predict(again, x, dtype=torch.float64)
    assert np.array_equal(golden_run(net, x).classes, pred)


@needs_train
def test_compress_command_line(source, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="pynq-neuro")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "pruned.pt"
    args = parser.parse_args(["compress", str(source), "-o", str(out), "--sparsity", "0.5",
                              "--epochs", "1", "--train-images", "1000", "--threads", "1",
                              "--quiet", "--json"])
    assert run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["pass"] for p in report] == ["prune"]
    assert [r["kept"] for r in report[0]["after"]] == [round(r["total"] / 2)
                                                      for r in report[0]["before"]]
    assert out.exists() and out.with_suffix(".npz").exists()
    args = parser.parse_args(["compress", str(out), "-o", str(tmp_path / "lr.pt"),
                              "--low-rank", "0:6", "--epochs", "0", "--threads", "1", "--quiet"])
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "low_rank layer=0 rank=6" in text and "layers.0 12x28x3" in text
    assert "total" in text and "accuracy" in text
    with pytest.raises(ValueError, match="nothing to do"):
        run(parser.parse_args(["compress", str(source), "-o", str(out)]))


# ------------------------------------------------------------------ lane-balanced pruning


@pytest.mark.parametrize("lanes,keep", [([4, 4, 5], [1, 2, 1]), ([3, 8, 2], [2, 1, 3]),
                                         ([12, 8, 10], [1, 1, 1])])
def test_balanced_pruning_fills_every_lane_equally(lanes, keep):
    from pynq_neuro.compress.factorize import lane_locals, prune_balanced
    from pynq_neuro.compiler.mapping import Folding, map_layer

    model = random_model(TDNN, seed=4)
    prune_balanced(model, lanes, keep)
    net = lower(model)
    for i, (layer, p, k) in enumerate(zip(layers_of(model), lanes, keep)):
        locals_ = lane_locals(layer, p)
        want = min(k, locals_)
        lm = map_layer(net, i, Folding(1, p), pack=False)
        # every column of the compiled layer needs exactly `want` words (no idle lanes when
        # the output count is a multiple of the lanes)
        if layer.weight.shape[0] % p == 0:
            assert lm.words.min() == lm.words.max() == want
        assert lm.words.max() == want
        # the most important synapses of each lane and column survive
        mask = (layer.weight_mask if layer.weight_mask is not None
                else torch.ones_like(layer.weight)).reshape(layer.weight.shape[0], -1)
        assert int(mask.sum()) <= want * p * mask.shape[1]


def test_balanced_pruning_keeps_the_largest_per_lane():
    from pynq_neuro.compress.factorize import importance, prune_balanced

    model = random_model(TDNN, seed=5)
    layer = model.layers[0]
    scores = importance(layer).reshape(layer.weight.shape[0], -1)
    prune_balanced(model, [4, 8, 10], [1, 8, 1])
    mask = layer.weight_mask.reshape(layer.weight.shape[0], -1).bool()
    for lane in range(4):
        rows = torch.arange(lane, layer.weight.shape[0], 4)
        best = scores[rows].argmax(dim=0)
        assert torch.equal(mask[rows].float().argmax(dim=0), best)
        assert torch.all(mask[rows].sum(0) == 1)
    assert model.layers[1].weight_mask is None  # keep >= locals: untouched


def test_balanced_schedule_reaches_keep():
    from pynq_neuro.compress.factorize import BalancedPruner

    model = random_model(TDNN, seed=6)
    with pytest.warns(UserWarning) as caught:
        pruner = BalancedPruner(model, 5, [4, 2, 5], 0.75, approximate=True)
    assert [str(w.message).split(":")[0] for w in caught] == [
        "lane-balanced pruning cannot reach sparsity 0.75 in layers.0",
        "lane-balanced pruning cannot reach sparsity 0.75 in classifier"]  # layers.1 reaches it
    assert "nearest is 0.6667, which is used" in str(caught[0].message)
    targets = [pruner.target(e) for e in range(5)]
    assert targets[-1] == pruner.keep == [1, 1, 1]
    for a, b in zip(targets, targets[1:]):
        assert all(x >= y for x, y in zip(a, b))
    for e in range(5):
        pruner(e)
    assert connections(model)[0]["kept"] == 12 * 28 * 3 // 3  # 1 of 3 per lane and column
    with pytest.raises(ValueError, match="takes a 'sparsity', not a budget"):
        check_pass({"pass": "prune", "budget": 100, "lanes": [4, 2, 5]})


@pytest.mark.parametrize("wbits", [1, 2, 4])
def test_reclip_keeps_the_quantized_weights_and_restores_gradients(wbits):
    from pynq_neuro.compress.factorize import reclip_latent

    model = random_model(ModelConfig("tdnn", (12, 8), (3, 3), (2, 2), wbits=wbits, abits=2), 7)
    layer = model.layers[0]
    with torch.no_grad():
        layer.weight.mul_(50.0)  # push most latent weights far beyond the range
    before = [m.quantized_weight().detach().clone() for m in layers_of(model)]
    reclip_latent(model)
    for m, b in zip(layers_of(model), before):
        assert torch.equal(m.quantized_weight().detach(), b)
    w = layer.weight.detach().clone().requires_grad_(True)
    layer.weight_quant(w).sum().backward()
    assert bool((w.grad != 0).all())  # every weight learns again
