"""The search space of an exploration and the design point of one trial.

A space file (JSON, or YAML when PyYAML is installed) is one object; every key is optional
(:data:`DEFAULTS`). A list is a choice among its values, a single value is fixed:

* ``family`` (``"tdnn"`` or ``"mlp"``), ``layers`` (hidden layers), ``widths`` (units of each
  hidden layer), ``taps`` and ``strides`` (per TDNN layer), ``wbits``, ``abits``,
  ``input_bits``;
* ``sparsity`` (share of the weights each layer and the classifier prune, in [0, 1)) and
  ``lanes`` (lanes the pruning balances the kept synapses over, clamped to the layer's units);
* ``luts`` (LUT budget of the folding search) or ``foldings`` (a list of explicit foldings,
  each ``[[groups, lanes], ...]`` with one entry per layer including the classifier; their
  lanes are then the pruning lanes);
* ``target_images_per_s``, ``clock_mhz`` (fixed numbers), ``objectives`` (a list of
  :data:`OBJECTIVES` names) and ``training`` (``warm_epochs``, ``epochs``, ``finetune_epochs``,
  ``train_images``, ``batch_size``, ``lr``).

:class:`SearchSpace` is also the define-by-run function Optuna's samplers call
(``space(trial)``); :func:`design_point` turns the sampled values into a :class:`DesignPoint`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PynqNeuroError
from ..fileio import read_regular

MAX_SPACE_BYTES = 1 << 20
MAX_LAYERS = 8
CLASSES = 10

# name -> (direction, description); the order is the order of the table and of Optuna's values
OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("max", "accuracy of the golden model on the test digits"),
    "synapses": ("min", "stored synapses"),
    "memory_bits": ("min", "bits of every memory bank of the core"),
    "images_per_s": ("max", "digits/s of the compiler's cycle model (RTL on the front)"),
    "luts": ("min", "LUTs of the compiler's resource model (Yosys on the front)"),
}

DEFAULTS: dict[str, Any] = {
    "family": "tdnn",
    "layers": [2, 3],
    "widths": [32, 64, 128],
    "taps": [3, 4],
    "strides": [1, 2],
    "wbits": [1, 2, 4],
    "abits": [1, 2],
    "input_bits": [4, 8],
    "sparsity": [0.0, 0.5, 0.75],
    "lanes": [8, 16, 32],
    "luts": [20_000, 30_000, 40_000],
    "foldings": None,
    "target_images_per_s": 250_000.0,
    "clock_mhz": 100.0,
    "objectives": ["accuracy", "memory_bits", "images_per_s", "luts"],
    "training": {"warm_epochs": 1, "epochs": 2, "finetune_epochs": 1, "train_images": None,
                 "batch_size": 128, "lr": None},
}
TRAINING_KEYS = {"warm_epochs": (0, False), "epochs": (0, False), "finetune_epochs": (0, False),
                 "train_images": (1, True), "batch_size": (1, False), "lr": (0.0, True)}
# choice keys -> (lowest value, highest value or None, integer?)
CHOICES: dict[str, tuple[float, float | None, bool]] = {
    "layers": (1, MAX_LAYERS, True), "widths": (1, 4096, True), "taps": (1, 28, True),
    "strides": (1, 28, True), "wbits": (1, 8, True), "abits": (1, 8, True),
    "input_bits": (1, 8, True), "sparsity": (0.0, 1.0, False), "lanes": (1, 4096, True),
    "luts": (1, None, True),
}


class SpaceError(PynqNeuroError, ValueError):
    """A space file or value that cannot describe a search space."""


def _number(v: Any, integer: bool) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) if integer else isinstance(v, (int, float)) and math.isfinite(v)


def _choices(key: str, value: Any, where: str) -> tuple:
    lo, hi, integer = CHOICES[key]
    values = value if isinstance(value, list) else [value]
    what = "integers" if integer else "numbers"
    if not values:
        raise SpaceError(f"{where}: {key}: an empty list of choices")
    for v in values:
        ok = _number(v, integer) and v >= lo and (hi is None or v <= hi)
        if key == "sparsity":
            ok = _number(v, False) and 0 <= v < 1
        if not ok:
            bound = "in [0, 1)" if key == "sparsity" else (
                f"in {lo}..{hi}" if hi is not None else f">= {lo}")
            raise SpaceError(f"{where}: {key}: expected {what} {bound}, got {v!r}")
    return tuple(dict.fromkeys(values))   # unique, in order


def _foldings(value: Any, where: str) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise SpaceError(f"{where}: foldings: expected a list of foldings, each a list of "
                         "[groups, lanes] per layer")
    out = []
    for n, f in enumerate(value):
        if not isinstance(f, list) or len(f) < 2 or not all(
                isinstance(p, list) and len(p) == 2 and all(_number(x, True) and x >= 1
                                                            for x in p) for p in f):
            raise SpaceError(f"{where}: foldings[{n}]: expected [[groups, lanes], ...] with "
                             f"integers >= 1 for every layer including the classifier, got "
                             f"{json.dumps(f)[:80]}")
        out.append(tuple(tuple(p) for p in f))
    return tuple(out)


@dataclass(frozen=True)
class SearchSpace:
    """A checked search space (see the module docstring); callable as Optuna's define-by-run
    function."""

    family: str = "tdnn"
    layers: tuple = (2, 3)
    widths: tuple = (32, 64, 128)
    taps: tuple = (3, 4)
    strides: tuple = (1, 2)
    wbits: tuple = (1, 2, 4)
    abits: tuple = (1, 2)
    input_bits: tuple = (4, 8)
    sparsity: tuple = (0.0, 0.5, 0.75)
    lanes: tuple = (8, 16, 32)
    luts: tuple = (20_000, 30_000, 40_000)
    foldings: tuple | None = None
    target_images_per_s: float = 250_000.0
    clock_mhz: float = 100.0
    objectives: tuple = ("accuracy", "memory_bits", "images_per_s", "luts")
    training: dict = field(default_factory=lambda: dict(DEFAULTS["training"]))

    @classmethod
    def from_dict(cls, d: Any, where: str = "space") -> "SearchSpace":
        if not isinstance(d, dict):
            raise SpaceError(f"{where}: expected an object of settings, got {type(d).__name__}")
        unknown = sorted(set(d) - set(DEFAULTS))
        if unknown:
            raise SpaceError(f"{where}: unknown keys {unknown} (known: {', '.join(DEFAULTS)})")
        kw: dict[str, Any] = {}
        family = d.get("family", DEFAULTS["family"])
        if family not in ("tdnn", "mlp"):
            raise SpaceError(f"{where}: family: expected \"tdnn\" or \"mlp\", got {family!r}")
        kw["family"] = family
        for key in CHOICES:
            kw[key] = _choices(key, d.get(key, DEFAULTS[key]), where)
        kw["foldings"] = _foldings(d.get("foldings"), where)
        if kw["foldings"] is not None:
            lengths = {len(f) - 1 for f in kw["foldings"]}
            if len(lengths) != 1 or set(kw["layers"]) != lengths:
                raise SpaceError(f"{where}: foldings: every folding needs one entry per hidden "
                                 f"layer and the classifier, and layers must then be fixed to "
                                 f"{sorted(lengths)[0]} (got layers {list(kw['layers'])})")
        for key in ("target_images_per_s", "clock_mhz"):
            v = d.get(key, DEFAULTS[key])
            if not _number(v, False) or v <= 0:
                raise SpaceError(f"{where}: {key}: expected a finite number > 0, got {v!r}")
            kw[key] = float(v)
        objectives = d.get("objectives", DEFAULTS["objectives"])
        if not isinstance(objectives, list) or len(objectives) < 2 or \
                any(o not in OBJECTIVES for o in objectives) or \
                len(set(objectives)) != len(objectives):
            raise SpaceError(f"{where}: objectives: expected a list of two or more of "
                             f"{', '.join(OBJECTIVES)} (each once), got {objectives!r}")
        kw["objectives"] = tuple(objectives)
        kw["training"] = _training(d.get("training", {}), where)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = json.loads(json.dumps(v))   # nested tuples -> lists
        return d

    # -------------------------------------------------------------------------- define by run

    def __call__(self, trial: Any) -> dict[str, Any]:
        """Sample one design point (Optuna's ``trial.suggest_categorical`` for every choice
        with more than one value); returns the fixed values, which Ray Tune merges into the
        trial's configuration."""
        fixed: dict[str, Any] = {}

        def pick(name: str, values: tuple) -> Any:
            if len(values) == 1:
                fixed[name] = values[0]
                return values[0]
            return trial.suggest_categorical(name, list(values))

        n = pick("layers", self.layers)
        for key in ("wbits", "abits", "input_bits"):
            pick(key, getattr(self, key))
        for i in range(n):
            pick(f"width_{i}", self.widths)
            if self.family == "tdnn":
                pick(f"taps_{i}", self.taps)
                pick(f"stride_{i}", self.strides)
        for i in range(n + 1):
            pick(f"sparsity_{i}", self.sparsity)
        if self.foldings is not None:
            pick("folding", tuple(range(len(self.foldings))))
        else:
            for i in range(n + 1):
                if any(s > 0 for s in self.sparsity):
                    pick(f"lanes_{i}", self.lanes)
            pick("luts", self.luts)
        return fixed


