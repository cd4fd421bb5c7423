"""Trained models shipped in the package (numpy only to list them and load integer forms).

``zoo.json`` describes every model: the checkpoint (``.pt``, needs torch), the lowered integer
network (``.npz``, numpy only), the exact command that reproduced it and its measured accuracy.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..fileio import read_regular
from ..golden.network import IntegerNetwork

ZOO_DIR = Path(__file__).parent
MAX_INDEX_BYTES = 1 << 20


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, Any]]:
    path = ZOO_DIR / "zoo.json"
    if not path.exists():
        return {}
    return {m["name"]: m for m in json.loads(read_regular(path, MAX_INDEX_BYTES))["models"]}


def names() -> list[str]:
    """Names of the shipped models, e.g. ``tdnn-w2a2``."""
    return list(_index())


def info(name: str) -> dict[str, Any]:
    """The zoo entry of a model (paths, command, accuracy, bits, synapses)."""
    try:
        return dict(_index()[name])
    except KeyError:
        raise KeyError(f"no model {name!r} in the zoo; available: {', '.join(names())}") from None


def checkpoint_path(name: str) -> Path:
    return ZOO_DIR / info(name)["checkpoint"]


def network_path(name: str) -> Path | None:
    rel = info(name).get("network")
    return None if rel is None else ZOO_DIR / rel


def load_network(name: str) -> IntegerNetwork:
    """The integer network of a quantized zoo model (numpy only). A network that records its
    checkpoint's digest (the sparse models) is compared with the checkpoint beside it; the
    dense models predate the digests."""
    path = network_path(name)
    if path is None:
        raise ValueError(f"{name} is a floating-point model and has no integer form")
    return IntegerNetwork.load(path)


def hardware_default() -> str:
    """The zoo model that the default hardware build is compiled from."""
    for name, entry in _index().items():
        if entry.get("hardware_default"):
            return name
    raise KeyError("no zoo model is marked as the hardware default")
