"""The driver on the golden backend: classification, batching, loading, errors and recovery."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro.cli import main as cli_main
from pynq_neuro.compiler.artifact import VERSION, load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.cycles import simulate
from pynq_neuro.compiler.mapping import Folding, map_layer
from pynq_neuro.data import load_mnist
from pynq_neuro.driver import (CoreError, DmaTimeout, DriverError, GoldenBus, HardwareMismatch,
                               InputError, NeuroAccelerator, pixel_words)
from pynq_neuro.driver import registers as R
from pynq_neuro.golden import run
from pynq_neuro.util import ceil_div
from helpers import WrappedBus, run_numpy_only

NET = "tdnn-w2a2-sparse"


# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_mnist("test")
    return x[:600], y[:600]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, digits) -> dict[str, Path]:
    """The hardware network (compiled with the CLI), a variant network mapped onto the same
    hardware, and the same network on a different folding."""
    from pynq_neuro.rtl.regression import variant_network

    root = tmp_path_factory.mktemp("driver_artifacts")
    a, v, f = root / "hw", root / "variant", root / "folding"
    assert cli_main(["compile", NET, "-o", str(a), "--sample-digits", "100"]) == 0
    art = load_artifact(a)
    x = digits[0][:100]
    compile_network(variant_network(art.network, seed=3), v,
                    CompileConfig(hardware=str(a), sample_digits=100), x)
    folds = [Folding(h["groups"], h["lanes"]) for h in art.manifest["hardware"]["layers"]]
    folds[0] = Folding(max(1, folds[0].groups // 2), folds[0].lanes)
    compile_network(art.network, f, CompileConfig(foldings=folds, sample_digits=100), x)
    return {"hw": a, "variant": v, "folding": f}


@pytest.fixture(scope="session")
def golden(artifacts, digits):
    """The golden model's logits and classes of the test digits for each artifact."""
    out = {}
    for name in ("hw", "variant"):
        res = run(load_artifact(artifacts[name]).network, digits[0])
        out[name] = (res.classes.astype(np.int64), res.logits.astype(np.int64))
    return out


@pytest.fixture
def acc(artifacts):
    with NeuroAccelerator("golden", artifact=artifacts["hw"], max_batch=256) as a:
        yield a


class CountingBus(WrappedBus):
    """A bus wrapper that records the transfers."""

    def __init__(self, bus):
        super().__init__(bus)
        self.sends: list[int] = []
        self.writes: list[tuple[int, int]] = []

    def write(self, offset, value):
        self.writes.append((offset, value))
        self.inner.write(offset, value)

    def transfer(self, send, recv_words, timeout_s):
        self.sends.append(0 if send is None else len(send))
        return self.inner.transfer(send, recv_words, timeout_s)


# ------------------------------------------------------------------------------------------------
# classification


def test_classify_500_digits_equals_golden_model(acc, digits, golden):
    x, y = digits
    classes = acc.classify(x)
    assert classes.dtype == np.int64 and classes.shape == (len(x),)
    np.testing.assert_array_equal(classes, golden["hw"][0])
    assert np.mean(classes == y) > 0.95
    st = acc.status()
    assert st["digits"] == len(x) and not st["error"] and st["backend"] == "golden"


def test_logits_equal_golden_model(acc, digits, golden):
    classes, logits = acc.classify(digits[0][:200], logits=True)
    assert logits.dtype == np.int64 and logits.shape == (200, 10)
    np.testing.assert_array_equal(logits, golden["hw"][1][:200])
    np.testing.assert_array_equal(classes, golden["hw"][0][:200])
    # logits off again: one word per result
    np.testing.assert_array_equal(acc.classify(digits[0][:5]), golden["hw"][0][:5])


@pytest.mark.parametrize("max_batch", [1, 7, 1000])
def test_batching(artifacts, digits, golden, max_batch):
    bus = CountingBus(GoldenBus(artifacts["hw"]))
    acc = NeuroAccelerator("golden", max_batch=max_batch, bus=bus)
    n = 23
    classes, logits = acc.classify(digits[0][:n], logits=True)
    np.testing.assert_array_equal(classes, golden["hw"][0][:n])
    np.testing.assert_array_equal(logits, golden["hw"][1][:n])
    sizes = [min(max_batch, n - s) for s in range(0, n, max_batch)]
    assert bus.sends == [196 * s for s in sizes]
    assert acc.bus.read(R.BATCH) == sizes[-1]
    # the digit counters went on across the batches
    assert acc.core.next_counter == n and acc.status()["digits"] == n


