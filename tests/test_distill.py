"""Knowledge distillation: the loss, the frozen teacher, the distilled fine-tune loop, and the
``compress`` options that use them (``--teacher``, ``--distill-weight``, ``--temperature``,
``--input-bits``)."""

from __future__ import annotations

import argparse
import math
import shlex

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from helpers import train_split_available  # noqa: E402
from pynq_neuro.compress.cli import add_parser, command_line, distill_from_args, run  # noqa: E402
from pynq_neuro.compress.factorize import compress, with_input_bits  # noqa: E402
from pynq_neuro.data import load_mnist  # noqa: E402
from pynq_neuro.golden import IntegerNetwork, run as golden_run  # noqa: E402
from pynq_neuro.golden.synthetic import random_digits  # noqa: E402
from pynq_neuro.models import ModelConfig, NeuroNet  # noqa: E402
from pynq_neuro.quant.distill import (  # noqa: E402
    DistillConfig,
    Teacher,
    distill_loss,
    fit_distilled,
)
from pynq_neuro.train import (  # noqa: E402
    CheckpointError,
    TrainConfig,
    checkpoint_dict,
    fit,
    init_quantizers,
    model_from_checkpoint,
    predict,
    save_checkpoint,
    train,
)

SMALL = ModelConfig("tdnn", (8, 6), (3, 3), (2, 2), wbits=2, abits=2)
FLOAT = ModelConfig("tdnn", (10, 8), (3, 3), (2, 2))
TUNE = TrainConfig(epochs=2, lr=3e-3, weight_decay=1e-4, batch_size=32, max_shift=2, seed=0,
                   threads=1)


def quiet(_: str) -> None:
    pass


def small_model(cfg: ModelConfig = SMALL, seed: int = 0) -> NeuroNet:
    torch.manual_seed(seed)
    model = NeuroNet(cfg)
    if cfg.quantized:
        init_quantizers(model, torch.from_numpy(random_digits(128, seed)).float())
    return model


def float_teacher(seed: int = 1) -> Teacher:
    return Teacher(small_model(FLOAT, seed), {"name": "tdnn-float"})


# --------------------------------------------------------------------------- loss


def test_weight_zero_is_exactly_the_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 10, generator=gen), torch.randn(16, 10, generator=gen)
    y = torch.randint(0, 10, (16,), generator=gen)
    assert torch.equal(distill_loss(s, t, y, 0.0, 4.0), F.cross_entropy(s, y))


@pytest.mark.parametrize("weight,temperature", [(1.0, 1.0), (0.5, 4.0), (0.9, 2.5)])
def test_loss_mixes_ce_and_scaled_kl(weight, temperature):
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen) * 3
    y = torch.randint(0, 10, (8,), generator=gen)
    sd, td = s.double().numpy(), t.double().numpy()

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = softmax(td / temperature), softmax(sd / temperature)
    kl = float((p * (np.log(p) - np.log(q))).sum(1).mean())
    ce = float(-np.log(softmax(sd)[np.arange(8), y.numpy()]).mean())
    want = (1 - weight) * ce + weight * temperature**2 * kl
    assert math.isclose(float(distill_loss(s.double(), t.double(), y, weight, temperature)),
                        want, rel_tol=1e-9)


def test_soft_term_vanishes_when_student_matches_teacher_and_gives_no_teacher_gradient():
    t = torch.randn(4, 10, requires_grad=True)
    s = t.detach().clone().requires_grad_(True)
    y = torch.zeros(4, dtype=torch.long)
    loss = distill_loss(s, t, y, 1.0, 3.0)
    assert abs(loss.item()) < 1e-6
    loss = distill_loss(s, t * 2, y, 1.0, 3.0)
    assert loss.item() > 0.01
    loss.backward()
    assert t.grad is None and s.grad is not None and float(s.grad.abs().sum()) > 0


@pytest.mark.parametrize("weight,temperature,match", [
    (-0.1, 4.0, "weight"), (1.5, 4.0, "weight"), (float("nan"), 4.0, "weight"),
    (True, 4.0, "weight"), ("0.5", 4.0, "weight"), (0.5, 0.0, "temperature"),
    (0.5, -1.0, "temperature"), (0.5, float("inf"), "temperature"), (0.5, None, "temperature"),
])
def test_distill_config_is_checked(weight, temperature, match):
    with pytest.raises(ValueError, match=match):
        DistillConfig("t.pt", weight, temperature)


# --------------------------------------------------------------------------- teacher


