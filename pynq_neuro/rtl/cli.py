"""Command-line parts for the RTL: ``pynq-neuro verify ARTIFACT --rtl`` and
``pynq-neuro estimate ARTIFACT``.

``add_verify_parser`` / ``add_estimate_parser`` register the sub-commands on the main parser's
sub-parsers; ``run_verify`` / ``run_estimate`` execute them and return the exit status (0 pass,
1 mismatch or does not fit, 2 error). ``python -m pynq_neuro.rtl.cli`` runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def add_verify_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "verify", help="check an artifact; with --rtl, simulate neuro_core against the golden "
                       "model")
    p.add_argument("artifact", help="artifact directory (the hardware the core is built for)")
    p.add_argument("--rtl", action="store_true",
                   help="simulate neuro_core (Verilator fast path) on MNIST test digits")
    p.add_argument("--images", type=int, default=1000,
                   help="test digits to simulate (default 1000, at most 16384)")
    p.add_argument("--load", metavar="ARTIFACT",
                   help="stream this artifact's network.bin into the core first (same hardware)"
                        " and check against its network")
    p.add_argument("--stall", type=int, default=0, metavar="PERCENT",
                   help="random back-pressure on the result stream (percent of cycles)")
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.add_argument("--data-dir", help="MNIST directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def add_estimate_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("estimate",
                       help="synthesize neuro_core for an artifact with Yosys (xc7z020)")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--timeout", type=float, help="give up after this many seconds")
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
            "network": a.manifest["network"]["name"]}


def run_verify(args: argparse.Namespace) -> int:
    from . import RtlError

    try:
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
        if not 1 <= args.images <= 16384:
            raise ValueError("--images must be in 1..16384")
        from .regression import format_report, regression

        report = regression(args.artifact, args.images, load=args.load, data_dir=args.data_dir,
                            clock_mhz=args.clock_mhz, stall=args.stall, verbose=not args.json)
    except (RtlError, ValueError, FileNotFoundError) as e:
        print(f"pynq-neuro verify: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["passed"] else 1


def run_estimate(args: argparse.Namespace) -> int:
    from . import RtlError
    from .estimate import estimate, format_estimate

    try:
        r = estimate(args.artifact, timeout=args.timeout)
    except (RtlError, ValueError, FileNotFoundError) as e:
        print(f"pynq-neuro estimate: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(format_estimate(r))
    return 0 if r["fits"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pynq_neuro.rtl.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    add_verify_parser(sub)
    add_estimate_parser(sub)
    args = parser.parse_args(argv)
    return run_verify(args) if args.command == "verify" else run_estimate(args)


if __name__ == "__main__":
    sys.exit(main())
