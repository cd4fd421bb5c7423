"""The ``explore`` subcommand: ``pynq-neuro explore DIR``, ``pynq-neuro explore --resume DIR``
and ``pynq-neuro explore show DIR``.

``COMMAND`` (:class:`pynq_neuro.cli_core.Command`) adds the parser and runs it; Ray and
Optuna (the ``explore`` extra) are imported only when an exploration runs. Exit status: 0
done, 2 an error (one line), 130 interrupted (the state is saved for ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from ..cli_core import EXIT_INTERRUPTED, Command, count, int_range, positive, seed, threads

DESCRIPTION = ("design-space exploration (Ray Tune, Optuna multi-objective sampler): train, "
               "prune, evaluate and compile design points, then verify the Pareto front")
cpus = int_range(1, 4096)
shards = int_range(1, 256)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("explore", help=DESCRIPTION, description=DESCRIPTION)
    p.add_argument("words", nargs="*", metavar="[show] DIR",
                   help="exploration folder to create; 'show DIR' prints a recorded one")
    p.add_argument("--resume", metavar="DIR",
                   help="continue an interrupted exploration (Ray's experiment state, else the "
                        "Optuna study)")
    p.add_argument("--space", help="search space file (.json, or .yaml with PyYAML); default: "
                                   "the built-in space (docs/explore.md)")
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=count, help="trials in all (default 24)")
    g.add_argument("--sampler", choices=("nsga2", "tpe"), default="nsga2",
                   help="Optuna sampler: NSGA-II (default) or multi-objective TPE")
    g.add_argument("--population", type=count,
                   help="NSGA-II population / TPE start-up trials (default: trials/3, 4..50)")
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--images", type=count,
                   help="test digits of the accuracy (default: the whole test split)")
    g.add_argument("--epochs", type=int_range(0),
                   help="training epochs of each trial (overrides the space file)")
    g.add_argument("--train-images", type=count,
                   help="use only the first N training digits (overrides the space file)")
    g.add_argument("--sample-digits", type=count, default=1000,
                   help="test digits of the folding search and cycle model (default 1000)")
    g.add_argument("--data-dir", help="MNIST directory (default: search order of the loader)")
    g = p.add_argument_group("Ray")
    g.add_argument("--address", help="address of a running Ray cluster (default: start Ray "
                                     "on this machine)")
    g.add_argument("--cpus", type=cpus, help="CPUs of the local Ray (default: all cores)")
    g.add_argument("--cpus-per-trial", type=cpus, default=1, help="CPUs per trial (default 1)")
    g.add_argument("--threads", type=threads, default=1,
                   help="torch threads per trial (default 1, at most --cpus-per-trial)")
    g.add_argument("--storage", help="Optuna storage URL (default: sqlite in DIR)")
    g = p.add_argument_group("second pass on the Pareto front")
    g.add_argument("--no-rtl", action="store_true", help="skip the RTL regression")
    g.add_argument("--no-estimate", action="store_true", help="skip the Yosys estimate")
    g.add_argument("--rtl-images", type=count,
                   help="test digits of the RTL regression (default: as many as --images)")
    g.add_argument("--shards", type=shards, default=2,
                   help="Ray tasks the RTL regression's digits are split over (default 2)")
    g.add_argument("--front-limit", type=count,
                   help="verify only the first N front members (best accuracy first)")
    g.add_argument("--estimate-timeout", type=positive,
                   help="give up a Yosys estimate after this many seconds")
    p.add_argument("--json", action="store_true", help="print the record as JSON at the end")
    return p


def _settings(args: argparse.Namespace, folder: str):
    from .runner import ExploreSettings
    from .space import load_space

    space = load_space(args.space).to_dict()
    for key, value in (("epochs", args.epochs), ("train_images", args.train_images)):
        if value is not None:
            space["training"][key] = value
    verify = {"rtl": not args.no_rtl, "estimate": not args.no_estimate,
              "rtl_images": args.rtl_images if args.rtl_images is not None else args.images,
              "shards": args.shards, "front_limit": args.front_limit,
              "estimate_timeout": args.estimate_timeout,
              "data_dir": args.data_dir}
    return ExploreSettings(
        folder=str(Path(folder).resolve()), space=space, trials=args.trials or 24,
        images=args.images, sampler=args.sampler, population=args.population, seed=args.seed,
        cpus=args.cpus, cpus_per_trial=args.cpus_per_trial, threads=args.threads,
        storage=args.storage, sample_digits=args.sample_digits, data_dir=args.data_dir,
        verify=verify)


def run(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words[:1] == ["show"]:
        if len(words) != 2 or args.resume:
            raise ValueError("usage: pynq-neuro explore show DIR")
        from .runner import load_record, show

        print(json.dumps(load_record(words[1]), indent=1) if args.json else show(words[1]))
        return 0
    if args.resume is not None:
        if words:
            raise ValueError("--resume DIR continues an exploration; give no other folder")
        folder = args.resume
    elif len(words) == 1:
        folder = words[0]
    else:
        raise ValueError("give the exploration folder: pynq-neuro explore DIR, "
                         "pynq-neuro explore --resume DIR or pynq-neuro explore show DIR")
    if args.address is not None:
        from .runner import use_cluster_token

        use_cluster_token()
    try:
        import optuna  # noqa: F401
        import ray.tune  # noqa: F401
    except ImportError as e:
        raise ValueError(f"explore needs Ray and Optuna (pip install 'pynq-neuro[explore]'): "
                         f"{e}") from None
    from .runner import Interrupted, resume_settings, run_exploration, show

    if args.resume is not None:
        if args.space is not None:
            raise ValueError("--space applies to a new exploration; a resumed one keeps its "
                             "space")
        settings = resume_settings(folder, trials=args.trials, cpus=args.cpus)
        if args.address is not None and args.cpus is None:   # the cluster's CPUs, not ours
            settings = replace(settings, cpus=None)
    else:
        settings = _settings(args, folder)
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else \
        (lambda m: print(m, flush=True))
    try:
        rec = run_exploration(settings, address=args.address, resume=args.resume is not None,
                              log=log)
    except Interrupted as e:
        print(f"pynq-neuro: interrupted: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(rec, indent=1))
    else:
        print(show(settings.folder))
    return 0


COMMAND = Command("explore", add_parser, run)