def test_single_digit(acc, digits, golden):
    c = acc.classify(digits[0][3])
    assert np.ndim(c) == 0 and int(c) == golden["hw"][0][3]
    c, lg = acc.classify(digits[0][3], logits=True)
    assert int(c) == golden["hw"][0][3] and lg.shape == (10,)
    np.testing.assert_array_equal(lg, golden["hw"][1][3])


def test_non_contiguous_input(acc, digits, golden):
    x = digits[0][:40]
    strided = x[::2]
    fortran = np.asfortranarray(x[:10])
    np.testing.assert_array_equal(acc.classify(strided), golden["hw"][0][:40:2])
    np.testing.assert_array_equal(acc.classify(fortran), golden["hw"][0][:10])


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 28, 28), np.float32), "floating-point"),
    (np.zeros((2, 28, 28), np.float64), "uint8"),
    (np.zeros((2, 28, 28), np.int64), "uint8"),
    (np.zeros((2, 28, 27), np.uint8), "shape"),
    (np.zeros((784,), np.uint8), "shape"),
    (np.zeros((0, 28, 28), np.uint8), "no digits"),
    ([[0] * 28] * 28, "numpy array"),
])
def test_bad_inputs_are_refused_before_the_bus(acc, bad, words):
    before = acc.status()["digits"]
    with pytest.raises(InputError, match=words):
        acc.classify(bad)
    assert acc.status()["digits"] == before


def test_constructor_arguments_are_checked(artifacts):
    with pytest.raises(InputError, match="backend"):
        NeuroAccelerator("fpga", artifact=artifacts["hw"])
    with pytest.raises(InputError, match="max_batch"):
        NeuroAccelerator("golden", artifact=artifacts["hw"], max_batch=0)
    with pytest.raises(InputError, match="max_batch"):
        NeuroAccelerator("golden", artifact=artifacts["hw"], max_batch=70000)
    with pytest.raises(InputError, match="needs the artifact"):
        NeuroAccelerator("golden")


# ------------------------------------------------------------------------------------------------
# hardware and networks


def test_hardware_read_back(acc, artifacts):
    hw = acc.hardware()
    manifest = json.loads((artifacts["hw"] / "manifest.json").read_text())
    assert hw["id"] == R.ID_VALUE and hw["format_version"] == VERSION and hw["core_version"] == 1
    assert hw["fingerprint"] == manifest["hardware"]["fingerprint"]
    assert hw["layers"] == manifest["hardware"]["layers"]
    assert hw["input_bits"] == manifest["network"]["input_bits"]
    # the artifact module accepts the read-back as a hardware description
    load_artifact(artifacts["hw"]).check_hardware(hw)


def test_hardware_mismatch_lists_every_field(acc, artifacts, digits, golden):
    with pytest.raises(HardwareMismatch) as info:
        acc.load_network(artifacts["folding"])
    diffs = info.value.differences
    fields = {(where, field) for where, field, _, _ in diffs}
    assert ("core", "fingerprint") in fields and ("layer 0", "groups") in fields
    assert ("layer 0", "local_channels") in fields
    assert all(a != c for _, _, a, c in diffs)
    msg = str(info.value)
    assert "groups" in msg and "local_channels" in msg and "--hardware" in msg
    # nothing was sent: no load started, the network still works
    st = acc.status()
    assert not st["load_done"] and not st["error"]
    np.testing.assert_array_equal(acc.classify(digits[0][:50]), golden["hw"][0][:50])
    # and a golden core of the other folding is not accepted with the first artifact either
    with pytest.raises(HardwareMismatch):
        NeuroAccelerator("golden", artifact=artifacts["hw"],
                         bus=GoldenBus(artifacts["folding"])).load_network(artifacts["hw"])


