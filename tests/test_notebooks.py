"""The notebooks: each ``notebooks/NN_*.py`` (jupytext percent format, the maintained source) holds
the same cells as its ``NN_*.ipynb``, which ships with the outputs of one run; every source is
valid Python and runs top to bottom in a fresh python3 kernel (this interpreter) within its
time budget; the notebooks meant for the board run with torch blocked.

Each notebook runs from a copy of its source in a temporary folder, so that nothing depends on
the notebooks living in the repository. Generated files go to ``$PYNQ_NEURO_BUILD`` (default:
``build/notebooks`` of the checkout, which keeps the Verilator and Icarus builds between runs).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import train_split_available

from pynq_neuro.rtl import have_datapath

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
# Seconds per notebook on two shared cores. With the simulator builds cached, notebooks 3 and 4
# take well under a minute each; the budgets also cover a first run, in which notebook 3 builds
# two Verilator models (the fast path's and the driver simulation's, 2 to 3 minutes each on a
# busy machine) and notebook 4 reuses the second.
BUDGET_S = {
    "01_train_and_quantize": 150,
    "02_compile_and_inspect": 90,
    "03_simulate_rtl": 420,
    "04_board_inference": 150,
}
MAX_NOTEBOOK_BYTES = 1_000_000


def load_runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", NB_DIR / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNNER = load_runner()
NAMES = [p.stem for p in RUNNER.sources()]


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def saved(name: str):
    return nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)


def test_every_notebook_has_a_source_and_a_budget():
    notebooks = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert NAMES == notebooks == sorted(BUDGET_S)
    assert RUNNER.BOARD_NOTEBOOKS <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_source_and_notebook_hold_the_same_cells(name):
    source = jupytext.read(NB_DIR / f"{name}.py")
    nb = saved(name)
    nbformat.validate(nb)
    assert nb.metadata["jupytext"]["formats"] == RUNNER.FORMATS
    assert cells(source) == cells(nb), (
        f"{name}.py and {name}.ipynb differ: edit the .py, then run "
        f"jupytext --sync notebooks/{name}.py and python notebooks/run_notebooks.py {name[:2]}")


def test_cell_comparison_sees_an_edit(tmp_path):
    """The pairing check fails when one cell of the source changes."""
    name = NAMES[0]
    path = tmp_path / f"{name}.py"
    text = (NB_DIR / f"{name}.py").read_text(encoding="utf-8")
    path.write_text(text.replace("import numpy as np", "import numpy", 1), encoding="utf-8")
    assert cells(jupytext.read(path)) != cells(saved(name))


@pytest.mark.parametrize("name", NAMES)
def test_source_is_valid_python(name):
    path = NB_DIR / f"{name}.py"
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
    if importlib.util.find_spec("pyflakes") is not None:
        lint = subprocess.run([sys.executable, "-m", "pyflakes", str(path)],
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("name", NAMES)
def test_saved_outputs_are_one_clean_run(name):
    """The shipped notebook ran top to bottom once, without errors, and holds figures,
    no timings, no kernel versions and no path of the checkout, in under 1 MB."""
    nb = saved(name)
    assert (NB_DIR / f"{name}.ipynb").stat().st_size < MAX_NOTEBOOK_BYTES
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Traceback" not in text and str(REPO) not in text
    pngs = [base64.b64decode(o.data["image/png"]) for o in outputs
            if "image/png" in o.get("data", {})]
    assert pngs and all(p.startswith(b"\x89PNG") for p in pngs)
    assert not [c for c in nb.cells if "execution" in c.metadata]
    assert [c.id for c in nb.cells] == [f"cell-{i:02d}" for i in range(len(nb.cells))]
    assert nb.metadata["language_info"] == {"name": "python"}


def test_board_notebook_output_says_where_it_ran():
    """Notebook 4 is refreshed off the board: its saved output names the stand-in backend."""
    nb = saved("04_board_inference")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")
    backends = {line.split(": ", 1)[1] for line in text.splitlines()
                if line.startswith("backend: ")}
    assert len(backends) == 1, text[:500]
    if backends != {"board"}:
        assert "not on the board" in text


def test_strip_volatile_renumbers_merges_and_drops_timings(tmp_path):
    def stream(name, text):
        return nbformat.v4.new_output("stream", name=name, text=text)

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("print(1)", execution_count=7, outputs=[
            stream("stdout", f"{tmp_path}/a\n"), stream("stdout", "b\n"), stream("stderr", "c\n")]),
        nbformat.v4.new_code_cell("2", execution_count=9, outputs=[nbformat.v4.new_output(
            "execute_result", data={"text/plain": "2"}, execution_count=9)]),
    ])
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
    RUNNER.strip_volatile(nb, tmp_path)
    assert [c.get("execution_count") for c in nb.cells] == [None, 1, 2]
    assert [c.id for c in nb.cells] == ["cell-00", "cell-01", "cell-02"]
    assert nb.cells[2].outputs[0].execution_count == 2
    assert [(o.name, o.text) for o in nb.cells[1].outputs] == [
        ("stdout", "$PYNQ_NEURO_BUILD/a\nb\n"), ("stderr", "c\n")]
    assert "execution" not in nb.cells[1].metadata
    tmp = Path(tempfile.gettempdir()) / "tmpab_12"
    assert RUNNER.local_paths(f"{REPO}/hdl {tmp}/damaged") == "<checkout>/hdl <tmp>/damaged"
    assert nb.metadata["language_info"] == {"name": "python"}
    assert nb.metadata["jupytext"] == {"formats": RUNNER.FORMATS}


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


def run_copy(name: str, folder: Path):
    """Copy the source of ``name`` into ``folder`` and run it there; (notebook, seconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{name}.py"
    shutil.copy(NB_DIR / f"{name}.py", copy)
    nb = RUNNER.read_source(copy)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    seconds = RUNNER.execute(nb, folder, BUDGET_S[name],
                             block_torch=name in RUNNER.BOARD_NOTEBOOKS)
    return nb, seconds


def stream_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, notebook_env):
    if name.startswith("01_") and not train_split_available():
        pytest.skip("notebook 1 trains: the MNIST training split is not available offline")
    try:
        nb, seconds = run_copy(name, notebook_env / "notebooks")
    except CellExecutionError as e:
        pytest.fail(f"{name} failed:\n{e}", pytrace=False)
    print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    assert len(nb.cells) == len(saved(name).cells)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = stream_text(nb)
    assert "Traceback" not in text
    if name.startswith("03_") and shutil.which("verilator") and have_datapath():
        assert "skipped" not in text, "notebook 3 skipped a simulation that can run here"
    assert seconds < BUDGET_S[name], f"{name} took {seconds:.0f} s (budget {BUDGET_S[name]} s)"


