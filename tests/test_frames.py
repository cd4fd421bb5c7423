"""The image rows a model reads: declared in ModelConfig, recorded by the integer network and the
artifact, checked by the compiler; and the training defaults that depend on the dataset."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil

import numpy as np
import pytest

from pynq_neuro import zoo
from pynq_neuro.cli import main
from pynq_neuro.compiler.artifact import ArtifactError, load_artifact, verilog_header
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.inspect import summary_table
from pynq_neuro.compiler.limits import CoreLimitError, violations
from pynq_neuro.compiler.mapping import frames_needed
from pynq_neuro.data import Dataset
from pynq_neuro.data.datasets import DATASETS, recommended_max_shift
from pynq_neuro.golden import IntegerNetwork, NetworkError, run
from pynq_neuro.golden.network import frame_drops, frames_used
from pynq_neuro.golden.synthetic import random_digits, random_network

torch = pytest.importorskip("torch")

from helpers import sparse_digits, tiny_model, torch_codes, train_split_available  # noqa: E402
from pynq_neuro.lower import lower  # noqa: E402
from pynq_neuro.models import ModelConfig, NeuroNet  # noqa: E402
from pynq_neuro.train import (TrainConfig, dataset_defaults, fit, load_checkpoint,  # noqa: E402
                              model_from_checkpoint, train)

torch.set_num_threads(1)
ZOO_GEOMETRY = {"taps": (3, 3, 3), "strides": (1, 2, 2)}


def chain(frames: int, taps, strides) -> list[int]:
    out = [frames]
    for k, s in zip(taps, strides):
        out.append((out[-1] - k) // s + 1)
    return out


# ------------------------------------------------------------------------- ModelConfig.rows


def test_the_default_tdnn_reads_every_row():
    cfg = ModelConfig()
    assert (cfg.taps, cfg.strides, cfg.rows) == ((3, 4, 4), (1, 2, 2), 28)
    assert cfg.frames() == [28, 26, 12, 5] and cfg.frames_used() == [28, 26, 12]
    assert ModelConfig(family="mlp", channels=(16,)).rows == 28
    assert ModelConfig(rows=28, wbits=2, abits=2).to_dict()["rows"] == 28


def test_rows_that_the_layers_do_not_consume_are_refused_with_the_dropped_frames():
    with pytest.raises(ValueError) as e:
        ModelConfig(**ZOO_GEOMETRY, rows=28)
    text = str(e.value)
    assert "rows = 28" in text and "read only rows 0..24" in text
    assert "layer 1 (taps 3, stride 2) drops frame 25 of the 26 frames layer 0 emits" in text
    assert "layer 2 (taps 3, stride 2) drops frame 11 of the 12 frames layer 1 emits" in text
    assert "declare rows=25" in text
    assert "taps (3, 4, 4) strides (1, 2, 2) (28 -> 26 -> 12 -> 5 frames)" in text
    with pytest.raises(ValueError, match=r"layer 0 \(taps 5, stride 3\) drops frames 26\.\.27 "
                                         r"of the 28 image rows"):
        ModelConfig(channels=(4,), taps=(5,), strides=(3,), rows=28)
    with pytest.raises(ValueError, match=r"rows = 20, but taps \(3, 4, 4\) / strides \(1, 2, 2\) "
                                         r"read rows 0\.\.27 .*declare rows=28"):
        ModelConfig(rows=20)
    with pytest.raises(ValueError, match="an MLP reads all 28 rows"):
        ModelConfig(family="mlp", channels=(8,), rows=27)
    for bad in (0, 29, -1, True, 2.5, "28"):
        with pytest.raises(ValueError, match="rows must be an integer in 1..28"):
            ModelConfig(rows=bad)


def test_rows_and_the_suggested_taps_over_many_geometries():
    """Every geometry of up to three layers with taps 1..5 and strides 1..3: undeclared rows
    are what the layers read, only those are accepted, and the suggested taps read all 28."""
    tried = 0
    for n in (1, 2, 3):
        for taps in itertools.product(range(1, 6), repeat=n):
            for strides in itertools.product(range(1, 4), repeat=n):
                if chain(28, taps, strides)[-1] < 1:
                    continue
                tried += 1
                cfg = ModelConfig(channels=(4,) * n, taps=taps, strides=strides)
                read = frames_used(taps, strides)[0]
                assert cfg.rows == read == ModelConfig(channels=(4,) * n, taps=taps,
                                                       strides=strides, rows=read).rows
                assert (read == 28) == (not frame_drops(taps, strides))
                if read == 28:
                    continue
                with pytest.raises(ValueError) as e:
                    ModelConfig(channels=(4,) * n, taps=taps, strides=strides, rows=28)
                fix = re.search(r"taps \(([\d, ]+?),?\) strides", str(e.value)).group(1)
                fixed = tuple(int(v) for v in fix.split(","))
                assert ModelConfig(channels=(4,) * n, taps=fixed, strides=strides,
                                   rows=28).rows == 28
    assert tried > 1000


def test_configurations_without_rows_load_as_before():
    """Checkpoints, zoo files and integer networks written before rows existed keep the rows
    their taps and strides read (25 for the zoo's TDNN) and compute what they computed."""
    old = {"family": "tdnn", "channels": (128, 128, 128), **ZOO_GEOMETRY, "wbits": 2,
           "abits": 2, "input_bits": 8, "per_channel": True}
    assert ModelConfig.from_dict(old).rows == 25
    assert ModelConfig.from_dict({**old, "rows": 25}).rows == 25
    with pytest.raises(ValueError, match="declare rows=25"):
        ModelConfig.from_dict({**old, "rows": 28})
    legacy = 0
    for name in zoo.names():
        ckpt = load_checkpoint(zoo.checkpoint_path(name))
        if any(tuple(ckpt["model_config"][k]) != tuple(v) for k, v in ZOO_GEOMETRY.items()):
            assert ckpt["model_config"]["rows"] == 28, name   # the strided family reads all
            continue
        declared = "rows" in ckpt["model_config"]   # models made since rows exist declare them
        assert ckpt["model_config"].get("rows", 25) == 25, name
        assert model_from_checkpoint(ckpt).config.rows == 25, name
        legacy += not declared
        path = zoo.network_path(name)
        if path is None:
            continue
        data = path.read_bytes()
        net = IntegerNetwork.from_bytes(data)
        assert net.rows == (25 if declared else None) and net.input_rows == 25, name
        assert net.to_bytes() == data, name       # the file format of old networks is kept
        assert frames_needed(net)[0] == 27        # the hardware's layer 0 handles 27 rows
    assert legacy >= 7                            # the zoo's models from before rows existed


def test_an_undeclared_legacy_model_ignores_the_rows_it_does_not_read():
    """Whatever the bottom rows hold, a model reading rows 0..24 gives the same logits; the
    default model reads them."""
    images = random_digits(16, seed=3)
    moved = images.copy()
    moved[:, 25:] = random_digits(16, seed=4)[:, 25:]
    for geometry, reads in ((ZOO_GEOMETRY, False), ({}, True)):
        model = tiny_model(cfg=ModelConfig(channels=(8, 8, 6), **geometry, wbits=2, abits=2))
        net = lower(model)
        a, b = run(net, images).logits, run(net, moved).logits
        assert np.array_equal(a, b) != reads, geometry


# ------------------------------------------------------------------- the integer network


def test_lowering_records_the_rows_and_the_file_keeps_them(tmp_path):
    for geometry, rows in ((ZOO_GEOMETRY, 25), ({}, 28)):
        net = lower(tiny_model(cfg=ModelConfig(channels=(8, 8, 6), **geometry, wbits=2,
                                               abits=2)))
        assert net.rows == net.input_rows == net.frames_used()[0] == rows
        net.save(tmp_path / "n.npz")
        assert IntegerNetwork.load(tmp_path / "n.npz").rows == rows


def _with_header(data: bytes, **changes) -> bytes:
    import io

    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_bad_recorded_rows_are_refused_on_load():
    data = random_network(1).to_bytes()
    for bad, message in ((28.0, "header rows must be an integer"),
                         (True, "header rows must be an integer"),
                         ("25", "header rows must be an integer"),
                         (0, "rows must be an integer in 1..28"),
                         (29, "rows must be an integer in 1..28")):
        with pytest.raises(NetworkError, match=message):
            IntegerNetwork.from_bytes(_with_header(data, rows=bad))
    assert IntegerNetwork.from_bytes(_with_header(data, rows=27)).rows == 27


# --------------------------------------------------------------------------------- compiler


def test_the_compiler_refuses_rows_the_layers_do_not_consume(tmp_path, capsys):
    net = zoo.load_network("tdnn-w2a2")
    for rows in (28, 24, 1):
        net.rows = rows
        with pytest.raises(CoreLimitError) as e:
            compile_network(net, tmp_path / "a", images=random_digits(4))
        (v,) = [v for v in e.value.violations if v.field == "rows"]
        assert (v.layer, v.value) == (None, rows) and v.limit.startswith("exactly 25")
        assert not (tmp_path / "a").exists()
    net.rows = 28
    net.save(tmp_path / "n.npz")
    assert main(["compile", str(tmp_path / "n.npz"), "-o", str(tmp_path / "b")]) == 2
    lines = capsys.readouterr().err.splitlines()   # (a warning may precede the error)
    assert [line for line in lines if "error" in line] == lines[-1:]
    assert lines[-1].startswith("pynq-neuro: error: the core cannot run this network: "
                                "network: rows = 28, the core allows exactly 25")
    assert not (tmp_path / "b").exists()


def test_manifest_rows_are_checked_against_the_layers():
    hw = [{"taps": 4, "stride": 2, "in_frames": 28}, {"taps": 13, "stride": 1, "in_frames": 13}]
    found = [v for v in violations(hw, 8, 10, rows=27) if v.field == "rows"]
    assert found and found[0].value == 27 and "exactly 28" in found[0].limit
    for bad in (0, 29, "28", 28.0, True):
        assert any(v.field == "rows" for v in violations(hw, 8, 10, rows=bad)), bad
    assert not [v for v in violations(hw, 8, 10, rows=28) if v.field == "rows"]


def _refix(art, m: dict) -> None:
    """Rewrite the manifest ``m`` of ``art`` with its neuro_params.vh regenerated."""
    vh = verilog_header(m).encode()
    (art / "neuro_params.vh").write_bytes(vh)
    m["files"]["neuro_params.vh"] = hashlib.sha256(vh).hexdigest()
    m["sizes"]["neuro_params.vh"] = len(vh)
    (art / "manifest.json").write_text(json.dumps(m))


def test_the_artifact_declares_the_rows_for_the_rtl(tmp_path):
    model = tiny_model(cfg=ModelConfig(channels=(8, 8, 6), wbits=2, abits=2))
    art = tmp_path / "a"
    manifest = compile_network(lower(model), art, CompileConfig(sample_digits=8),
                               sparse_digits(8, 0))
    assert manifest["network"]["rows"] == 28
    vh = (art / "neuro_params.vh").read_text().splitlines()
    at = vh.index("`define PN_INPUT_ROWS 28")
    assert vh[at - 1].startswith("`define PN_V_FRAMES_USED ") and vh[at - 1].endswith("32'd28}")
    loaded = load_artifact(art)
    assert loaded.network.rows == 28
    assert "reads rows 0..27 (28 of 28)" in summary_table(loaded)
    # an artifact written before rows were recorded: no define, the layers say the rows
    old = tmp_path / "old"
    shutil.copytree(art, old)
    m = json.loads((old / "manifest.json").read_text())
    del m["network"]["rows"]
    _refix(old, m)
    assert "PN_INPUT_ROWS" not in (old / "neuro_params.vh").read_text()
    legacy = load_artifact(old)
    assert legacy.network.rows is None and legacy.network.input_rows == 28
    assert legacy.fingerprint == loaded.fingerprint
    # declared rows that the layers do not read, or of another type, are refused
    for bad, message in ((25, "rows = 25, the core allows exactly 28"),
                         (28.0, "network.rows must be an integer")):
        m["network"]["rows"] = bad
        _refix(old, m)
        with pytest.raises(ArtifactError, match=re.escape(message)):
            load_artifact(old)


# ----------------------------------------------------------------- the new default network


def test_the_all_rows_default_trains_lowers_and_matches_torch_bit_for_bit():
    cfg = ModelConfig(channels=(16, 16, 12), wbits=2, abits=2)   # taps 3,4,4: all 28 rows
    model = tiny_model(cfg=cfg)
    x = torch.from_numpy(sparse_digits(64, 1)).float()
    y = torch.arange(64) % 10
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, x, y, TrainConfig(epochs=1, lr=1e-3, weight_decay=0.0, batch_size=32,
                                           max_shift=0, threads=1),
                  torch.Generator().manual_seed(0), log=lambda s: None, progress=False)
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    net = lower(model)
    assert net.rows == 28 and frames_needed(net) == [28, 26, 12, 5]
    from pynq_neuro.data import load_mnist

    images = load_mnist("test")[0][:64].copy()
    logits, codes = torch_codes(model, images)
    result = run(net, images, trace=True)
    for want, got in zip(codes, result.activations[1:]):
        assert np.array_equal(got, want)
    scale = float(model.double().classifier_bias_step().detach())
    model.float()
    np.testing.assert_allclose(result.logits * scale, logits, rtol=1e-9, atol=1e-9)
    assert np.array_equal(result.classes, logits.argmax(axis=1))


