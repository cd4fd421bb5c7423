"""Running an exploration on Ray Tune with an Optuna multi-objective sampler, resuming it, and
the exploration record ``explore.json``.

Ray runs every trial (a function trainable with ``cpus_per_trial`` CPUs, torch limited to
``threads`` threads) and every task of the second pass; the driver only samples, records and
plots. Ray's experiment state is kept in ``DIR/ray`` (``Tuner.restore``) and the Optuna study
in ``DIR/optuna.db`` (or the ``storage`` URL), so that an interrupted exploration continues
from either.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import PynqNeuroError, one_line
from ..fileio import atomic_write_json, read_regular
from .pareto import PLOT, best_line, front_table, pareto_front, plot
from .space import OBJECTIVES, SearchSpace
from .trial import TRIAL_RECORD, TRIALS, TrialSettings, trainable
from .verify import VerifySettings, final_figures, verify_front

RECORD = "explore.json"
FORMAT = "pynq-neuro-explore"
VERSION = 1
RAY_DIR = "ray"
STUDY = "explore"
MAX_RECORD_BYTES = 64 << 20
MAX_TRIAL_BYTES = 1 << 20
LOCAL_RAY_ATTEMPTS = 3   # starts of a local Ray cluster before the exploration gives up
LOCAL_RAY_BACKOFF_S = 5.0  # seconds before the second start (twice that before the third)
MAX_BUILD_JOBS = 4   # compile jobs of a Verilator build of the second pass on a local Ray
# Ray Tune's own console report and result loggers: off (the progress lines and explore.json
# take their place)
QUIET_RAY = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
             "RAY_DEDUP_LOGS": "0", "TUNE_MAX_PENDING_TRIALS_PG": "1"}


class ExploreError(PynqNeuroError, ValueError):
    """An exploration folder that cannot be started, resumed or shown."""


class Interrupted(PynqNeuroError):
    """The exploration stopped before every trial ended (its state is saved)."""


@dataclass
class ExploreSettings:
    """The options of an exploration (recorded in ``explore.json``; a resumed run reuses
    them)."""

    folder: str
    """Where the record, the Optuna study and the design points go."""
    space: dict[str, Any] = field(default_factory=dict)
    """Search space overrides (docs/explore.md), as read from ``--space``."""
    trials: int = 24
    """Trials in all."""
    images: int | None = None
    """Test digits of each trial's accuracy (None: the whole test split)."""
    sampler: str = "nsga2"
    """Optuna sampler: ``"nsga2"`` or ``"tpe"``."""
    population: int | None = None
    """NSGA-II population or TPE start-up trials (None: a third of the trials, 4 to 50)."""
    seed: int = 0
    """Seed of the sampler and of every trial's training."""
    cpus: int | None = None
    """CPUs of the local Ray cluster (None: every core)."""
    cpus_per_trial: int = 1
    """CPUs that Ray reserves for a trial."""
    threads: int = 1
    """Torch threads of a trial (at most ``cpus_per_trial``)."""
    storage: str | None = None
    """Optuna storage URL (None: sqlite in the folder)."""
    sample_digits: int = 1000
    """Test digits of the folding search and the cycle model."""
    data_dir: str | None = None
    """Dataset folder (None: the loader's search order)."""
    verify: dict[str, Any] = field(default_factory=lambda: asdict(VerifySettings()))
    """The second pass on the Pareto front (:class:`VerifySettings` as a dict)."""

    def check(self) -> None:
        if self.threads > self.cpus_per_trial:
            raise ExploreError(f"--threads {self.threads} is more than --cpus-per-trial "
                               f"{self.cpus_per_trial} (one torch thread per CPU at most)")
        if self.cpus is not None and self.cpus_per_trial > self.cpus:
            raise ExploreError(f"--cpus-per-trial {self.cpus_per_trial} is more than --cpus "
                               f"{self.cpus}: no trial could start")
        if self.sampler not in ("nsga2", "tpe"):
            raise ExploreError(f"unknown sampler {self.sampler!r} (nsga2 or tpe)")

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.folder) / 'optuna.db'}"


# ------------------------------------------------------------------------------------------------
# records


