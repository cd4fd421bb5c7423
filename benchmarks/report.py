"""Where the benchmarks write: ``benchmarks/results/NAME.json`` and its plot ``NAME.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from pynq_neuro.fileio import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def pyplot():
    """matplotlib's pyplot drawing off screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_results(name: str, record: Any, plot: Callable[[Any, Path], None]) -> int:
    """Write ``record`` as ``NAME.json`` (atomically) and ``plot(record, NAME.png)``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(record, indent=2) + "\n")
    plot(record, RESULTS / f"{name}.png")
    print(f"wrote {RESULTS / name}.json and {name}.png")
    return 0
