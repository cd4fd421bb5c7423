"""Training and compression fail loudly: steps stay positive and learning, dead layers are
reported, a diverging loss stops training, unwritable outputs and unreachable lane-balanced
sparsities are refused before any work is done."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import sparse_digits, tiny_config, tiny_model, train_split_available  # noqa: E402
from pynq_neuro.compress.factorize import balanced_keep, balanced_sparsity, compress  # noqa: E402
from pynq_neuro.golden import IntegerNetwork, run  # noqa: E402
from pynq_neuro.lower import DeadLayerWarning, lower  # noqa: E402
from pynq_neuro.models import ModelConfig, NeuroNet  # noqa: E402
from pynq_neuro.quant import SymmetricWeightQuantizer, UnsignedActQuantizer  # noqa: E402
from pynq_neuro.quant.quantizers import MIN_STEP, effective_step  # noqa: E402
from pynq_neuro.train import (  # noqa: E402
    TrainConfig,
    TrainingError,
    check_output_path,
    dead_layers,
    fit,
    train,
)

torch.set_num_threads(1)

TINY = tiny_config()


digits = sparse_digits


def float_codes(model: NeuroNet, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """float64 logits and hidden activation codes (N, frames, units), with effective steps."""
    with torch.no_grad():
        model.double()
        logits, hidden = model(torch.from_numpy(images).double(), return_hidden=True)
        codes = [torch.round(h / effective_step(a.step)).numpy().astype(np.int64)
                 .transpose(0, 2, 1) for h, a in zip(hidden, model.acts)]
        model.float()
    return logits.numpy(), codes


# ------------------------------------------------------------------------- positive steps


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_negative_weight_step_acts_as_its_magnitude_and_learns(bits):
    w = torch.randn(3, 40)
    pos, neg = SymmetricWeightQuantizer(bits, 3), SymmetricWeightQuantizer(bits, 3)
    with torch.no_grad():
        pos.step.copy_(torch.tensor([0.3, 0.05, 0.7]))
        neg.step.copy_(torch.tensor([-0.3, 0.05, -0.7]))
    assert torch.equal(pos(w), neg(w)) and torch.equal(pos.codes(w), neg.codes(w))
    neg(w).pow(2).sum().backward()
    pos(w).pow(2).sum().backward()
    assert torch.all(neg.step.grad != 0)  # no clamp swallows the gradient
    assert torch.equal(neg.step.grad, pos.step.grad * torch.tensor([-1.0, 1.0, -1.0]))


def test_negative_activation_step_acts_as_its_magnitude_and_learns():
    x = torch.linspace(-1, 2, 50)
    pos, neg = UnsignedActQuantizer(2), UnsignedActQuantizer(2)
    with torch.no_grad():
        pos.step.fill_(0.0036)
        neg.step.fill_(-0.0036)  # the value a from-scratch run once ended with
    assert torch.equal(pos(x), neg(x))
    neg(x).sum().backward()
    assert neg.step.grad.item() != 0.0


def test_step_of_a_saved_model_is_its_effective_step():
    model = tiny_model()
    with torch.no_grad():
        model.acts[0].step.fill_(-0.25)
        model.layers[1].weight_quant.step[2] = -0.04
    state = model.state_dict()
    assert state["acts.0.step"].item() == 0.25
    assert state["layers.1.weight_quant.step"][2].item() == pytest.approx(0.04)
    again = NeuroNet(TINY)
    again.load_state_dict(state)
    again.eval()
    x = torch.from_numpy(digits(64, 1))
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    # a healthy step is stored as the very tensor (nothing is copied)
    assert model.state_dict()["acts.1.step"].data_ptr() == model.acts[1].step.data_ptr()


def test_a_stored_negative_step_keeps_its_old_meaning():
    """Files written before steps were kept positive store negative steps, which meant
    MIN_STEP; they load to exactly that (the shipped zoo has such weight steps)."""
    model = tiny_model()
    state = model.state_dict()
    state["layers.0.weight_quant.step"] = state["layers.0.weight_quant.step"].clone()
    state["layers.0.weight_quant.step"][1] = -0.02
    loaded = NeuroNet(TINY)
    loaded.load_state_dict(state)
    assert loaded.layers[0].weight_quant.step[1].item() == pytest.approx(MIN_STEP)
    w = loaded.layers[0].weight
    old = state["layers.0.weight_quant.step"].clamp_min(MIN_STEP).view(-1, 1, 1)
    old_k = torch.floor(torch.clamp(w / old - 0.5, -2, 1) + 0.5)
    assert torch.equal(loaded.layers[0].weight_quant.codes(w), old_k)


def test_lowering_uses_the_effective_step_bit_exactly():
    model = tiny_model(seed=3)
    with torch.no_grad():
        model.acts[0].step.mul_(-1)
        model.acts[1].step.mul_(-1)
        model.layers[0].weight_quant.step[::2] *= -1
        model.classifier.weight_quant.step.mul_(-1)
    images = digits(300, 4)
    logits, codes = float_codes(model, images)
    net = lower(model)
    res = run(net, images, trace=True)
    for want, got in zip(codes, res.activations[1:]):
        assert np.array_equal(got, want)
    assert sum(int(c.max()) for c in codes) > 0  # real activity was compared
    assert np.array_equal(res.classes, logits.argmax(axis=1))
    mirror = copy.deepcopy(model)
    with torch.no_grad():
        for q in mirror.modules():
            if isinstance(q, (SymmetricWeightQuantizer, UnsignedActQuantizer)):
                q.step.abs_()
    for a, b in zip(lower(mirror).layers, net.layers):
        assert np.array_equal(a.codes, b.codes)
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("thresholds", "bias")
                   if getattr(a, f) is not None)


def test_training_moves_a_negative_step_instead_of_freezing_it():
    model = tiny_model(seed=5)
    with torch.no_grad():
        model.acts[1].step.fill_(-0.01)
    before = model.acts[1].step.item()
    xs = torch.from_numpy(digits(128, 6)).float()
    ys = torch.arange(128) % 10
    cfg = TrainConfig(epochs=1, lr=1e-3, weight_decay=0.0, batch_size=32, max_shift=0, threads=1)
    lines: list[str] = []
    fit(model, xs, ys, cfg, torch.Generator().manual_seed(0), log=lines.append, progress=False)
    assert model.acts[1].step.item() != before
    assert effective_step(model.acts[1].step).item() > MIN_STEP
    assert not any("dead" in line for line in lines)


# ------------------------------------------------------------------------- dead layers


def _kill(model: NeuroNet, layer: int) -> None:
    with torch.no_grad():
        model.norms[layer].weight.zero_()
        model.norms[layer].bias.fill_(-1.0)  # every pre-activation is -1: ReLU gives 0


def test_a_dead_layer_is_reported_during_training_and_at_lowering():
    model = tiny_model(seed=7)
    _kill(model, 1)
    xs = torch.from_numpy(digits(64, 8)).float()
    ys = torch.arange(64) % 10
    cfg = TrainConfig(epochs=2, lr=1e-3, weight_decay=0.0, batch_size=32, max_shift=0, threads=1)
    lines: list[str] = []
    fit(model, xs, ys, cfg, torch.Generator().manual_seed(0), log=lines.append, progress=False)
    dead = [line for line in lines if "dead layer" in line]
    assert len(dead) == 2 and all(line.startswith("warning: hidden layer 1 ") for line in dead)
    assert dead_layers(model, digits(50, 9)) == [1]
    with pytest.warns(DeadLayerWarning, match="hidden layer 1 outputs 0 for every input"):
        net = lower(model)
    assert np.all(run(net, digits(40, 10), trace=True).activations[2] == 0)


def test_a_live_model_lowers_without_warnings():
    model = tiny_model(seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lower(model)
    assert dead_layers(model, digits(50, 12)) == []


def test_a_diverging_loss_stops_training():
    model = tiny_model(seed=13)
    with torch.no_grad():
        model.classifier.bias[3] = float("nan")
    xs = torch.from_numpy(digits(64, 14)).float()
    cfg = TrainConfig(epochs=1, lr=1e-3, weight_decay=0.0, batch_size=32, max_shift=0, threads=1)
    with pytest.raises(TrainingError, match="loss is nan in epoch 1, batch 1"):
        fit(model, xs, torch.arange(64) % 10, cfg, torch.Generator(), log=lambda s: None,
            progress=False)


# ------------------------------------------------------------------------- outputs


def test_check_output_path_refuses_what_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "net.npz").mkdir()
    cases = {
        tmp_path / "folder.pt": "is a folder",
        tmp_path / "missing" / "m.pt": "does not exist",
        tmp_path / "file" / "m.pt": "is not a folder",
        tmp_path / "m.pth": "must end in .pt",
        tmp_path / "m": "must end in .pt",
    }
    for path, message in cases.items():
        with pytest.raises(ValueError, match=message) as e:
            check_output_path(path)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="net.npz is a folder"):
        check_output_path(tmp_path / "net.pt", network=True)
    assert check_output_path(tmp_path / "net.pt") == tmp_path / "net.pt"

    import os

    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".probe"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ValueError, match="is not writable .Permission denied"):
        check_output_path(tmp_path / "ok.pt")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.pt", "net.npz"]


def test_train_refuses_an_unwritable_output_before_training(tmp_path, monkeypatch):
    import pynq_neuro.train as train_module

    def no_data(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "load_mnist", no_data)
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(ValueError, match="dir.pt is a folder"):
        train(TINY, TrainConfig(epochs=1), output=tmp_path / "dir.pt", log=lambda s: None)
    with pytest.raises(ValueError, match="train_images must be an integer >= 1"):
        train(TINY, TrainConfig(epochs=1, train_images=0), log=lambda s: None)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        train(TINY, TrainConfig(epochs=1, batch_size=0), log=lambda s: None)


def test_train_reports_a_dead_layer_and_chance_accuracy(tmp_path):
    """A warm start whose first layer is dead stays dead (no gradient reaches it): every
    epoch, the final check and the accuracy say so."""
    from pynq_neuro.train import checkpoint_dict, save_checkpoint

    if not train_split_available():
        pytest.skip("MNIST training split not available")
    cfg = ModelConfig("tdnn", (4,), (3,), (2,))
    warm = NeuroNet(cfg)
    _kill(warm, 0)
    save_checkpoint(checkpoint_dict(warm, TrainConfig(epochs=0), [], 0.0, "test"),
                    tmp_path / "warm.pt")
    lines: list[str] = []
    ckpt = train(cfg, TrainConfig(epochs=2, train_images=64, threads=1,
                                  warm_start=str(tmp_path / "warm.pt")),
                 log=lines.append, progress=False)
    warned = [line for line in lines if line.startswith("warning:")]
    assert warned == [
        "warning: hidden layer 0 output only zeros in epoch 1 (a dead layer: nothing reaches "
        "the classifier through it)",
        "warning: hidden layer 0 output only zeros in epoch 2 (a dead layer: nothing reaches "
        "the classifier through it)",
        "warning: hidden layer 0 outputs 0 for all of the first 1000 test digits (a dead layer)",
        f"warning: test accuracy {ckpt['metrics']['test_accuracy']:.4f} is close to chance (0.1)",
    ]


# ------------------------------------------------------------------------- lane balance


def test_unreachable_lane_balanced_sparsity_is_refused():
    model = tiny_model()
    # one unit per lane: a lane can only keep its single unit, so nothing can be pruned
    with pytest.raises(ValueError, match=r"cannot reach sparsity 0.99 in layers.0: 8 units on 8 "
                                         r"lanes reach only 0; the nearest is 0 "):
        balanced_keep(model, [8, 6, 10], 0.99)
    with pytest.raises(ValueError, match="in classifier: 10 units on 5 lanes reach only 0, 0.5"):
        balanced_keep(model, [4, 3, 5], [0.5, 0.5, 0.9])
    assert balanced_keep(model, [4, 3, 5], [0.5, 0.5, 0.5]) == [1, 1, 1]
    assert balanced_keep(model, [2, 3, 5], [0.75, 0.5, 0.0]) == [1, 1, 2]
    with pytest.warns(UserWarning, match="layers.0: .* the nearest is 0.75, which is used"):
        assert balanced_keep(model, [2, 3, 5], [0.9, 0.5, 0.0], approximate=True) == [1, 1, 2]


def test_padded_lanes_take_the_reachable_count():
    model = tiny_model(cfg=ModelConfig("tdnn", (10,), (3,), (2,), wbits=2, abits=2))
    # 10 units on 4 lanes hold 3, 3, 2, 2 units: keeping 1 or 2 per lane gives 0.6 or 0.2
    assert [balanced_sparsity(10, 4, k) for k in (1, 2, 3)] == pytest.approx([0.6, 0.2, 0.0])
    assert balanced_keep(model, [4, 5], [0.6, 0.5]) == [1, 1]
    with pytest.raises(ValueError, match="reach only 0, 0.2, 0.6"):
        balanced_keep(model, [4, 5], [0.5, 0.5])


def test_compress_refuses_an_unreachable_sparsity_before_fine_tuning(tmp_path):
    from pynq_neuro.train import checkpoint_dict

    model = tiny_model()
    ckpt = checkpoint_dict(model, TrainConfig(epochs=0), [], 0.0, "test")
    if not train_split_available():
        pytest.skip("MNIST training split not available")
    with pytest.raises(ValueError, match="cannot reach sparsity 0.99 in layers.0"):
        compress(ckpt, [{"pass": "prune", "sparsity": 0.99, "lanes": [8, 6, 10]}],
                 finetune_epochs=0, train_images=64, threads=1, log=lambda s: None,
                 progress=False, output=tmp_path / "c.pt")
    assert not list(tmp_path.iterdir())  # nothing written
    with pytest.warns(UserWarning, match="in layers.0: .* the nearest is 0.75, which is used"):
        out = compress(ckpt, [{"pass": "prune", "sparsity": [0.9, 0.5, 0.5], "lanes": [2, 3, 5],
                               "approximate": True}], finetune_epochs=0, train_images=64,
                       threads=1, log=lambda s: None, progress=False, output=tmp_path / "c.pt")
    assert out["passes"][0]["after"][0]["kept"] == 8 * 28 * 3 // 4  # 0.75 of layers.0 pruned
    assert IntegerNetwork.load(tmp_path / "c.npz").synapses == out["metrics"]["synapses"]


def test_compress_checks_every_pass_before_the_first_fine_tune():
    from pynq_neuro.compress.factorize import preflight

    # after the low-rank pass layers.1 is a 2 * 3 = 6 unit bottleneck: 6 lanes reach only 0
    passes = [{"pass": "low_rank", "layer": 1, "rank": 3},
              {"pass": "prune", "sparsity": [0.5, 0.5, 0.5, 0.5], "lanes": [4, 6, 3, 5]}]
    with pytest.raises(ValueError, match="cannot reach sparsity 0.5 in layers.1: 6 units on 6 "
                                         "lanes reach only 0;"):
        preflight(TINY, passes)
    passes[1]["lanes"] = [4, 3, 3, 5]
    preflight(TINY, passes)  # reachable everywhere
    with pytest.raises(ValueError, match=r"pass 1: rank 7 out of range for layer 1 with a 6 x 24 "
                                         r"weight matrix: 1..6"):
        preflight(TINY, [{"pass": "low_rank", "layer": 1, "rank": 7}])
    with pytest.raises(ValueError, match=r"pass 2: layer index 4 out of range: 0..3"):
        preflight(TINY, [{"pass": "low_rank", "layer": 0, "rank": 2},
                         {"pass": "low_rank", "layer": 4, "rank": 2}])
    with pytest.raises(ValueError, match="one value per layer including the classifier .4."):
        preflight(TINY, [{"pass": "low_rank", "layer": 0, "rank": 2},
                         {"pass": "prune", "sparsity": [0.5, 0.5, 0.5]}])
