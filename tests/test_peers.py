"""The peers benchmark on a tiny setting: both trainers produce finite accuracies, the event
model counts skipped work, and the README section is generated from the result."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import train_split_available

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

pytest.importorskip("torch")
pytest.importorskip("brevitas")
if not train_split_available():
    pytest.skip("the MNIST training split is not available offline", allow_module_level=True)

import peers  # noqa: E402


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory) -> dict:
    protocol = peers.Protocol(epochs=1, float_epochs=1, train_images=256, threads=1,
                              families=("tdnn", "mlp"), bits=(1, 2), channels=(8, 8))
    trainers = peers.compare_trainers(protocol, tmp_path_factory.mktemp("peers"),
                                      log=lambda s: None)
    return {"brevitas_version": peers._brevitas_version(), "trainers": trainers,
            "event_skipping": peers.event_skipping(["tdnn-w1a1-sparse"], images=40,
                                                   log=lambda s: None),
            "anchors": peers.anchors()}


def test_both_trainers_give_finite_accuracies_for_every_point(tiny_result):
    rows = tiny_result["trainers"]["results"]
    points = {(r["family"], r["bits"], r["trainer"].split()[0]) for r in rows}
    assert points == {(f, b, t) for f in ("tdnn", "mlp") for b in (1, 2)
                      for t in ("UniQ", "Brevitas")}
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and math.isfinite(r["final_loss"]), r
        assert r["train_seconds"] > 0, r
        if r["trainer"].startswith("UniQ"):
            assert 0.0 <= r["golden_accuracy"] <= 1.0, r
        else:
            assert r["golden_accuracy"] is None and "weight" in r["quantizers"], r
    # identical protocol: same learning rate and decay for both trainers at each point
    for f in ("tdnn", "mlp"):
        for b in (1, 2):
            hp = {(r["lr"], r["weight_decay"]) for r in rows if (r["family"], r["bits"]) == (f, b)}
            assert len(hp) == 1, (f, b, hp)
    assert tiny_result["trainers"]["protocol"]["train_images"] == 256
    json.dumps(tiny_result)  # plain data only


def test_event_skipping_is_never_slower_than_dense(tiny_result):
    (e,) = tiny_result["event_skipping"]
    assert e["digits"] == 40
    assert e["cycles_per_digit_events"] <= e["cycles_per_digit_dense"]
    assert 0.0 < e["work_skipped"] < 1.0
    assert all(0.0 <= l["work_skipped"] <= 1.0 for l in e["layers"])
    assert e["speedup"] == pytest.approx(e["cycles_per_digit_dense"]
                                         / e["cycles_per_digit_events"])


def test_dense_cost_counts_every_input_as_an_event():
    from pynq_neuro import zoo
    from pynq_neuro.compiler.cycles import event_phase_cycles, FRAME_OVERHEAD, event_costs
    from pynq_neuro.compiler.mapping import Folding, map_layer

    net = zoo.load_network("tdnn-w1a1-sparse")
    lm = map_layer(net, 1, Folding(1, net.layers[1].out_channels), pack=False)
    ones = np.ones((1, lm.layer.in_frames, lm.layer.in_channels), np.int64)
    cycles = event_phase_cycles(lm, ones)
    assert (cycles[0] == event_costs(lm).sum(axis=1) + FRAME_OVERHEAD).all()


def test_readme_section_is_replaced_in_place(tiny_result, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmarks\n\ntext\n\n## Layout\n\nend\n")
    peers.update_readme(tiny_result, readme)
    once = readme.read_text()
    peers.update_readme(tiny_result, readme)
    assert readme.read_text() == once
    begin, end = peers.report.markers("peers")
    assert once.count(begin) == 1 and once.index(end) < once.index("## Layout")
    assert "| TDNN | W1A1 | UniQ" in once and "| MLP | W2A2 | Brevitas" in once
    assert "`tdnn-w1a1-sparse`" in once and "118,883" in once and "99.37 %" in once


def test_event_skipping_only_keeps_the_trainers(tiny_result, tmp_path, monkeypatch):
    out = tmp_path / "peers.json"
    old = {**tiny_result, "event_skipping": [], "seconds": 1.0}
    out.write_text(json.dumps(old))
    monkeypatch.setattr(peers, "event_skipping", lambda: tiny_result["event_skipping"])
    assert peers.main(["--event-skipping-only", "--output", str(out)]) == 0
    new = json.loads(out.read_text())
    assert new["trainers"] == json.loads(json.dumps(tiny_result["trainers"]))
    assert new["event_skipping"] == json.loads(json.dumps(tiny_result["event_skipping"]))
    assert new["seconds"] == 1.0 and new["event_skipping_seconds"] >= 0


@pytest.mark.parametrize("text", [None, "{", "[1, 2]", '{"event_skipping": []}'],
                         ids=["missing", "not JSON", "a list", "no trainers"])
def test_event_skipping_only_without_an_earlier_result(tmp_path, capsys, text):
    out = tmp_path / "peers.json"
    if text is not None:
        out.write_text(text)
    with pytest.raises(SystemExit) as e:
        peers.main(["--event-skipping-only", "--output", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--event-skipping-only needs an earlier result" in err and "Traceback" not in err
    assert text is None or out.read_text() == text


@pytest.mark.parametrize("option", ["--epochs", "--float-epochs", "--train-images", "--threads"])
def test_counts_below_one_are_refused_before_any_work(option, capsys):
    with pytest.raises(SystemExit) as e:
        peers.main([option, "0"])
    assert e.value.code == 2
    assert f"argument {option}: must be >= 1, got 0" in capsys.readouterr().err


def test_warm_start_from_another_architecture_is_refused():
    from peers_brevitas import BrevitasNet, warm_start
    from pynq_neuro.models import ModelConfig, NeuroNet

    tiny = dict(family="mlp", channels=(8,))
    other = NeuroNet(ModelConfig(family="mlp", channels=(8, 8))).state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        warm_start(BrevitasNet(ModelConfig(**tiny, wbits=1, abits=1)), other)
    wider = NeuroNet(ModelConfig(family="mlp", channels=(16,))).state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        warm_start(BrevitasNet(ModelConfig(**tiny, wbits=2, abits=2)), wider)
    model = BrevitasNet(ModelConfig(**tiny, wbits=2, abits=2))
    warm_start(model, NeuroNet(ModelConfig(**tiny)).state_dict())  # same layers: accepted