@pytest.mark.parametrize("via", ["stream", "lite"])
def test_load_variant_network_and_back(acc, artifacts, digits, golden, via):
    x = digits[0][:300]
    assert not np.array_equal(golden["variant"][1][:300], golden["hw"][1][:300])
    acc.load_network(artifacts["variant"], via=via)
    st = acc.status()
    assert st["load_done"] and st["load_ok"] and not st["error"] and not st["load_mode"]
    classes, logits = acc.classify(x, logits=True)
    np.testing.assert_array_equal(logits, golden["variant"][1][:300])
    np.testing.assert_array_equal(classes, golden["variant"][0][:300])
    acc.load_network(artifacts["hw"], via=via)
    np.testing.assert_array_equal(acc.classify(x), golden["hw"][0][:300])


def test_corrupted_network_bin_is_refused(acc, artifacts, tmp_path, digits, golden):
    bad = tmp_path / "bad"
    shutil.copytree(artifacts["variant"], bad)
    data = bytearray((bad / "network.bin").read_bytes())
    data[200] ^= 0x10
    (bad / "network.bin").write_bytes(bytes(data))
    with pytest.raises(InputError, match="network.bin"):
        acc.load_network(bad)
    assert not acc.status()["load_done"]
    np.testing.assert_array_equal(acc.classify(digits[0][:30]), golden["hw"][0][:30])


def _stream(artifact: Path) -> np.ndarray:
    return np.frombuffer((artifact / "network.bin").read_bytes(), "<u4").astype(np.uint32)


@pytest.mark.parametrize("damage, code", [
    ("magic", 3), ("version", 3), ("banks", 4), ("bank_header", 4), ("payload", 5),
    ("truncated", 6), ("length", 6),
])
def test_core_refuses_bad_load_streams(acc, artifacts, digits, golden, damage, code):
    words = _stream(artifacts["variant"]).copy()
    if damage == "magic":
        words[0] ^= 1
    elif damage == "version":
        words[1] = VERSION + 1
    elif damage == "banks":
        words[2] += 1
    elif damage == "bank_header":
        words[5] += 1          # depth of the first bank
    elif damage == "payload":
        words[40] ^= 0x100     # inside the first bank: only the CRC notices
    elif damage == "truncated":
        words = words[:-1]     # TLAST on the last payload word, no CRC word
    elif damage == "length":
        words[3] -= 1
    with pytest.raises(CoreError) as info:
        acc.core.load_stream(words, 1.0)
    assert info.value.code == code and info.value.meaning == R.error_meaning(code)
    st = acc.status()
    assert st["load_done"] and not st["load_ok"] and not st["error"]  # cleared after raising
    # a good load afterwards restores a working core
    acc.load_network(artifacts["hw"])
    np.testing.assert_array_equal(acc.classify(digits[0][:20]), golden["hw"][0][:20])


def test_refused_load_keeps_written_words_and_blocks_classification(acc, artifacts, digits,
                                                                    golden, monkeypatch):
    words = _stream(artifacts["variant"]).copy()
    words[-1] ^= 1  # bad CRC word: every bank was written before the load is refused
    with pytest.raises(CoreError) as info:
        acc.core.load_stream(words, 1.0)
    assert info.value.code == 5
    # as in the RTL the memories hold the words that arrived: here the whole variant
    _, logits = acc.classify(digits[0][:50], logits=True)
    np.testing.assert_array_equal(logits, golden["variant"][1][:50])
    # through the accelerator a refused load leaves the network marked invalid
    real = acc.core.load_stream
    monkeypatch.setattr(acc.core, "load_stream", lambda w, t: real(words, t))
    with pytest.raises(CoreError, match="load again") as info:
        acc.load_network(artifacts["variant"])
    assert info.value.code == 5
    monkeypatch.undo()
    with pytest.raises(DriverError, match="load_network"):
        acc.classify(digits[0][:5])
    assert acc.network is None and not acc.status()["network_valid"]
    acc.load_network(artifacts["hw"])
    np.testing.assert_array_equal(acc.classify(digits[0][:20]), golden["hw"][0][:20])


def test_load_timeout_blocks_classification_until_reloaded(acc, artifacts, digits, golden):
    acc.bus.inject_stall("send")
    with pytest.raises(DmaTimeout, match="load again"):
        acc.load_network(artifacts["variant"])
    st = acc.status()
    assert not st["load_mode"] and not st["error"]
    with pytest.raises(DriverError, match="load_network"):
        acc.classify(digits[0][:5])
    acc.load_network(artifacts["variant"])
    np.testing.assert_array_equal(acc.classify(digits[0][:20]), golden["variant"][0][:20])


# ------------------------------------------------------------------------------------------------
# stream framing, errors and recovery


