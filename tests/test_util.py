"""The shared integer helpers and the synthetic digits of tests and benches."""

from __future__ import annotations

import math

import numpy as np

from pynq_neuro.golden.synthetic import random_digits
from pynq_neuro.rtl.verilator import BASE_FLAGS, NO_DFG, command, files_key
from pynq_neuro.util import ceil_div, clog2


def test_ceil_div_is_the_ceiling_of_the_quotient():
    for a in range(0, 300):
        for b in range(1, 40):
            assert ceil_div(a, b) == math.ceil(a / b)
    assert ceil_div(np.int64(129), 32) == 5
    assert ceil_div(np.array([0, 1, 32, 33]), 32).tolist() == [0, 1, 1, 2]


def test_clog2():
    assert [clog2(n) for n in (0, 1, 2, 3, 4, 5, 1024, 1025)] == [0, 0, 1, 2, 2, 3, 10, 11]


def test_random_digits_are_sparse_reproducible_and_continue_a_stream():
    x = random_digits(200, 3)
    assert x.shape == (200, 28, 28) and x.dtype == np.uint8
    assert np.array_equal(x, random_digits(200, 3))
    assert abs((x == 0).mean() - (0.7 + 0.3 / 256)) < 0.01
    assert abs((random_digits(200, 3, zero_share=0.6) == 0).mean() - (0.6 + 0.4 / 256)) < 0.01
    rng = np.random.default_rng(3)
    first, second = random_digits(5, rng), random_digits(5, rng)
    assert np.array_equal(first, random_digits(5, 3)) and not np.array_equal(first, second)


def test_verilator_command_and_keys(tmp_path):
    cmd = command("verilator", top="tb", mdir=tmp_path, exe="Vtb", includes=["inc"],
                  defines=['PN_MEM_DIR="mem/"'], sources=["a.v", "b.v"], jobs=3, threads=2)
    assert cmd[: 1 + len(BASE_FLAGS)] == ["verilator", *BASE_FLAGS]
    assert cmd[-2:] == ["a.v", "b.v"] and NO_DFG[0] in cmd
    assert ["--top-module", "tb"] == cmd[cmd.index("--top-module"):][:2]
    assert "-Iinc" in cmd and '-DPN_MEM_DIR="mem/"' in cmd and ["--threads", "2"] == \
        cmd[cmd.index("--threads"):][:2]
    assert "--threads" not in command("verilator", top="tb", mdir=tmp_path, exe="Vtb",
                                      includes=[], defines=[], sources=[])
    a, b = tmp_path / "a.v", tmp_path / "b.v"
    a.write_text("module a; endmodule\n")
    b.write_text("module b; endmodule\n")
    key = files_key([a, b], "opts")
    assert len(key) == 16 and key == files_key([a, b], "opts")
    assert key != files_key([a, b], "other") and key != files_key([b, a], "opts")
    b.write_text("module b2; endmodule\n")
    assert key != files_key([a, b], "opts")