@pytest.mark.parametrize("name, expected", [
    ("03_simulate_rtl", "skipped: the Verilator fast path needs"),
    ("04_board_inference", "on 'golden': accuracy"),
])
def test_notebook_without_the_verilog_sources(name, expected, notebook_env, monkeypatch):
    """As from a copied notebooks folder without the checkout: notebook 3 skips its
    simulations with a message, notebook 4 falls back to the golden backend and says that
    it did not run on the board."""
    monkeypatch.setenv("PYNQ_NEURO_HDL", str(notebook_env / "no_hdl"))
    monkeypatch.delenv("PYNQ_NEURO_BACKEND", raising=False)
    try:
        nb, _ = run_copy(name, notebook_env)
    except CellExecutionError as e:
        pytest.fail(f"{name} failed without the Verilog sources:\n{e}", pytrace=False)
    text = stream_text(nb)
    assert expected in text
    if name.startswith("04_"):
        assert "not on the board: the 'golden' backend" in text


DATASET_LINE = 'DATASET = "mnist"'


@pytest.mark.parametrize("name", NAMES)
def test_one_variable_chooses_the_data(name):
    """Each notebook names its data once, MNIST by default, and reads no data around it."""
    source = (NB_DIR / f"{name}.py").read_text(encoding="utf-8")
    assert source.count(DATASET_LINE) == 1
    assert "load_mnist" not in source and "load_dataset(" in source
    first = next(c for c in jupytext.read(NB_DIR / f"{name}.py").cells if c.cell_type == "code")
    assert DATASET_LINE in first.source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_reads_the_dataset_it_is_given(name, notebook_env):
    """With ``DATASET`` set to an ``.npz``, the cells up to the data load read that file."""
    rng = np.random.default_rng(7)
    arrays = {"images": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
              "labels": rng.integers(0, 10, 40).astype(np.uint8),
              "train_images": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, 60).astype(np.uint8)}
    data = notebook_env / "digits.npz"
    np.savez(data, **arrays)
    nb = RUNNER.read_source(NB_DIR / f"{name}.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    last = next(i for i, c in enumerate(code) if "x_test, y_test = " in c.source)
    code[0].source = code[0].source.replace(DATASET_LINE, f"DATASET = {str(data)!r}")
    check = ("import json\n"
             "print('SEEN', json.dumps([len(x_test), int(y_test.sum()), int(x_test.sum()),"
             " len(globals().get('x_train', []))]))")
    nb.cells = code[:last + 1] + [nbformat.v4.new_code_cell(check)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    RUNNER.execute(nb, notebook_env, 120, block_torch=name in RUNNER.BOARD_NOTEBOOKS)
    seen = [line for line in stream_text(nb).splitlines() if line.startswith("SEEN ")]
    assert seen == ["SEEN " + json.dumps([40, int(arrays["labels"].sum()),
                                          int(arrays["images"].sum()),
                                          60 if name.startswith("01_") else 0])]


def test_torch_blocker_blocks(notebook_env):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    with pytest.raises(CellExecutionError, match="torch is blocked"):
        RUNNER.execute(nb, notebook_env, 60, block_torch=True)
    assert len(nb.cells) == 1  # the blocker cell is removed again


def test_confusion_matrix_counts_and_refuses_bad_input():
    from pynq_neuro.plots import PlotInputError, confusion_matrix

    truth = [0, 1, 1, 2, 9]
    cm = confusion_matrix(truth, [0, 1, 2, 2, 3])
    assert cm.sum() == 5 and cm[1, 2] == 1 and cm[9, 3] == 1 and np.trace(cm) == 3
    with pytest.raises(PlotInputError, match="5 labels but 4 predictions"):
        confusion_matrix(truth, [0, 1, 2, 2])
    with pytest.raises(PlotInputError, match="0..9"):
        confusion_matrix(truth, [0, 1, 2, 2, 10])
