"""What every ``pynq-neuro`` subcommand shares (standard library only): the argument types
that check numeric options, the parser whose errors are one line, the :class:`Command`
record each subcommand module exports, and :func:`guard`, the error contract (see
:mod:`pynq_neuro.cli`).
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import traceback
import zipfile
from dataclasses import dataclass
from typing import Callable, NoReturn

from .errors import PynqNeuroError, one_line

DEBUG_ENV = "PYNQ_NEURO_DEBUG"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
PROG = "pynq-neuro"


# ------------------------------------------------------------------------------------------------
# argument types: every numeric option is checked by the parser


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """Argument type: an integer in ``lo..hi`` (no upper limit for ``hi=None``)."""
    what = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"

    def parse(text: str) -> int:
        v = _integer(text, what)
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    parse.__name__ = "integer"
    return parse


def int_list(lo: int, hi: int | None = None) -> Callable[[str], tuple[int, ...]]:
    """Argument type: comma-separated integers, each in ``lo..hi``."""
    what = f"integers >= {lo}" if hi is None else f"integers in {lo}..{hi}"

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            values = ()
        if not values or any(v < lo or (hi is not None and v > hi) for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        return values

    parse.__name__ = "integer list"
    return parse


def real(lo: float = 0.0, *, inclusive: bool = False) -> Callable[[str], float]:
    """Argument type: a finite number above ``lo`` (from ``lo`` on with ``inclusive``)."""
    what = f"a finite number {'>=' if inclusive else '>'} {lo:g}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(v) or v < lo or (v == lo and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    parse.__name__ = "number"
    return parse


count = int_range(1)            # digits, images, epochs, sizes: at least one
natural = int_range(0)          # at least zero
positive = real(0.0)            # finite and > 0 (clocks, targets, rates, timeouts)
non_negative = real(0.0, inclusive=True)
seed = int_range(0, 2**64 - 1)  # what torch's generators take
threads = int_range(1, 256)
bits = int_range(1, 8)          # weight, activation and pixel bits (quantizers and core)


def add_max_shift(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The ``--max-shift`` option of the training commands (``train``, ``compress``)."""
    group.add_argument("--max-shift", type=int_range(0, 27),
                       help="augmentation: max translation (px, 0..27; default: the dataset's "
                            "recommendation, 2 for handwritten digits, else 0)")


# ------------------------------------------------------------------------------------------------
# parser and subcommands


class CliParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command:
    ``pynq-neuro: error: SUBCOMMAND: message``, exit status 2 (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"{PROG}: error: {where}{' '.join(message.split())}\n")


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_parser(sub)`` adds its parser to the main parser's sub-parsers,
    ``run(args)`` executes it and returns the exit status (errors are raised, for
    :func:`guard` to report). ``args.argv`` holds the words of the whole command line."""

    name: str
    add_parser: Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


def build_parser(commands: "list[Command] | tuple[Command, ...]",
                 description: str | None = None, version: str | None = None) -> CliParser:
    """The main parser with one sub-parser per command."""
    parser = CliParser(prog=PROG, description=description)
    if version is not None:
        parser.add_argument("--version", action="version", version=f"{PROG} {version}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in commands:
        command.add_parser(sub)
    return parser


def run_command(commands: "list[Command] | tuple[Command, ...]", parser: argparse.ArgumentParser,
                argv: list[str]) -> int:
    """Parse ``argv`` and run the command it names."""
    args = parser.parse_args(argv)
    args.argv = tuple(argv)
    return next(c for c in commands if c.name == args.command).run(args)


# ------------------------------------------------------------------------------------------------
# error reporting


# Exceptions that describe a problem of the input, the files or the system (status 2).
USER_ERRORS: tuple[type[BaseException], ...] = (
    PynqNeuroError, ValueError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile)


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def error(message: str) -> int:
    """Report an error as one line on stderr; returns the exit status."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _drop_stdout() -> None:
    """After a broken pipe: later writes (and the flush at exit) go to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a file descriptor (captured output)
        pass


def _run(body: Callable[[], int]) -> int:
    """``body()``'s status, or the status of the failure it raised (reported on stderr)."""
    try:
        return body()
    except SystemExit as e:  # the parser (usage and its one-line error, --help, --version)
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return error(one_line(Exception(e.code)))
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        if _debug():
            traceback.print_exc()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - reported, never silent
        if _debug():
            traceback.print_exc()
        if isinstance(e, USER_ERRORS):
            return error(one_line(e))
        return error(f"unexpected {type(e).__name__}: {one_line(e)} (a bug; set "
                     f"{DEBUG_ENV}=1 to see the traceback)")


def guard(body: Callable[[], int]) -> int:
    """Run a command and return its exit status; every failure becomes the module's error
    contract (one line on stderr, no traceback unless ``PYNQ_NEURO_DEBUG`` is set). A closed
    standard output ends the command quietly (the Python documentation's recipe: later
    writes go to ``os.devnull``)."""
    try:
        status = _run(body)
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    try:
        if sys.stdout is not None:   # None: started with its file descriptor closed
            sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        return status or EXIT_BROKEN_PIPE
    return status
