"""The driver's error contract: bad arguments raise its documented types (InputError,
DriverError and subclasses), never a bare OSError, KeyError, TypeError or ZeroDivisionError; and
the golden backend works through any batch in bounded memory, bit for bit."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro.compiler.artifact import load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.cycles import simulate
from pynq_neuro.data import load_mnist
from pynq_neuro.driver import (DriverError, GoldenBus, InputError, NeuroAccelerator, NeuroCore,
                               golden_bus)
from pynq_neuro.driver.sim_bus import CycleBudget, SimBus, build_key
from pynq_neuro.golden import run

NET = "tdnn-w2a2-sparse"
DOCUMENTED = (InputError, DriverError)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_mnist("test")[0]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, digits) -> Path:
    out = tmp_path_factory.mktemp("driver_errors") / "hw"
    compile_network(NET, out, CompileConfig(sample_digits=100), digits[:100])
    return out


@pytest.fixture
def acc(artifact):
    with NeuroAccelerator("golden", artifact=artifact, max_batch=64) as a:
        yield a


@pytest.fixture(scope="module")
def bad_paths(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_paths")
    (root / "loop").symlink_to(root / "loop")
    (root / "file").write_text("not an artifact\n")
    (root / "empty").mkdir()
    (root / "manifest_dir").mkdir()
    (root / "manifest_dir" / "manifest.json").mkdir()
    (root / "garbage").mkdir()
    (root / "garbage" / "manifest.json").write_bytes(b"\x00\xff{not json")
    return {"loop": root / "loop", "file": root / "file", "missing": root / "missing",
            "empty": root / "empty", "manifest_dir": root / "manifest_dir",
            "garbage": root / "garbage", "under_file": root / "file" / "sub"}


# ------------------------------------------------------------------------------------------------
# constructor and settings


@pytest.mark.parametrize("timeout_s", [0, -1.0, math.nan, math.inf, -math.inf, "5", None, True,
                                       1j])
def test_timeout_must_be_a_finite_positive_number(artifact, timeout_s):
    with pytest.raises(InputError, match="timeout_s"):
        NeuroAccelerator("golden", artifact=artifact, timeout_s=timeout_s)


@pytest.mark.parametrize("max_batch", [True, False, 0, -1, 65536, 1.5, "8", None,
                                       np.float64(4), np.bool_(True)])
def test_max_batch_must_be_an_integer_in_range(artifact, max_batch):
    with pytest.raises(InputError, match="max_batch"):
        NeuroAccelerator("golden", artifact=artifact, max_batch=max_batch)


def test_settings_are_checked_after_construction_too(acc):
    for value in (math.nan, math.inf, 0, "1"):
        with pytest.raises(InputError, match="timeout_s"):
            acc.timeout_s = value
    for value in (True, 0, 70000, 2.0):
        with pytest.raises(InputError, match="max_batch"):
            acc.max_batch = value
    assert acc.timeout_s == 5.0 and acc.max_batch == 64   # unchanged
    acc.max_batch = np.int32(7)
    assert acc.max_batch == 7 and type(acc.max_batch) is int


@pytest.mark.parametrize("backend", [None, 5, "GOLDEN", "", ["golden"]])
def test_backend_must_be_a_known_name(artifact, backend):
    with pytest.raises(InputError, match="backend"):
        NeuroAccelerator(backend, artifact=artifact)


@pytest.mark.parametrize("which", ["loop", "file", "missing", "empty", "manifest_dir",
                                   "garbage", "under_file"])
def test_unusable_artifact_paths_are_input_errors(bad_paths, which):
    with pytest.raises(InputError):
        NeuroAccelerator("golden", artifact=bad_paths[which])
    with pytest.raises(InputError):
        NeuroAccelerator("golden", artifact=str(bad_paths[which]))
    with pytest.raises(InputError):
        GoldenBus(bad_paths[which])


@pytest.mark.parametrize("artifact_arg", [42, 3.5, b"bytes", ["a"]])
def test_artifact_of_wrong_type(artifact_arg):
    with pytest.raises(InputError, match="artifact"):
        NeuroAccelerator("golden", artifact=artifact_arg)


def test_bus_must_implement_the_protocol(artifact):
    with pytest.raises(InputError, match="Bus protocol"):
        NeuroAccelerator("golden", bus=object())


# ------------------------------------------------------------------------------------------------
# classification arguments


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 28, 28), bool), "uint8"),
    (np.zeros((2, 28, 28), np.uint16), "uint8"),
    (np.zeros((2, 28, 28), np.int8), "uint8"),
    (np.zeros((2, 28, 28), np.float16), "floating-point"),
    (np.zeros((2, 28, 28), object), "uint8"),
    (np.zeros((2, 28, 28), [("a", np.uint8)]), "uint8"),
    (np.zeros((1, 2, 28, 28), np.uint8), "shape"),
    (np.zeros((2, 784), np.uint8), "shape"),
    (np.zeros((28,), np.uint8), "shape"),
    (np.zeros((), np.uint8), "shape"),
    (np.zeros((2, 0, 28), np.uint8), "shape"),
    (None, "numpy array"),
    ("digits", "numpy array"),
    (b"\x00" * 784, "numpy array"),
])
def test_bad_digits_are_input_errors(acc, bad, words):
    with pytest.raises(InputError, match=words):
        acc.classify(bad)
    assert acc.status()["digits"] == 0 and not acc.status()["error"]


def test_unusual_layouts_classify_like_contiguous_digits(acc, artifact, digits):
    x = np.array(digits[:40])
    expected = run(load_artifact(artifact).network, x).classes
    reversed_ = x[::-1]
    transposed = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)  # not C order
    readonly = x.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(acc.classify(reversed_), expected[::-1])
    np.testing.assert_array_equal(acc.classify(transposed), expected)
    np.testing.assert_array_equal(acc.classify(readonly), expected)
    np.testing.assert_array_equal(acc.classify(x.view(np.ndarray)[::3]), expected[::3])


@pytest.mark.parametrize("logits", [1, "yes", None, np.zeros(2)])
def test_logits_flag_must_be_a_bool(acc, digits, logits):
    with pytest.raises(InputError, match="logits"):
        acc.classify(digits[:2], logits=logits)


@pytest.mark.parametrize("kwargs, words", [
    ({"n": 0}, "n must"), ({"n": -3}, "n must"), ({"n": 2.5}, "n must"), ({"n": True}, "n must"),
    ({"n": "10"}, "n must"), ({"batch_sizes": ()}, "empty"), ({"batch_sizes": None}, "sequence"),
    ({"batch_sizes": (0,)}, "batch size"), ({"batch_sizes": (True,)}, "batch size"),
    ({"batch_sizes": (10, 70000)}, "batch size"), ({"digits": np.zeros((3, 28, 28))}, "uint8"),
])
def test_throughput_test_arguments(acc, kwargs, words):
    with pytest.raises(InputError, match=words):
        acc.throughput_test(**{"n": 4, "batch_sizes": (1, 4), **kwargs})


# ------------------------------------------------------------------------------------------------
# buses and the register level


@pytest.mark.parametrize("clock", [0, -100, math.nan, math.inf, "100", None, True])
def test_bus_clocks_are_checked(artifact, clock):
    with pytest.raises(InputError, match="clock_mhz"):
        GoldenBus(artifact, clock_mhz=clock)
    with pytest.raises(InputError, match="clock_mhz"):
        SimBus(artifact, clock_mhz=clock)


def test_golden_bus_transfer_arguments(artifact, digits):
    bus = GoldenBus(artifact)
    words = np.zeros(196, np.uint32)
    for kwargs in ({"recv_words": -1}, {"recv_words": 1.5}, {"recv_words": True},
                   {"timeout_s": math.nan}, {"timeout_s": 0}, {"timeout_s": "1"},
                   {"send": np.zeros(196, np.float32)}, {"send": np.array([-1, 2**33])}):
        args = {"send": words, "recv_words": 1, "timeout_s": 1.0, **kwargs}
        with pytest.raises(InputError):
            bus.transfer(**args)
    assert bus.pending_results == 0
    with pytest.raises(InputError, match="direction"):
        bus.inject_stall("both")
    with pytest.raises(InputError, match="transfers"):
        bus.inject_stall("send", transfers=-1)


@pytest.mark.parametrize("n", [0, -1, 65536, 2.0, True])
def test_core_batch_register_is_checked(artifact, n):
    core = NeuroCore(GoldenBus(artifact))
    with pytest.raises(InputError, match="BATCH"):
        core.set_batch(n)


def test_sim_bus_arguments_fail_before_any_simulator_starts(bad_paths, artifact):
    # huge timeouts saturate the cycle budget instead of overflowing
    assert CycleBudget().cycles(1e308, 1e300, 10) == CycleBudget().base_cycles + 640
    assert CycleBudget().cycles(math.inf, 100.0, 0) == CycleBudget().base_cycles
    for which in ("loop", "file", "missing", "under_file"):
        with pytest.raises(InputError, match="artifact"):
            build_key(bad_paths[which], "verilator")
    with pytest.raises(InputError, match="artifact"):
        build_key(42, "verilator")
    with pytest.raises(InputError, match="startup_timeout_s"):
        SimBus(artifact, startup_timeout_s=math.nan)


def test_every_refusal_is_a_documented_type(acc, artifact, bad_paths, digits):
    """One sweep over many wrong calls: whatever is raised is a driver error type."""
    calls = [
        lambda: acc.classify(np.zeros((1, 28, 28), np.float64)),
        lambda: acc.classify([1, 2, 3]),
        lambda: acc.classify(digits[:1], logits="no"),
        lambda: acc.throughput_test(n=math.nan),
        lambda: setattr(acc, "timeout_s", float("nan")),
        lambda: setattr(acc, "max_batch", None),
        lambda: NeuroAccelerator("golden"),
        lambda: NeuroAccelerator("golden", artifact=bad_paths["loop"], timeout_s=math.inf),
        lambda: NeuroAccelerator("sim", artifact=bad_paths["file"]),
        lambda: NeuroAccelerator("golden", artifact=artifact, max_batch=np.bool_(False)),
        lambda: GoldenBus(bad_paths["under_file"], clock_mhz=100.0),
        lambda: GoldenBus(artifact).transfer(np.zeros((2, 2), np.complex64), 0, 1.0),
        lambda: NeuroAccelerator("board", overlay=str(bad_paths["missing"])),
        lambda: NeuroAccelerator("board", overlay=str(bad_paths["file"])),
        lambda: NeuroAccelerator("board", overlay=42),
        lambda: GoldenBus(42),
        lambda: GoldenBus(None),
    ]
    for call in calls:
        with pytest.raises(Exception) as info:
            call()
        assert isinstance(info.value, DOCUMENTED), (type(info.value), info.value)


# ------------------------------------------------------------------------------------------------
# the golden backend in chunks: bounded memory, identical results


def test_chunked_packet_is_bit_exact_and_cycles_stay_close(artifact, digits, monkeypatch):
    monkeypatch.setattr(golden_bus, "CHUNK_DIGITS", 100)
    x = np.ascontiguousarray(digits[:250])
    art = load_artifact(artifact)
    ref = run(art.network, x)
    acc = NeuroAccelerator("golden", artifact=artifact, max_batch=250)   # one packet, 3 chunks
    classes, logits = acc.classify(x, logits=True)
    np.testing.assert_array_equal(classes, ref.classes)
    np.testing.assert_array_equal(logits, ref.logits)
    # the cycle model restarts at each chunk: at most one digit latency more per boundary
    report = simulate(art.cycle_maps(), art.network, x)
    whole = int(report.result_times[-1]) + 11     # one stream from cycle 0, 11 result beats
    extra = acc.status()["cycles"] - whole
    assert 0 <= extra <= 2 * int(report.latency.max())


def test_golden_bus_peak_memory_is_bounded_by_the_chunk(artifact, digits, monkeypatch):
    """Peak allocation of a 1,280-digit packet in chunks of 128 (10 chunks) stays at the size
    of about one chunk; classifying the packet in one piece took about 110 MB."""
    monkeypatch.setattr(golden_bus, "CHUNK_DIGITS", 128)
    x = np.ascontiguousarray(np.resize(digits[:2000], (1280, 28, 28)))
    acc = NeuroAccelerator("golden", artifact=artifact, max_batch=len(x), timeout_s=1e6)
    acc.classify(x[:8], logits=True)               # imports and caches outside the measurement
    tracemalloc.start()
    try:
        classes, logits = acc.classify(x, logits=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 25e6, f"peak {peak / 1e6:.1f} MB"
    ref = run(load_artifact(artifact).network, x)
    np.testing.assert_array_equal(classes, ref.classes)
    np.testing.assert_array_equal(logits, ref.logits)


def test_golden_bus_20000_digits_in_one_packet_stay_under_200_mb(artifact):
    """The default chunk size: 20,000 digits in one 20,000-digit packet, measured as the growth
    of the peak resident memory of a fresh process (the unchunked model needed ~1.7 GB)."""
    script = textwrap.dedent(f"""
        import json, resource
        import numpy as np
        from pynq_neuro.data import load_mnist
        from pynq_neuro.driver import NeuroAccelerator

        def rss_kb():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

        x = np.ascontiguousarray(np.resize(load_mnist("test")[0], (20000, 28, 28)))
        acc = NeuroAccelerator("golden", artifact={str(artifact)!r}, max_batch=20000,
                               timeout_s=1e6)
        acc.classify(x[:16])
        before = max(rss_kb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        classes = acc.classify(x)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"growth_mb": (peak - before) / 1024, "n": int(len(classes)),
                           "digits": acc.status()["digits"]}}))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["n"] == 20000 and out["digits"] == 20016
    assert out["growth_mb"] < 200, out
