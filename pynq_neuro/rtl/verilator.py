"""The one place that says how ``verilator --binary`` builds a bench of ``neuro_core`` and
how a build's cache key is derived from its sources (standard library only).

Both the regression bench (:mod:`pynq_neuro.rtl.regression`) and the driver's co-simulation
bench (:mod:`pynq_neuro.driver.sim_bus`) use these.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

# Verilator 5.006: fast X handling (the core resets what it reads), lint warnings are the
# linters' job, not the build's.
BASE_FLAGS = ("--binary", "-O3", "--x-assign", "fast", "--x-initial", "fast",
              "-Wno-fatal", "-Wno-lint", "-Wno-style")
# Verilator 5.006's data-flow optimization turns buses assembled from many per-lane part
# selects into chains of wide concatenations that are rebuilt every cycle (5x slower on the
# 128-lane layers).
NO_DFG = ("-fno-dfg",)
KEY_CHARS = 16  # hex digits of a build key


def command(verilator: str, *, top: str, mdir: str | Path, exe: str | Path,
            includes: Sequence[str | Path], defines: Sequence[str], sources: Sequence[str | Path],
            jobs: int = 2, opt: str = "-O2", threads: int = 1,
            extra_args: Sequence[str] = NO_DFG) -> list[str]:
    """The ``verilator`` command line of one bench (``defines``: ``NAME=VALUE`` strings)."""
    return [verilator, *BASE_FLAGS, "--top-module", top, "-Mdir", str(mdir), "-o", str(exe),
            *(f"-I{d}" for d in includes), *(f"-D{d}" for d in defines),
            "-j", str(jobs), "--build-jobs", str(jobs),
            "-MAKEFLAGS", f"OPT_FAST={opt} OPT_SLOW=-O1 OPT_GLOBAL=-O1",
            *(["--threads", str(threads)] if threads > 1 else []), *extra_args,
            *map(str, sources)]


def hash_files(h: "hashlib._Hash", paths: Sequence[Path]) -> "hashlib._Hash":
    """Add each file's name and content to ``h``; returns ``h``."""
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h


def files_key(paths: Sequence[Path], extra: str = "") -> str:
    """Build key of a set of source files and the options in ``extra``."""
    return hash_files(hashlib.sha256(extra.encode()), paths).hexdigest()[:KEY_CHARS]


def build_once(out: Path, product: str, build: Callable[[Path], None]) -> Path:
    """``out/product``, built by ``build(folder)`` unless it is there already.

    The build runs in a new hidden sibling folder, which is then renamed to ``out``: a folder
    under the key is always a finished build, and processes that build the same key at once
    each finish (the first rename wins, the others discard their copy). A failed build keeps
    its folder for the log that ``build`` names in its error."""
    exe = out / product
    if exe.exists():
        return exe
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    build(tmp)
    try:
        tmp.rename(out)
    except OSError:  # built by another process in the meantime: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not exe.exists():
            raise
    return exe


__all__ = ["BASE_FLAGS", "KEY_CHARS", "NO_DFG", "build_once", "command", "files_key",
           "hash_files"]
