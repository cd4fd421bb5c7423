"""The notebooks: generated from ``notebooks/build_notebooks.py`` without outputs, and each one
runs top to bottom in a fresh python3 kernel (this interpreter) within its time budget; the
notebooks meant for the board run with torch blocked.

Each notebook runs from a copy in a temporary folder, so that nothing depends on the notebooks
living in the repository. Generated files go to ``$PYNQ_NEURO_BUILD`` (default: ``build/notebooks``
of the checkout, which keeps the Verilator and Icarus builds between runs).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import train_split_available

from pynq_neuro.rtl import have_datapath

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
# Seconds per notebook on two shared cores. With the simulator builds cached, notebooks 3 and 4
# take well under a minute each; the budgets also cover a first run, in which notebook 3 builds
# two Verilator models (the fast path's and the driver simulation's, 2 to 3 minutes each on a
# busy machine) and notebook 4 reuses the second.
BUDGET_S = {
    "01_train_and_quantize.ipynb": 150,
    "02_compile_and_inspect.ipynb": 90,
    "03_simulate_rtl.ipynb": 420,
    "04_board_inference.ipynb": 150,
}


# Notebooks that run on the board, where there is no torch: they run with torch blocked.
BOARD_NOTEBOOKS = {"02_compile_and_inspect.ipynb", "04_board_inference.ipynb"}
NO_TORCH = """\
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked: this notebook must run on the board")
sys.meta_path.insert(0, _NoTorch())
assert "torch" not in sys.modules"""


def notebook_names() -> list[str]:
    return sorted(p.name for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))


def load_generator():
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  NB_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_has_a_budget_and_a_source():
    names = notebook_names()
    assert names == sorted(BUDGET_S)
    assert sorted(load_generator().NOTEBOOKS) == names


def test_committed_notebooks_match_their_source(capsys):
    assert load_generator().main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("name", notebook_names())
def test_committed_notebooks_have_no_outputs(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.fixture
def notebook_env(monkeypatch, tmp_path):
    """The kernel inherits this environment: one thread, no GUI backend, a build folder that
    keeps the simulator builds between runs."""
    monkeypatch.setenv("PYNQ_NEURO_BUILD",
                       os.environ.get("PYNQ_NEURO_BUILD", str(REPO / "build" / "notebooks")))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return tmp_path


def execute(path: Path, timeout: int, block_torch: bool = False
            ) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(path, as_version=4)
    if block_torch:
        nb.cells.insert(0, nbformat.v4.new_code_cell(NO_TORCH))
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


@pytest.mark.parametrize("name", notebook_names())
def test_notebook_runs(name, notebook_env):
    if name.startswith("01_") and not train_split_available():
        pytest.skip("notebook 1 trains: the MNIST training split is not available offline")
    copy = notebook_env / "notebooks" / name
    copy.parent.mkdir()
    shutil.copy(NB_DIR / name, copy)
    budget = BUDGET_S[name]
    try:
        nb, seconds = execute(copy, budget, block_torch=name in BOARD_NOTEBOOKS)
    except CellExecutionError as e:
        pytest.fail(f"{name} failed:\n{e}", pytrace=False)
    print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Traceback" not in text
    if name.startswith("03_") and shutil.which("verilator") and have_datapath():
        assert "skipped" not in text, "notebook 3 skipped a simulation that can run here"
    assert seconds < budget, f"{name} took {seconds:.0f} s (budget {budget} s)"


@pytest.mark.parametrize("name, expected", [
    ("03_simulate_rtl.ipynb", "skipped: the Verilator fast path needs"),
    ("04_board_inference.ipynb", "on 'golden': accuracy"),
])
def test_notebook_without_the_verilog_sources(name, expected, notebook_env, monkeypatch):
    """As from a copied notebooks folder without the checkout: notebook 3 skips its
    simulations with a message, notebook 4 falls back to the golden backend."""
    monkeypatch.setenv("PYNQ_NEURO_HDL", str(notebook_env / "no_hdl"))
    monkeypatch.delenv("PYNQ_NEURO_BACKEND", raising=False)
    copy = notebook_env / name
    shutil.copy(NB_DIR / name, copy)
    try:
        nb, _ = execute(copy, BUDGET_S[name], block_torch=name in BOARD_NOTEBOOKS)
    except CellExecutionError as e:
        pytest.fail(f"{name} failed without the Verilog sources:\n{e}", pytrace=False)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")
    assert expected in text


def test_torch_blocker_blocks(notebook_env):
    path = notebook_env / "blocked.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="torch is blocked"):
        execute(path, 60, block_torch=True)


def test_confusion_matrix_counts_and_refuses_bad_input():
    from pynq_neuro.plots import PlotInputError, confusion_matrix

    truth = [0, 1, 1, 2, 9]
    cm = confusion_matrix(truth, [0, 1, 2, 2, 3])
    assert cm.sum() == 5 and cm[1, 2] == 1 and cm[9, 3] == 1 and np.trace(cm) == 3
    with pytest.raises(PlotInputError, match="5 labels but 4 predictions"):
        confusion_matrix(truth, [0, 1, 2, 2])
    with pytest.raises(PlotInputError, match="0..9"):
        confusion_matrix(truth, [0, 1, 2, 2, 10])
