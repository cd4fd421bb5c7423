"""Packaging: the extras install what the code imports, constraints.txt pins versions inside
setup.py's ranges, the board extra accepts the PYNQ-Z2 image (pynq 3.0.1, Python 3.10), the
code stays compatible with Python 3.10, and scripts/setup.sh is idempotent."""

from __future__ import annotations

import ast
import os
import re
import runpy
import shutil
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# The PYNQ-Z2 image v3.0.1
BOARD_PYNQ = Version("3.0.1")
BOARD_PYTHON = "3.10"
# Exact pins allowed in setup.py, each with the reason in a comment next to it
EXACT_PINS = {"cocotbext-axi"}
# The code that must run on Python 3.10 (the board image, the oldest host supported)
PY310_PATHS = ["pynq_neuro", "tests", "sim", "benchmarks", "scripts", "notebooks", "setup.py"]


@pytest.fixture(scope="module")
def setup_args() -> dict:
    """The keyword arguments setup.py passes to ``setuptools.setup``."""
    captured: dict = {}
    real = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real
    return captured


@pytest.fixture(scope="module")
def constraints() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for n, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"line {n}: {line!r} is no pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"line {n}: {req.name} pinned twice"
        pins[name] = Version(specs[0].version)
    return pins


def requirements(args: dict) -> dict[str, list[Requirement]]:
    groups = {"": args["install_requires"]} | args["extras_require"]
    return {g: [Requirement(r) for r in reqs] for g, reqs in groups.items()}


def test_setup_gives_ranges_and_constraints_pin_inside_them(setup_args, constraints):
    for group, reqs in requirements(setup_args).items():
        for req in reqs:
            name = canonicalize_name(req.name)
            exact = any(s.operator in ("==", "===") for s in req.specifier)
            assert exact == (name in EXACT_PINS), f"[{group}] {req}: a range is expected"
            assert req.specifier, f"[{group}] {req}: no version range"
            assert name in constraints, f"[{group}] {req.name} is not pinned in constraints.txt"
            assert req.specifier.contains(constraints[name], prereleases=True), \
                f"[{group}] constraints.txt pins {req.name}=={constraints[name]} outside {req}"


def test_exact_pins_say_why():
    text = (ROOT / "setup.py").read_text()
    for name in EXACT_PINS:
        line = next(i for i, ln in enumerate(text.splitlines()) if f'"{name}==' in ln)
        before = text.splitlines()[max(0, line - 3):line]
        assert any(ln.strip().startswith("#") for ln in before), f"{name} is pinned without a reason"
    # the reason is still true: the simulation calls cocotbext-axi's private reset handler
    assert "._handle_reset(" in (ROOT / "sim" / "cosim_server.py").read_text()


def test_constraints_pin_the_installed_torch_without_cuda(constraints):
    # torch==X matches the local CPU build X+cpu; a local label in the pin would need its index
    assert constraints["torch"].local is None
    try:
        installed = Version(metadata.version("torch"))
    except metadata.PackageNotFoundError:
        pytest.skip("torch is not installed")
    assert installed.public == str(constraints["torch"])
    cuda = [r for r in metadata.requires("torch") or [] if r.startswith("nvidia-")]
    assert not cuda, f"a CUDA build of torch is installed ({installed}: {cuda[:2]} ...)"


def test_board_extra_installs_on_the_pynq_z2_image(setup_args):
    extras = setup_args["extras_require"]
    board = [Requirement(r) for r in extras["board"]]
    assert [canonicalize_name(r.name) for r in board] == ["pynq"]
    assert board[0].specifier.contains(BOARD_PYNQ), f"{board[0]} refuses the image's pynq"
    assert SpecifierSet(setup_args["python_requires"]).contains(BOARD_PYTHON)
    # the host extra runs pynq's classes off the board (the installed pynq 4)
    host = [Requirement(r) for r in extras["pynq-host"]]
    assert [canonicalize_name(r.name) for r in host] == ["pynq"]
    assert not host[0].specifier.contains(BOARD_PYNQ)