def test_teacher_is_frozen_and_loads_from_a_checkpoint(tmp_path):
    model = small_model(FLOAT, 3).eval()
    path = tmp_path / "teacher.pt"
    save_checkpoint(checkpoint_dict(model, TUNE, [], 0.5, "test"), path)
    teacher = Teacher.from_checkpoint(path)
    assert teacher.info["name"] == "tdnn-float" and teacher.info["accuracy"] == 0.5
    assert len(teacher.info["sha256"]) == 64 and teacher.info["path"] == str(path)
    assert not teacher.model.training
    assert not any(p.requires_grad for p in teacher.model.parameters())
    x = torch.from_numpy(random_digits(5, 2)).float()
    out = teacher(x)
    assert not out.requires_grad
    assert torch.equal(out, model_from_checkpoint(path)(x).detach())


def test_teacher_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher checkpoint .* does not exist"):
        Teacher.from_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="teacher"):
        Teacher.from_checkpoint(bad)
    with pytest.raises(CheckpointError, match="cannot read"):
        Teacher.from_checkpoint(tmp_path)  # a folder


# --------------------------------------------------------------------------- fine-tune loop


def _digits(n: int = 96):
    xs = torch.from_numpy(random_digits(n, 5)).float()
    ys = torch.from_numpy(np.random.default_rng(5).integers(0, 10, n)).long()
    return xs, ys


def test_weight_zero_reproduces_train_fit_exactly():
    xs, ys = _digits()
    a, b = small_model(), small_model()
    ha = fit(a, xs, ys, TUNE, torch.Generator().manual_seed(0), log=quiet, progress=False)
    hb = fit_distilled(b, xs, ys, TUNE, torch.Generator().manual_seed(0), float_teacher(),
                       DistillConfig("t", 0.0, 4.0), log=quiet, progress=False)
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]
    assert [h["train_accuracy"] for h in ha] == [h["train_accuracy"] for h in hb]
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_distilled_fit_moves_the_student_towards_the_teacher_only():
    xs, ys = _digits(128)
    teacher = float_teacher()
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    student = small_model()
    cfg = TrainConfig(epochs=6, lr=1e-2, weight_decay=0.0, batch_size=32, max_shift=0,
                      threads=1)

    def gap() -> float:
        student.eval()
        with torch.no_grad():
            return float(distill_loss(student(xs), teacher(xs), ys, 1.0, 2.0))

    start = gap()
    epochs = []
    hist = fit_distilled(student, xs, ys, cfg, torch.Generator().manual_seed(0), teacher,
                         DistillConfig("t", 1.0, 2.0), log=quiet, progress=False,
                         on_epoch_start=epochs.append)
    assert epochs == list(range(6)) and [h["epoch"] for h in hist] == list(range(1, 7))
    assert gap() < 0.8 * start
    for k, v in teacher.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert fit_distilled(student, xs, ys, TrainConfig(epochs=0, lr=1e-3, weight_decay=0.0),
                         torch.Generator(), teacher, DistillConfig("t", 1.0, 2.0)) == []


# --------------------------------------------------------------------------- input bits


@pytest.mark.parametrize("bits", [1, 4])
def test_input_bits_change_only_the_pixel_codes(bits):
    model = small_model().eval()
    x = random_digits(20, 7)
    with_input_bits(model, bits)
    assert model.config.input_bits == bits and model.input_quant.shift == 8 - bits
    codes = model.input_quant.codes(torch.from_numpy(x).float()).numpy()
    assert np.array_equal(codes, x >> (8 - bits))
    for bad in (0, 9, 2.0, True):
        with pytest.raises(ValueError, match="input bits must be an integer in 1..8"):
            with_input_bits(model, bad)


# --------------------------------------------------------------------------- compress


