"""Datasets other than MNIST: the registry and its verified downloads, folders of IDX files and
.npz files, and the dataset record that travels with a network (checkpoint, integer network,
artifact) and decides which data eval, compile and verify accept."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro import zoo
from pynq_neuro.cli import main
from pynq_neuro.compiler.artifact import ArtifactError, load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network, sample_data
from pynq_neuro.data import (
    MNIST_RECORD,
    DataError,
    check_record,
    data_for,
    load_dataset,
    load_mnist,
    record_of,
    write_idx,
)
from pynq_neuro.data import datasets as ds_mod
from pynq_neuro.data import mnist as mnist_mod
from pynq_neuro.golden import IntegerNetwork

NET = "tdnn-w2a2"


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random sparse 28x28 uint8 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    x[rng.random(x.shape) < 0.7] = 0
    return x, rng.integers(0, 10, n).astype(np.uint8)


def write_folder(folder: Path, seed: int = 0, compress: bool = True, dotted: bool = False,
                 n: tuple[int, int] = (40, 20)) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """An IDX dataset (train and test split) in ``folder``; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": make_split(n[0], seed), "test": make_split(n[1], seed + 1)}
    for split, (x, y) in splits.items():
        for stem, arr in zip(ds_mod.SPLIT_FILES[split], (x, y)):
            name = stem.replace("-idx", ".idx", 1) if dotted else stem
            write_idx(folder / (name + (".gz" if compress else "")), arr, compress=compress)
    return splits


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    """An empty user cache, no $PYNQ_NEURO_DATA is left untouched (MNIST stays available)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("PYNQ_NEURO_CACHE", str(root))
    return root


@pytest.fixture
def fashion(monkeypatch, tmp_path, cache):
    """A published 'fashion-mnist' served from a local folder (file:// URL): the registry
    entry is replaced by one whose digests are those of small generated gzip files."""
    pub = tmp_path / "published"
    arrays = write_folder(pub, seed=7)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in pub.iterdir()}
    spec = dataclasses.replace(ds_mod.DATASETS["fashion-mnist"],
                               mirrors=(pub.as_uri() + "/",), gz_sha256=digests, sizes=(40, 20))
    monkeypatch.setitem(ds_mod.DATASETS, "fashion-mnist", spec)
    return pub, arrays, spec


# ------------------------------------------------------------------------------ the registry


def test_registry_holds_published_digests():
    for name in ("fashion-mnist", "kmnist"):
        spec = ds_mod.DATASETS[name]
        assert sorted(spec.gz_sha256) == sorted(
            f"{s}.gz" for pair in ds_mod.SPLIT_FILES.values() for s in pair)
        assert all(ds_mod._is_hex64(d) for d in spec.gz_sha256.values())
        assert len(set(spec.gz_sha256.values())) == 4 and len(spec.classes) == 10
    assert ds_mod.DEFAULT_DATASET == "mnist"


def test_download_verifies_then_reuses_the_cache(fashion, cache, monkeypatch):
    pub, arrays, spec = fashion
    ds = load_dataset("fashion-mnist", "test")
    assert ds.name == "fashion-mnist" and np.array_equal(ds.images, arrays["test"][0])
    assert np.array_equal(ds.labels, arrays["test"][1])
    folder = cache / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                        "t10k-labels-idx1-ubyte.gz"]

    fetched = []

    def offline(url, dest):
        fetched.append(url)
        raise OSError("offline")

    monkeypatch.setattr(ds_mod, "_fetch", offline)
    again = load_dataset("fashion-mnist", "test")
    assert again.sha256 == ds.sha256 and fetched == []
    with pytest.raises(DataError, match="could not download fashion-mnist train-images.*offline"):
        load_dataset("fashion-mnist", "train")
    assert len(fetched) == 1


def test_corrupt_mirror_then_good_mirror(fashion, cache, monkeypatch, tmp_path):
    pub, arrays, spec = fashion
    bad = tmp_path / "bad_mirror"
    bad.mkdir()
    for p in pub.iterdir():
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bad / p.name).write_bytes(bytes(data))
    monkeypatch.setitem(ds_mod.DATASETS, "fashion-mnist",
                        dataclasses.replace(spec, mirrors=(bad.as_uri(), pub.as_uri())))
    ds = load_dataset("fashion-mnist", "train")
    assert np.array_equal(ds.images, arrays["train"][0])
    # the corrupt copies never reached an accepted name, and no temporary file is left
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_all_mirrors_corrupt_leave_nothing(fashion, cache, monkeypatch, tmp_path):
    pub, arrays, spec = fashion
    bad = tmp_path / "bad_mirror"
    bad.mkdir()
    for p in pub.iterdir():
        (bad / p.name).write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\0"))
    monkeypatch.setitem(ds_mod.DATASETS, "fashion-mnist",
                        dataclasses.replace(spec, mirrors=(bad.as_uri(),)))
    with pytest.raises(DataError, match="SHA-256 .*published"):
        load_dataset("fashion-mnist", "test")
    assert list((cache / "fashion-mnist").iterdir()) == []


def test_download_over_http(fashion, cache, monkeypatch):
    pub, arrays, spec = fashion
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(pub))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setitem(ds_mod.DATASETS, "fashion-mnist",
                            dataclasses.replace(spec, mirrors=(url + "missing/", url)))
        ds = load_dataset("fashion-mnist", "test")
    finally:
        server.shutdown()
        server.server_close()
    assert np.array_equal(ds.labels, arrays["test"][1])


def test_cached_file_changed_later_is_refused(fashion, cache):
    load_dataset("fashion-mnist", "test")
    path = cache / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match="not the published fashion-mnist file"):
        load_dataset("fashion-mnist", "test")


def test_no_digest_no_download(monkeypatch, cache):
    spec = dataclasses.replace(ds_mod.DATASETS["kmnist"], gz_sha256={})
    with pytest.raises(DataError, match="no published SHA-256"):
        ds_mod.download(spec, "t10k-images-idx3-ubyte.gz", cache / "k")


def test_downloads_off(cache):
    with pytest.raises(DataError, match="downloads are off"):
        load_dataset("kmnist", "test", download=False)


def test_unknown_name_and_both_sources(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="not both"):
        load_dataset("mnist", path=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", "validation")


# -------------------------------------------------------------------- folders and .npz files


@pytest.mark.parametrize("compress,dotted", [(True, False), (False, False), (True, True)])
def test_folder_of_idx_files(tmp_path, compress, dotted):
    arrays = write_folder(tmp_path / "shoes", compress=compress, dotted=dotted)
    for split in ("train", "test"):
        ds = load_dataset(path=tmp_path / "shoes", split=split)
        assert ds.name == "shoes" and ds.split == split
        assert np.array_equal(ds.images, arrays[split][0])
        assert np.array_equal(ds.labels, arrays[split][1])
        assert ds.record() == {"name": "shoes", "sha256": ds.sha256,
                               "source": str((tmp_path / "shoes").resolve())}


def test_digest_does_not_depend_on_the_container(tmp_path):
    arrays = write_folder(tmp_path / "gz", compress=True)
    write_folder(tmp_path / "raw", compress=False)
    np.savez(tmp_path / "same.npz", images=arrays["test"][0], labels=arrays["test"][1])
    digests = {load_dataset(path=p).sha256 for p in
               (tmp_path / "gz", tmp_path / "raw", tmp_path / "same.npz")}
    assert len(digests) == 1
    x, y = arrays["test"]
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10
    np.savez(tmp_path / "other.npz", images=x, labels=y2)
    assert load_dataset(path=tmp_path / "other.npz").sha256 not in digests


def test_mnist_is_recognised_in_any_container(tmp_path):
    x, y = load_mnist("test")
    np.savez(tmp_path / "digits.npz", images=x, labels=y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y)
    for p in (tmp_path / "digits.npz", tmp_path):
        ds = load_dataset(path=p)
        assert ds.name == "mnist" and ds.sha256 == MNIST_RECORD["sha256"]


def test_published_gzip_files_are_recognised(fashion, tmp_path):
    pub, arrays, spec = fashion
    assert load_dataset(path=pub).name == "fashion-mnist"


def test_local_name_never_reads_as_a_registry_name(tmp_path):
    write_folder(tmp_path / "mnist")
    ds = load_dataset(path=tmp_path / "mnist")
    assert ds.name == "mnist-local" and ds.sha256 != MNIST_RECORD["sha256"]


def test_npz_with_train_split(tmp_path):
    (x, y), (tx, ty) = make_split(30, 1), make_split(10, 2)
    np.savez(tmp_path / "d.npz", train_images=x, train_labels=y, test_images=tx, test_labels=ty)
    assert np.array_equal(load_dataset(path=tmp_path / "d.npz", split="train").images, x)
    assert np.array_equal(load_dataset(path=tmp_path / "d.npz").labels, ty)


BAD_NPZ = {
    "shape": dict(images=np.zeros((3, 27, 28), np.uint8), labels=np.zeros(3, np.uint8)),
    "dtype": dict(images=np.zeros((3, 28, 28), np.float32), labels=np.zeros(3, np.uint8)),
    "count": dict(images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(2, np.uint8)),
    "label range": dict(images=np.zeros((3, 28, 28), np.uint8),
                        labels=np.array([0, 1, 300], np.int16)),
    "negative label": dict(images=np.zeros((3, 28, 28), np.uint8),
                           labels=np.array([0, -1, 3], np.int16)),
    "float labels": dict(images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3)),
    "empty": dict(images=np.zeros((0, 28, 28), np.uint8), labels=np.zeros(0, np.uint8)),
    "unknown array": dict(images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.uint8),
                          extra=np.zeros(1)),
    "no test split": dict(train_images=np.zeros((3, 28, 28), np.uint8),
                          train_labels=np.zeros(3, np.uint8)),
    "objects": dict(images=np.array([object()] * 3), labels=np.zeros(3, np.uint8)),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_is_refused(tmp_path, case):
    np.savez(tmp_path / "bad.npz", **BAD_NPZ[case])
    with pytest.raises(DataError):
        load_dataset(path=tmp_path / "bad.npz")


def test_bad_files_are_refused(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(path=tmp_path / "garbage.npz")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(path=tmp_path / "missing")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(path=tmp_path / "missing.npz")
    write_folder(tmp_path / "half")
    (tmp_path / "half" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no test labels"):
        load_dataset(path=tmp_path / "half")
    write_folder(tmp_path / "cols")
    write_idx(tmp_path / "cols" / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 27), np.uint8),
              compress=True)
    with pytest.raises(DataError, match=r"\(N, 28, 28\)"):
        load_dataset(path=tmp_path / "cols")
    assert load_dataset(path=tmp_path / "cols", split="train").name == "cols"


def test_mnist_check_says_how_to_use_another_dataset(tmp_path, monkeypatch):
    write_folder(tmp_path / "fashion", n=(40, 10000))
    mnist_mod.clear_cache()
    with pytest.raises(DataError, match="Checksum mismatch.*--data DIR.*--dataset fashion-mnist"):
        load_mnist("test", tmp_path / "fashion")
    # the same folder is accepted as another dataset
    assert load_dataset(path=tmp_path / "fashion").name == "fashion"


# --------------------------------------------------------------------------- the record


def test_check_record_is_strict():
    good = {"name": "x", "sha256": "a" * 64}
    assert check_record(good) == good
    for bad in ([], {"name": "x"}, {**good, "extra": "1"}, {**good, "sha256": "A" * 64},
                {**good, "name": 3}, {**good, "name": ""}, {**good, "train_sha256": "0"},
                {**good, "source": None}):
        with pytest.raises(DataError):
            check_record(bad)


def test_missing_record_is_mnist_said_once():
    said = []
    assert record_of(None, "old-file-for-test.npz", said.append) == MNIST_RECORD
    assert record_of(None, "old-file-for-test.npz", said.append) == MNIST_RECORD
    assert said == ["old-file-for-test.npz records no dataset; treating it as MNIST"]


def test_data_for_recorded_given_and_other(tmp_path):
    write_folder(tmp_path / "shoes")
    shoes = load_dataset(path=tmp_path / "shoes")
    said = []
    # nothing given: the recorded source
    assert data_for(shoes.record(), "net", log=said.append).sha256 == shoes.sha256
    # the same data given explicitly (another copy) is accepted
    (tmp_path / "copy").mkdir()
    for p in (tmp_path / "shoes").iterdir():
        (tmp_path / "copy" / p.name).write_bytes(p.read_bytes())
    assert data_for(shoes.record(), "net", path=tmp_path / "copy").sha256 == shoes.sha256
    # other data: refused, then accepted with a warning when asked
    with pytest.raises(DataError, match="made with dataset 'shoes'.*--other-data"):
        data_for(shoes.record(), "net", name="mnist")
    ds = data_for(shoes.record(), "net", name="mnist", other_data=True, log=said.append)
    assert ds.name == "mnist" and len(said) == 1 and "other data 'mnist'" in said[0]
    # MNIST recorded, nothing given: MNIST, never anything else
    assert data_for(dict(MNIST_RECORD), "net").name == "mnist"


def test_recorded_data_that_is_gone_or_changed(tmp_path):
    write_folder(tmp_path / "shoes")
    rec = load_dataset(path=tmp_path / "shoes").record()
    write_folder(tmp_path / "shoes", seed=5)
    with pytest.raises(DataError, match="differs"):
        data_for(rec, "net")
    gone = {**rec, "source": str(tmp_path / "elsewhere")}
    with pytest.raises(DataError, match="not available here; pass --data"):
        data_for(gone, "net")


# ------------------------------------------------------------------ entry points and files


@pytest.fixture
def shoes_net(tmp_path) -> tuple[Path, Path]:
    """The zoo's W2A2 network saved with a record of a generated dataset 'shoes'."""
    write_folder(tmp_path / "shoes", n=(40, 30))
    net = zoo.load_network(NET)
    net.meta = {**net.meta, "dataset": load_dataset(path=tmp_path / "shoes").record()}
    net.save(tmp_path / "shoes_net.npz")
    return tmp_path / "shoes_net.npz", tmp_path / "shoes"


def _eval_json(capsys, *argv) -> dict:
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_uses_the_recorded_dataset(capsys, shoes_net):
    npz, shoes = shoes_net
    r = _eval_json(capsys, str(npz))
    assert r["dataset"] == "shoes" and r["images"] == 30
    assert r["dataset_sha256"] == load_dataset(path=shoes).sha256
    assert main(["eval", str(npz), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pynq-neuro: error:") and "--other-data" in err
    assert err.count("\n") == 1
    r = _eval_json(capsys, str(npz), "--dataset", "mnist", "--other-data", "--images", "50")
    assert r["dataset"] == "mnist" and r["images"] == 50 and r["accuracy"] > 0.9


def test_eval_other_data_warns(capsys, shoes_net, tmp_path):
    npz, _ = shoes_net
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(npz), "--data-dir", str(tmp_path / "empty"),
                 "--other-data"]) == 2   # not a data folder: an error, never MNIST
    assert "pynq-neuro: error:" in capsys.readouterr().err
    assert main(["eval", str(npz), "--dataset", "mnist", "--other-data", "--images", "20"]) == 0
    captured = capsys.readouterr()
    assert "pynq-neuro: warning:" in captured.err and "made with dataset 'shoes'" in captured.err


def test_zoo_model_refuses_other_data(capsys, tmp_path):
    write_folder(tmp_path / "shoes")
    assert main(["eval", NET, "--data", str(tmp_path / "shoes")]) == 2
    assert "made with dataset 'mnist'" in capsys.readouterr().err
    r = _eval_json(capsys, NET, "--images", "100")
    assert r["dataset"] == "mnist" and r["accuracy"] > 0.9


def test_labels_beyond_the_classes_are_refused(capsys, tmp_path):
    x, _ = make_split(5, 0)
    np.savez(tmp_path / "many.npz", images=x, labels=np.array([0, 1, 2, 3, 12], np.uint8))
    assert main(["eval", NET, "--data", str(tmp_path / "many.npz"), "--other-data"]) == 2
    assert "label 12 is no class" in capsys.readouterr().err


def test_compile_records_its_sample(tmp_path, shoes_net, capsys):
    npz, shoes = shoes_net
    out = tmp_path / "art"
    assert main(["compile", str(npz), "-o", str(out), "--sample-digits", "25"]) == 0
    capsys.readouterr()
    m = load_artifact(out).manifest
    data = load_dataset(path=shoes)
    assert m["dataset"] == {"name": "shoes", "sha256": data.sha256,
                            "sample_images": 25, "source": str(shoes.resolve()),
                            "sample_sha256": ds_mod.images_digest(data.sample(25).images)}
    assert m["network"]["meta"]["dataset"] == data.record()
    # the artifact's evaluation defaults to the recorded dataset
    assert _eval_json(capsys, str(out))["dataset"] == "shoes"
    # other data only when asked
    assert main(["compile", str(npz), "-o", str(tmp_path / "b"), "--dataset", "mnist"]) == 2
    assert "--other-data" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main(["compile", str(npz), "-o", str(tmp_path / "b"), "--dataset", "mnist",
                 "--other-data", "--sample-digits", "30"]) == 0
    assert "pynq-neuro: warning:" in capsys.readouterr().err
    m = load_artifact(tmp_path / "b").manifest
    assert m["dataset"]["name"] == "mnist" and m["dataset"]["sample_images"] == 30
    assert m["network"]["meta"]["dataset"]["name"] == "shoes"


def test_compile_network_with_images_or_dataset(tmp_path):
    net = zoo.load_network(NET)
    x, _ = make_split(12, 3)
    m = compile_network(net, tmp_path / "a", CompileConfig(sample_digits=12), x)
    assert m["dataset"] == {"name": "images", "sample_images": 12,
                            "sample_sha256": ds_mod.images_digest(x)}
    write_folder(tmp_path / "shoes")
    other = load_dataset(path=tmp_path / "shoes")
    m = compile_network(net, tmp_path / "b", CompileConfig(sample_digits=10), other)
    assert m["dataset"]["name"] == "shoes" and m["dataset"]["sha256"] == other.sha256
    assert m["dataset"]["sample_sha256"] == ds_mod.images_digest(other.sample(10).images)
    with pytest.raises(DataError, match="--other-data"):
        compile_network(net, tmp_path / "d", CompileConfig(sample_digits=10),
                        data=tmp_path / "shoes", log=lambda s: None)
    with pytest.raises(DataError, match="--other-data"):
        sample_data(net, path=tmp_path / "shoes")
    said = []
    m = compile_network(net, tmp_path / "d", CompileConfig(sample_digits=10),
                        data=tmp_path / "shoes", other_data=True, log=said.append)
    assert m["dataset"]["name"] == "shoes" and len(said) == 1
    with pytest.raises(ValueError, match="not both"):
        compile_network(net, tmp_path / "c", CompileConfig(sample_digits=10), x,
                        dataset="mnist")


def _edit_manifest(art: Path, edit) -> None:
    path = art / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["dataset"].update(sample_images=True), "dataset.sample_images"),
    (lambda m: m["dataset"].update(sample_images=0), "sample_images must be >= 1"),
    (lambda m: m["dataset"].update(sha256="xyz"), "dataset.sha256 is not a SHA-256"),
    (lambda m: m["dataset"].update(sample_sha256=1.5), "dataset.sample_sha256"),
    (lambda m: m["dataset"].update(colour="red"), "unknown fields colour"),
    (lambda m: m["dataset"].pop("name"), "dataset lacks name"),
    (lambda m: m.update(dataset=[]), "dataset must be an object"),
    (lambda m: m["network"]["meta"].update(dataset={"name": "x"}), "lacks sha256"),
])
def test_manifest_dataset_is_checked(tmp_path, edit, match):
    out = tmp_path / "art"
    compile_network(NET, out, CompileConfig(sample_digits=10))
    _edit_manifest(out, edit)
    with pytest.raises(ArtifactError, match=match):
        load_artifact(out)


