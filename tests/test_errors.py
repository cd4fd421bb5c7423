"""Every error class of the package derives from :class:`pynq_neuro.errors.PynqNeuroError`
and keeps its built-in base, so both ``except PynqNeuroError`` and ``except ValueError`` /
``except RuntimeError`` catch it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pynq_neuro
from pynq_neuro.errors import PynqNeuroError

pytest.importorskip("torch")

# modules that are not part of the importable package (the notebooks folder is package data)
SKIP = {"pynq_neuro.notebooks", "pynq_neuro.__main__"}
# error classes (by name) of the overlay checks and the plots, which still derive from a
# built-in base alone
NOT_YET: set[str] = set()


def package_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(pynq_neuro.__path__, "pynq_neuro."):
        if not any(info.name == s or info.name.startswith(s + ".") for s in SKIP):
            names.append(info.name)
    return names


def package_errors() -> dict[str, type[BaseException]]:
    errors = {}
    for name in package_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, Exception) and not issubclass(obj, Warning)
                    and obj.__module__ == name):
                errors[f"{name}.{obj.__qualname__}"] = obj
    return errors


def test_walk_finds_the_package_errors():
    errors = package_errors()
    for name in ("pynq_neuro.data.idx.DataError", "pynq_neuro.compiler.limits.CoreLimitError",
                 "pynq_neuro.driver.errors.DmaTimeout", "pynq_neuro.train.TrainingError",
                 "pynq_neuro.driver.golden_bus.GoldenModelError", "pynq_neuro.rtl.RtlError"):
        assert name in errors
    assert NOT_YET <= {cls.__name__ for cls in errors.values()}, "update NOT_YET"


def test_every_error_class_derives_from_the_base():
    errors = package_errors()
    missing = sorted(n for n, cls in errors.items()
                     if cls.__name__ not in NOT_YET and not issubclass(cls, PynqNeuroError))
    assert missing == []


@pytest.mark.parametrize("name, builtin", [
    ("pynq_neuro.compiler.artifact.ArtifactError", ValueError),
    ("pynq_neuro.compiler.limits.CoreLimitError", ValueError),
    ("pynq_neuro.compiler.folding.BudgetError", ValueError),
    ("pynq_neuro.compiler.compile.HardwareMismatchError", ValueError),
    ("pynq_neuro.golden.network.NetworkError", ValueError),
    ("pynq_neuro.fileio.UnsafeFileError", ValueError),
    ("pynq_neuro.train.CheckpointError", ValueError),
    ("pynq_neuro.train.TrainingError", ValueError),
    ("pynq_neuro.driver.errors.InputError", ValueError),
    ("pynq_neuro.driver.errors.DriverError", RuntimeError),
    ("pynq_neuro.driver.errors.DmaTimeout", RuntimeError),
    ("pynq_neuro.rtl.RtlError", RuntimeError),
])
def test_errors_keep_their_builtin_base(name, builtin):
    cls = package_errors()[name]
    assert issubclass(cls, builtin) and issubclass(cls, PynqNeuroError)


def test_cli_reports_any_project_error_in_one_line(capsys):
    from pynq_neuro.cli import guard

    class Odd(PynqNeuroError):
        pass

    def body() -> int:
        raise Odd("the thing is broken\n  here")

    assert guard(body) == 2
    err = capsys.readouterr().err
    assert err == "pynq-neuro: error: the thing is broken here\n"
