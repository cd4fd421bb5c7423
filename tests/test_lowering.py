"""Integer lowering is exact: torch (float64) and the golden model agree on every activation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import torch_codes  # noqa: E402
from pynq_neuro.golden import IntegerNetwork, run  # noqa: E402
from pynq_neuro.lower import lower  # noqa: E402
from pynq_neuro.models import ModelConfig, NeuroNet  # noqa: E402
from pynq_neuro.train import init_quantizers  # noqa: E402

torch.set_num_threads(2)


def random_model(cfg: ModelConfig, seed: int) -> NeuroNet:
    """A quantized model with randomised weights, steps and batch-norm statistics, including
    negative and zero scales, as a trained model could have."""
    torch.manual_seed(seed)
    model = NeuroNet(cfg)
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (256, 28, 28), generator=gen).float()
    init_quantizers(model, images)
    with torch.no_grad():
        for norm in model.norms:
            n = norm.num_features
            norm.weight.copy_(torch.randn(n, generator=gen))
            norm.weight[0] = 0.0  # a neuron whose output is constant
            norm.weight[1] = -abs(norm.weight[1]) - 0.1  # a neuron with negative scale
            norm.bias.copy_(torch.randn(n, generator=gen) * 0.5)
            norm.running_mean.copy_(torch.randn(n, generator=gen) * 2)
            norm.running_var.copy_(torch.rand(n, generator=gen) * 4 + 0.1)
        model.classifier.bias.copy_(torch.randn(10, generator=gen))
    if cfg.wbits % 2:  # odd widths: prune about 60 % of the synapses of every layer
        for layer in [*model.layers, model.classifier]:
            layer.set_mask(torch.rand(layer.weight.shape, generator=gen) > 0.6)
    return model.eval()


def digits(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    img[rng.random(img.shape) < 0.6] = 0  # sparse, like MNIST
    return img


CASES = [
    ModelConfig("tdnn", (13, 7), (3, 2), (2, 3), wbits=1, abits=1),
    ModelConfig("tdnn", (9,), (5,), (3,), wbits=2, abits=2, input_bits=4),
    ModelConfig("tdnn", (11, 6, 5), (2, 3, 2), (1, 2, 1), wbits=3, abits=3, input_bits=1),
    ModelConfig("tdnn", (10, 8), (4, 3), (2, 2), wbits=4, abits=4, per_channel=False),
    ModelConfig("tdnn", (6, 5), (28, 1), (1, 1), wbits=5, abits=1),
    ModelConfig("tdnn", (7,), (4,), (4,), wbits=6, abits=2, input_bits=2),
    ModelConfig("tdnn", (8, 6), (3, 3), (3, 1), wbits=7, abits=3),
    ModelConfig("tdnn", (5,), (6,), (2,), wbits=8, abits=4),
    ModelConfig("mlp", (17, 9), wbits=2, abits=3),
    ModelConfig("mlp", (12,), wbits=1, abits=4, input_bits=3),
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.family}-{c.channels}-w{c.wbits}a{c.abits}")
def test_golden_matches_torch_exactly(cfg: ModelConfig, tmp_path):
    model = random_model(cfg, seed=cfg.wbits * 10 + cfg.abits)
    net = lower(model)
    net.save(tmp_path / "net.npz")
    net = IntegerNetwork.load(tmp_path / "net.npz")
    images = digits(300, seed=cfg.wbits)
    logits, codes = torch_codes(model, images)
    result = run(net, images, batch=128, trace=True)
    for layer, (want, got) in enumerate(zip(codes, result.activations[1:])):
        assert got.shape == want.shape
        assert np.array_equal(got, want), f"layer {layer}: {np.sum(got != want)} activations differ"
        assert 0 < want.max() or cfg.abits == 1  # the check saw real activity
    # integer logits are exactly proportional to the real ones
    scale = float(model.double().classifier_bias_step().detach())
    model.float()
    np.testing.assert_allclose(result.logits * scale, logits, rtol=1e-9, atol=1e-9)
    assert np.array_equal(result.classes, logits.argmax(axis=1))
    for layer in net.layers[:-1]:
        assert layer.act_bits == cfg.abits and layer.weight_bits == cfg.wbits
    if cfg.wbits % 2:
        layers = [*model.layers, model.classifier]
        kept = sum(int(m.weight_mask.sum()) for m in layers)
        assert net.synapses == kept == model.synapses() < sum(m.weight.numel() for m in layers)
        assert all(np.all(l.codes[~l.mask] == 0) for l in net.layers)


def test_pruned_checkpoint_state_loads_into_a_fresh_model():
    cfg = ModelConfig("tdnn", (9,), (5,), (3,), wbits=3, abits=2)
    model = random_model(cfg, seed=5)
    fresh = NeuroNet(cfg)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.layers[0].weight_mask, model.layers[0].weight_mask)
    assert fresh.layers[0].weight_mask.sum() < fresh.layers[0].weight.numel()


def test_negative_scale_flips_codes_within_range():
    cfg = ModelConfig("tdnn", (6,), (3,), (2,), wbits=1, abits=2)
    model = random_model(cfg, seed=3)
    model.layers[0].set_mask(None)
    with torch.no_grad():
        model.norms[0].weight.fill_(-1.0)
    net = lower(model)
    k = model.layers[0].weight_quant.codes(model.layers[0].weight).numpy().astype(int)
    assert np.array_equal(net.layers[0].codes, -k.transpose(0, 2, 1) - 1)
    assert set(np.unique(net.layers[0].codes)) <= {-1, 0}


def test_float_model_has_no_integer_form():
    with pytest.raises(ValueError, match="quantized"):
        lower(NeuroNet(ModelConfig()))