def test_old_manifest_without_dataset_loads(tmp_path, capsys):
    out = tmp_path / "art"
    compile_network(NET, out, CompileConfig(sample_digits=10))
    _edit_manifest(out, lambda m: m.pop("dataset"))
    assert "dataset" not in load_artifact(out).manifest
    assert main(["eval", str(out), "--images", "50", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["dataset"] == "mnist"
    assert "records no dataset; treating it as MNIST" in captured.err


def test_verify_rtl_takes_the_recorded_images_and_labels(tmp_path, shoes_net, monkeypatch,
                                                         capsys):
    from pynq_neuro.rtl import regression as reg

    npz, shoes = shoes_net
    out = tmp_path / "art"
    compile_network(str(npz), out, CompileConfig(sample_digits=10))
    seen = {}

    def fake(artifact, images, *, labels=None, **kw):
        seen.update(images=images, labels=labels)
        raise RuntimeError("stop before the simulator")

    monkeypatch.setattr(reg, "regression", fake)
    assert main(["verify", str(out), "--rtl", "--images", "7"]) == 2
    data = load_dataset(path=shoes)
    assert np.array_equal(seen["images"], data.images[:7])
    assert np.array_equal(seen["labels"], data.labels[:7])
    seen.clear()
    capsys.readouterr()
    assert main(["verify", str(out), "--rtl", "--dataset", "mnist"]) == 2
    assert "--other-data" in capsys.readouterr().err and not seen


def test_regression_refuses_labels_of_another_length(tmp_path):
    from pynq_neuro.rtl.regression import regression

    out = tmp_path / "art"
    compile_network(NET, out, CompileConfig(sample_digits=10))
    x, y = make_split(4, 0)
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        regression(out, x, labels=y[:3])


def test_integer_network_carries_its_record(tmp_path, shoes_net):
    npz, _ = shoes_net
    assert IntegerNetwork.load(npz).meta["dataset"]["name"] == "shoes"


# ------------------------------------------------------------------------------- training


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    (x, y), (tx, ty) = make_split(64, 11), make_split(32, 12)
    np.savez(tmp_path / "tiny.npz", train_images=x, train_labels=y, images=tx, labels=ty)
    return tmp_path / "tiny.npz"


def test_training_records_the_dataset(tmp_path, tiny_data, capsys):
    torch = pytest.importorskip("torch")
    from pynq_neuro.evaluation import evaluate
    from pynq_neuro.models import ModelConfig
    from pynq_neuro.train import TrainConfig, load_checkpoint, train

    torch.set_num_threads(1)
    cfg = ModelConfig("tdnn", (8, 6), (3, 3), (2, 2), wbits=2, abits=2)
    logs = []
    train(cfg, TrainConfig(epochs=1, threads=1, data_dir=str(tiny_data)), tmp_path / "m.pt",
          log=logs.append, progress=False)
    test, trained = load_dataset(path=tiny_data), load_dataset(path=tiny_data, split="train")
    want = {**test.record(), "train_sha256": trained.sha256}
    assert load_checkpoint(tmp_path / "m.pt")["dataset"] == want
    assert IntegerNetwork.load(tmp_path / "m.npz").meta["dataset"] == want
    assert any("dataset: 'tiny'" in line for line in logs)
    for model in (tmp_path / "m.pt", tmp_path / "m.npz"):
        r = evaluate(str(model))
        assert r["dataset"] == "tiny" and r["images"] == 32
        with pytest.raises(DataError, match="--other-data"):
            evaluate(str(model), dataset="mnist")
    # the command line: --data FILE, and a name or path, not both
    assert main(["train", "-o", str(tmp_path / "c.pt"), "--channels", "4", "--taps", "3",
                 "--strides", "2", "--epochs", "1", "--threads", "1", "--quiet",
                 "--data", str(tiny_data)]) == 0
    assert load_checkpoint(tmp_path / "c.pt")["dataset"]["name"] == "tiny"
    assert main(["train", "-o", str(tmp_path / "d.pt"), "--data", str(tiny_data),
                 "--dataset", "mnist"]) == 2
    assert "not allowed with argument --data" in capsys.readouterr().err


def test_training_refuses_labels_beyond_ten_classes(tmp_path):
    pytest.importorskip("torch")
    from pynq_neuro.models import ModelConfig
    from pynq_neuro.train import TrainConfig, train

    x, _ = make_split(8, 0)
    np.savez(tmp_path / "d.npz", train_images=x, train_labels=np.full(8, 11, np.uint8),
             images=x, labels=np.zeros(8, np.uint8))
    with pytest.raises(DataError, match="label 11 is no class"):
        train(ModelConfig("tdnn", (4,), (3,), (2,)), TrainConfig(epochs=1, threads=1,
              data_dir=str(tmp_path / "d.npz")), log=lambda s: None, progress=False)
    with pytest.raises(ValueError, match="dataset must be one of"):
        train(ModelConfig("tdnn", (4,), (3,), (2,)), TrainConfig(epochs=1, dataset="cifar"),
              log=lambda s: None)


def test_checkpoint_with_a_bad_record_is_refused(tmp_path):
    pytest.importorskip("torch")
    from pynq_neuro.train import CheckpointError, load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(zoo.checkpoint_path(NET))
    save_checkpoint({**ckpt, "dataset": {"name": "x", "sha256": "nope"}}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="dataset.*SHA-256"):
        load_checkpoint(tmp_path / "b.pt")
    assert main(["eval", str(tmp_path / "b.pt")]) == 2


# ---------------------------------------------------------------- pictures of single digits

FONT_DIGITS = (0, 2, 3, 4, 5, 7, 8, 9)   # the font's 1 (flag and foot) and 6 are not MNIST-like


def render(digit: int, size: int, canvas: tuple[int, int], pos: tuple[int, int], ink: int,
           background: int):
    """A digit typeset with Pillow's scalable default font: a picture, not an MNIST image."""
    pil = pytest.importorskip("PIL")
    from PIL import Image, ImageDraw, ImageFont

    del pil
    img = Image.new("L", canvas, background)
    ImageDraw.Draw(img).text(pos, str(digit), fill=ink, font=ImageFont.load_default(size=size))
    return img


def _classes(images: np.ndarray) -> np.ndarray:
    from pynq_neuro.golden import run

    return run(zoo.load_network(zoo.hardware_default()), images).classes


@pytest.mark.parametrize("size,canvas,pos", [(24, (40, 40), (8, 2)), (60, (200, 120), (5, 5)),
                                             (60, (200, 120), (130, 40)),
                                             (300, (400, 500), (50, 60))])
@pytest.mark.parametrize("ink,background", [(20, 240), (255, 0), (110, 150), (200, 90)])
def test_rendered_digits_are_classified(size, canvas, pos, ink, background):
    from pynq_neuro.data.prepare import prepare_digit

    images = [render(d, size, canvas, pos, ink, background) for d in FONT_DIGITS]
    x = np.stack([prepare_digit(np.asarray(img)) for img in images])
    assert x.dtype == np.uint8 and x.shape == (len(FONT_DIGITS), 28, 28)
    assert list(_classes(x)) == list(FONT_DIGITS)


def test_prepared_digit_has_the_mnist_geometry():
    from pynq_neuro.data.prepare import prepare_digit

    x = prepare_digit(np.asarray(render(7, 120, (300, 200), (90, 10), 10, 250)))
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)
    total = x.sum()
    cy = x.sum(axis=1) @ np.arange(28) / total
    cx = x.sum(axis=0) @ np.arange(28) / total
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert x.max() == 255 and x[0].max() == 0 and x[:, 0].max() == 0


def test_mnist_digits_survive_scaling_offsets_and_contrast():
    """MNIST test digits enlarged 2..8 times, placed anywhere on a larger canvas, dark on a
    light background of any contrast: prepared, the shipped model classifies them as well."""
    from pynq_neuro.data.prepare import prepare_digit

    x, y = load_mnist("test")
    x, y = x[:120], y[:120]
    rng = np.random.default_rng(0)
    pictures = []
    for digit in x:
        s = int(rng.integers(2, 9))
        big = np.kron(digit.astype(np.float64), np.ones((s, s)))
        h, w = 28 * s + int(rng.integers(0, 80)), 28 * s + int(rng.integers(0, 80))
        lo, hi = 40 + int(rng.integers(0, 80)), 160 + int(rng.integers(0, 96))
        canvas = np.full((h, w), float(hi))
        oy, ox = int(rng.integers(0, h - 28 * s + 1)), int(rng.integers(0, w - 28 * s + 1))
        canvas[oy:oy + 28 * s, ox:ox + 28 * s] = hi - (hi - lo) * big / 255
        pictures.append(prepare_digit(canvas.astype(np.uint8)))
    accuracy = float((_classes(np.stack(pictures)) == y).mean())
    assert accuracy >= 0.97, accuracy


@pytest.mark.parametrize("array", [np.zeros((30, 30), np.uint8), np.full((5, 9), 200.0),
                                   np.zeros((3, 3, 2)), np.array([["a"]]),
                                   np.full((9, 9), np.nan), np.zeros((0, 4))])
def test_blank_or_malformed_pictures_are_refused(array):
    from pynq_neuro.data.prepare import prepare_digit

    with pytest.raises(DataError):
        prepare_digit(array)


def test_colour_float_and_transparent_arrays():
    from pynq_neuro.data.prepare import prepare_digit

    gray = np.asarray(render(4, 80, (160, 160), (30, 20), 0, 255), dtype=np.float64)
    want = prepare_digit(gray.astype(np.uint8))
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.uint8)
    assert np.array_equal(prepare_digit(rgb), want)
    assert np.abs(prepare_digit(gray / 255.0).astype(int) - want).max() <= 1
    rgba = np.zeros(gray.shape + (4,), np.uint8)    # black ink, transparent elsewhere
    rgba[..., 3] = (255 - gray).astype(np.uint8)
    assert _classes(prepare_digit(rgba)[None])[0] == 4