def test_pynq_loads_the_board_driver(setup_args):
    # pynq imports the modules of this group before it assigns drivers to a new overlay
    drivers = [e.replace(" ", "") for e in setup_args["entry_points"]["pynq.lib"]]
    assert drivers == ["pynq-neuro=pynq_neuro.driver.board"]


def imported_modules(package: Path) -> dict[str, str]:
    """Top-level modules imported anywhere in ``package`` (absolute imports) -> a file."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared(setup_args):
    declared = {canonicalize_name(r.name) for reqs in requirements(setup_args).values()
                for r in reqs}
    dists = metadata.packages_distributions()
    missing = []
    for module, where in imported_modules(ROOT / "pynq_neuro").items():
        if module in sys.stdlib_module_names or module == "pynq_neuro":
            continue
        names = {canonicalize_name(d) for d in dists.get(module, [])}
        if not names:
            missing.append(module)
            continue
        assert names & declared, f"{where} imports {module} ({', '.join(sorted(names))}), " \
                                 f"which setup.py does not declare"
    if missing:
        pytest.skip(f"not installed, so not mapped to a distribution: {', '.join(missing)} "
                    f"(make setup-sim installs every extra)")


def vermin() -> str:
    exe = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    if exe is None:
        pytest.skip("vermin is not installed (pip install -e .[dev])")
    return exe


def run_vermin(*paths: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([vermin(), f"-t={BOARD_PYTHON}-", "--no-tips", "--violations",
                           "--eval-annotations", "-q", *map(str, paths)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_vermin_refuses_python_311_code(tmp_path):
    newer = tmp_path / "newer.py"
    newer.write_text("import tomllib\n\n\ndef f() -> None:\n    try:\n        pass\n"
                     "    except* ValueError:\n        pass\n")
    r = run_vermin(newer)
    assert r.returncode != 0 and "tomllib" in r.stdout, r.stdout + r.stderr


def test_code_runs_on_python_310():
    r = run_vermin(*PY310_PATHS)
    assert r.returncode == 0, f"not compatible with Python {BOARD_PYTHON}:\n{r.stdout}{r.stderr}"


def test_makefile_asks_for_extras_setup_defines(setup_args):
    extras = set(setup_args["extras_require"])
    asked = re.findall(r"EXTRAS=([\w,-]+)", (ROOT / "Makefile").read_text())
    assert asked, "the Makefile installs no extras"
    for group in asked:
        unknown = set(group.split(",")) - extras
        assert not unknown, f"the Makefile asks for unknown extras {sorted(unknown)}"


def fake_checkout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """setup.py, constraints.txt and scripts/setup.sh in ``tmp_path``, with a virtual
    environment whose python only records how it was called."""
    (tmp_path / "scripts").mkdir()
    for name in ("setup.py", "constraints.txt", "scripts/setup.sh"):
        shutil.copy(ROOT / name, tmp_path / name)
    log = tmp_path / "calls.log"
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path / "scripts" / "setup.sh", log, tmp_path / "constraints.txt"


def test_setup_script_installs_with_constraints_once(tmp_path):
    script, log, pins = fake_checkout(tmp_path)
    env = {**os.environ, "VENV": "venv", "EXTRAS": "train,dev", "APT_PACKAGES": ""}

    def setup() -> list[str]:
        before = log.read_text().splitlines() if log.exists() else []
        r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return log.read_text().splitlines()[len(before):] if log.exists() else []

    calls = setup()
    install = [c for c in calls if c.startswith("-m pip install")]
    assert len(install) == 1 and "-c constraints.txt" in install[0]
    assert install[0].endswith("-e .[train,dev]")
    assert setup() == []  # nothing changed: nothing to do
    env["EXTRAS"] = "dev"
    assert setup() == []  # already installed
    env["EXTRAS"] = "sim"
    assert [c for c in setup() if "pip" in c][0].endswith("-e .[dev,sim,train]")
    pins.write_text(pins.read_text() + "# changed\n")
    assert any("pip install" in c for c in setup())  # the constraints are part of the stamp