# ------------------------------------------------------------- training defaults per dataset


def test_recommended_shift_per_dataset():
    assert {n: recommended_max_shift(n) for n in DATASETS} == {
        "mnist": 2, "fashion-mnist": 0, "kmnist": 2}
    assert recommended_max_shift(None) == recommended_max_shift("my-scans") == 0
    assert recommended_max_shift("mnist-local") == 0   # a folder named like a registry entry
    x, y = np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)
    for name, want in (("mnist", 2), ("kmnist", 2), ("fashion-mnist", 0), ("tiny", 0)):
        ds = Dataset(name, "test", x, y, "0" * 64, name)
        assert dataset_defaults(TrainConfig(), ds).max_shift == want
        assert dataset_defaults(TrainConfig(max_shift=1), ds).max_shift == 1
    with pytest.raises(ValueError, match="max_shift is not set"):
        fit(NeuroNet(ModelConfig(channels=(4,), taps=(4,), strides=(2,))), torch.zeros(2, 28, 28),
            torch.zeros(2, dtype=torch.long), TrainConfig(epochs=1, lr=1e-3, weight_decay=0.0),
            torch.Generator(), log=lambda s: None, progress=False)


def test_training_records_the_shift_it_used(tmp_path):
    x = random_digits(48, seed=5)
    y = (np.arange(48) % 10).astype(np.uint8)
    np.savez(tmp_path / "d.npz", train_images=x, train_labels=y, images=x[:16], labels=y[:16])
    cfg = ModelConfig(channels=(4,), taps=(4,), strides=(2,))
    for shift, want in ((None, 0), (3, 3)):
        logs: list[str] = []
        ckpt = train(cfg, TrainConfig(epochs=1, threads=1, max_shift=shift,
                                      data_dir=str(tmp_path / "d.npz")),
                     log=logs.append, progress=False)
        assert ckpt["train_config"]["max_shift"] == want
        assert ckpt["model_config"]["rows"] == 28
        said = [line for line in logs if line.startswith("augmentation:")]
        assert said == (["augmentation: shifts of up to 0 px (the default for data outside "
                         "the registry; --max-shift sets it)"] if shift is None else [])