def _training(d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise SpaceError(f"{where}: training: expected an object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(TRAINING_KEYS))
    if unknown:
        raise SpaceError(f"{where}: training: unknown keys {unknown} "
                         f"(known: {', '.join(TRAINING_KEYS)})")
    out = dict(DEFAULTS["training"])
    for key, (lo, optional) in TRAINING_KEYS.items():
        v = d.get(key, out[key])
        integer = key != "lr"
        if v is None and optional:
            out[key] = None
            continue
        if not _number(v, integer) or v < lo or (key == "lr" and v <= 0):
            raise SpaceError(f"{where}: training.{key}: expected "
                             f"{'an integer' if integer else 'a number'} "
                             f"{'>' if key == 'lr' else '>='} {lo}"
                             f"{' or null' if optional else ''}, got {v!r}")
        out[key] = v
    return out


def parse_space_text(text: str, where: str) -> Any:
    """The object of a space file: JSON, or YAML (needs PyYAML) for other suffixes."""
    if where.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise SpaceError(f"{where}: not valid JSON ({e})") from None
    try:
        import yaml
    except ModuleNotFoundError:
        raise SpaceError(f"{where}: reading YAML needs PyYAML; write the space as .json") \
            from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpaceError(f"{where}: not valid YAML ({' '.join(str(e).split())})") from None


def load_space(path: str | Path | None) -> SearchSpace:
    """The space of a file (``None``: the defaults)."""
    if path is None:
        return SearchSpace.from_dict({})
    data = read_regular(path, MAX_SPACE_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceError(f"{path}: not UTF-8 text") from None
    return SearchSpace.from_dict(parse_space_text(text, str(path)), str(path))


# ------------------------------------------------------------------------------------------------
# design point


@dataclass(frozen=True)
class DesignPoint:
    """Everything one trial builds: the model, its pruning and the compile settings."""

    family: str
    channels: tuple[int, ...]
    taps: tuple[int, ...]
    strides: tuple[int, ...]
    wbits: int
    abits: int
    input_bits: int
    sparsity: tuple[float, ...]          # hidden layers, then the classifier
    lanes: tuple[int, ...] | None        # pruning lanes (None: unstructured pruning)
    luts: int
    foldings: tuple[tuple[int, int], ...] | None

    @property
    def pruned(self) -> bool:
        return any(s > 0 for s in self.sparsity)

    def describe(self) -> str:
        arch = "-".join(map(str, self.channels))
        if self.family == "tdnn":
            arch += " k" + ",".join(map(str, self.taps)) + " s" + ",".join(map(str, self.strides))
        hw = ("fold " + ",".join(f"{g}x{p}" for g, p in self.foldings) if self.foldings
              else f"{self.luts} LUT")
        sp = "dense" if not self.pruned else "sp " + ",".join(f"{s:g}" for s in self.sparsity)
        return f"W{self.wbits}A{self.abits}I{self.input_bits} {arch} {sp} {hw}"


def design_point(config: dict[str, Any], space: SearchSpace) -> DesignPoint:
    """The design point of a trial's configuration (the values :meth:`SearchSpace.__call__`
    sampled or fixed)."""
    n = int(config["layers"])
    channels = tuple(int(config[f"width_{i}"]) for i in range(n))
    tdnn = space.family == "tdnn"
    taps = tuple(int(config[f"taps_{i}"]) for i in range(n)) if tdnn else ()
    strides = tuple(int(config[f"stride_{i}"]) for i in range(n)) if tdnn else ()
    sparsity = tuple(float(config[f"sparsity_{i}"]) for i in range(n + 1))
    units = [*channels, CLASSES]
    foldings = None
    lanes = None
    luts = max(space.luts)
    if space.foldings is not None:
        foldings = tuple(tuple(p) for p in space.foldings[int(config["folding"])])
        lanes = tuple(min(p, u) for (_, p), u in zip(foldings, units))
    else:
        luts = int(config["luts"])
        if any(f"lanes_{i}" in config for i in range(n + 1)):
            lanes = tuple(min(int(config[f"lanes_{i}"]), u) for i, u in enumerate(units))
    return DesignPoint(space.family, channels, taps, strides, int(config["wbits"]),
                       int(config["abits"]), int(config["input_bits"]), sparsity, lanes, luts,
                       foldings)


__all__ = ["DEFAULTS", "OBJECTIVES", "DesignPoint", "SearchSpace", "SpaceError", "design_point",
           "load_space"]