def test_packet_framing(artifacts, digits, golden):
    bus = GoldenBus(artifacts["hw"])
    words = pixel_words(digits[0][:3])
    bus.write(R.BATCH, 5)
    out = bus.transfer(words, 100, 1.0)          # 3 digits, TLAST after the third
    assert out.size == 3
    np.testing.assert_array_equal(out & 0xF, golden["hw"][0][:3])
    np.testing.assert_array_equal(out >> 16, [0, 1, 2])
    assert np.all(out & R.BEAT0_RESERVED_MASK == 0)
    bus.write(R.CONTROL, R.LOGITS_ENABLE)
    out = bus.transfer(words, 100, 1.0)
    assert out.size == 33
    w = out.reshape(3, 11)
    np.testing.assert_array_equal(w[:, 0] >> 16, [3, 4, 5])
    np.testing.assert_array_equal(w[:, 1:].view(np.int32), golden["hw"][1][:3])
    # BATCH = 2: the second digit ends the first packet; its result ends the S2MM packet
    bus.write(R.CONTROL, 0)
    bus.write(R.BATCH, 2)
    out = bus.transfer(pixel_words(digits[0][:2]), 100, 1.0)
    assert out.size == 2 and not bus.read(R.STATUS) & R.ERROR
    assert bus.read(R.BATCH) == 2
    bus.write(R.BATCH, 0)
    assert bus.read(R.BATCH) == 1


def test_long_frame_is_error_2_and_keeps_the_digit(artifacts, digits, golden):
    bus = GoldenBus(artifacts["hw"])
    words = pixel_words(digits[0][:3])            # BATCH 1, three digits in one packet
    out = bus.transfer(words, 10, 1.0)
    assert out.size == 1 and (out[0] & 0xF) == golden["hw"][0][0]
    st = R.status_fields(bus.read(R.STATUS))
    assert st["error"] and st["error_code"] == 2
    assert bus.read(R.DIGITS) == 1 and bus.pending_results == 0  # digits 2 and 3 were dropped


def test_short_frame_gives_core_error_1_and_recovers(acc, digits, golden):
    acc.bus.transfer(pixel_words(digits[0][:1])[:100], 0, 1.0)  # TLAST on beat 100
    st = acc.status()
    assert st["error"] and st["error_code"] == 1 and "short frame" in st["error_meaning"]
    with pytest.raises(CoreError) as info:
        acc.classify(digits[0][:10])
    assert info.value.code == 1 and "before this call" in str(info.value)
    np.testing.assert_array_equal(acc.classify(digits[0][:10]), golden["hw"][0][:10])
    assert not acc.status()["error"]


def test_first_error_is_sticky_until_cleared(artifacts, digits):
    bus = GoldenBus(artifacts["hw"])
    w = pixel_words(digits[0][:2])
    bus.transfer(w[:50], 0, 1.0)                   # error 1
    bus.transfer(w, 10, 1.0)                       # error 2 would follow
    assert R.status_fields(bus.read(R.STATUS))["error_code"] == 1
    bus.write(R.CONTROL, R.CLEAR_ERROR)
    assert not bus.read(R.STATUS) & R.ERROR
    assert bus.read(R.CONTROL) == 0                 # self-clearing bits read 0


def test_short_frame_inside_a_packet_times_out_without_tlast(acc, digits, golden):
    """Digits before a short frame are classified, but their results carry no TLAST: the
    receive does not end; the accelerator's reset recovers."""
    bus = acc.bus
    bus.write(R.BATCH, 4)
    acc.core._batch = 4
    words = pixel_words(digits[0][:3])[: 2 * 196 + 50]
    with pytest.raises(DmaTimeout):
        bus.transfer(words, 4, 1.0)
    with pytest.raises(DriverError, match="reset_dma"):
        bus.transfer(words, 4, 1.0)
    acc.reset()
    st = acc.status()
    assert not st["error"] and st["digits"] == 0 and not st["busy"]
    np.testing.assert_array_equal(acc.classify(digits[0][:25]), golden["hw"][0][:25])


