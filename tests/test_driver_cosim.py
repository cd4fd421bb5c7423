"""The driver against the RTL: ``NeuroAccelerator(backend="sim")`` and ``SimBus`` on the default
network (``tdnn-w2a2-sparse``) simulated from ``hdl/``.

Every result is compared bit for bit with the golden model; the throughput is compared with the
Verilator fast path (``pynq_neuro.rtl.regression``). A small Icarus + cocotb check covers the
other engine on a tiny network. Skipped when no simulator (Verilator, or Icarus with cocotb) is
installed. The first run builds the simulators (a few minutes); later runs reuse the builds.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro.driver import CoreError, DmaTimeout, InputError, NeuroAccelerator, pixel_words
from pynq_neuro.driver import registers as R
from pynq_neuro.driver.sim_bus import SimBus, sim_unavailable
from pynq_neuro.golden import run

_REASON = sim_unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"no RTL simulator: {_REASON}")

DIGITS = 240
# cycles per digit of a back-to-back batch against the fast path's steady-state interval:
# the batch also counts one digit latency (~520 cycles) and its register accesses
THROUGHPUT_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    from pynq_neuro.data import DataError, load_mnist

    try:
        return np.ascontiguousarray(load_mnist("test", download=False)[0][:DIGITS])
    except DataError as e:
        pytest.skip(f"MNIST test split not available: {e}")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, images) -> Path:
    """The default network compiled for its default hardware, kept at a path that depends on
    its content only (so that the Verilator builds keyed by path are reused across runs)."""
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.compiler.compile import compile_network
    from pynq_neuro.rtl import REPO

    tmp = tmp_path_factory.mktemp("cosim") / "w2a2s"
    compile_network("tdnn-w2a2-sparse", tmp)
    art = load_artifact(tmp)
    digest = art.manifest["files"]["network.bin"][:12]
    stable = REPO / "build" / "rtl" / "cosim" / "artifacts" / f"{art.fingerprint}-{digest}"
    if not (stable / "manifest.json").exists():
        stable.parent.mkdir(parents=True, exist_ok=True)
        staging = stable.with_name(stable.name + f".tmp{time.time_ns()}")
        shutil.copytree(tmp, staging)
        try:
            staging.rename(stable)
        except OSError:  # another run put it there first
            shutil.rmtree(staging, ignore_errors=True)
    return stable


@pytest.fixture(scope="module")
def golden(artifact, images):
    from pynq_neuro.compiler.artifact import load_artifact

    res = run(load_artifact(artifact).network, images)
    return res.classes.astype(np.int64), np.rint(res.logits).astype(np.int64)


@pytest.fixture
def acc(artifact):
    with NeuroAccelerator(backend="sim", artifact=artifact) as a:
        yield a
    assert a.bus.pid is None


def _zeroed_copy(artifact: Path, out: Path) -> Path:
    """The simulator's inputs of the artifact (Verilog header and memory images) with every
    memory image cleared: the same hardware, no network. It is no longer an artifact (the
    digests differ), so the simulator is opened directly."""
    out.mkdir()
    shutil.copy(artifact / "neuro_params.vh", out)
    (out / "mem").mkdir()
    for mem in (artifact / "mem").glob("*.mem"):
        lines = [line for line in mem.read_text().splitlines() if line.strip()]
        (out / "mem" / mem.name).write_text("".join("0\n" for _ in lines))
    return out


# ---------------------------------------------------------------------------------------------
# registers and loading


def test_parameters_and_stream_load(artifact, images, golden, tmp_path):
    """A core started with empty memories: its synthesized parameters read back; the network
    loads through the stream (LOAD_MODE) and then classifies exactly like the golden model."""
    from pynq_neuro.compiler.artifact import load_artifact

    empty = _zeroed_copy(artifact, tmp_path / "empty")
    manifest = load_artifact(artifact).manifest
    with pytest.raises(InputError, match="artifact refused"):
        NeuroAccelerator(backend="sim", artifact=empty)
    with NeuroAccelerator(bus=SimBus(empty)) as acc:
        assert acc.backend == "sim"
        hw = acc.hardware()
        assert hw["fingerprint"] == manifest["hardware"]["fingerprint"]
        assert hw["layers"] == [{k: layer[k] for k in R.HW_LAYER_FIELDS}
                                for layer in manifest["hardware"]["layers"]]
        assert hw["input_bits"] == manifest["network"]["input_bits"]
        x = images[:12]
        before = acc.classify(x, logits=True)[1]
        assert not np.array_equal(before, golden[1][:12])   # nothing loaded yet
        c0 = acc.bus.cycles()
        acc.load_network(artifact)
        status = acc.status()
        assert status["load_done"] and status["load_ok"] and not status["error"], status
        words = (artifact / "network.bin").stat().st_size // 4
        assert acc.bus.cycles() - c0 >= words       # one stream beat per word at most
        classes, logits = acc.classify(x, logits=True)
        np.testing.assert_array_equal(classes, golden[0][:12])
        np.testing.assert_array_equal(logits, golden[1][:12])


# ---------------------------------------------------------------------------------------------
# classification


@pytest.mark.parametrize("batch", [1, 37, DIGITS])
def test_classify_bit_exact(acc, images, golden, batch):
    """Classes and logits of 240 digits (24 with one digit per transfer) equal the golden
    model, with packets of several digits ending in a shorter one."""
    n = 24 if batch == 1 else DIGITS
    acc.max_batch = batch
    c0 = acc.bus.cycles()
    classes, logits = acc.classify(images[:n], logits=True)
    np.testing.assert_array_equal(classes, golden[0][:n])
    np.testing.assert_array_equal(logits, golden[1][:n])
    only = acc.classify(images[:n])
    np.testing.assert_array_equal(only, golden[0][:n])
    assert acc.status()["digits"] == 2 * n
    assert acc.bus.cycles() - c0 > 2 * n * R.BEATS_PER_DIGIT
    assert acc.classify(images[5]) == golden[0][5]          # one (28, 28) digit


# ---------------------------------------------------------------------------------------------
# errors and recovery


def test_dma_timeout_and_recovery(acc, images, golden):
    """A receive with nothing to receive, and a packet cut off mid-transfer, time out after
    their cycle budget with the DMA still running; reset_dma() and a soft reset recover."""
    bus = acc.bus
    with pytest.raises(DmaTimeout, match="S2MM"):
        bus.transfer(None, 11, timeout_s=1e-4)               # 10,000 simulated cycles
    bus.reset_dma()
    _, logits = acc.classify(images[:8], logits=True)
    np.testing.assert_array_equal(logits, golden[1][:8])

    acc.core.set_logits(True)
    acc.core.set_batch(20)
    c0 = bus.cycles()
    with pytest.raises(DmaTimeout, match="MM2S") as info:
        bus.transfer(pixel_words(images[:20]), 220, timeout_s=2e-5)   # 2,000 cycles
    assert "of 3920 words" in str(info.value)
    assert 2000 <= bus.cycles() - c0 < 2100
    assert acc.core.status()["busy"]
    bus.reset_dma()          # first stop the stream, then clear the core's partial digit
    acc.reset()
    classes, logits = acc.classify(images[40:80], logits=True)
    np.testing.assert_array_equal(classes, golden[0][40:80])
    np.testing.assert_array_equal(logits, golden[1][40:80])


def test_classify_timeout_recovers(acc, images, golden):
    """A batch that times out in classify(): DmaTimeout says what was lost, the accelerator
    recovers by itself and the next digits are classified exactly."""
    acc.max_batch = 20
    acc.timeout_s = 2e-5                                     # 2,000 cycles: 5 digits at most
    with pytest.raises(DmaTimeout, match="batch 1 of 2") as info:
        acc.classify(images[:40], logits=True)
    assert info.value.completed == 0
    acc.timeout_s = 5.0
    classes, logits = acc.classify(images[40:80], logits=True)
    np.testing.assert_array_equal(classes, golden[0][40:80])
    np.testing.assert_array_equal(logits, golden[1][40:80])


def test_short_frame(acc, images, golden):
    """A short frame sets error 1: reported as a CoreError, then the core classifies again. A
    batch whose last digit is short never ends its result packet: DmaTimeout, error 1 pending,
    recovery by reset."""
    words = pixel_words(images[:3])
    acc.bus.transfer(words[:100], 0, timeout_s=1.0)          # TLAST on beat 100
    with pytest.raises(CoreError) as info:
        acc.classify(images[:4])
    assert info.value.code == 1
    _, logits = acc.classify(images[:30], logits=True)
    np.testing.assert_array_equal(logits, golden[1][:30])

    with pytest.raises(DmaTimeout):
        acc.core.run_batch(words[:2 * 196 + 150], 3, True, 2e-4)
    err = acc.core.error()
    assert err is not None and err.code == 1, err
    acc.reset()
    classes, logits = acc.classify(images[30:60], logits=True)
    np.testing.assert_array_equal(classes, golden[0][30:60])
    np.testing.assert_array_equal(logits, golden[1][30:60])


def test_long_frame(acc, images, golden):
    """A digit with 20 beats too many: classified, error 2 reported, extra beats dropped."""
    words = np.concatenate([pixel_words(images[7:8]), np.arange(20, dtype=np.uint32)])
    with pytest.raises(CoreError) as info:
        acc.core.run_batch(words, 1, True, 1.0)
    assert info.value.code == 2
    _, logits = acc.classify(images[8:20], logits=True)
    np.testing.assert_array_equal(logits, golden[1][8:20])


# ---------------------------------------------------------------------------------------------
# throughput


def test_throughput_matches_fast_path(acc, artifact, images, tmp_path):
    """Cycles per digit of back-to-back digits in one transfer, measured on the bus and by the
    CYCLES register, agree with the Verilator fast path's steady-state interval."""
    pytest.importorskip("pynq_neuro.rtl.regression")
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed (fast path)")
    from pynq_neuro.rtl.regression import regression

    n = 200
    x = images[:n]
    acc.max_batch = n
    t0, c0 = time.perf_counter(), acc.bus.cycles()
    acc.classify(x)
    wall, cycles = time.perf_counter() - t0, acc.bus.cycles() - c0
    report = acc.throughput_test(n=n, batch_sizes=(n,), digits=x)
    fast = regression(artifact, images=x, workdir=tmp_path / "fast")
    assert fast["passed"]
    ref = fast["rtl"]["cycles_per_digit"]
    bus_cpd = cycles / n
    reg_cpd = report["cycles_per_digit"]
    print(f"\ncosim: {n} digits, {cycles} cycles in {wall:.2f} s ({cycles / wall:,.0f} "
          f"cycles/s); cycles/digit: bus {bus_cpd:.1f}, CYCLES register {reg_cpd:.1f}, "
          f"fast path {ref:.1f}")
    assert report["backend"] == "sim" and report["clock_mhz"] == 100.0
    assert abs(bus_cpd - ref) <= THROUGHPUT_TOLERANCE * ref
    assert abs(reg_cpd - ref) <= THROUGHPUT_TOLERANCE * ref


