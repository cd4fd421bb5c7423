"""One trial of an exploration: train, prune, evaluate with the golden model, compile.

:func:`run_trial` is the body of the Ray Tune trainable (:func:`trainable`). It works in the
trial's folder ``DIR/trials/TRIAL_ID/`` (``model.pt`` / ``model.npz``, the pruned
``pruned.pt`` / ``pruned.npz``, ``artifact/``, ``log.txt``) and ends with ``trial.json``
(:func:`write_record`), whether the trial succeeded or failed; a failure is raised again so
that Ray and the sampler record it as failed.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import one_line
from ..fileio import atomic_write_json
from .space import DesignPoint, SearchSpace, design_point

TRIAL_RECORD = "trial.json"
TRIALS = "trials"


@dataclass(frozen=True)
class TrialSettings:
    """What every trial shares (the exploration's options)."""

    folder: str                     # the exploration folder (absolute)
    space: SearchSpace
    images: int | None = None       # test digits of the accuracy (None: all)
    threads: int = 1                # torch threads per trial
    seed: int = 0
    sample_digits: int = 1000       # digits of the folding search and the cycle model
    data_dir: str | None = None


def trial_folder(folder: str | Path, trial_id: str) -> Path:
    return Path(folder) / TRIALS / trial_id


def write_record(path: Path, record: dict[str, Any]) -> None:
    atomic_write_json(path / TRIAL_RECORD, record, indent=1)


def memory_bits(manifest: dict[str, Any]) -> int:
    """Bits of every memory bank of the core (depth times width)."""
    return int(sum(m["depth"] * m["width"] for m in manifest["memories"]))


def _log_to(path: Path) -> Callable[[str], None]:
    def log(message: str) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(message.rstrip("\n") + "\n")
    return log


def build(point: DesignPoint, settings: TrialSettings, out: Path,
          log: Callable[[str], None]) -> dict[str, Any]:
    """Train, prune, evaluate and compile ``point`` into ``out``; returns the metrics and the
    files (paths relative to the exploration folder)."""
    import torch

    from ..compiler.compile import CompileConfig, compile_network
    from ..compiler.mapping import Folding
    from ..compiler.resources import Budget
    from ..evaluation import evaluate
    from ..models import ModelConfig
    from ..train import TrainConfig, train

    torch.set_num_threads(settings.threads)
    tr = settings.space.training
    model_cfg = ModelConfig(family=point.family, channels=point.channels, taps=point.taps,
                            strides=point.strides, wbits=point.wbits, abits=point.abits,
                            input_bits=point.input_bits)
    cfg = TrainConfig(epochs=tr["epochs"], lr=tr["lr"], batch_size=tr["batch_size"],
                      seed=settings.seed, threads=settings.threads,
                      train_images=tr["train_images"], data_dir=settings.data_dir)
    start = time.perf_counter()
    if tr.get("warm_epochs") and model_cfg.wbits is not None:
        # a full-precision warm start: UniQ's steps are initialised from its weights
        float_cfg = replace(model_cfg, wbits=None, abits=None)
        train(float_cfg, replace(cfg, epochs=tr["warm_epochs"], lr=None),
              out / "float.pt", log=log, progress=False,
              command=f"pynq-neuro explore warm start ({point.describe()})")
        cfg = replace(cfg, warm_start=str(out / "float.pt"))
    ckpt = train(model_cfg, cfg, out / "model.pt", log=log, progress=False,
                 command=f"pynq-neuro explore ({point.describe()})")
    npz = out / "model.npz"
    if point.pruned:
        from ..compress.factorize import compress

        spec: dict[str, Any] = {"pass": "prune", "sparsity": list(point.sparsity)}
        if point.lanes is not None:
            spec.update(lanes=list(point.lanes), approximate=True)
        ckpt = compress(ckpt, [spec], finetune_epochs=tr["finetune_epochs"],
                        threads=settings.threads, train_images=tr["train_images"],
                        seed=settings.seed, data_dir=settings.data_dir,
                        output=out / "pruned.pt", log=log, progress=False,
                        command=f"pynq-neuro explore prune ({point.describe()})")
        npz = out / "pruned.npz"
    train_seconds = time.perf_counter() - start
    acc = evaluate(str(npz), settings.images, settings.data_dir, log=log)
    sp = settings.space
    ccfg = CompileConfig(
        target_images_per_s=sp.target_images_per_s,
        budget=Budget(luts=point.luts, clock_mhz=sp.clock_mhz),
        foldings=None if point.foldings is None else [Folding(g, p) for g, p in point.foldings],
        sample_digits=settings.sample_digits)
    manifest = compile_network(str(npz), out / "artifact", ccfg, data=settings.data_dir,
                               log=log)
    perf = manifest["performance"]
    root = Path(settings.folder)
    return {
        "metrics": {
            "accuracy": acc["accuracy"],
            "synapses": int(manifest["network"]["synapses"]),
            "memory_bits": memory_bits(manifest),
            "images_per_s": float(perf["cycle_model"]["images_per_s"]),
            "luts": int(perf["resources_estimate"]["total"]["luts"]),
            "bram36": float(perf["resources_estimate"]["total"]["bram36"]),
            "cycles_per_digit": float(perf["cycle_model"]["cycles_per_digit"]),
            "accuracy_images": acc["images"],
            "torch_accuracy": float(ckpt["metrics"]["test_accuracy"]),
            "train_seconds": train_seconds,
        },
        "foldings": perf["foldings"],
        "files": {"checkpoint": str((out / npz.with_suffix(".pt").name).relative_to(root)),
                  "network": str(npz.relative_to(root)),
                  "artifact": str((out / "artifact").relative_to(root))},
    }


def run_trial(config: dict[str, Any], settings: TrialSettings, trial_id: str,
              report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Build one design point in its trial folder (emptied first: a restarted trial begins
    again), write ``trial.json`` and ``report`` the objectives; returns the record."""
    out = trial_folder(settings.folder, trial_id)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = _log_to(out / "log.txt")
    start = time.time()
    record: dict[str, Any] = {"id": trial_id, "config": dict(config), "status": "running",
                              "started": start, "folder": str(out.relative_to(settings.folder))}
    write_record(out, record)
    try:
        point = design_point(config, settings.space)
        record["design"] = {**asdict(point), "description": point.describe()}
        built = build(point, settings, out, log)
    except Exception as e:  # noqa: BLE001 - recorded, then raised again for Ray and the sampler
        record.update(status="failed", error=f"{type(e).__name__}: {one_line(e)}",
                      seconds=time.time() - start)
        log(f"failed: {record['error']}")
        write_record(out, record)
        raise
    record.update(status="done", seconds=time.time() - start, **built)
    record["objectives"] = {k: built["metrics"][k] for k in settings.space.objectives}
    write_record(out, record)
    report(built["metrics"])
    return record


def trainable(config: dict[str, Any], settings: TrialSettings) -> None:
    """The Ray Tune function trainable (``tune.with_parameters(trainable, settings=...)``)."""
    from ray import tune

    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    trial_id = tune.get_context().get_trial_id()
    run_trial(config, settings, trial_id, tune.report)


__all__ = ["TRIAL_RECORD", "TrialSettings", "memory_bits", "run_trial", "trainable",
           "trial_folder", "write_record"]