@pytest.mark.parametrize("direction", ["send", "recv"])
def test_dma_timeout_and_recovery(artifacts, digits, golden, direction):
    bus = GoldenBus(artifacts["hw"])
    acc = NeuroAccelerator("golden", max_batch=10, bus=bus)
    bus.inject_stall(direction, after=1)           # the second batch stalls
    with pytest.raises(DmaTimeout) as info:
        acc.classify(digits[0][:30], logits=True)
    e = info.value
    assert e.completed == 10 and "digits 10..19" in str(e) and "lost" in str(e)
    np.testing.assert_array_equal(e.classes, golden["hw"][0][:10])
    np.testing.assert_array_equal(e.logits, golden["hw"][1][:10])
    assert bus.pending_results == 0                 # the held results were drained
    classes = acc.classify(digits[0][:30])
    np.testing.assert_array_equal(classes, golden["hw"][0][:30])
    assert acc.status()["digits"] == 30


def test_stale_or_missing_results_raise_core_error(acc, digits, golden):
    # a result packet of an earlier exchange left in the core arrives first
    acc.bus.transfer(pixel_words(digits[0][:1]), 0, 1.0)
    with pytest.raises(CoreError, match="1 words, expected 5"):
        acc.classify(digits[0][:5])
    np.testing.assert_array_equal(acc.classify(digits[0][:5]), golden["hw"][0][:5])
    # results taken behind the driver's back: the digit counters do not follow on
    acc.bus.transfer(pixel_words(digits[0][:1]), 1, 1.0)
    with pytest.raises(CoreError, match="digit counter 6, expected 5"):
        acc.classify(digits[0][:5])
    np.testing.assert_array_equal(acc.classify(digits[0][:5]), golden["hw"][0][:5])


def test_timeout_budget_of_the_golden_bus(artifacts, digits):
    acc = NeuroAccelerator("golden", artifact=artifacts["hw"], timeout_s=1e-6)
    with pytest.raises(DmaTimeout, match="cycles"):
        acc.classify(digits[0][:20])


# ------------------------------------------------------------------------------------------------
# registers and counters


def test_register_file(artifacts):
    bus = GoldenBus(artifacts["hw"])
    art = load_artifact(artifacts["hw"])
    layers = art.manifest["hardware"]["layers"]
    assert bus.read(R.ID) == 0x504E4E31
    assert bus.read(R.VERSION) == (VERSION << 16) | 1
    assert bus.read(R.NUM_LAYERS) == len(layers)
    fp = int(art.fingerprint, 16)
    assert bus.read(R.FINGERPRINT_HI) == fp >> 32 and bus.read(R.FINGERPRINT_LO) == fp & 0xFFFFFFFF
    assert bus.read(R.layer_field_offset(1, "lanes")) == layers[1]["lanes"]
    assert bus.read(0x100 + 0x80 * 1 + 4 * 24) == layers[1]["index_depth"]
    assert bus.read(R.layer_field_offset(len(layers), 0)) == 0     # layer not synthesized
    assert bus.read(0x030) == 0 and bus.read(R.LOAD_ADDR) == 0       # unmapped / reserved
    bus.write(R.CONTROL, R.LOGITS_ENABLE | R.SOFT_RESET | R.CLEAR_COUNTERS)
    assert bus.read(R.CONTROL) == R.LOGITS_ENABLE
    assert R.layer_field_offset(7, 24) == 0x4E0      # last field of the last layer block
    with pytest.raises(ValueError):
        R.layer_field_offset(8, 0)


def test_cycles_follow_the_cycle_model(acc, artifacts, digits):
    x = digits[0][:200]
    acc.max_batch = 200
    acc.core.clear_counters()
    c0 = acc.bus.cycles()
    acc.classify(x)
    art = load_artifact(artifacts["hw"])
    maps = [map_layer(art.network, i, Folding(h["groups"], h["lanes"]), pack=False,
                      acc_bits=h["acc_bits"], depth=h["synapse_depth"],
                      count_bits=h["count_bits"])
            for i, h in enumerate(art.manifest["hardware"]["layers"])]
    report = simulate(maps, art.network, x)
    expected = int(report.result_times[-1]) + 1
    assert acc.status()["cycles"] == expected
    assert acc.bus.cycles() - c0 == expected
    predicted = art.manifest["performance"]["cycle_model"]["cycles_per_digit"]
    assert abs(expected / 200 - predicted) / predicted < 0.1


