"""RTL datapath regression: the cocotb benches of sim/ on Icarus Verilog.

* pn_frame_buffer against a model of the ring (several shapes);
* pn_layer between a modelled frame buffer and output: golden outputs and the exact
  event/threshold phase lengths of the cycle model;
* pn_net on small random networks (weights 1..8 bits, activations 1..4 bits, several
  input widths, taps and strides > 1, odd sizes and foldings, sparse masks): golden class
  and logits per digit, result cycles equal to ``cycles.simulate``, back-pressure, row
  gaps, a reset in the middle of a digit, loading through the load port.

Skipped when iverilog or cocotb is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))

import pn_sim  # noqa: E402

_reason = pn_sim.have_simulator()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@pytest.mark.parametrize("case", pn_sim.FRAME_BUFFER_CASES,
                         ids=lambda c: "C{}_B{}_N{}_G{}_W{}".format(*c))
def test_frame_buffer(case, tmp_path):
    pn_sim.run_frame_buffer_test(case, build_root=tmp_path)


@pytest.mark.parametrize("spec,layer,load_port", pn_sim.LAYER_CASES,
                         ids=[f"{s.name}_L{i}" for s, i, _ in pn_sim.LAYER_CASES])
def test_layer(spec, layer, load_port, tmp_path):
    pn_sim.run_layer_test(spec, layer, load_port, build_root=tmp_path)


@pytest.mark.parametrize("spec", pn_sim.NET_SPECS, ids=[s.name for s in pn_sim.NET_SPECS])
def test_net(spec, tmp_path):
    pn_sim.run_net_test(spec, build_root=tmp_path)
