"""``pynq-neuro explore``: the search space, the Pareto front, the command's errors, and one
tiny exploration on a local Ray (interrupted, resumed, its front verified by the sharded RTL
regression, which must equal a single run of the bench digit for digit)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro.cli import main
from pynq_neuro.explore.pareto import dominates, pareto_front
from pynq_neuro.explore.space import SearchSpace, SpaceError, design_point, load_space
from pynq_neuro.explore.verify import final_figures, merge, shard_bounds

from helpers import train_split_available

OBJ = ("accuracy", "memory_bits", "images_per_s", "luts")


# ------------------------------------------------------------------------------------------------
# space


class FakeTrial:
    """The part of an Optuna trial the define-by-run space calls: always the last choice."""

    def __init__(self):
        self.asked: dict[str, list] = {}

    def suggest_categorical(self, name, choices):
        self.asked[name] = list(choices)
        return choices[-1]


def test_default_space_samples_a_complete_design_point():
    space = load_space(None)
    trial = FakeTrial()
    config = {**space(trial), **{k: v[-1] for k, v in trial.asked.items()}}
    point = design_point(config, space)
    n = max(space.layers)
    assert point.channels == (max(space.widths),) * n and len(point.sparsity) == n + 1
    assert point.lanes == tuple(min(max(space.lanes), u) for u in [*point.channels, 10])
    assert point.luts == max(space.luts) and point.foldings is None
    assert {f"width_{i}" for i in range(n)} <= set(trial.asked)


def test_fixed_values_are_returned_not_sampled_and_foldings_give_the_lanes(tmp_path):
    f = tmp_path / "space.json"
    f.write_text(json.dumps({"layers": 2, "widths": 16, "taps": 3, "strides": [1, 2],
                             "foldings": [[[2, 8], [2, 8], [1, 5]], [[1, 16], [1, 4], [1, 10]]],
                             "sparsity": [0.5]}))
    space = load_space(f)
    trial = FakeTrial()
    fixed = space(trial)
    assert fixed["layers"] == 2 and fixed["width_0"] == 16 and "stride_0" in trial.asked
    assert "luts" not in trial.asked and trial.asked["folding"] == [0, 1]
    point = design_point({**fixed, **{k: v[-1] for k, v in trial.asked.items()}}, space)
    assert point.foldings == ((1, 16), (1, 4), (1, 10)) and point.lanes == (16, 4, 10)


@pytest.mark.parametrize("text, message", [
    ('{"widths": [0, 8]}', "widths: expected integers in 1..4096, got 0"),
    ('{"wbits": [2, 9]}', "wbits: expected integers in 1..8, got 9"),
    ('{"sparsity": [0.5, 1.0]}', "sparsity: expected numbers in [0, 1), got 1.0"),
    ('{"lanes": []}', "lanes: an empty list of choices"),
    ('{"layers": true}', "layers: expected integers in 1..8, got True"),
    ('{"colour": 3}', "unknown keys ['colour']"),
    ('{"objectives": ["accuracy"]}', "objectives: expected a list of two or more"),
    ('{"objectives": ["accuracy", "speed"]}', "objectives: expected a list of two or more"),
    ('{"training": {"epochs": -1}}', "training.epochs: expected an integer >= 0"),
    ('{"training": {"lr": 0}}', "training.lr: expected a number > 0.0 or null"),
    ('{"foldings": [[[1, 4]]]}', "foldings[0]: expected [[groups, lanes], ...]"),
    ('{"layers": [2, 3], "foldings": [[[1, 4], [1, 4], [1, 5]]]}', "layers must then be fixed"),
    ('{"clock_mhz": 0}', "clock_mhz: expected a finite number > 0"),
    ('[1, 2]', "expected an object of settings, got list"),
    ('{"layers": ', "not valid JSON"),
])
def test_bad_space_files_are_refused_in_one_line(tmp_path, capsys, text, message):
    f = tmp_path / "space.json"
    f.write_text(text)
    with pytest.raises(SpaceError, match=re.escape(message)):
        load_space(f)
    assert main(["explore", str(tmp_path / "run"), "--space", str(f)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("pynq-neuro: error: ") and message in err[0]
    assert not (tmp_path / "run").exists()


def test_yaml_space_reads_like_json(tmp_path):
    pytest.importorskip("yaml")
    f = tmp_path / "space.yaml"
    f.write_text("layers: 2\nwidths: [8, 16]\nobjectives: [accuracy, luts]\n")
    assert load_space(f) == SearchSpace.from_dict(
        {"layers": 2, "widths": [8, 16], "objectives": ["accuracy", "luts"]})


# ------------------------------------------------------------------------------------------------
# front and shards


def _rec(i, acc, bits, rate, luts, status="done"):
    return {"id": f"t{i}", "status": status,
            "objectives": dict(zip(OBJ, (acc, bits, rate, luts)))}


def test_pareto_front_keeps_exactly_the_non_dominated_trials():
    recs = [_rec(0, 0.9, 100, 1000, 50), _rec(1, 0.8, 100, 1000, 50),     # 1 dominated by 0
            _rec(2, 0.7, 50, 1000, 50), _rec(3, 0.95, 200, 500, 80),
            _rec(4, 0.9, 100, 1000, 50),                                   # tie of 0
            _rec(5, 0.99, 1, 1e9, 1, status="failed")]
    front = pareto_front(recs, OBJ)
    assert [r["id"] for r in front] == ["t3", "t0", "t2"]
    assert dominates(recs[0]["objectives"], recs[1]["objectives"], OBJ)
    assert not dominates(recs[0]["objectives"], recs[4]["objectives"], OBJ)
    assert not dominates(recs[3]["objectives"], recs[0]["objectives"], OBJ)


@pytest.mark.parametrize("n, shards", [(1, 3), (10, 3), (12, 3), (7, 7), (100, 8), (5, 1)])
def test_shards_cover_the_digits_once_in_order(n, shards):
    b = shard_bounds(n, shards)
    assert b[0][0] == 0 and b[-1][1] == n and all(a < z for a, z in b)
    assert all(b[i][1] == b[i + 1][0] for i in range(len(b) - 1))
    assert len(b) == min(n, shards) and max(z - a for a, z in b) - min(z - a for a, z in b) <= 1


def test_merge_puts_shards_back_in_digit_order():
    rng = np.random.default_rng(0)
    classes, logits = rng.integers(0, 10, 9), rng.integers(-99, 99, (9, 10))
    result = np.cumsum(rng.integers(300, 400, 9))
    shards = [{"classes": classes[a:b], "logits": logits[a:b], "result": result[a:b]}
              for a, b in shard_bounds(9, 4)]
    m = merge(shards)
    assert np.array_equal(m["classes"], classes) and np.array_equal(m["logits"], logits)
    assert len(m["intervals"]) == 9 - 4


def test_measured_figures_replace_the_modelled_ones_only_when_the_rtl_agrees():
    member = {"metrics": {"accuracy": 0.9, "synapses": 10, "memory_bits": 99,
                          "images_per_s": 1000.0, "luts": 500, "accuracy_images": 12},
              "rtl": {"passed": True, "digits": 12, "accuracy": 0.75, "images_per_s": 900.0},
              "estimate": {"luts": 450}}
    final, source = final_figures(member)
    assert (final["accuracy"], final["images_per_s"], final["luts"], source) == (
        0.75, 900.0, 450, "rtl+yosys")
    member["rtl"]["passed"] = False
    final, source = final_figures(member)
    assert (final["accuracy"], final["images_per_s"], source) == (0.9, 1000.0,
                                                                 "RTL MISMATCH+yosys")


# ------------------------------------------------------------------------------------------------
# command errors


@pytest.mark.parametrize("argv, message", [
    (["explore"], "give the exploration folder"),
    (["explore", "a", "b"], "give the exploration folder"),
    (["explore", "show"], "usage: pynq-neuro explore show DIR"),
    (["explore", "--resume", "{tmp}/nothing"], "no exploration here (explore.json is missing)"),
    (["explore", "show", "{tmp}/nothing"], "no exploration here (explore.json is missing)"),
    (["explore", "{tmp}/run", "--threads", "2"], "--threads 2 is more than --cpus-per-trial 1"),
    (["explore", "{tmp}"], "is not an empty folder"),
    (["explore", "{tmp}/file"], "is not an empty folder"),
    (["explore", "{tmp}/run", "--cpus", "1", "--cpus-per-trial", "2"],
     "--cpus-per-trial 2 is more than --cpus 1"),
])
def test_command_errors_are_one_line(tmp_path, capsys, argv, message):
    pytest.importorskip("ray.tune")
    pytest.importorskip("optuna")
    (tmp_path / "file").write_text("x\n")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("pynq-neuro: error: ") and message in err[0]


def test_cpus_beyond_the_machine_or_with_a_cluster_are_refused(tmp_path, capsys):
    pytest.importorskip("ray.tune")
    cores = os.cpu_count() or 1
    assert main(["explore", str(tmp_path / "a"), "--cpus", str(cores + 1)]) == 2
    assert f"more than the {cores} cores of this machine" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "b"), "--cpus", "1", "--address", "x:1"]) == 2
    assert "--cpus sets the CPUs of a local Ray" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


class FakeRay:
    """``ray.init`` that fails its first ``failures`` calls as Ray does when its node does not
    register in time; ``shutdown`` counts the clean-ups."""

    def __init__(self, failures):
        self.failures, self.inits, self.shutdowns = failures, [], 0

    def init(self, **kw):
        self.inits.append(kw)
        if len(self.inits) <= self.failures:
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        self.shutdowns += 1


@pytest.mark.parametrize("failures", [0, 1, 2])
def test_a_local_ray_that_does_not_come_up_is_started_again(monkeypatch, failures):
    from pynq_neuro.explore import runner

    monkeypatch.setattr(runner, "LOCAL_RAY_BACKOFF_S", 0.0)
    ray = FakeRay(failures)
    runner._start_local_ray(ray, num_cpus=2)
    assert len(ray.inits) == failures + 1 and ray.shutdowns == failures
    assert all(kw == {"address": "local", "num_cpus": 2} for kw in ray.inits)


def test_a_local_ray_that_never_comes_up_is_one_error(monkeypatch):
    from pynq_neuro.explore import runner

    monkeypatch.setattr(runner, "LOCAL_RAY_BACKOFF_S", 0.0)
    ray = FakeRay(runner.LOCAL_RAY_ATTEMPTS)
    with pytest.raises(runner.ExploreError, match=r"did not start \(3 attempts; the last said: "
                                                  r"The current node timed out"):
        runner._start_local_ray(ray, num_cpus=1)
    assert len(ray.inits) == runner.LOCAL_RAY_ATTEMPTS == ray.shutdowns


def test_resume_continues_the_optuna_study_or_says_there_is_nothing(tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("ray.tune")
    from pynq_neuro.explore.runner import (ExploreSettings, finished_in_study, resume_point,
                                           write_record)

    settings = ExploreSettings(folder=str(tmp_path), trials=5)
    write_record(settings, [])
    assert main(["explore", "--resume", str(tmp_path)]) == 2
    assert "nothing to resume (no Ray experiment state and no study" in \
        capsys.readouterr().err
    assert finished_in_study(settings) is None
    study = optuna.create_study(study_name="explore", storage=settings.storage_url,
                                directions=["maximize", "minimize"])
    for values in ([0.5, 10.0], [0.7, 20.0]):
        t = study.ask()
        study.tell(t, values)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    study.ask()                                  # cut short: still running, not counted
    assert finished_in_study(settings) == 3
    assert resume_point(settings, 5) == 2        # no Ray state: the study gives the rest


@pytest.mark.parametrize("sampler, kind", [("nsga2", "NSGAIISampler"), ("tpe", "TPESampler")])
def test_optuna_sampler_inside_ray_tune_suggests_design_points(tmp_path, sampler, kind):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("ray.tune")
    from pynq_neuro.explore.runner import ExploreSettings, _searcher

    space = load_space(None)
    settings = ExploreSettings(folder=str(tmp_path), sampler=sampler, trials=6, seed=3)
    searcher = _searcher(settings, space)
    study = searcher._ot_study
    assert type(study.sampler).__name__ == kind
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MAXIMIZE",
                                                  "MINIMIZE"]
    configs = [searcher.suggest(f"t{i}") for i in range(4)]
    for c in configs:
        point = design_point(c, space)
        assert len(point.channels) == c["layers"] and point.luts in space.luts
    searcher.on_trial_complete("t0", {"accuracy": 0.5, "memory_bits": 9, "images_per_s": 1.0,
                                      "luts": 5})
    searcher.on_trial_complete("t1", None, error=True)
    states = [t.state for t in optuna.load_study(study_name="explore",
                                                 storage=settings.storage_url).trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_show_refuses_a_foreign_record(tmp_path, capsys):
    (tmp_path / "explore.json").write_text('{"format": "other"}')
    assert main(["explore", "show", str(tmp_path)]) == 2
    assert "is not a pynq-neuro exploration record" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# a tiny exploration on a local Ray: interrupted, resumed, front verified

TINY = {"layers": 2, "widths": [8, 16], "taps": 3, "strides": 2, "wbits": [1, 2], "abits": 2,
        "input_bits": 8, "sparsity": [0.0, 0.5], "lanes": [4], "luts": [1000, 40000],
        "training": {"epochs": 1, "finetune_epochs": 0, "train_images": 300}}
TRIALS, RTL_DIGITS, SHARDS = 4, 12, 3


def _explore(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(["nice", "-n", "15", sys.executable, "-m", "pynq_neuro", "explore",
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _done_ids(folder: Path) -> set[str]:
    out = set()
    for p in folder.glob("trials/*/trial.json"):
        try:
            if json.loads(p.read_text())["status"] == "done":
                out.add(p.parent.name)
        except (ValueError, OSError):   # being replaced
            pass
    return out


def _skip_unless_trials_can_run() -> None:
    """Trials need Ray Tune, Optuna, torch and the MNIST training split."""
    for module in ("ray.tune", "optuna", "torch"):
        pytest.importorskip(module)
    if not train_split_available():
        pytest.skip("the trials train on the MNIST training split, which is not available")


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    _skip_unless_trials_can_run()
    if shutil.which("verilator") is None:
        pytest.skip("verilator is not installed")
    root = tmp_path_factory.mktemp("explore")
    (root / "tiny.json").write_text(json.dumps(TINY))
    folder = root / "run"
    first = _explore(str(folder), "--space", str(root / "tiny.json"), "--trials", str(TRIALS),
                     "--cpus", "2", "--images", "200", "--sample-digits", "100", "--rtl-images", str(RTL_DIGITS),
                     "--shards", str(SHARDS), "--front-limit", "1", "--no-estimate")
    deadline = time.time() + 150
    while not _done_ids(folder) and first.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)   # let the driver take the result in
    first.send_signal(signal.SIGINT)
    out1, err1 = first.communicate(timeout=120)
    before = {p.parent.name: json.loads(p.read_text())
              for p in folder.glob("trials/*/trial.json")}
    second = _explore("--resume", str(folder))
    out2, err2 = second.communicate(timeout=300)
    return {"folder": folder, "first": (first.returncode, out1, err1), "before": before,
            "second": (second.returncode, out2, err2)}


def test_interrupted_exploration_resumes_without_redoing_finished_trials(explored):
    rc, out, err = explored["first"]
    assert rc == 130, err
    assert err.strip().splitlines()[-1].startswith(
        "pynq-neuro: interrupted: exploration stopped after ")
    reported = set(re.findall(r"trial (\w+) done;", out))
    assert reported, out
    rc, out, err = explored["second"]
    assert rc == 0, err
    assert "resuming from Ray's experiment state" in out
    rec = json.loads((explored["folder"] / "explore.json").read_text())
    assert rec["state"] == "finished" and len(rec["trials"]) == TRIALS
    assert rec["counts"]["done"] + rec["counts"]["failed"] == TRIALS
    trials = {t["id"]: t for t in rec["trials"]}
    for tid in reported:   # finished before the interruption: kept, not trained again
        assert trials[tid]["started"] == explored["before"][tid]["started"]
        assert trials[tid]["status"] == "done"


def test_every_trial_is_recorded_with_its_files_or_its_error(explored):
    folder = explored["folder"]
    rec = json.loads((folder / "explore.json").read_text())
    for t in rec["trials"]:
        assert set(t["config"]) >= {"wbits", "layers"} and t["seconds"] > 0
        if t["status"] == "done":
            assert set(t["objectives"]) == set(OBJ)
            assert (folder / t["files"]["artifact"] / "manifest.json").is_file()
            assert (folder / t["files"]["network"]).is_file()
            assert (folder / t["files"]["checkpoint"]).is_file()
        else:   # the 1000-LUT budget cannot hold any of these networks
            assert t["status"] == "failed" and t["config"]["luts"] == 1000
            assert "BudgetError" in t["error"] and "\n" not in t["error"]
    assert any(t["status"] == "done" for t in rec["trials"])
    assert (folder / rec["plot"]).stat().st_size > 10_000
    assert {z["name"] for z in rec["zoo"]} >= {"tdnn-w2a2-sparse"}


def test_sharded_regression_equals_a_single_run_bit_for_bit(explored):
    from pynq_neuro.compiler.compile import sample_data
    from pynq_neuro.rtl.regression import build_fast, run_fast

    folder = explored["folder"]
    rec = json.loads((folder / "explore.json").read_text())
    member = rec["front"][0]
    rtl = member["rtl"]
    assert (rtl["digits"], rtl["shards"], rtl["passed"]) == (RTL_DIGITS, SHARDS, True)
    assert member["source"] == "rtl" and member["final"]["images_per_s"] == rtl["images_per_s"]
    merged = np.load(folder / rtl["results"])
    art = folder / member["files"]["artifact"]
    x = np.ascontiguousarray(sample_data(art).images[:RTL_DIGITS])
    exe = build_fast(art, folder / "rtl-build")           # the build of the second pass
    single, _ = run_fast(exe, x, folder / "single")
    assert np.array_equal(merged["classes"], single.classes)
    assert np.array_equal(merged["logits"], single.logits)
    out = subprocess.run([sys.executable, "-m", "pynq_neuro", "explore", "show", str(folder)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and member["id"] in out.stdout and "Pareto front" in out.stdout


# ------------------------------------------------------------------------------------------------
# an existing cluster (--address)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Ray cluster started with ``ray start --head``, stopped at the end."""
    _skip_unless_trials_can_run()
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.is_file():
        pytest.skip("the ray command is not installed beside this interpreter")
    port = _free_port()
    temp = Path("/tmp") / f"pn-ray-{os.getpid()}"     # Ray's socket paths must stay short
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
         "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        import socket

        while time.time() < deadline and head.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"ray start --head did not come up: {head.stdout.read()[-2000:]}")
        time.sleep(2.0)   # the raylet registers after the GCS port opens
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.communicate()
        shutil.rmtree(temp, ignore_errors=True)


def test_exploration_runs_its_trials_on_an_existing_cluster(cluster, tmp_path):
    space = tmp_path / "tiny.json"
    space.write_text(json.dumps({**TINY, "luts": [40000], "wbits": 2}))
    folder = tmp_path / "on-cluster"
    run = _explore(str(folder), "--address", cluster, "--space", str(space), "--trials", "2",
                   "--images", "200", "--sample-digits", "100", "--no-rtl", "--no-estimate")
    out, err = run.communicate(timeout=400)
    assert run.returncode == 0, err
    assert f"; Ray cluster at {cluster} with 1 CPUs" in out.splitlines()[0], out
    rec = json.loads((folder / "explore.json").read_text())
    assert rec["state"] == "finished" and rec["counts"]["done"] == 2, rec["counts"]
    for t in rec["trials"]:
        assert (folder / t["files"]["artifact"] / "manifest.json").is_file()
        assert (folder / t["folder"] / "float.pt").is_file()   # the warm start