def test_throughput_test(acc):
    t = acc.throughput_test(n=40, batch_sizes=(1, 10, 40))
    for key in ("digits_per_s", "digits_per_s_with_data_movement", "cycles_per_digit",
                "per_batch_size", "backend", "clock_mhz"):
        assert key in t
    assert t["backend"] == "golden" and t["clock_mhz"] == 100.0 and "cycle model" in t["source"]
    rows = t["per_batch_size"]
    assert [r["batch"] for r in rows] == [1, 10, 40]
    assert [r["transfers"] for r in rows] == [40, 4, 1]
    # one digit per transfer pays the pipeline latency each time
    assert rows[0]["cycles_per_digit"] > rows[2]["cycles_per_digit"] > 0
    assert t["digits_per_s"] == pytest.approx(100e6 / t["cycles_per_digit"])
    assert acc.max_batch == 256                     # restored


def test_reset_and_close(artifacts, digits):
    acc = NeuroAccelerator("golden", artifact=artifacts["hw"])
    acc.classify(digits[0][:3])
    acc.bus.transfer(pixel_words(digits[0][:1])[:10], 0, 1.0)
    acc.reset()
    st = acc.status()
    assert not st["error"] and st["digits"] == 0 and st["batch"] == 1
    with acc:
        pass
    with pytest.raises(DriverError, match="closed"):
        acc.classify(digits[0][:1])


