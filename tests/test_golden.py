"""Golden model: the vectorised implementation equals a literal reading of the semantics, and
integer networks are validated on construction and on load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pynq_neuro.golden import (IntegerNetwork, IntLayer, NetworkError, check_images, run,
                               synthetic)


def random_network(rng: np.random.Generator, spec, wbits: int, abits: int,
                   input_bits: int = 8) -> IntegerNetwork:
    """Random codes and sorted thresholds; ``spec`` is [(out, taps, stride), ...] with a
    placeholder last entry for the classifier. Odd weight widths get sparse layers."""
    return synthetic.random_network(rng, spec[:-1], wbits, abits, input_bits,
                                    0.4 if wbits % 2 else None)


def literal_reference(net: IntegerNetwork, image: np.ndarray) -> np.ndarray:
    """Integer logits of one digit, written as the loops of docs/integer-semantics.md."""
    a = [[int(image[t][c]) >> (8 - net.input_bits) for c in range(28)] for t in range(28)]
    for layer in net.layers:
        out = []
        for t in range(layer.out_frames):
            frame = []
            for o in range(layer.out_channels):
                acc = 0
                for k in range(layer.taps):
                    for c in range(layer.in_channels):
                        if layer.mask is not None and not layer.mask[o, k, c]:
                            continue  # pruned synapse: no connection
                        acc += (2 * int(layer.codes[o, k, c]) + 1) * a[t * layer.stride + k][c]
                if layer.is_classifier:
                    frame.append(acc + int(layer.bias[o]))
                else:
                    frame.append(sum(acc >= int(th) for th in layer.thresholds[o]))
            out.append(frame)
        a = out
    return np.array(a[0])


def digits(rng, n):
    return synthetic.random_digits(n, rng)


@pytest.mark.parametrize("wbits,abits,input_bits,spec", [
    (1, 1, 8, [(7, 3, 2), (5, 2, 2), (0, 0, 0)]),
    (2, 2, 1, [(6, 5, 3), (0, 0, 0)]),
    (3, 4, 4, [(9, 1, 1), (4, 4, 4), (0, 0, 0)]),
    (8, 3, 8, [(5, 3, 1), (3, 3, 2), (4, 2, 1), (0, 0, 0)]),
    (4, 2, 8, [(0, 0, 0)]),
])
def test_vectorised_model_equals_literal_semantics(wbits, abits, input_bits, spec):
    rng = np.random.default_rng(wbits * 7 + abits)
    net = random_network(rng, spec, wbits, abits, input_bits)
    images = digits(rng, 12)
    result = run(net, images, batch=5)
    for i, img in enumerate(images):
        assert np.array_equal(result.logits[i], literal_reference(net, img))
    assert np.array_equal(result.classes, result.logits.argmax(axis=1))


def test_ties_go_to_the_lowest_class():
    layer = IntLayer(28, 10, 28, 1, 28, 2, np.zeros((10, 28, 28), dtype=np.int64),
                     bias=np.array([0, 5, 3, 5, 5, 0, 0, 0, 0, 0]))
    net = IntegerNetwork(8, [layer])
    res = run(net, np.zeros((3, 28, 28), np.uint8))
    assert res.classes.tolist() == [1, 1, 1]


def test_trace_returns_every_layer(tmp_path):
    rng = np.random.default_rng(0)
    net = random_network(rng, [(7, 3, 2), (5, 2, 2), (0, 0, 0)], 2, 2)
    res = run(net, digits(rng, 4), trace=True)
    assert [a.shape for a in res.activations] == [(4, 28, 28), (4, 13, 7), (4, 6, 5)]
    assert all(a.max() <= 3 for a in res.activations[1:])


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    net = random_network(rng, [(7, 3, 2), (0, 0, 0)], 3, 2, input_bits=5)
    net.meta = {"name": "x", "wbits": 3}
    net.save(tmp_path / "n.npz")
    back = IntegerNetwork.load(tmp_path / "n.npz")
    assert back.meta == net.meta and back.input_bits == 5
    images = digits(rng, 20)
    assert np.array_equal(run(back, images).logits, run(net, images).logits)


def _mutated(tmp_path, net, mutate) -> str:
    net.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as z:
        arrays = {k: z[k] for k in z.files}
    mutate(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


def _header(arrays, change):
    h = json.loads(arrays["header"].tobytes())
    change(h)
    arrays["header"] = np.frombuffer(json.dumps(h).encode(), np.uint8)


@pytest.mark.parametrize("mutate,message", [
    (lambda a: a.__setitem__("codes0", a["codes0"] * 0 + 9), "codes outside"),
    (lambda a: a.__setitem__("codes0", a["codes0"][:, :, :5]), "shape"),
    (lambda a: a.__setitem__("thresholds0", a["thresholds0"][:, ::-1] - np.arange(3)), "nondecreasing"),
    (lambda a: a.__setitem__("thresholds0", a["thresholds0"] * 10**9), "accumulator range"),
    (lambda a: a.pop("bias1"), "bias"),
    (lambda a: a.pop("thresholds0"), "thresholds"),
    (lambda a: a.__setitem__("mask0", np.ones((2, 2), bool)), "mask"),
    (lambda a: a.__setitem__("mask0", np.ones(a["codes0"].shape, np.int8)), "mask"),
    (lambda a: _header(a, lambda h: h.__setitem__("version", 99)), "version"),
    (lambda a: _header(a, lambda h: h.__setitem__("format", "other")), "not a"),
    (lambda a: _header(a, lambda h: h["layers"][0].__setitem__("out_channels", 8)), "shape"),
    (lambda a: _header(a, lambda h: h["layers"][1].__setitem__("in_frames", 11)), "frames"),
    (lambda a: a.__setitem__("header", a["header"][:-3]), "corrupt header"),
    # a one-frame layer has one form: the smallest stride (any other gives the same frame)
    (lambda a: _header(a, lambda h: h["layers"][1].__setitem__("stride", 2)), "has stride 1"),
])
def test_inconsistent_networks_are_refused(tmp_path, mutate, message):
    rng = np.random.default_rng(2)
    net = random_network(rng, [(7, 3, 2), (0, 0, 0)], 2, 2)
    with pytest.raises(NetworkError, match=message):
        IntegerNetwork.load(_mutated(tmp_path, net, mutate))


def test_unreadable_files_are_refused(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(NetworkError, match="not a readable"):
        IntegerNetwork.load(tmp_path / "junk.npz")
    rng = np.random.default_rng(3)
    random_network(rng, [(0, 0, 0)], 2, 2).save(tmp_path / "ok.npz")
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkError):
        IntegerNetwork.load(tmp_path / "cut.npz")
    with pytest.raises(NetworkError):
        IntegerNetwork.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("bad,err", [
    (np.zeros((2, 28, 28), np.float32), TypeError),
    (np.zeros((2, 28, 28), np.int64), TypeError),
    (np.zeros((2, 27, 28), np.uint8), ValueError),
    (np.zeros((784,), np.uint8), ValueError),
    ([[0] * 28] * 28, TypeError),
])
def test_bad_digits_are_refused(bad, err):
    with pytest.raises(err):
        check_images(bad)


def test_single_digit_is_accepted():
    assert check_images(np.zeros((28, 28), np.uint8)).shape == (1, 28, 28)


def test_torch_ties_a_few_ulps_apart_agree_with_the_golden_choice():
    from pynq_neuro.evaluation import torch_disagreements

    tied = np.array([[1.0, 6.8067597313207555, 0.5, 6.80675973132076]])   # golden: class 1
    assert torch_disagreements(tied, [1]) == 0 and torch_disagreements(tied, [3]) == 0
    step = np.array([[1.0, 6.80, 0.5, 6.84]])                             # one step apart
    assert torch_disagreements(step, [1]) == 1 and torch_disagreements(step, [3]) == 0
    assert torch_disagreements(np.array([[0.0, 0.0]]), [1]) == 0
