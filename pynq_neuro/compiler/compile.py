"""``pynq-neuro compile``: integer network -> folded, mapped neuron arrays -> artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..golden.model import run
from ..golden.network import IntegerNetwork
from .artifact import load_artifact, write_artifact
from .cycles import simulate
from .folding import choose_foldings
from .mapping import Folding, map_layer
from .resources import XC7Z020, Budget, network_resources


@dataclass
class CompileConfig:
    """What to compile for.

    Attributes:
        target_images_per_s: throughput the folding search aims at (cycle model, clock below).
        budget: resources the core may use and the clock (default: 40,000 LUTs of the
            xc7z020 and all of its BRAM, 100 MHz; see :class:`Budget`).
        foldings: explicit ``(groups, lanes)`` per layer instead of the search.
        hardware: an artifact directory whose hardware (foldings, memory depths, widths) the
            network must be mapped onto, so that it can be loaded into that build at run time.
        sample_digits: test digits that drive the folding search and the cycle model.
    """

    target_images_per_s: float = 250_000.0
    budget: Budget = field(default_factory=Budget)
    foldings: list[Folding] | None = None
    hardware: str | None = None
    sample_digits: int = 1000


def _parse_source(source: str | Path) -> IntegerNetwork:
    """An integer network from a zoo name (or ``zoo:NAME``), an .npz, a checkpoint (.pt) or an
    artifact."""
    from .. import zoo

    s = str(source)
    name = s[4:] if s.startswith("zoo:") else s   # "zoo:NAME" names a zoo model explicitly
    if name in zoo.names():
        return zoo.load_network(name)
    if s.startswith("zoo:"):
        raise ValueError(f"no zoo model {name!r}; the zoo has {', '.join(zoo.names())}")
    p = Path(s)
    if p.is_dir():
        return load_artifact(p).network
    if p.suffix == ".npz":
        return IntegerNetwork.load(p)
    if p.suffix == ".pt":
        from ..lower import lower
        from ..train import model_from_checkpoint

        model = model_from_checkpoint(p)
        if not model.config.quantized:
            raise ValueError(f"{p} is a floating-point model; compile a quantized one")
        return lower(model, meta={"checkpoint": p.name})
    raise ValueError(f"cannot compile {s!r}: expected a zoo name, .npz, .pt or artifact folder")


def compile_network(source: str | Path | IntegerNetwork, output: str | Path,
                    cfg: CompileConfig | None = None,
                    images: np.ndarray | None = None) -> dict[str, Any]:
    """Compile a network into an artifact directory; returns the manifest."""
    cfg = cfg or CompileConfig()
    net = source if isinstance(source, IntegerNetwork) else _parse_source(source)
    if images is None:
        from ..data import load_mnist

        images = load_mnist("test")[0][: cfg.sample_digits]
    activations = run(net, images, trace=True).activations
    note = "explicit foldings"
    overrides: list[dict[str, int]] = [{} for _ in net.layers]
    if cfg.hardware is not None:
        hw = load_artifact(cfg.hardware).manifest["hardware"]["layers"]
        if len(hw) != len(net.layers):
            raise ValueError(f"the hardware has {len(hw)} layers, the network "
                             f"{len(net.layers)}")
        folds = [Folding(h["groups"], h["lanes"]) for h in hw]
        overrides = [{"acc_bits": h["acc_bits"], "depth": h["synapse_depth"],
                      "count_bits": h["count_bits"]} for h in hw]
        note = f"mapped onto the hardware of {cfg.hardware}"
    elif cfg.foldings is not None:
        folds = cfg.foldings
        if len(folds) != len(net.layers):
            raise ValueError(f"{len(folds)} foldings given for {len(net.layers)} layers")
    else:
        folds, note = choose_foldings(net, images, cfg.target_images_per_s, cfg.budget,
                                      activations)
    maps = [map_layer(net, i, f, **o) for i, (f, o) in enumerate(zip(folds, overrides))]
    report = simulate(maps, net, images, activations)
    res = network_resources(maps, net.input_bits)
    total = sum(res[1:], res[0])
    b = cfg.budget
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
            "fits_budget": total.fits(b),
            "fits_half": total.fits(XC7Z020, 0.5),
        },
        "folding_note": note,
        "target_images_per_s": cfg.target_images_per_s,
        "budget": b.to_dict(),
        "sample_digits": int(len(images)),
    }
    return write_artifact(output, net, maps, extra={"performance": perf})