def _load_json(path: Path, limit: int) -> Any:
    try:
        return json.loads(read_regular(path, limit).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExploreError(f"{path}: not a JSON file ({one_line(e)})") from None


def trial_records(folder: str | Path) -> list[dict[str, Any]]:
    """The ``trial.json`` of every trial folder, oldest first; unreadable ones are reported as
    failed trials."""
    root = Path(folder) / TRIALS
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        p = d / TRIAL_RECORD
        if not d.is_dir() or d.is_symlink() or not p.exists():
            continue
        try:
            r = _load_json(p, MAX_TRIAL_BYTES)
            if not isinstance(r, dict) or not isinstance(r.get("id"), str) or \
                    r.get("status") not in ("running", "done", "failed"):
                raise ExploreError(f"{p}: not a trial record")
        except (OSError, ValueError) as e:
            r = {"id": d.name, "status": "failed", "error": f"unreadable record: {one_line(e)}",
                 "folder": str(d.relative_to(folder))}
        out.append(r)
    return sorted(out, key=lambda r: (r.get("started") or 0, r["id"]))


def load_record(folder: str | Path) -> dict[str, Any]:
    """``DIR/explore.json``, checked for its format."""
    path = Path(folder) / RECORD
    if not path.exists():
        raise ExploreError(f"{folder}: no exploration here ({RECORD} is missing)")
    rec = _load_json(path, MAX_RECORD_BYTES)
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise ExploreError(f"{path} is not a pynq-neuro exploration record")
    if rec.get("version") != VERSION:
        raise ExploreError(f"{path}: unsupported version {rec.get('version')!r}")
    for key, kind in (("settings", dict), ("trials", list), ("front", list), ("zoo", list),
                      ("objectives", list)):
        if not isinstance(rec.get(key), kind):
            raise ExploreError(f"{path}: {key} must be a JSON {kind.__name__}")
    return rec


def write_record(settings: ExploreSettings, trials: list[dict[str, Any]], *,
                 front: list[dict[str, Any]] | None = None, zoo: list | None = None,
                 elapsed: float = 0.0, state: str = "running",
                 plot_path: str | None = None) -> dict[str, Any]:
    space = SearchSpace.from_dict(settings.space)
    rec = {"format": FORMAT, "version": VERSION, "state": state,
           "objectives": [{"name": k, "mode": OBJECTIVES[k][0]} for k in space.objectives],
           "settings": asdict(settings), "elapsed_seconds": elapsed,
           "counts": counts(trials), "trials": trials, "front": front or [], "zoo": zoo or [],
           "plot": plot_path}
    atomic_write_json(Path(settings.folder) / RECORD, rec, indent=1)
    return rec


def counts(trials: list[dict[str, Any]]) -> dict[str, int]:
    c = {"done": 0, "running": 0, "failed": 0}
    for t in trials:
        c[t["status"]] = c.get(t["status"], 0) + 1
    return c


# ------------------------------------------------------------------------------------------------
# Ray


# What the progress callback reports to: set by :func:`run_exploration` for the run in this
# process (a callback restored from Ray's experiment state is the one pickled by the first run).
_ACTIVE: dict[str, Any] = {}


def _progress_callback():
    from ray.tune import Callback

    class Progress(Callback):
        """One line per trial event and an up-to-date ``explore.json``."""

        def _report(self, trials, what: str, trial=None, running: bool = False) -> None:
            settings, log = _ACTIVE["settings"], _ACTIVE["log"]
            busy = sum(t.status == "RUNNING" and t is not trial for t in trials) + running
            records = trial_records(settings.folder)
            objectives = SearchSpace.from_dict(settings.space).objectives
            elapsed = _ACTIVE["elapsed_before"] + time.time() - _ACTIVE["start"]
            total = settings.trials
            done = sum(r["status"] == "done" for r in records)
            failed = sum(r["status"] == "failed" for r in records)
            log(f"[{_clock(elapsed)}] {what}; trials {done} done, {busy} running, "
                f"{failed} failed of {total}; {best_line(records, objectives)}")
            write_record(settings, records, elapsed=elapsed)

        def on_trial_start(self, iteration, trials, trial, **info):
            self._report(trials, f"trial {trial.trial_id} started", trial, running=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._report(trials, f"trial {trial.trial_id} done", trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            rec = next((r for r in trial_records(_ACTIVE["settings"].folder)
                        if r["id"] == trial.trial_id), {})
            self._report(trials, f"trial {trial.trial_id} failed: "
                                 f"{rec.get('error', 'the worker stopped')}", trial)

    return Progress()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def use_cluster_token() -> None:
    """Clusters started with ``ray start`` (Ray >= 2.59) require the token that Ray keeps in
    ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``; a driver only sends it
    in token mode. When a token is there and ``RAY_AUTH_MODE`` is not set, use token mode (a
    cluster without authentication accepts it too). Ray reads the mode when it is imported,
    so this runs before the first ``import ray``."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def start_ray(settings: ExploreSettings, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start Ray on this machine with
    ``settings.cpus`` CPUs (default: all cores)."""
    os.environ.update(QUIET_RAY)
    import ray

    env = {"env_vars": {"OMP_NUM_THREADS": str(settings.threads),
                        "MKL_NUM_THREADS": str(settings.threads)}}
    for name in ("PYNQ_NEURO_DATA", "PYNQ_NEURO_HDL", "PYNQ_NEURO_SIM"):
        if os.environ.get(name):
            env["env_vars"][name] = os.environ[name]
    kw = dict(runtime_env=env, log_to_driver=False, logging_level=logging.ERROR)
    if address is not None:
        ray.init(address=address, **kw)
    else:
        _start_local_ray(ray, num_cpus=settings.cpus or os.cpu_count() or 1,
                         include_dashboard=False, **kw)
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _start_local_ray(ray: Any, **kw: Any) -> None:
    """``ray.init`` of a new local cluster, tried ``LOCAL_RAY_ATTEMPTS`` times: Ray gives its
    raylet a fixed 30 s to register, which a machine busy with other work can exceed."""
    for attempt in range(1, LOCAL_RAY_ATTEMPTS + 1):
        try:
            ray.init(address="local", **kw)
            return
        except Exception as e:  # Ray raises a bare Exception when its node does not come up
            try:
                ray.shutdown()  # stops the processes a failed start left behind
            except Exception:
                pass
            if attempt == LOCAL_RAY_ATTEMPTS:
                raise ExploreError(f"the local Ray cluster did not start ({LOCAL_RAY_ATTEMPTS} "
                                   f"attempts; the last said: {one_line(e)}); the "
                                   f"machine may be too busy, try again when it is "
                                   f"quieter") from e
            time.sleep(LOCAL_RAY_BACKOFF_S * attempt)


def _searcher(settings: ExploreSettings, space: SearchSpace):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if settings.sampler == "nsga2":
        population = settings.population or max(4, min(50, settings.trials // 3))
        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=settings.seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=settings.seed, n_startup_trials=settings.population or
            max(4, min(20, settings.trials // 3)))
    storage = optuna.storages.RDBStorage(settings.storage_url)
    return OptunaSearch(space=space, metric=list(space.objectives),
                        mode=[OBJECTIVES[k][0] for k in space.objectives], sampler=sampler,
                        storage=storage, study_name=STUDY)


def finished_in_study(settings: ExploreSettings) -> int | None:
    """Trials the Optuna study has finished (complete or failed), ``None`` without a study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=STUDY, storage=settings.storage_url)
    except KeyError:
        return None
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def latest_ray_run(folder: str | Path) -> Path | None:
    """The newest of Ray's experiment folders (``ray``, ``ray-TIME``) that can be restored."""
    from ray import tune

    runs = sorted((p for p in Path(folder).glob(f"{RAY_DIR}*") if p.is_dir()),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    return next((p for p in runs if tune.Tuner.can_restore(str(p))), None)


def resume_point(settings: ExploreSettings, recorded_trials: int) -> int | None:
    """How a resumed exploration continues: ``None`` from Ray's experiment state (the total
    of trials unchanged), else the number of trials still to run on the Optuna study; raises
    when there is neither."""
    if settings.trials == recorded_trials and latest_ray_run(settings.folder) is not None:
        return None
    finished = finished_in_study(settings)
    if finished is None:
        raise ExploreError(f"{settings.folder}: nothing to resume (no Ray experiment state "
                           f"and no study in {settings.storage_url})")
    return settings.trials - finished


def _tuner(settings: ExploreSettings, space: SearchSpace, resume: bool, remaining: int | None,
           log: Callable[[str], None]):
    """The Tuner of a new run (``remaining`` trials), of a resumed one from Ray's state
    (``resume`` and ``remaining is None``), or ``None`` when nothing is left to run."""
    from ray import tune

    folder = Path(settings.folder)
    trial_settings = TrialSettings(str(folder), space, settings.images, settings.threads,
                                   settings.seed, settings.sample_digits, settings.data_dir)
    fn = tune.with_resources(tune.with_parameters(trainable, settings=trial_settings),
                             {"cpu": settings.cpus_per_trial})
    if resume and remaining is None:
        ray_dir = latest_ray_run(folder)
        log(f"resuming from Ray's experiment state in {ray_dir}")
        return tune.Tuner.restore(str(ray_dir), fn, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False)
    if resume:
        log(f"resuming from the Optuna study ({settings.trials - remaining} trials finished, "
            f"{max(remaining, 0)} to go)")
    if remaining <= 0:
        return None
    name = RAY_DIR if not (folder / RAY_DIR).exists() else f"{RAY_DIR}-{int(time.time())}"
    cfg = tune.TuneConfig(search_alg=_searcher(settings, space),
                          num_samples=remaining,
                          max_concurrent_trials=max(1, (settings.cpus or os.cpu_count() or 1)
                                                    // settings.cpus_per_trial))
    run = tune.RunConfig(
        name=name, storage_path=str(folder), verbose=0, callbacks=[_progress_callback()],
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False))
    return tune.Tuner(fn, tune_config=cfg, run_config=run)


# ------------------------------------------------------------------------------------------------
# zoo points for the plot


def zoo_points(folder: str, clock_mhz: float, target: float, sample_digits: int,
               data_dir: str | None) -> list[dict[str, Any]]:
    """Accuracy (the zoo's record), cycle model and resource model of every shipped integer
    network compiled with the default budget (artifacts in ``DIR/zoo``)."""
    from .. import zoo
    from ..compiler.compile import CompileConfig, compile_network
    from ..compiler.resources import Budget
    from .trial import memory_bits

    out = []
    for name in zoo.names():
        info = zoo.info(name)
        if zoo.network_path(name) is None:
            continue
        try:
            m = compile_network(name, Path(folder) / "zoo" / name,
                                CompileConfig(target_images_per_s=target,
                                              budget=Budget(clock_mhz=clock_mhz),
                                              sample_digits=sample_digits),
                                data=data_dir, force=True)
        except (ValueError, OSError):   # a model the default budget cannot hold
            continue
        perf = m["performance"]
        out.append({"name": name, "accuracy": info["accuracy"],
                    "images_per_s": perf["cycle_model"]["images_per_s"],
                    "luts": perf["resources_estimate"]["total"]["luts"],
                    "memory_bits": memory_bits(m), "synapses": m["network"]["synapses"]})
    return out


# ------------------------------------------------------------------------------------------------
# the whole run


def _finish(settings: ExploreSettings, records: list[dict[str, Any]],
            elapsed: Callable[[], float], log: Callable[[str], None]) -> dict[str, Any]:
    import ray

    space = SearchSpace.from_dict(settings.space)
    vs = VerifySettings(**settings.verify)
    if vs.build_cpus is None:   # the trials are over: a local build may use more CPUs
        local = _ACTIVE.get("address") is None
        vs = replace(vs, build_cpus=min(MAX_BUILD_JOBS, int(ray.cluster_resources()["CPU"]))
                     if local else settings.cpus_per_trial)
    front = [{**r, "description": (r.get("design") or {}).get("description", "")}
             for r in pareto_front(records, space.objectives)]
    zoo_ref = ray.remote(num_cpus=1, max_retries=0)(zoo_points).remote(
        settings.folder, space.clock_mhz, space.target_images_per_s,
        min(settings.sample_digits, 1000), settings.data_dir)
    if front and (vs.rtl or vs.estimate):
        log(f"second pass on {len(front) if vs.front_limit is None else min(len(front), vs.front_limit)}"
            f" of {len(front)} front members: "
            + " and ".join(w for w, on in (("RTL regression", vs.rtl), ("Yosys estimate",
                                                                        vs.estimate)) if on))
        front = verify_front(front, settings.folder, vs, space.clock_mhz, log)
    else:
        for m in front:
            m["final"], m["source"] = final_figures(m)
    try:
        zoo = ray.get(zoo_ref)
    except Exception as e:  # noqa: BLE001 - the plot goes without the zoo
        log(f"zoo models not marked: {one_line(e)}")
        zoo = []
    path = plot(records, front, zoo, Path(settings.folder) / PLOT, space.clock_mhz)
    return write_record(settings, records, front=front, zoo=zoo, elapsed=elapsed(),
                        state="finished", plot_path=path.name)


def run_exploration(settings: ExploreSettings, *, address: str | None = None,
                    resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or with ``resume`` continue) an exploration in ``settings.folder``; returns the
    record. Raises :class:`Interrupted` when it stopped before all trials ended."""
    import ray

    settings.check()
    if address is not None and settings.cpus is not None:
        raise ExploreError("--cpus sets the CPUs of a local Ray; a cluster (--address) has its "
                           "own")
    cores = os.cpu_count() or 1
    if address is None and settings.cpus is not None and settings.cpus > cores:
        raise ExploreError(f"--cpus {settings.cpus} is more than the {cores} cores of this "
                           f"machine (the trials would share them)")
    folder = Path(settings.folder)
    space = SearchSpace.from_dict(settings.space)
    elapsed_before = 0.0
    remaining: int | None = settings.trials
    if resume:
        recorded = load_record(folder)
        elapsed_before = float(recorded.get("elapsed_seconds") or 0.0)
        remaining = resume_point(settings, recorded["settings"].get("trials"))
    else:
        if (folder / RECORD).exists():
            raise ExploreError(f"{folder} already holds an exploration; continue it with "
                               f"pynq-neuro explore --resume {folder}")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ExploreError(f"{folder} is not an empty folder; an exploration starts in a "
                               f"new or empty one")
        folder.mkdir(parents=True, exist_ok=True)
        write_record(settings, [])
    start = time.time()
    start_ray(settings, address)
    try:
        log(f"exploration in {folder}: {settings.trials} trials, objectives "
            + ", ".join(f"{k} ({OBJECTIVES[k][0]})" for k in space.objectives)
            + (f"; Ray cluster at {address} with" if address is not None else "; local Ray with")
            + f" {int(ray.cluster_resources().get('CPU', 0))} CPUs, "
              f"{settings.cpus_per_trial} per trial, {settings.threads} torch thread(s)")
        _ACTIVE.update(settings=settings, log=log, elapsed_before=elapsed_before, start=start,
                       address=address)
        tuner = _tuner(settings, space, resume, remaining, log)
        unfinished = _collect(tuner.fit(), folder) if tuner is not None else 0
        records = trial_records(folder)
        elapsed = elapsed_before + time.time() - start
        for r in records:   # nothing runs any more: a trial still marked running was cut short
            if r["status"] == "running":
                r["status"] = "interrupted"
        c = counts(records)
        if unfinished or c["done"] + c["failed"] < settings.trials:
            write_record(settings, records, elapsed=elapsed, state="interrupted")
            raise Interrupted(f"exploration stopped after {c['done'] + c['failed']} of "
                              f"{settings.trials} trials; continue it with pynq-neuro explore "
                              f"--resume {folder}")
        log(f"[{_clock(elapsed)}] all {settings.trials} trials ended: {c['done']} done, "
            f"{c['failed']} failed")
        return _finish(settings, records, lambda: elapsed_before + time.time() - start, log)
    finally:
        ray.shutdown()


def _collect(grid, folder: Path) -> int:
    """Record the trials Ray saw fail without a record of their own (a worker that died);
    returns the number of trials that did not end."""
    from .trial import trial_folder
    from .trial import write_record as write_trial

    ended = 0
    for result in grid:
        if result.error is None:
            ended += result.metrics is not None and bool(result.metrics)
            continue
        ended += 1
        trial_id = Path(result.path).name.split("_")[1] if result.path else None
        path = trial_folder(folder, trial_id) if trial_id else None
        if path is None or not path.is_dir():
            continue
        records = [r for r in trial_records(folder) if r["id"] == trial_id]
        if records and records[0]["status"] == "running":
            write_trial(path, {**records[0], "status": "failed",
                               "error": f"{type(result.error).__name__}: "
                                        f"{one_line(result.error)}"})
    return len(grid) - ended


def resume_settings(folder: str | Path, **overrides: Any) -> ExploreSettings:
    """The settings recorded in ``DIR/explore.json`` with ``overrides`` (those not ``None``)."""
    rec = load_record(folder)
    try:
        settings = ExploreSettings(**rec["settings"])
    except TypeError as e:
        raise ExploreError(f"{folder}/{RECORD}: settings do not match ({one_line(e)})") from None
    settings = replace(settings, folder=str(Path(folder).resolve()),
                       **{k: v for k, v in overrides.items() if v is not None})
    return settings


def show(folder: str | Path) -> str:
    """The front table and the counts of a recorded exploration."""
    rec = load_record(folder)
    c = rec.get("counts") or counts(rec["trials"])
    lines = [f"exploration {folder}: {rec.get('state')}, {len(rec['trials'])} trials "
             f"({c.get('done', 0)} done, {c.get('failed', 0)} failed), "
             f"{_clock(float(rec.get('elapsed_seconds') or 0))} elapsed"]
    objectives = [o["name"] for o in rec["objectives"]]
    if rec["front"]:
        lines.append(f"Pareto front ({', '.join(objectives)}):")
        lines.append(front_table(rec["front"]))
    else:
        lines.append(best_line(rec["trials"], objectives))
    for t in rec["trials"]:
        if t.get("status") == "failed":
            lines.append(f"failed trial {t.get('id')}: {t.get('error')}")
    if rec.get("plot"):
        lines.append(f"plot: {Path(folder) / rec['plot']}")
    return "\n".join(lines)


__all__ = ["ExploreError", "ExploreSettings", "Interrupted", "load_record", "resume_settings",
           "run_exploration", "show", "trial_records", "zoo_points"]
