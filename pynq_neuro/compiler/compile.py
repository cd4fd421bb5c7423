"""``pynq-neuro compile``: integer network -> folded, mapped neuron arrays -> artifact.

Nothing is written unless the core can run the result: the network and its mapped layers are
checked against the core's limits (:mod:`.limits`), a design above the resource budget is
refused (:class:`BudgetError`) unless ``allow_over_budget``, and a network compiled onto
existing hardware must match every synthesized field of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data import MNIST_RECORD, Dataset, data_for, images_digest, record_of
from ..data.datasets import warn
from ..errors import PynqNeuroError
from ..golden.model import run
from ..golden.network import IMAGE_COLS, IMAGE_ROWS, IntegerNetwork
from .artifact import (HW_LAYER_FIELDS, check_output, dataset_record, layer_hw, load_artifact,
                       write_artifact, packed_pixels)
from .cycles import simulate
from .folding import BudgetError, choose_foldings, folding_text
from .limits import CoreLimitError, beats_per_row, require, require_network
from .mapping import Folding, frames_needed, map_layer
from .resources import XC7Z020, Budget, network_resources

__all__ = ["BudgetError", "CompileConfig", "CoreLimitError", "HardwareMismatchError",
           "compile_network", "sample_data"]


class HardwareMismatchError(PynqNeuroError, ValueError):
    """A network cannot be loaded into an existing build: a synthesized field differs."""


@dataclass
class CompileConfig:
    """What to compile for.

    Attributes:
        target_images_per_s: throughput the folding search aims at (cycle model, clock below).
        budget: resources the core may use and the clock (default: 40,000 LUTs of the
            xc7z020 and all of its BRAM, 100 MHz; see :class:`Budget`). A design above it is
            refused with :class:`BudgetError`.
        foldings: explicit ``(groups, lanes)`` per layer instead of the search.
        hardware: an artifact directory whose hardware (foldings, memory depths, widths) the
            network must be mapped onto, so that it can be loaded into that build at run time.
        sample_digits: test digits that drive the folding search and the cycle model.
        allow_over_budget: write the artifact even when the design exceeds the budget (the
            manifest's ``performance.over_budget`` says so).
        packed_pixels: the pixel stream carries the pixels packed at the network's input bits
            (:func:`~pynq_neuro.compiler.limits.pixels_per_beat`: a row in one beat for binary
            pixels, in four for 4-bit pixels) instead of four bytes a beat; the driver packs
            them. With ``hardware``, the build's stream is taken.
    """

    target_images_per_s: float = 250_000.0
    budget: Budget = field(default_factory=Budget)
    foldings: list[Folding] | None = None
    hardware: str | None = None
    sample_digits: int = 1000
    allow_over_budget: bool = False
    packed_pixels: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError (one line) for a value the compiler cannot work with."""
        t = self.target_images_per_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) \
                or t <= 0:
            raise ValueError(f"target_images_per_s must be a finite number > 0, got {t!r}")
        if not isinstance(self.budget, Budget):
            raise ValueError(f"budget must be a Budget, got {type(self.budget).__name__}")
        n = self.sample_digits
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"sample_digits must be an integer >= 1, got {n!r}")
        if self.foldings is not None:
            if not isinstance(self.foldings, (list, tuple)) or not self.foldings or \
                    not all(isinstance(f, Folding) for f in self.foldings):
                raise ValueError("foldings must be a non-empty list of Folding(groups, lanes)")
            if self.hardware is not None:
                raise ValueError("give either foldings or hardware, not both (the hardware "
                                 "fixes the foldings)")
        if self.hardware is not None and not isinstance(self.hardware, (str, Path)):
            raise ValueError(f"hardware must be an artifact folder, got {self.hardware!r}")
        for name in ("allow_over_budget", "packed_pixels"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; the manifest keeps them as ``compile_config``."""
        return {
            "target_images_per_s": float(self.target_images_per_s),
            "budget": self.budget.to_dict(),
            "foldings": None if self.foldings is None else
            [[int(f.groups), int(f.lanes)] for f in self.foldings],
            "hardware": None if self.hardware is None else str(self.hardware),
            "sample_digits": int(self.sample_digits),
            "allow_over_budget": self.allow_over_budget,
            "packed_pixels": self.packed_pixels,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CompileConfig":
        """The configuration :meth:`to_dict` wrote (e.g. a manifest's ``compile_config``);
        raises ValueError for unknown keys or values."""
        if not isinstance(d, dict):
            raise ValueError(f"a compile configuration is a JSON object, got {type(d).__name__}")
        known = {"target_images_per_s", "budget", "foldings", "hardware", "sample_digits",
                 "allow_over_budget", "packed_pixels"}
        if set(d) - known:
            raise ValueError(f"unknown compile configuration keys: {sorted(set(d) - known)}")
        kw = dict(d)
        try:
            if "budget" in kw:
                kw["budget"] = Budget(**kw["budget"])
            if kw.get("foldings") is not None:
                kw["foldings"] = [Folding(int(g), int(p)) for g, p in kw["foldings"]]
        except (TypeError, ValueError) as e:
            raise ValueError(f"compile configuration: {e}") from None
        return cls(**kw)


def _parse_source(source: str | Path) -> tuple[IntegerNetwork, dict[str, str] | None]:
    """An integer network from a zoo name (or ``zoo:NAME``), an .npz, a checkpoint (.pt) or an
    artifact, and the dataset it records (``None``: none recorded)."""
    from .. import zoo

    s = str(source)
    name = s[4:] if s.startswith("zoo:") else s   # "zoo:NAME" names a zoo model explicitly
    if name in zoo.names():
        net = zoo.load_network(name)
        # the zoo's models are trained on MNIST (zoo.json)
        return net, net.meta.get("dataset") or dict(MNIST_RECORD)
    if s.startswith("zoo:"):
        raise ValueError(f"no zoo model {name!r}; the zoo has {', '.join(zoo.names())}")
    p = Path(s)
    if p.is_dir():
        art = load_artifact(p)
        return art.network, dataset_record(art.manifest)
    if p.suffix == ".npz":
        net = IntegerNetwork.load(p)
        return net, net.meta.get("dataset")
    if p.suffix == ".pt":
        from ..lower import lower
        from ..train import load_checkpoint, model_from_checkpoint

        ckpt = load_checkpoint(p)
        model = model_from_checkpoint(ckpt, str(p))
        if not model.config.quantized:
            raise ValueError(f"{p} is a floating-point model; compile a quantized one")
        meta: dict[str, Any] = {"checkpoint": p.name}
        if ckpt.get("dataset") is not None:
            meta["dataset"] = dict(ckpt["dataset"])
        return lower(model, meta=meta), ckpt.get("dataset")
    raise ValueError(f"cannot compile {s!r}: expected a zoo name, .npz, .pt or artifact folder")


def _check_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 3 or x.shape[1:] != (IMAGE_ROWS, IMAGE_COLS) or len(x) < 1:
        raise ValueError(f"images must be (N >= 1, {IMAGE_ROWS}, {IMAGE_COLS}) pixels, got "
                         f"shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() > 255:
        raise ValueError("images must be 8-bit pixels (integers 0..255)")
    return x.astype(np.uint8, copy=False)


def _hardware_mismatch(diffs: list[str], target: str | Path) -> HardwareMismatchError:
    return HardwareMismatchError(
        f"the network does not fit the hardware of {target} (loading it would need a new "
        f"build): {'; '.join(diffs)}")


def _network_fields(net: IntegerNetwork) -> list[dict[str, int]]:
    """The synthesized fields that follow from the network alone (not from a folding)."""
    used = frames_needed(net)
    out = []
    for i, L in enumerate(net.layers):
        emitted = L.out_frames if i + 1 == len(net.layers) else min(L.out_frames, used[i + 1])
        out.append({"in_channels": L.in_channels, "out_channels": L.out_channels,
                    "taps": L.taps, "stride": L.stride, "in_frames": L.in_frames,
                    "out_frames": L.out_frames, "frames_used": used[i],
                    "frames_emitted": emitted, "weight_bits": L.weight_bits,
                    "act_bits": L.act_bits or 0})
    return out


def _compare_hardware(net: IntegerNetwork, hw: dict[str, Any],
                      layers: list[dict[str, int]], fields: tuple[str, ...]) -> list[str]:
    """Every field of ``layers`` (and the network-wide ones) that differs from ``hw``."""
    diffs = []
    if net.input_bits != hw.get("input_bits", net.input_bits):
        diffs.append(f"input_bits: the network has {net.input_bits}, the hardware "
                     f"{hw['input_bits']}")
    if net.num_classes != hw.get("num_classes", net.num_classes):
        diffs.append(f"num_classes: the network has {net.num_classes}, the hardware "
                     f"{hw['num_classes']}")
    if len(layers) != len(hw["layers"]):
        diffs.append(f"layers: the network has {len(layers)}, the hardware "
                     f"{len(hw['layers'])}")
        return diffs
    for i, (mine, theirs) in enumerate(zip(layers, hw["layers"])):
        for k in fields:
            if k in mine and mine[k] != theirs.get(k):
                diffs.append(f"layer {i} {k}: the network has {mine[k]}, the hardware "
                             f"{theirs.get(k)}")
    return diffs


def _onto_hardware(net: IntegerNetwork, target: str | Path
                   ) -> tuple[list[Folding], list[dict[str, int]], dict[str, Any]]:
    """Foldings and memory sizes of an existing build; refuses a network whose shape, bit
    widths or capacity differ from it."""
    art = load_artifact(target)
    hw = {**art.manifest["hardware"],
          "input_bits": art.manifest["network"]["input_bits"],
          "num_classes": art.manifest["network"]["num_classes"]}
    diffs = _compare_hardware(net, hw, _network_fields(net), HW_LAYER_FIELDS)
    if diffs:
        raise _hardware_mismatch(diffs, target)
    folds, overrides, short = [], [], []
    for i, h in enumerate(hw["layers"]):
        folds.append(Folding(h["groups"], h["lanes"]))
        overrides.append({"acc_bits": h["acc_bits"], "depth": h["synapse_depth"],
                          "count_bits": h["count_bits"]})
        # capacity: what the network needs must fit what the build has
        need = map_layer(net, i, folds[-1], pack=False)
        short += [f"layer {i} {k}: the network needs {v}, the hardware has {h[k]}"
                  for k, v in (("acc_bits", need.acc_bits),
                               ("synapse_depth", need.synapse_depth),
                               ("count_bits", need.count_bits)) if v > h[k]]
    if short:
        raise _hardware_mismatch(short, target)
    return folds, overrides, hw


def _name_of(source: str | Path | IntegerNetwork) -> str:
    return str(source.meta.get("name", "the network")) if isinstance(source, IntegerNetwork) \
        else str(source)


def _record_of(source: str | Path | IntegerNetwork) -> dict[str, str] | None:
    if isinstance(source, IntegerNetwork):
        return source.meta.get("dataset")
    return _parse_source(source)[1]


def sample_data(source: str | Path | IntegerNetwork, *, name: str | None = None,
                path: str | Path | None = None, other_data: bool = False,
                log: Callable[[str], None] = warn) -> Dataset:
    """The test split a compile of ``source`` samples: the dataset the network records, or
    the given ``name`` or ``path``, which must be the recorded dataset unless ``other_data``
    (then ``log`` warns); see :func:`pynq_neuro.data.data_for`."""
    what = _name_of(source)
    return data_for(record_of(_record_of(source), what, log), what, name=name, path=path,
                    other_data=other_data, log=log)


def _sample(source: str | Path | IntegerNetwork, record: dict[str, str] | None,
            images: np.ndarray | Dataset | None, cfg: CompileConfig, data: str | Path | None,
            dataset: str | None, other_data: bool, log: Callable[[str], None]
            ) -> tuple[np.ndarray, dict[str, Any]]:
    """The sample images of a compile and the manifest's ``dataset`` section."""
    if images is not None and (data is not None or dataset is not None):
        raise ValueError("give sample images or a dataset, not both")
    if images is not None and not isinstance(images, Dataset):
        x = _check_images(images)
        return x, {"name": "images", "sample_images": int(len(x)),
                   "sample_sha256": images_digest(x)}
    if images is None:
        what = _name_of(source)
        images = data_for(record_of(record, what, log), what, name=dataset, path=data,
                          other_data=other_data, log=log)
    images = images.sample(cfg.sample_digits)
    x = _check_images(images.images)
    section = {"name": images.name, "sha256": images.sha256, "sample_images": int(len(x)),
               "sample_sha256": images_digest(x)}
    if images.source != images.name:
        section["source"] = images.source
    return x, section


def compile_network(source: str | Path | IntegerNetwork, output: str | Path,
                    cfg: CompileConfig | None = None,
                    images: np.ndarray | Dataset | None = None, *, force: bool = False,
                    data: str | Path | None = None, dataset: str | None = None,
                    other_data: bool = False, log: Callable[[str], None] = warn
                    ) -> dict[str, Any]:
    """Compile a network into an artifact directory; returns the manifest.

    The folding search and the cycle model run on sample images: ``images`` if given (an
    array, used as it is, or a :class:`~pynq_neuro.data.Dataset`, of which
    ``cfg.sample_digits`` images spread evenly over it are used: the caller's choice, see
    :func:`sample_data`), else ``cfg.sample_digits`` test images spread evenly over the test
    split (:meth:`~pynq_neuro.data.Dataset.sample`) of the dataset the network records, or of
    ``data`` (a folder of IDX files or an ``.npz``) or ``dataset`` (a name), which must be the
    recorded dataset unless ``other_data`` (then ``log`` warns). The manifest's ``dataset``
    section records them (name, digest of the split, count and digest of the sample).

    Raises :class:`CoreLimitError` for a network the core cannot hold, :class:`BudgetError`
    for a design above the budget (unless ``cfg.allow_over_budget``) and
    :class:`HardwareMismatchError` for a network that does not fit ``cfg.hardware``; nothing
    is written then. ``force`` is passed to the artifact writer (replace an existing
    artifact)."""
    cfg = cfg or CompileConfig()
    cfg.validate()
    check_output(output, force)  # before any work: the writer checks again when it swaps
    net, record = (source, source.meta.get("dataset")) if isinstance(source, IntegerNetwork) \
        else _parse_source(source)
    net.validate()
    require_network(net)
    images, data_section = _sample(source, record, images, cfg, data, dataset, other_data, log)
    activations = run(net, images, trace=True).activations
    note = "explicit foldings"
    overrides: list[dict[str, int]] = [{} for _ in net.layers]
    target_hw: dict[str, Any] | None = None
    packed = cfg.packed_pixels
    if cfg.hardware is not None:
        folds, overrides, target_hw = _onto_hardware(net, cfg.hardware)
        note = f"mapped onto the hardware of {cfg.hardware}"
        packed = packed or packed_pixels(target_hw)
    elif cfg.foldings is not None:
        folds = list(cfg.foldings)
        if len(folds) != len(net.layers):
            raise ValueError(f"{len(folds)} foldings given for {len(net.layers)} layers")
    else:
        folds, note = choose_foldings(net, images, cfg.target_images_per_s, cfg.budget,
                                      activations, beats_per_row(net.input_bits, packed))
    maps = [map_layer(net, i, f, **o) for i, (f, o) in enumerate(zip(folds, overrides))]
    hw_layers = [layer_hw(lm) for lm in maps]
    require(hw_layers, net.input_bits, net.num_classes)
    if target_hw is not None:
        diffs = _compare_hardware(net, target_hw, hw_layers, HW_LAYER_FIELDS)
        if packed != packed_pixels(target_hw):
            diffs.append(f"packed_pixels: the compile asks for {packed}, the hardware has "
                         f"{packed_pixels(target_hw)}")
        if diffs:
            raise _hardware_mismatch(diffs, cfg.hardware)
    report = simulate(maps, net, images, activations, beats_per_row(net.input_bits, packed))
    res = network_resources(maps, net.input_bits)
    total = sum(res[1:], res[0])
    b = cfg.budget
    over = b.excess(total)
    if over and target_hw is None:
        if not cfg.allow_over_budget:
            raise BudgetError(folds, total, b, searched=cfg.foldings is None)
        note += f"; over the resource budget ({'; '.join(over)}), written as asked"
    perf = {
        "cycle_model": report.summary(b.clock_mhz),
        "resources_estimate": {
            "total": total.to_dict(),
            "layers": [r.to_dict() for r in res[1:]],
            "shell": res[0].to_dict(),
            # of the whole device
            "utilisation": {"luts": total.luts / XC7Z020.luts,
                            "bram36": total.bram36 / XC7Z020.bram36,
                            "ffs": total.ffs / XC7Z020.ffs, "dsp": total.dsp / XC7Z020.dsp},
            "fits_budget": not over,
            "fits_half": total.fits(XC7Z020, 0.5),
        },
        "over_budget": bool(over),
        "folding_note": note,
        "foldings": folding_text(folds),
        "target_images_per_s": cfg.target_images_per_s,
        "budget": b.to_dict(),
        "sample_digits": int(len(images)),
    }
    manifest = write_artifact(output, net, maps,
                              extra={"compile_config": cfg.to_dict(), "performance": perf,
                                     "dataset": data_section},
                              force=force, packed_pixels=packed)
    if target_hw is not None and manifest["hardware"]["fingerprint"] != target_hw["fingerprint"]:
        raise RuntimeError(f"{output}: hardware fingerprint {manifest['hardware']['fingerprint']}"
                           f" differs from {cfg.hardware}'s {target_hw['fingerprint']} although "
                           f"every synthesized field matched")
    return manifest