def test_zoo_recipes_state_the_architecture_of_the_shipped_models():
    import runpy
    from pathlib import Path

    recipes = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "build_zoo.py"),
                             run_name="build_zoo")
    trained = 0
    for name, _w, _a, cmd, _parent in recipes["MODELS"]:
        if cmd[0] != "train":
            continue
        opts = dict(zip(cmd, cmd[1:]))
        geometry = {k: tuple(int(v) for v in opts[f"--{k}"].split(","))
                    for k in ("channels", "taps", "strides")}
        cfg = ModelConfig(**geometry, rows=int(opts["--rows"]))
        assert cfg.rows == recipes["recipe_rows"](name), name
        shipped = load_checkpoint(zoo.checkpoint_path(name))["model_config"]
        assert all(tuple(shipped[k]) == v for k, v in geometry.items()), name
        assert ModelConfig.from_dict(shipped).rows == cfg.rows, name
        trained += 1
    assert trained == 6


@pytest.mark.skipif(not train_split_available(), reason="MNIST training split not available")
def test_train_command_declares_rows_or_says_which_rows_it_reads(tmp_path, capsys):
    common = ["--channels", "4,4,4", "--epochs", "1", "--train-images", "64", "--quiet",
              "--threads", "1"]
    assert main(["train", "-o", str(tmp_path / "all.pt"), *common]) == 0
    assert "note:" not in capsys.readouterr().err
    assert load_checkpoint(str(tmp_path / "all.pt"))["model_config"]["rows"] == 28
    assert main(["train", "-o", str(tmp_path / "short.pt"), "--taps", "3,3,3",
                 "--strides", "1,2,2", *common]) == 0
    err = capsys.readouterr().err
    assert "read rows 0..24 of 28; pass --rows 25" in err
    assert main(["train", "-o", str(tmp_path / "declared.pt"), "--taps", "3,3,3",
                 "--strides", "1,2,2", "--rows", "25", *common]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["train", "-o", str(tmp_path / "bad.pt"), "--taps", "3,3,3",
                 "--strides", "1,2,2", "--rows", "28", *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pynq-neuro: error: rows = 28, but taps")