# ---------------------------------------------------------------------------------------------
# the bus itself


def test_bus_lifecycle(artifact, images):
    """Cycle counter, context manager, process cleanup, bad input and a dead simulator."""
    from pynq_neuro.driver import DriverError, InputError

    with SimBus(artifact) as bus:
        pid = bus.pid
        c0 = bus.cycles()
        assert bus.read(R.ID) == R.ID_VALUE
        assert bus.cycles() > c0
        with pytest.raises(InputError):
            bus.read(0x1002)
        with pytest.raises(InputError):
            bus.transfer(np.zeros((2, 2), np.uint32), 0, 1.0)
        assert bus.read(R.ID) == R.ID_VALUE                # still usable
    assert bus.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(DriverError, match="closed"):
        bus.read(R.ID)

    bus = SimBus(artifact)
    bus._proc.kill()
    bus._proc.wait()
    with pytest.raises(DriverError, match="co-simulation .*failed"):
        bus.read(R.ID)
    assert bus.pid is None
    bus.close()
    shutil.rmtree(bus.run_dir)       # kept for its log after a failure


def test_icarus_cocotb_engine(tmp_path, images):
    """The Icarus + cocotb server on a tiny network: registers, a packet of digits with logits
    (bit-exact), a timeout and its recovery."""
    reason = sim_unavailable("icarus")
    if reason is not None:
        pytest.skip(reason)
    from pynq_neuro.compiler.artifact import load_artifact
    from pynq_neuro.rtl.regression import tiny_artifacts

    a, _ = tiny_artifacts(tmp_path / "tiny")
    res = run(load_artifact(a).network, images[:4])
    with SimBus(a, engine="icarus") as bus:
        assert bus.engine == "icarus"
        assert bus.read(R.ID) == R.ID_VALUE
        bus.write(R.CONTROL, R.LOGITS_ENABLE)
        bus.write(R.BATCH, 4)
        got = bus.transfer(pixel_words(images[:4]), 44, 1.0).reshape(4, 11)
        np.testing.assert_array_equal(got[:, 0] & 0xF, res.classes)
        np.testing.assert_array_equal(got[:, 1:].view(np.int32), np.rint(res.logits))
        with pytest.raises(DmaTimeout):
            bus.transfer(None, 11, 2e-5)
        bus.reset_dma()
        got = bus.transfer(pixel_words(images[:1]), 11, 1.0)
        assert got[0] == (4 << 16) | int(res.classes[0])
