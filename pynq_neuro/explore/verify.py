"""The second pass over the Pareto front, as Ray tasks: the RTL regression (Verilator fast
path, :mod:`pynq_neuro.rtl.regression`) on the test digits split into shards, and the Yosys
estimate (:mod:`pynq_neuro.rtl.estimate`).

Each shard is a contiguous slice of the digits, simulated by its own run of the one binary
built for the artifact; the shards' classes and logits, put back in order, are those of a
single run over all digits (the core keeps no state from one digit to the next), and they are
compared with the golden model digit by digit. Throughput is the mean interval between
consecutive results within the shards (the steady state; a single run also has the intervals
across shard boundaries, which are of the same kind).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import one_line
from ..fileio import atomic_write_bytes

RESULTS = "results.npz"


@dataclass(frozen=True)
class VerifySettings:
    rtl: bool = True
    estimate: bool = True
    rtl_images: int | None = None       # digits of the regression (None: the whole test split)
    shards: int = 2
    front_limit: int | None = None      # front members verified (None: all)
    estimate_timeout: float | None = None
    build_cpus: int | None = None       # jobs of a Verilator build (None: as the runner decides)
    data_dir: str | None = None


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, nearly equal slices of ``range(n)`` (no empty slice)."""
    shards = max(1, min(shards, n))
    edges = [n * k // shards for k in range(shards + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:])]


# ------------------------------------------------------------------------------------------------
# task bodies (plain functions; :func:`remote` makes Ray tasks of them)


def build_binary(artifact: str, build_root: str, jobs: int) -> str:
    from ..rtl.regression import build_fast

    return str(build_fast(artifact, build_root, jobs=jobs))


def run_shard(exe: str, images: np.ndarray, workdir: str) -> dict[str, np.ndarray]:
    """Simulate one shard; the per-digit classes, logits and result cycles."""
    from ..rtl.regression import run_fast

    res, _ = run_fast(Path(exe), images, workdir)
    if len(res.classes) != len(images) or not np.array_equal(
            res.index, np.arange(len(images)) & 0xFFFF):
        raise RuntimeError(f"{workdir}: {len(res.classes)} results out of sequence for "
                           f"{len(images)} digits")
    return {"classes": res.classes, "logits": res.logits, "result": res.result}


def run_estimate(artifact: str, workdir: str, timeout: float | None) -> dict[str, Any]:
    from ..rtl.estimate import estimate

    r = estimate(artifact, workdir, timeout=timeout)
    return {**r["synthesized"], "fits": r["fits"], "seconds": r["yosys_seconds"],
            "lut_levels": r["lut_levels"]}


def merge(shards: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The shards' classes and logits in digit order and the intervals within each shard."""
    return {"classes": np.concatenate([s["classes"] for s in shards]),
            "logits": np.concatenate([s["logits"] for s in shards]),
            "intervals": np.concatenate([np.diff(s["result"]) for s in shards])}


def remote(fn, cpus: int = 1):
    import ray

    return ray.remote(num_cpus=cpus, max_retries=0)(fn)


# ------------------------------------------------------------------------------------------------
# the front


def _save_results(path: Path, merged: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, classes=merged["classes"], logits=merged["logits"])
    atomic_write_bytes(path, buf.getvalue())


def _rtl_summary(member: dict[str, Any], merged: dict[str, np.ndarray], folder: Path,
                 x: np.ndarray, y: np.ndarray, clock_mhz: float, shards: int) -> dict[str, Any]:
    from ..compiler.artifact import load_artifact
    from ..golden import run

    art = load_artifact(folder / member["files"]["artifact"])
    gold = run(art.network, x)
    bad_class = int(np.sum(merged["classes"] != gold.classes))
    bad_logit = int(np.sum(np.any(merged["logits"] != gold.logits, axis=1)))
    out = folder / member["folder"] / "rtl"
    out.mkdir(parents=True, exist_ok=True)
    _save_results(out / RESULTS, merged)
    iv = merged["intervals"]
    steady = float(iv.mean()) if len(iv) else float("nan")
    return {"digits": int(len(x)), "shards": shards, "class_mismatches": bad_class,
            "logit_mismatches": bad_logit, "passed": bad_class == 0 and bad_logit == 0,
            "accuracy": float(np.mean(merged["classes"] == y)),
            "cycles_per_digit": steady,
            "images_per_s": clock_mhz * 1e6 / steady if len(iv) else None,
            "results": str((out / RESULTS).relative_to(folder))}


def final_figures(member: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The member's figures with the measured ones in place of the modelled ones, and where
    they come from."""
    m = member["metrics"]
    final = {k: m[k] for k in ("accuracy", "synapses", "memory_bits", "images_per_s", "luts")}
    sources = []
    rtl, est = member.get("rtl") or {}, member.get("estimate") or {}
    if rtl.get("passed"):
        if rtl.get("images_per_s") is not None:
            final["images_per_s"] = rtl["images_per_s"]
        if rtl["digits"] == m.get("accuracy_images"):
            final["accuracy"] = rtl["accuracy"]
        sources.append("rtl")
    elif rtl:
        sources.append("RTL MISMATCH")
    if "luts" in est:
        final["luts"] = int(est["luts"])
        sources.append("yosys")
    return final, "+".join(sources) or "model"


def verify_front(front: Sequence[dict[str, Any]], folder: str | Path, settings: VerifySettings,
                 clock_mhz: float, log=print) -> list[dict[str, Any]]:
    """Run the second pass on the front members (Ray tasks, all submitted at once); returns
    the members with ``rtl`` / ``estimate`` (or their ``*_error``) and ``final`` figures."""
    import ray

    from ..compiler.compile import sample_data

    folder = Path(folder)
    members = [dict(m) for m in front]
    chosen = members if settings.front_limit is None else members[: settings.front_limit]
    pending: dict[str, tuple[str, dict[str, Any], Any]] = {}
    build_root = folder / "rtl-build"
    for m in chosen:
        art = folder / m["files"]["artifact"]
        if settings.rtl:
            try:
                data = sample_data(art, path=settings.data_dir)
                n = len(data.images) if settings.rtl_images is None else settings.rtl_images
                x = np.ascontiguousarray(data.images[:n])
                y = data.labels[:n]
                jobs = settings.build_cpus or 1
                exe = remote(build_binary, jobs).remote(str(art), str(build_root), jobs)
                bounds = shard_bounds(len(x), settings.shards)
                refs = [remote(run_shard).remote(exe, x[a:b],
                                                 str(folder / m["folder"] / "rtl" / f"shard-{k}"))
                        for k, (a, b) in enumerate(bounds)]
                pending[f"rtl:{m['id']}"] = ("rtl", m, (refs, x, y, len(bounds)))
            except Exception as e:  # noqa: BLE001 - recorded with the member
                m["rtl_error"] = one_line(e)
        if settings.estimate:
            ref = remote(run_estimate).remote(str(art), str(folder / m["folder"] / "yosys"),
                                              settings.estimate_timeout)
            pending[f"estimate:{m['id']}"] = ("estimate", m, ref)
    start = time.time()
    for key, (kind, m, what) in pending.items():
        try:
            if kind == "rtl":
                refs, x, y, shards = what
                merged = merge(ray.get(refs))
                m["rtl"] = _rtl_summary(m, merged, folder, x, y, clock_mhz, shards)
                r = m["rtl"]
                log(f"  rtl {m['id']}: {r['digits'] - r['class_mismatches']}/{r['digits']} "
                    f"classes and {r['digits'] - r['logit_mismatches']}/{r['digits']} logits "
                    f"match the golden model ({shards} shards)")
            else:
                m["estimate"] = ray.get(what)
                log(f"  yosys {m['id']}: {m['estimate']['luts']} LUTs "
                    f"({m['estimate']['seconds']:.0f} s)")
        except Exception as e:  # noqa: BLE001 - recorded with the member
            m[f"{kind}_error"] = one_line(getattr(e, "cause", None) or e)
            log(f"  {kind} {m['id']} failed: {m[f'{kind}_error']}")
    for m in members:
        m["final"], m["source"] = final_figures(m)
    if pending:
        log(f"second pass: {len(chosen)} front members in {time.time() - start:.0f} s")
    return members


__all__ = ["VerifySettings", "final_figures", "merge", "shard_bounds", "verify_front"]
