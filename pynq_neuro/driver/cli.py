"""``pynq-neuro selftest``: the board bring-up self-test (:mod:`pynq_neuro.driver.selftest`).

Exit status 0 when every step passes, 1 when a step fails (its cause and fix are printed),
2 for an error of the command itself (one line, see :mod:`pynq_neuro.cli`).
``python -m pynq_neuro.driver.cli`` runs it standalone.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..cli_core import Command, build_parser, count, guard, int_list, positive, run_command
from . import registers as R


def add_selftest_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .selftest import BACKENDS, BATCH_SIZES, SIM_DIGITS, TEST_DIGITS

    p = sub.add_parser(
        "selftest", help="bring-up self-test of the core: environment, parameters, load, "
                         "correctness, throughput, recovery")
    p.add_argument("--backend", choices=BACKENDS, default="board",
                   help="board (PYNQ overlay, default), sim (the RTL in a simulator) or golden "
                        "(numpy model of the core)")
    p.add_argument("--overlay", metavar="BIT",
                   help="overlay bitstream, with its .hwh beside it (default: "
                        "$PYNQ_NEURO_OVERLAY or the installed neuro.bit)")
    p.add_argument("--artifact", metavar="DIR",
                   help="compiled network (default: the artifact installed with the overlay, "
                        "else the zoo's hardware model compiled with the default settings)")
    p.add_argument("--digits", type=count,
                   help=f"test digits to classify (default {TEST_DIGITS}; sim {SIM_DIGITS})")
    p.add_argument("--throughput-digits", type=count,
                   help="digits per batch size of the throughput step")
    p.add_argument("--batch-sizes", type=int_list(1, R.BATCH_MAX), default=BATCH_SIZES,
                   help=f"batch sizes of the throughput step (default "
                        f"{','.join(map(str, BATCH_SIZES))})")
    p.add_argument("--set-clock", action="store_true",
                   help="set FCLK0 to the artifact's clock when it differs "
                        "(pynq.ps.Clocks.fclk0_mhz)")
    p.add_argument("--timeout", type=positive, default=5.0, help="limit of one DMA exchange (s)")
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("--json", metavar="REPORT", help="write the report as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="print the verdict line only")
    return p


def run_selftest_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .selftest import SelftestConfig, run_selftest, write_report

    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise ValueError(f"--json {args.json}: no folder {Path(args.json).parent} for the report")
    cfg = SelftestConfig(backend=args.backend, overlay=args.overlay, artifact=args.artifact,
                         digits=args.digits, throughput_digits=args.throughput_digits,
                         batch_sizes=tuple(args.batch_sizes), set_clock=args.set_clock,
                         timeout_s=args.timeout, data_dir=args.data_dir)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    report = run_selftest(cfg, log=log)
    if args.json:
        write_report(report, args.json)
    print(report.verdict())
    return 0 if report.passed else 1


COMMAND = Command("selftest", add_selftest_parser, run_selftest_command)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return guard(lambda: run_command([COMMAND], build_parser([COMMAND]), argv))


if __name__ == "__main__":
    sys.exit(main())
