"""The datasets benchmark's conversion of the UCI digits (8x8, levels 0..16) into an .npz that
``--data`` reads: MNIST-style digits, both splits, the digest independent of the storage, and
refusal of arrays that are no such digits. Runs on small fake digits (no scikit-learn)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro.data import load_dataset, prepare_digit

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "datasets.py"


def _load_benchmark():
    """benchmarks/datasets.py as a module of its own name (no clash with other ``datasets``)."""
    spec = importlib.util.spec_from_file_location("benchmark_datasets", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


try:
    bench = _load_benchmark()
except (ImportError, OSError) as e:  # pragma: no cover - the benchmark is not there
    pytest.skip(f"benchmarks/datasets.py does not import ({e})", allow_module_level=True)


def fake_uci(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 8x8 digits with levels 0..16: a random stroke of ink on a zero background."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 8, 8), np.float64)
    for i in range(n):
        r, c = rng.integers(1, 4, 2)
        x[i, r:r + rng.integers(3, 6), c:c + rng.integers(2, 4)] = rng.integers(9, 17)
    return x, rng.integers(0, 10, n)


def test_converted_digits_load_as_both_splits(tmp_path):
    x, y = fake_uci(12)
    path = tmp_path / "uci.npz"
    info = bench.uci_digits_npz(x, y, path, train=9)
    assert (info["train_images"], info["test_images"]) == (9, 3)
    train = load_dataset(split="train", path=path)
    test = load_dataset(split="test", path=path)
    assert train.images.shape == (9, 28, 28) and test.images.shape == (3, 28, 28)
    assert train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.labels, y[:9])
    np.testing.assert_array_equal(test.labels, y[9:])
    assert test.name == "uci" and test.source == str(path.resolve())
    # each digit is the MNIST-style preparation of the levels scaled to 0..255
    for i in (0, 10):
        want = prepare_digit(np.rint(x[i] * 255 / 16).astype(np.uint8))
        got = (train.images if i < 9 else test.images)[i % 9]
        np.testing.assert_array_equal(got, want)
    # full ink reaches 255 and the ink's centre of mass sits near the field's centre
    img = test.images[0].astype(np.float64)
    assert img.max() == 255 and img[0].sum() == 0
    cy = (img.sum(axis=1) @ np.arange(28)) / img.sum()
    assert abs(cy - 14) <= 1.0


def test_file_digest_is_recorded_and_the_split_digest_is_stable(tmp_path):
    import hashlib

    x, y = fake_uci(6, seed=3)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    info = bench.uci_digits_npz(x, y, a, train=4)
    bench.uci_digits_npz(x, y, b, train=4)
    assert info["file_sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert load_dataset(path=a).sha256 == load_dataset(path=b).sha256
    other_y = y.copy()
    other_y[-1] = (other_y[-1] + 1) % 10
    c = tmp_path / "c.npz"
    bench.uci_digits_npz(x, other_y, c, train=4)
    assert load_dataset(path=c).sha256 != load_dataset(path=a).sha256


@pytest.mark.parametrize("change, match", [
    (lambda x, y: (x * 2, y), "levels"),
    (lambda x, y: (x - 1, y), "levels"),
    (lambda x, y: (x[:, :, 0], y), "images"),
    (lambda x, y: (x, y[:-1]), "labels"),
    (lambda x, y: (x, y + 10), "labels"),
    (lambda x, y: (x, y.astype(np.float64)), "labels"),
])
def test_arrays_that_are_no_uci_digits_are_refused(tmp_path, change, match):
    x, y = change(*fake_uci(5))
    path = tmp_path / "bad.npz"
    with pytest.raises(ValueError, match=match):
        bench.uci_digits_npz(x, y, path, train=3)
    assert not path.exists()


@pytest.mark.parametrize("train", [0, 5, -1])
def test_a_split_that_leaves_one_side_empty_is_refused(tmp_path, train):
    x, y = fake_uci(5)
    with pytest.raises(ValueError, match="training split"):
        bench.uci_digits_npz(x, y, tmp_path / "u.npz", train=train)


def test_recipe_gives_every_dataset_the_same_number_of_training_images():
    recipe = bench.Recipe(float_epochs=2, qat_epochs=3)
    assert recipe.epochs(2, 60_000) == 2 and recipe.epochs(3, 60_000) == 3
    assert abs(recipe.epochs(3, 1297) * 1297 - 3 * 60_000) <= 1297 / 2
    assert bench.Recipe(literal_epochs=True).epochs(1, 1297) == 1
