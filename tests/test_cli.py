"""The pynq-neuro command line: eval --json, zoo listing, errors, and a short training run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pynq_neuro import zoo
from helpers import train_split_available
from pynq_neuro.cli import main

EVAL_KEYS = {"model", "accuracy", "images", "wbits", "abits", "synapses", "engine"}


def test_eval_json_of_each_quantized_zoo_model(capsys):
    names = [n for n in zoo.names() if zoo.network_path(n) is not None]
    assert {"tdnn-w1a1", "tdnn-w2a2", "tdnn-w4a4"} <= set(names)
    for name in names:
        assert main(["eval", name, "--images", "1000", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert EVAL_KEYS <= set(out)
        info = zoo.info(name)
        assert (out["wbits"], out["abits"]) == (info["wbits"], info["abits"])
        assert out["images"] == 1000 and out["engine"] == "golden"
        assert out["synapses"] == info["synapses"] < 150_000
        assert out["accuracy"] > 0.97


def test_zoo_listing_names_the_reproducing_commands(capsys):
    assert main(["zoo"]) == 0
    text = capsys.readouterr().out
    for name in zoo.names():
        assert name in text
        assert all(c.startswith(("pynq-neuro train", "pynq-neuro compress"))
                   for c in zoo.info(name)["commands"])


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["eval", "no-such-model"]) == 2
    assert "neither a zoo model" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert main(["eval", str(tmp_path / "bad.npz")]) == 2
    assert "not a readable integer network" in capsys.readouterr().err
    assert main(["eval", "tdnn-w2a2", "--images", "0"]) == 2
    assert main(["compile", "zoo:no-such-model", "-o", str(tmp_path / "x")]) == 2
    assert "no zoo model 'no-such-model'" in capsys.readouterr().err


def test_compile_accepts_the_zoo_prefix(tmp_path):
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.zoo import load_network

    assert main(["compile", "zoo:tdnn-w1a1-sparse", "-o", str(tmp_path / "a"),
                 "--sample-digits", "100"]) == 0
    art = load_artifact(tmp_path / "a")
    assert art.network.synapses == load_network("tdnn-w1a1-sparse").synapses


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "pynq_neuro", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("pynq-neuro ")


@pytest.mark.skipif(not train_split_available(), reason="MNIST training split not available")
def test_short_training_run_is_bit_exact_and_reproducible(tmp_path, capsys):
    pytest.importorskip("torch")
    common = ["--channels", "24,16", "--taps", "4,3", "--strides", "2,2", "--train-images",
              "4096", "--quiet", "--threads", "2"]
    warm = tmp_path / "float.pt"
    assert main(["train", *common, "--epochs", "2", "-o", str(warm)]) == 0
    q = tmp_path / "w2a2.pt"
    assert main(["train", *common, "--epochs", "1", "--wbits", "2", "--abits", "2",
                 "--warm-start", str(warm), "-o", str(q)]) == 0
    capsys.readouterr()
    assert q.with_suffix(".npz").exists()
    assert main(["eval", str(q), "--images", "2000", "--check-torch", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["torch_golden_mismatches"] == 0
    assert out["accuracy"] > 0.5  # far above chance after one short epoch
    assert main(["eval", str(q.with_suffix(".npz")), "--images", "2000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == out["accuracy"]

    import torch

    from pynq_neuro.train import load_checkpoint

    ckpt = load_checkpoint(q)
    assert ckpt["model_config"]["wbits"] == 2 and ckpt["warm_start"]["path"] == str(warm)
    assert ckpt["command"].startswith("pynq-neuro train")
    assert len(ckpt["history"]) == 1
    # same seed, same command: the same weights
    q2 = tmp_path / "again.pt"
    assert main(["train", *common, "--epochs", "1", "--wbits", "2", "--abits", "2",
                 "--warm-start", str(warm), "-o", str(q2)]) == 0
    a, b = load_checkpoint(q2)["state_dict"], ckpt["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_warm_start_must_match_architecture(tmp_path):
    torch = pytest.importorskip("torch")
    from pynq_neuro.models import ModelConfig, NeuroNet
    from pynq_neuro.train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, TrainConfig, train

    other = NeuroNet(ModelConfig(channels=(8,), taps=(3,), strides=(1,)))
    path = tmp_path / "other.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "state_dict": other.state_dict(), "metrics": {"test_accuracy": 0}}, path)
    if not train_split_available():
        pytest.skip("MNIST training split not available")
    with pytest.raises(ValueError, match="does not match the architecture"):
        train(ModelConfig(channels=(16,), taps=(3,), strides=(1,), wbits=2, abits=2),
              TrainConfig(epochs=1, warm_start=str(path), train_images=256), progress=False,
              log=lambda s: None)


def test_demo_evaluates_the_zoo_and_compiles_the_hardware_model(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")  # the float reference model is evaluated by torch
    assert main(["demo", "--images", "300", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["model"] for r in results} == set(zoo.names())
    assert all(r["images"] == 300 and r["accuracy"] > 0.95 for r in results)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "artifact" / "manifest.json").exists()
    assert "logits identical to the integer model on 10000/10000 digits" in out
    table = out.splitlines()[:len(results) + 1]   # the header and a row a model: aligned
    assert table[0].startswith("model") and len({len(line) for line in table}) == 1
    assert {line.split()[0] for line in table[1:]} == set(zoo.names())


def test_command_modules_do_not_import_the_cli():
    """Subcommand modules build on ``cli_core`` and ``evaluation``; only ``pynq_neuro.cli`` (and
    ``__main__``) import the command line itself, so there is no import circle."""
    import ast
    from pathlib import Path

    import pynq_neuro

    root = Path(pynq_neuro.__file__).parent
    importers = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        package = ["pynq_neuro", *rel.parent.parts]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                names = {f"{target}.{a.name}" for a in node.names}
                if target == "pynq_neuro.cli" or "pynq_neuro.cli" in names:
                    importers.add(str(rel))
            elif isinstance(node, ast.Import):
                if any(a.name == "pynq_neuro.cli" for a in node.names):
                    importers.add(str(rel))
    assert importers == {"__main__.py"}


def test_every_subcommand_is_registered_once():
    from pynq_neuro import cli

    names = [c.name for c in cli.commands()]
    assert names == ["train", "eval", "compile", "inspect", "classify", "compress", "explore",
                     "verify", "estimate", "selftest", "zoo", "demo"]
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == names
