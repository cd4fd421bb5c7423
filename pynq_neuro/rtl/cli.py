"""Command-line parts for the RTL: ``pynq-neuro verify ARTIFACT --rtl`` and
``pynq-neuro estimate ARTIFACT``.

``COMMANDS`` holds both (:class:`pynq_neuro.cli_core.Command`): ``add_verify_parser`` /
``add_estimate_parser`` add the sub-commands to the main parser's sub-parsers; ``run_verify`` /
``run_estimate`` execute them and return the exit status (0 pass, 1 mismatch or does not fit)
and raise on errors, which :func:`pynq_neuro.cli_core.guard` reports (one line, status 2).
``python -m pynq_neuro.rtl.cli`` runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np

from ..cli_core import Command, build_parser, guard, int_range, positive, run_command
from ..data.datasets import add_data_options, data_options
from ..driver.accelerator import artifact_clock_mhz

MAX_IMAGES = 16384        # digits the Verilator bench holds


def add_verify_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "verify", help="check an artifact; with --rtl, simulate neuro_core against the golden "
                       "model")
    p.add_argument("artifact", help="artifact directory (the hardware the core is built for)")
    p.add_argument("--rtl", action="store_true",
                   help="simulate neuro_core (Verilator fast path) on the test images of the "
                        "network's dataset")
    p.add_argument("--images", type=int_range(1, MAX_IMAGES), default=1000,
                   help=f"test images to simulate (default 1000, at most {MAX_IMAGES})")
    p.add_argument("--load", metavar="ARTIFACT",
                   help="stream this artifact's network.bin into the core first (same hardware)"
                        " and check against its network")
    p.add_argument("--stall", type=int_range(0, 99), default=0, metavar="PERCENT",
                   help="random back-pressure on the result stream (percent of cycles, 0..99)")
    p.add_argument("--clock-mhz", type=positive, default=None,
                   help="clock of the reported throughput (default: the clock the artifact "
                        "was compiled for)")
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def add_estimate_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("estimate",
                       help="synthesize neuro_core for an artifact with Yosys (xc7z020)")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--timeout", type=positive, help="give up after this many seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _check_artifact(path: str) -> dict:
    """Both representations of the artifact (mem images, network.bin) give one network."""
    import numpy as np

    from ..compiler.artifact import load_artifact
    from ..golden import run
    from .regression import sample_images

    a, b = load_artifact(path, "mem"), load_artifact(path, "bin")
    x = sample_images(64)
    same = bool(np.array_equal(run(a.network, x).logits, run(b.network, x).logits))
    return {"artifact": path, "fingerprint": a.fingerprint, "mem_bin_agree": same,
            "network": a.manifest["network"]["name"],
            "clock_mhz": artifact_clock_mhz(a.manifest)}


def run_verify(args: argparse.Namespace) -> int:
    check = _check_artifact(args.artifact)
    if not check["mem_bin_agree"]:
        print(f"{args.artifact}: mem images and network.bin differ", file=sys.stderr)
        return 1
    if not args.rtl:
        if args.json:
            print(json.dumps(check, indent=2))
        else:
            print(f"{args.artifact}: artifact {check['network']} (hardware "
                  f"{check['fingerprint']}) verified; add --rtl to simulate the core")
        return 0
    from ..compiler.artifact import dataset_record, load_artifact
    from ..data import check_labels, data_for, record_of
    from .regression import format_report, regression

    clock = check["clock_mhz"] if args.clock_mhz is None else args.clock_mhz
    # the network checked against is the loaded one, if any: its dataset decides
    ref = load_artifact(args.load or args.artifact)
    what = args.load or args.artifact
    data = data_for(record_of(dataset_record(ref.manifest), what), what, **data_options(args))
    x, y = data.images[: args.images], data.labels[: args.images]
    check_labels(y, ref.network.num_classes, data.source)
    report = regression(args.artifact, np.ascontiguousarray(x), labels=y, load=args.load,
                        clock_mhz=clock, stall=args.stall, verbose=not args.json)
    report["dataset"] = data.name
    report["dataset_sha256"] = data.sha256
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"test images of {data.describe()}")
        print(format_report(report))
    return 0 if report["passed"] else 1


def run_estimate(args: argparse.Namespace) -> int:
    from .estimate import estimate, format_estimate

    r = estimate(args.artifact, timeout=args.timeout)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(format_estimate(r))
    return 0 if r["fits"] else 1


COMMANDS = (Command("verify", add_verify_parser, run_verify),
            Command("estimate", add_estimate_parser, run_estimate))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return guard(lambda: run_command(COMMANDS, build_parser(COMMANDS), argv))

if __name__ == "__main__":
    sys.exit(main())