def test_auto_backend_without_board(artifacts, monkeypatch):
    from pynq_neuro.driver import board

    monkeypatch.setattr(board, "board_available", lambda: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert NeuroAccelerator("auto", artifact=artifacts["hw"]).backend == "golden"
    with pytest.raises(InputError, match="artifact"):
        NeuroAccelerator("auto")


def test_driver_needs_numpy_only(artifacts):
    """The driver with the golden backend imports and runs without torch, pynq or
    matplotlib, as on the board."""
    r = run_numpy_only(f"""
        import numpy as np
        from pynq_neuro.data import load_mnist
        from pynq_neuro.driver import NeuroAccelerator
        from pynq_neuro.driver.board import board_available
        x, y = load_mnist('test')
        acc = NeuroAccelerator('golden', artifact=r'{artifacts["hw"]}')
        c = acc.classify(x[:50])
        print(board_available(), float((c == y[:50]).mean()),
              sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pynq')))
    """)
    assert r.returncode == 0, r.stderr
    available, accuracy, mods = r.stdout.split(maxsplit=2)
    assert available == "False" and float(accuracy) > 0.9 and mods.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# packed pixel streams


@pytest.fixture(scope="session")
def packed(tmp_path_factory, digits) -> Path:
    """The binary-pixel zoo model compiled for a packed stream (a row a beat)."""
    out = tmp_path_factory.mktemp("driver_packed") / "in1"
    assert cli_main(["compile", "tdnn-w2a2-sparse-in1", "-o", str(out), "--sample-digits", "100",
                     "--packed-pixels"]) == 0
    return out


@pytest.mark.parametrize("bits", range(1, 9))
def test_pixel_words_pack_what_the_core_keeps(bits):
    """Packed beats carry each pixel's high ``bits`` bits, floor(32 / bits) pixels a beat (a
    row at most), a row starting on a new beat; unpacking gives back what the core sees."""
    from pynq_neuro.driver.core import words_digits

    rng = np.random.default_rng(bits)
    x = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    kept = ((x >> (8 - bits)) << (8 - bits)).astype(np.uint8)
    per = min(28, 32 // bits)
    per_row = ceil_div(28, per)
    words = pixel_words(x, bits, True)
    assert words.dtype == np.uint32 and words.size == 3 * 28 * per_row
    assert R.beats_per_digit(bits, True) == 28 * per_row
    # pixel c of row r of digit n: beat (n, r, c // per), bits (c % per) * bits
    n, r, c = 2, 17, 27
    word = int(words[(n * 28 + r) * per_row + c // per])
    assert (word >> ((c % per) * bits)) & ((1 << bits) - 1) == x[n, r, c] >> (8 - bits)
    np.testing.assert_array_equal(words_digits(words, bits, True), kept)
    # the byte stream is unchanged: four pixels a beat, whatever the input bits
    np.testing.assert_array_equal(pixel_words(x, bits, False), x.reshape(-1).view("<u4"))
    np.testing.assert_array_equal(words_digits(pixel_words(x), bits, False), x)


def test_a_packed_stream_classifies_like_the_golden_model(packed, digits):
    """The driver reads the core's stream from PIXEL_STREAM and packs the digits: 28 beats a
    digit for binary pixels, results equal to the golden model, cycles as the cycle model
    predicts with one beat a row; a short packed frame is error 1."""
    art = load_artifact(packed)
    assert art.packed_pixels and art.beats_per_row == 1
    x = digits[0][:300]
    want = run(art.network, x)
    bus = CountingBus(GoldenBus(packed))
    with NeuroAccelerator("golden", artifact=packed, bus=bus, max_batch=100) as a:
        hw = a.hardware()
        assert hw["packed_pixels"] and hw["input_bits"] == 1
        assert bus.read(R.PIXEL_STREAM) == R.PACKED | (28 << R.PIXELS_PER_BEAT_SHIFT)
        art.check_hardware(hw)
        a.core.clear_counters()
        classes, logits = a.classify(x, logits=True)
        np.testing.assert_array_equal(classes, want.classes)
        np.testing.assert_array_equal(logits, want.logits)
        assert bus.sends[-3:] == [100 * 28] * 3
        maps = [map_layer(art.network, i, Folding(h["groups"], h["lanes"]), pack=False)
                for i, h in enumerate(art.manifest["hardware"]["layers"])]
        report = simulate(maps, art.network, x[200:], beats_per_row=1)
        a.core.clear_counters()
        a.classify(x[200:])                                          # one batch of 100
        assert a.status()["cycles"] == int(report.result_times[-1]) + 1
        bytes_report = simulate(maps, art.network, x[200:])
        assert report.cycles_per_digit < bytes_report.cycles_per_digit
        a.bus.transfer(pixel_words(x[:1], 1, True)[:14], 0, 1.0)    # TLAST on beat 14 of 28
        st = a.status()
        assert st["error"] and st["error_code"] == 1
        with pytest.raises(CoreError):
            a.classify(x[:5])
        np.testing.assert_array_equal(a.classify(x[:5]), want.classes[:5])


def test_a_packed_artifact_is_refused_by_a_byte_stream_core(acc, packed, tmp_path):
    """The stream format is part of the hardware: its fingerprint covers it, the difference
    is listed, and a compile onto the packed build takes the packed stream."""
    from pynq_neuro.compiler.artifact import hardware_differences

    art = load_artifact(packed)
    other = tmp_path / "bytes"
    compile_network(art.network, other, CompileConfig(
        foldings=[Folding(h["groups"], h["lanes"]) for h in art.manifest["hardware"]["layers"]],
        sample_digits=50), load_mnist("test")[0][:50])
    plain = load_artifact(other)
    assert not plain.packed_pixels and plain.fingerprint != art.fingerprint
    diffs = hardware_differences(art.manifest["hardware"], plain.manifest["hardware"])
    assert ("network", "packed_pixels", True, False) in diffs
    assert plain.manifest["hardware"]["layers"] == art.manifest["hardware"]["layers"]
    with NeuroAccelerator("golden", artifact=other) as a:
        with pytest.raises(HardwareMismatch, match="packed_pixels"):
            a.load_network(packed)
    onto = tmp_path / "onto"
    compile_network(art.network, onto, CompileConfig(hardware=str(packed), sample_digits=50),
                    load_mnist("test")[0][:50])
    assert load_artifact(onto).fingerprint == art.fingerprint
    with pytest.raises(ValueError, match="packed_pixels"):
        compile_network(art.network, tmp_path / "no", CompileConfig(
            hardware=str(other), packed_pixels=True, sample_digits=50), load_mnist("test")[0][:50])


@pytest.mark.parametrize("value", [0, R.PACKED | (27 << R.PIXELS_PER_BEAT_SHIFT), 4 << 8 | 2])
def test_a_pixel_stream_the_driver_cannot_send_is_refused(packed, value):
    """PIXEL_STREAM must agree with INPUT_BITS: a core that reports another stream (no pixels
    a beat, a packing that does not match its input bits, reserved bits) is refused."""

    class OtherStream(WrappedBus):
        def read(self, offset):
            return value if offset == R.PIXEL_STREAM else self.inner.read(offset)

    bus = OtherStream(GoldenBus(packed))
    with pytest.raises(DriverError, match="PIXEL_STREAM reads"):
        NeuroAccelerator("golden", artifact=packed, bus=bus)
