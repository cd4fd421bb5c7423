"""Run the notebooks from their percent-format sources and save the outputs in the ``.ipynb`` files.

Each ``NN_*.py`` (the maintained source, paired with ``NN_*.ipynb`` by jupytext) runs top to
bottom in a fresh ``python3`` kernel; the notebooks meant for the board run with torch blocked.
The saved notebooks keep their outputs (text, tables, PNG figures) but no volatile metadata
(timings, kernel versions), so that a refresh gives a small diff. ``PYNQ_NEURO_BUILD`` defaults
to ``build/notebooks`` of the checkout, which keeps the simulator builds between runs; in the
saved text that folder reads ``$PYNQ_NEURO_BUILD``, the checkout ``<checkout>``.

    python notebooks/run_notebooks.py                 # all four
    python notebooks/run_notebooks.py 02 04           # the notebooks whose names start so
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
FORMATS = "ipynb,py:percent"
PNG_DPI = 72  # inline figures at screen resolution keep each notebook well under 1 MB

# Notebooks that run on the board, where there is no torch: they run with torch blocked.
BOARD_NOTEBOOKS = frozenset({"02_compile_and_inspect", "04_board_inference"})
NO_TORCH = """\
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked: this notebook must run on the board")
sys.meta_path.insert(0, _NoTorch())
assert "torch" not in sys.modules"""
INLINE_DPI = f"""\
import matplotlib
matplotlib.rcParams["figure.dpi"] = {PNG_DPI}"""


def sources() -> list[Path]:
    """The percent-format sources, ``NN_*.py``, in order."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def read_source(path: Path) -> nbformat.NotebookNode:
    """The notebook held by a percent-format source."""
    return jupytext.read(path, fmt="py:percent")


def execute(nb: nbformat.NotebookNode, folder: Path, timeout: int, block_torch: bool = False,
            setup: tuple[str, ...] = ()) -> float:
    """Run ``nb`` in place in a fresh kernel working in ``folder``; the seconds it took.

    ``setup`` cells (and the torch blocker) run first and are removed again afterwards.
    """
    extra = ([NO_TORCH] if block_torch else []) + list(setup)
    for i, text in enumerate(extra):
        nb.cells.insert(i, nbformat.v4.new_code_cell(text))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        del nb.cells[:len(extra)]
    return time.perf_counter() - start


def merge_streams(outputs: list) -> list:
    """Consecutive stdout (or stderr) outputs as one: how a kernel splits them depends on timing."""
    merged: list = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.output_type == "stream" and prev is not None and prev.output_type == "stream"
                and prev.name == out.name):
            prev.text += out.text
        else:
            merged.append(out)
    return merged


def local_paths(text: str, build: Path | None = None) -> str:
    """``text`` with the paths of this machine as names: the build folder, the checkout, and
    temporary folders."""
    if build is not None:
        text = text.replace(str(build), "$PYNQ_NEURO_BUILD")
    text = text.replace(str(HERE.parent), "<checkout>")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/tmp\w+", "<tmp>", text)


def strip_volatile(nb: nbformat.NotebookNode, build: Path | None = None) -> None:
    """Number the cells (ids by position, executed cells from 1), merge split streams, drop
    timings and kernel versions, and name local paths in text outputs (see ``local_paths``)."""
    count = 0
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # ids by position: a refresh keeps them
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        cell.outputs = merge_streams(cell.outputs)
        for out in cell.outputs:
            if "execution_count" in out:
                out.execution_count = count
            if out.output_type == "stream":
                out.text = local_paths(out.text, build)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["jupytext"] = {"formats": FORMATS}


def refresh(source: Path, timeout: int = 900) -> Path:
    """Run ``source`` and write its ``.ipynb`` with the outputs; the path written."""
    nb = read_source(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    target = source.with_suffix(".ipynb")
    with tempfile.TemporaryDirectory() as tmp:
        seconds = execute(nb, Path(tmp), timeout, block_torch=source.stem in BOARD_NOTEBOOKS,
                          setup=(INLINE_DPI,))
    strip_volatile(nb, Path(os.environ["PYNQ_NEURO_BUILD"]))
    nbformat.validate(nb)
    tmp_path = target.with_name(f".{target.name}.tmp")
    with open(tmp_path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_path, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    print(f"{target.name}: {seconds:.0f} s, {target.stat().st_size / 1024:.0f} KiB")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose names start so")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYNQ_NEURO_BUILD", str(HERE.parent / "build" / "notebooks"))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend saves the figures
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    chosen = [p for p in sources()
              if not args.prefixes or any(p.name.startswith(s) for s in args.prefixes)]
    if not chosen:
        print(f"run_notebooks: no notebook matches {args.prefixes}", file=sys.stderr)
        return 2
    for source in chosen:
        refresh(source, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
