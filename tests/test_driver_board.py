"""The board backend without a board: pynq's own simple-mode DMA channel driver on a fake AXI
DMA register file whose streams are connected to the golden model of the core."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.data import load_mnist
from pynq_neuro.driver import DmaTimeout, DriverError, GoldenBus, NeuroAccelerator, board
from pynq_neuro.driver import registers as R
from pynq_neuro.golden import run

pynq = pytest.importorskip("pynq")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pynq.lib.dma import DMA_TYPE_RX, DMA_TYPE_TX, _SDMAChannel

MAX_BYTES = (1 << R.DMA_BUFFER_LENGTH_WIDTH) - 1


class FakeBuffer(np.ndarray):
    """A contiguous buffer as ``pynq.allocate`` returns it (physical address, cache ops)."""

    def __array_finalize__(self, obj):
        self.physical_address = getattr(obj, "physical_address", 0)
        self.freed = getattr(obj, "freed", False)
        self.flushes = 0
        self.invalidates = 0

    def flush(self):
        self.flushes += 1

    def invalidate(self):
        self.invalidates += 1

    def freebuffer(self):
        self.freed = True


class FakeAllocator:
    def __init__(self):
        self.buffers: dict[int, FakeBuffer] = {}
        self.next_address = 0x1000_0000

    def __call__(self, shape, dtype="u4"):
        buf = np.zeros(shape, dtype).view(FakeBuffer)
        buf.physical_address = self.next_address
        self.buffers[self.next_address] = buf
        self.next_address += (buf.nbytes + 0xFFFF) & ~0xFFFF
        return buf


class FakeDmaRegisters:
    """The AXI DMA register file (PG021, simple mode) with MM2S/S2MM connected to ``core``.

    An exchange runs when a channel with a programmed transfer has its status read; an
    exchange that times out in the core leaves both channels busy until a reset."""

    def __init__(self, core: GoldenBus, allocator: FakeAllocator):
        self.core = core
        self.allocator = allocator
        self.regs = {0x00: 0, 0x04: 1, 0x30: 0, 0x34: 1}
        self.pending: dict[str, tuple[int, int]] = {}
        self.wedged = False
        self.log: list[tuple[str, int, int]] = []
        self.reset_reads = 0

    def write(self, offset, value):
        self.log.append(("w", offset, value))
        if offset in (0x00, 0x30):
            if value & 4:  # soft reset of the whole DMA: halted, nothing pending
                self.regs.update({0x00: 4, 0x30: 4, 0x04: 1, 0x34: 1})
                self.pending.clear()
                self.wedged = False
                self.core.reset_dma()  # the golden bus keeps the DMA's stuck state
                self.reset_reads = 2
                return
            self.regs[offset] = value
            status = offset + 4
            self.regs[status] = (self.regs[status] & ~1) | (0 if value & 1 else 1)
        elif offset in (0x18, 0x48):
            self.regs[offset] = value
        elif offset == 0x28:
            self.pending["send"] = (self.regs[0x18], value)
            self.regs[0x04] &= ~2
        elif offset == 0x58:
            self.pending["recv"] = (self.regs[0x48], value)
            self.regs[0x34] &= ~2
        else:
            self.regs[offset] = value

    def read(self, offset, length=4):
        if offset in (0x00, 0x30) and self.regs[offset] & 4:
            self.reset_reads -= 1
            if self.reset_reads <= 0:
                self.regs[0x00] &= ~4
                self.regs[0x30] &= ~4
        if offset in (0x04, 0x34) and not self.wedged:
            side = "send" if offset == 0x04 else "recv"
            if side in self.pending:
                self._exchange()
        return self.regs.get(offset, 0)

    def _exchange(self):
        send = self.pending.get("send")
        recv = self.pending.get("recv")
        words = None
        if send is not None:
            addr, nbytes = send
            words = np.array(self.allocator.buffers[addr][: nbytes // 4], np.uint32)
        recv_words = recv[1] // 4 if recv else 0
        try:
            out = self.core.transfer(words, recv_words, 1.0)
        except DmaTimeout:
            self.wedged = True
            return
        if recv is not None:
            buf = self.allocator.buffers[recv[0]]
            buf[: len(out)] = out
            self.regs[0x58] = 4 * len(out)
            self.regs[0x34] |= 2
        if send is not None:
            self.regs[0x04] |= 2
        self.pending.clear()


class FakeDma:
    """What BoardBus uses of ``pynq.lib.dma.DMA``: ``mmio`` and the two channels (pynq's own
    simple-mode channel class)."""

    def __init__(self, regs: FakeDmaRegisters):
        self.mmio = regs
        self.sendchannel = _SDMAChannel(regs, MAX_BYTES, 4, DMA_TYPE_TX, False)
        self.recvchannel = _SDMAChannel(regs, MAX_BYTES, 4, DMA_TYPE_RX, False)


class FakeCoreIP:
    """The part of ``pynq.DefaultIP`` the bus uses: ``read``/``write`` of the core."""

    def __init__(self, core: GoldenBus):
        self.core = core

    def read(self, offset=0):
        return self.core.read(offset)

    def write(self, offset, value):
        self.core.write(offset, value)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("board") / "hw"
    x = load_mnist("test")[0][:100]
    compile_network("tdnn-w2a2-sparse", out, CompileConfig(sample_digits=100), x)
    return out


@pytest.fixture
def board_setup(artifact):
    core = GoldenBus(artifact)
    alloc = FakeAllocator()
    regs = FakeDmaRegisters(core, alloc)
    dma = FakeDma(regs)
    bus = board.BoardBus(FakeCoreIP(core), dma, allocate=alloc)
    return core, alloc, regs, bus


def test_board_bus_classifies_like_the_golden_model(board_setup, artifact):
    core, alloc, regs, bus = board_setup
    acc = NeuroAccelerator("board", bus=bus, max_batch=64)
    assert acc.backend == "board" and bus.cycles() is None
    x = load_mnist("test")[0][:150]
    classes, logits = acc.classify(x, logits=True)
    ref = run(core.artifact.network, x)
    np.testing.assert_array_equal(classes, ref.classes)
    np.testing.assert_array_equal(logits, ref.logits)
    # S2MM is programmed before MM2S in every exchange
    starts = [off for kind, off, _ in regs.log if kind == "w" and off in (0x28, 0x58)]
    assert starts[:2] == [0x58, 0x28] and starts.count(0x58) == 3
    # buffers are reused: one per direction for equal batch sizes
    assert len(alloc.buffers) == 2
    send_buf = next(b for b in alloc.buffers.values() if b.flushes)
    assert send_buf.flushes == 3  # pynq flushes the send buffer before each MM2S transfer
    recv_buf = next(b for b in alloc.buffers.values() if not b.flushes)
    assert recv_buf.invalidates == 3
    assert acc.status()["digits"] == 150


def test_board_bus_grows_buffers_and_frees_them(board_setup):
    _, alloc, _, bus = board_setup
    acc = NeuroAccelerator("board", bus=bus, max_batch=8)
    x = load_mnist("test")[0][:20]
    acc.classify(x)
    acc.max_batch = 20
    acc.classify(x)  # 20 * 196 words: a larger send buffer
    send = [b for b in alloc.buffers.values() if b.flushes]
    assert len(send) == 2 and send[0].freed and not send[1].freed
    bus.close()
    assert all(b.freed for b in alloc.buffers.values())


def test_board_dma_timeout_reset_and_recovery(board_setup):
    core, _, regs, bus = board_setup
    acc = NeuroAccelerator("board", bus=bus, max_batch=10, timeout_s=0.05)
    x = load_mnist("test")[0][:30]
    core.inject_stall("recv", after=1)
    with pytest.raises(DmaTimeout) as info:
        acc.classify(x)
    assert info.value.completed == 10
    # the recovery reset both channels through DMACR and restarted them
    resets = [off for kind, off, v in regs.log if kind == "w" and v == 4]
    assert 0x00 in resets and 0x30 in resets
    assert regs.read(0x00) & 1 and regs.read(0x30) & 1
    ref = run(core.artifact.network, x).classes
    np.testing.assert_array_equal(acc.classify(x), ref)


def test_board_bus_refuses_transfers_until_reset(board_setup):
    core, _, _, bus = board_setup
    core.inject_stall("send")
    with pytest.raises(DmaTimeout, match="MM2S"):
        bus.transfer(np.arange(196, dtype=np.uint32), 1, 0.02)
    with pytest.raises(DriverError, match="reset_dma"):
        bus.transfer(np.arange(196, dtype=np.uint32), 1, 0.02)
    bus.reset_dma()
    out = bus.transfer(np.zeros(196, np.uint32), 1, 1.0)
    assert out.size == 1 and out[0] >> 16 == 0
    with pytest.raises(ValueError, match="AXI DMA moves"):
        bus.transfer(None, 1 << 25, 1.0)


def test_find_ip_by_type_and_name():
    ip = {"neuro_core_0": {"type": R.VLNV}, "axi_dma_0": {"type": "xilinx.com:ip:axi_dma:7.1"},
          "ps7_0": {"type": "xilinx.com:ip:processing_system7:5.5"}}
    assert board.find_ip(ip, board.CORE_VLNV_PREFIX, R.CORE_INSTANCE) == "neuro_core_0"
    assert board.find_ip(ip, R.DMA_VLNV_PREFIX, R.DMA_INSTANCE) == "axi_dma_0"
    two = {"blk/axi_dma_0": {"type": "xilinx.com:ip:axi_dma:7.1"},
           "axi_dma_1": {"type": "xilinx.com:ip:axi_dma:7.1"}}
    assert board.find_ip(two, R.DMA_VLNV_PREFIX, R.DMA_INSTANCE) == "blk/axi_dma_0"
    with pytest.raises(DriverError, match="none is named"):
        board.find_ip({"a": two["axi_dma_1"], "b": two["axi_dma_1"]}, R.DMA_VLNV_PREFIX, "x")
    with pytest.raises(DriverError, match="processing_system7"):
        board.find_ip({"ps7_0": ip["ps7_0"]}, board.CORE_VLNV_PREFIX, R.CORE_INSTANCE)

    class Node:
        pass

    top = Node()
    top.blk = Node()
    top.blk.axi_dma_0 = "driver"
    assert board.ip_driver(top, "blk/axi_dma_0") == "driver"


def test_pynq_classes_bind_to_the_core():
    ip_cls = board.NeuroCoreIP
    assert issubclass(ip_cls, pynq.DefaultIP) and ip_cls.bindto == [R.VLNV]
    assert issubclass(board.NeuroOverlay, pynq.Overlay)
    assert {"NeuroCoreIP", "NeuroOverlay"} <= set(board.__all__)
    with pytest.raises(AttributeError):
        board.NoSuchClass  # noqa: B018
    # importing the module registered the driver: pynq's registry maps the core's VLNV (with
    # and without its version) to it, and an overlay description gets it for the core
    from pynq import overlay

    assert overlay._ip_drivers[R.VLNV] is ip_cls
    assert overlay._ip_drivers[R.VLNV.rsplit(":", 1)[0]] is ip_cls
    description = {"hierarchies": {}, "ip": {
        R.CORE_INSTANCE: {"type": R.VLNV, "fullpath": R.CORE_INSTANCE},
        "axi_gpio_0": {"type": "xilinx.com:ip:axi_gpio:2.0", "fullpath": "axi_gpio_0"}}}
    overlay._assign_drivers(description, False, None)
    assert description["ip"][R.CORE_INSTANCE]["driver"] is ip_cls
    assert description["ip"]["axi_gpio_0"]["driver"] is not ip_cls


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_pynq_binds_the_core_before_anything_imports_the_package():
    # what pynq.Overlay("neuro.bit") does first: import the drivers registered under pynq.lib
    r = run_python(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        import pynq
        from pynq.overlay import _ip_drivers
        before = sorted(m for m in sys.modules if m.startswith("pynq_neuro"))
        unbound = _ip_drivers.get({R.VLNV!r})
        pynq.Overlay._register_drivers(None)
        cls = _ip_drivers[{R.VLNV!r}]
        print(before, unbound, cls.__module__ + "." + cls.__qualname__)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "None", "pynq_neuro.driver.board.NeuroCoreIP"]


def test_board_module_without_pynq():
    r = run_python("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "pynq":
                    raise ImportError("no pynq here")
        sys.meta_path.insert(0, Block())
        from pynq_neuro.driver import DriverError, board
        try:
            board.NeuroCoreIP
        except AttributeError as e:
            print("attr:", e)
        try:
            board.open_board_bus("neuro.bit")
        except DriverError as e:
            print("open:", e)
        print(hasattr(board, "NeuroOverlay"), "NeuroOverlay" in board.__all__)
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("attr:") and "needs pynq" in lines[0]
    assert lines[1].startswith("open:") and "needs pynq" in lines[1]
    assert lines[2] == "False False"


def test_default_bitfile_and_no_board_here(monkeypatch, tmp_path):
    from pynq_neuro import overlays

    monkeypatch.setenv(board.OVERLAY_ENV, str(tmp_path / "x.bit"))
    assert board.default_bitfile() == tmp_path / "x.bit"
    assert board.board_available() is False  # pynq finds no device off the board
    monkeypatch.delenv(board.OVERLAY_ENV)
    bit = tmp_path / "neuro.bit"
    bit.write_bytes(b"")
    bit.with_suffix(".hwh").write_text("")
    monkeypatch.setattr(overlays, "installed_bitfile", lambda: bit)
    assert board.default_bitfile() == bit