needs_train = pytest.mark.skipif(not train_split_available(),
                                 reason="the MNIST training split is not available")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny float teacher and a tiny W2A2 student, briefly trained on a few digits."""
    folder = tmp_path_factory.mktemp("distill")
    teacher, student = folder / "teacher.pt", folder / "student.pt"
    quick = TrainConfig(epochs=2, lr=1e-2, batch_size=64, max_shift=0, train_images=2000,
                        threads=1)
    train(ModelConfig("tdnn", (16, 12), (3, 3), (2, 2)), quick, teacher, log=quiet,
          progress=False, command="test")
    train(ModelConfig("tdnn", (12, 8), (3, 3), (2, 2), wbits=2, abits=2), quick, student,
          log=quiet, progress=False, command="test")
    return teacher, student


@needs_train
def test_compress_with_a_teacher_and_fewer_input_bits(checkpoints, tmp_path):
    teacher, student = checkpoints
    out = tmp_path / "kd.pt"
    ckpt = compress(student, [{"pass": "prune", "sparsity": 0.5}], finetune_epochs=1, lr=3e-3,
                    batch_size=64, train_images=1000, threads=1, output=out, log=quiet,
                    progress=False, command="test",
                    distill=DistillConfig(str(teacher), 0.6, 3.0), input_bits=4)
    info = ckpt["distill"]
    assert (info["weight"], info["temperature"], info["path"]) == (0.6, 3.0, str(teacher))
    assert info["name"] == "tdnn-float" and len(info["sha256"]) == 64
    assert ckpt["model_config"]["input_bits"] == 4 and ckpt["source"]["model_config"][
        "input_bits"] == 8
    assert ckpt["history"][0]["pass"] == 1
    again = model_from_checkpoint(out)
    net = IntegerNetwork.load(out.with_suffix(".npz"))
    assert net.input_bits == 4 and again.config.input_bits == 4
    x = np.array(load_mnist("test")[0][:300])
    _, pred = predict(again, x, dtype=torch.float64)
    assert np.array_equal(golden_run(net, x).classes, pred)
    plain = compress(student, [{"pass": "prune", "sparsity": 0.5}], finetune_epochs=0,
                     threads=1, log=quiet, progress=False, command="test")
    assert plain["distill"] is None and plain["model_config"]["input_bits"] == 8
    with pytest.raises(ValueError, match="float model"):
        compress(teacher, [{"pass": "prune", "sparsity": 0.5}], finetune_epochs=0, threads=1,
                 log=quiet, progress=False, input_bits=4)
    with pytest.raises(FileNotFoundError, match="teacher checkpoint"):
        compress(student, [{"pass": "prune", "sparsity": 0.5}], finetune_epochs=0, threads=1,
                 log=quiet, progress=False, distill=DistillConfig(str(tmp_path / "x.pt"), 1, 1))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pynq-neuro")
    add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_distill_options_round_trip_through_the_command_line():
    parser = _parser()
    args = parser.parse_args(["compress", "a.pt", "-o", "b.pt", "--sparsity", "0.5",
                              "--teacher", "f.pt", "--temperature", "2", "--input-bits", "4",
                              "--max-shift", "1"])
    cfg = distill_from_args(args)
    assert (cfg.teacher, cfg.weight, cfg.temperature) == ("f.pt", 0.7, 2.0)
    line = command_line(args)
    assert "--teacher f.pt --distill-weight 0.7 --temperature 2" in line
    assert "--max-shift 1" in line
    again = parser.parse_args(shlex.split(line)[1:])
    assert distill_from_args(again) == cfg and again.input_bits == 4 and again.max_shift == 1
    assert command_line(again) == line
    plain = parser.parse_args(["compress", "a.pt", "-o", "b.pt", "--sparsity", "0.5"])
    assert distill_from_args(plain) is None and "--teacher" not in command_line(plain)
    assert plain.max_shift is None and "--max-shift" not in command_line(plain)


@pytest.mark.parametrize("option, value, key", [
    ("--max-shift", "0", "max_shift"), ("--max-shift", "3", "max_shift"),
    ("--weight-decay", "0", "weight_decay"), ("--weight-decay", "1e-05", "weight_decay"),
    ("--batch-size", "64", "batch_size"),
])
def test_the_fine_tune_options_reach_compress(option, value, key, monkeypatch, tmp_path):
    import pynq_neuro.compress.factorize as factorize

    seen = []

    def fake_compress(checkpoint, passes, **kw):
        seen.append(kw)
        return {"passes": [], "source": {}, "metrics": {}}

    monkeypatch.setattr(factorize, "compress", fake_compress)
    base = ["compress", "a.pt", "-o", str(tmp_path / "b.pt"), "--sparsity", "0.5", "--json"]
    assert run(_parser().parse_args(base)) == 0
    assert run(_parser().parse_args([*base, option, value])) == 0
    default, given = seen
    assert given[key] == type(given[key])(value) and default.get(key) != given[key]
    assert f"{option} {value}" in given["command"] and option not in default["command"]


@pytest.mark.parametrize("argv", [
    ["--distill-weight", "1.5"], ["--distill-weight", "nan"], ["--temperature", "0"],
    ["--temperature", "-2"], ["--input-bits", "0"], ["--input-bits", "9"],
    ["--input-bits", "four"], ["--max-shift", "-1"], ["--max-shift", "28"],
    ["--weight-decay", "-1"], ["--batch-size", "0"],
])
def test_bad_distill_options_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["compress", "a.pt", "-o", "b.pt", "--sparsity", "0.5", *argv])
    assert e.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--distill-weight", "0.5"], ["--temperature", "3"]])
def test_distill_settings_without_a_teacher_are_refused(argv, tmp_path):
    args = _parser().parse_args(["compress", "a.pt", "-o", str(tmp_path / "b.pt"),
                                 "--sparsity", "0.5", *argv])
    with pytest.raises(ValueError, match="need --teacher"):
        run(args)