def test_classify_command(tmp_path, capsys):
    pytest.importorskip("PIL")
    paths = []
    for d, (ink, bg) in zip(FONT_DIGITS, [(0, 255), (255, 0), (90, 140), (30, 200)] * 2):
        path = tmp_path / f"d{d}.{'png' if d % 2 else 'jpg'}"
        render(d, 90, (220, 180), (40 + 5 * d, 10), ink, bg).convert("RGB").save(path)
        paths.append(str(path))
    np.save(tmp_path / "d.npy", np.asarray(render(3, 50, (90, 90), (20, 5), 0, 255)))
    paths.append(str(tmp_path / "d.npy"))
    assert main(["classify", *paths, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [row["class"] for row in r["results"]] == [*FONT_DIGITS, 3]
    assert r["dataset"] == "mnist" and all(len(row["logits"]) == 10 for row in r["results"])
    assert main(["classify", paths[0]]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{paths[0]}: 0  logits [") and line.count("\n") == 1
    # an artifact on the golden backend of the driver gives the same logits
    out = tmp_path / "art"
    compile_network(zoo.hardware_default(), out, CompileConfig(sample_digits=10))
    assert main(["classify", *paths, "--artifact", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == r["results"]


def test_classify_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "blank.npy").write_bytes(b"")
    np.save(tmp_path / "white.npy", np.full((20, 20), 255, np.uint8))
    (tmp_path / "text.png").write_text("not a picture")
    for bad in (tmp_path / "missing.png", tmp_path / "blank.npy", tmp_path / "white.npy",
                tmp_path / "text.png", tmp_path):
        assert main(["classify", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pynq-neuro: error:") and err.count("\n") == 1, err
    assert main(["classify", str(tmp_path / "white.npy"), "--backend", "sim"]) == 2
    capsys.readouterr()


def test_sample_spreads_over_the_split():
    x, y = make_split(10, 4)
    data = ds_mod.Dataset("shoes", "test", x, y, "0" * 64, "shoes")
    s = data.sample(4)
    assert ds_mod.sample_indices(10, 4).tolist() == [0, 2, 5, 7]
    assert np.array_equal(s.images, x[[0, 2, 5, 7]]) and np.array_equal(s.labels, y[[0, 2, 5, 7]])
    assert s.sha256 == data.sha256 and (s.name, s.split, s.source) == ("shoes", "test", "shoes")
    assert np.array_equal(data.sample(10).images, x) and np.array_equal(data.sample(99).labels, y)
    assert ds_mod.sample_indices(10_000, 1000).tolist() == list(range(0, 10_000, 10))
    with pytest.raises(ValueError, match="at least one"):
        ds_mod.sample_indices(10, 0)
