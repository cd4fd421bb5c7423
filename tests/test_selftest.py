"""The bring-up self-test off the board: the golden and sim backends, and the board backend over
pynq's own DMA channel and clock classes on fake register files. Every injected fault fails
its own step, with its own cause and fix."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest

from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.mapping import Folding
from pynq_neuro.data import load_mnist
from pynq_neuro.driver import GoldenBus, NeuroAccelerator, board
from pynq_neuro.driver import registers as R
from pynq_neuro.driver.accelerator import ClockMismatchWarning, artifact_clock_mhz
from pynq_neuro.driver.cli import main as selftest_main
from pynq_neuro.driver.selftest import (
    FAIL, PASS, SKIP, SelftestConfig, check_overlay_files, read_bit_header, read_hwh_info,
    run_selftest)
from helpers import WrappedBus

MODEL = "tdnn-w2a2-sparse"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("selftest") / "hw"
    compile_network(MODEL, out, CompileConfig(sample_digits=100), load_mnist("test")[0][:100])
    return out


def small(artifact, **kw) -> SelftestConfig:
    base = dict(backend="golden", artifact=artifact, digits=120, throughput_digits=40,
                batch_sizes=(1, 40))
    return SelftestConfig(**{**base, **kw})


def statuses(report) -> dict[str, str]:
    return {s.name: s.status for s in report.steps}


# ------------------------------------------------------------------------------------------------
# golden backend


def test_selftest_passes_on_the_golden_backend_and_writes_the_report(artifact, tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = selftest_main(["selftest", "--backend", "golden", "--artifact", str(artifact),
                        "--digits", "150", "--throughput-digits", "30", "--batch-sizes", "1,10",
                        "--json", str(out)])
    printed = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert printed[-1].startswith("selftest PASS on 'golden': 6/6 steps passed")
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["verdict"] == printed[-1]
    steps = {s["name"]: s for s in report["steps"]}
    assert [s["number"] for s in report["steps"]] == [1, 2, 3, 4, 5, 6]
    assert all(s["status"] == PASS for s in steps.values())
    assert steps["correctness"]["details"]["digits"] == 150
    assert steps["correctness"]["details"]["logit_mismatches"] == 0
    tp = steps["throughput"]["details"]
    assert [r["batch"] for r in tp["per_batch_size"]] == [1, 10, 30]
    assert abs(tp["measured_over_predicted"] - 1) < 0.15
    assert steps["environment"]["details"]["artifact_clock_mhz"] == 100.0
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left


def test_report_json_is_strict(tmp_path):
    from pynq_neuro.driver.selftest import SelftestReport, StepResult, write_report

    step = StepResult(5, "throughput", PASS, "x", details={
        "digits_per_s": float("nan"), "cycles": np.int64(7), "rows": (np.float32(0.5),)})
    write_report(SelftestReport("golden", None, [step]), tmp_path / "r.json")
    details = json.loads((tmp_path / "r.json").read_text())["steps"][0]["details"]
    assert details == {"digits_per_s": None, "cycles": 7, "rows": [0.5]}


def test_wrong_fingerprint_fails_the_core_step(artifact, tmp_path):
    other = tmp_path / "other"
    compile_network(MODEL, other, CompileConfig(foldings=[Folding(8, 16), Folding(8, 16),
                                                          Folding(4, 16), Folding(1, 5)],
                                                sample_digits=50), load_mnist("test")[0][:50])
    report = run_selftest(small(artifact), bus=GoldenBus(other))
    assert statuses(report) == {"environment": PASS, "core": FAIL, "load": SKIP,
                                "correctness": SKIP, "throughput": SKIP, "recovery": SKIP}
    core = report.step("core")
    assert "fingerprint" in core.summary and "differences" in core.summary
    assert "layer 0: groups" in core.cause and "--hardware" in core.fix
    assert report.verdict().startswith("selftest FAIL on 'golden': step 2 core")


class FaultBus(WrappedBus):
    """A GoldenBus whose transport or core misbehaves in one way."""

    def __init__(self, inner: GoldenBus, *, drop_beats: int = 0, hide_errors: bool = False,
                 ident: int | None = None):
        super().__init__(inner)
        self.drop_beats, self.hide_errors, self.ident = drop_beats, hide_errors, ident
        self.loading = False

    def read(self, offset):
        if offset == R.ID and self.ident is not None:
            return self.ident
        v = self.inner.read(offset)
        if self.hide_errors and offset == R.STATUS:
            v &= ~(R.ERROR | R.ERROR_CODE_MASK)
        return v

    def write(self, offset, value):
        if offset == R.CONTROL:
            self.loading = bool(value & R.LOAD_MODE)
        self.inner.write(offset, value)

    def transfer(self, send, recv_words, timeout_s):
        if (send is not None and self.drop_beats and not self.loading
                and len(send) % R.BEATS_PER_DIGIT == 0):
            send = send[:-self.drop_beats]   # the last digit of each packet arrives short
        return self.inner.transfer(send, recv_words, timeout_s)


def test_short_frames_fail_the_correctness_step(artifact):
    report = run_selftest(small(artifact), bus=FaultBus(GoldenBus(artifact), drop_beats=3))
    st = statuses(report)
    assert st["core"] == st["load"] == PASS and st["correctness"] == FAIL
    step = report.step("correctness")
    assert "error 1, short frame" in step.cause
    assert "stream width" in step.fix and "c_m_axis_mm2s_tdata_width" in step.fix


def test_a_core_that_reports_no_short_frame_fails_the_recovery_step(artifact):
    report = run_selftest(small(artifact), bus=FaultBus(GoldenBus(artifact), hide_errors=True))
    st = statuses(report)
    assert st["correctness"] == PASS and st["recovery"] == FAIL
    step = report.step("recovery")
    assert "gave no error, expected error 1" in step.summary and "rebuild" in step.fix


def test_another_bitstream_fails_the_core_step(artifact):
    report = run_selftest(small(artifact), bus=FaultBus(GoldenBus(artifact), ident=0x0BAD0001))
    st = statuses(report)
    assert st["environment"] == PASS and st["core"] == FAIL and st["load"] == SKIP
    core = report.step("core")
    assert "ID reads 0x0bad0001" in core.cause and "load the pynq-neuro overlay" in core.fix


def test_missing_artifact_fails_the_environment_step(tmp_path):
    report = run_selftest(SelftestConfig(backend="golden", artifact=tmp_path / "none"))
    assert statuses(report)["environment"] == FAIL
    assert "artifact refused" in report.step("environment").summary
    assert all(s.status == SKIP for s in report.steps[1:])


def test_config_and_cli_refuse_bad_options(capsys):
    with pytest.raises(ValueError, match="backend"):
        SelftestConfig(backend="fpga")
    with pytest.raises(ValueError, match="digits"):
        SelftestConfig(backend="golden", digits=0)
    with pytest.raises(ValueError, match="batch size"):
        SelftestConfig(backend="golden", batch_sizes=(1, 70000))
    with pytest.raises(ValueError, match="timeout_s"):
        SelftestConfig(backend="golden", timeout_s=float("nan"))
    assert selftest_main(["selftest", "--backend", "golden", "--json", "/no/such/dir/r.json"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "pynq-neuro: error: --json /no/such/dir/r.json: no folder /no/such/dir for the report"]
    for option, value, expected in (
            ("--digits", "0", "an integer >= 1"),
            ("--throughput-digits", "nan", "an integer >= 1"),
            ("--batch-sizes", "1,70000", "comma-separated integers in 1..65535"),
            ("--timeout", "inf", "a finite number > 0")):
        assert selftest_main(["selftest", f"{option}={value}"]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"pynq-neuro: error: selftest: argument {option}: expected {expected}, got "
            f"{value!r}"]


def test_selftest_runs_with_numpy_only(artifact, tmp_path):
    from helpers import run_numpy_only

    r = run_numpy_only(f"""
        import json
        from pynq_neuro.cli import main
        rc = main(['selftest', '--backend', 'golden', '--artifact', r'{artifact}', '--digits',
                   '40', '--throughput-digits', '20', '--batch-sizes', '20', '--quiet',
                   '--json', r'{tmp_path / "r.json"}'])
        mods = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pynq'))
        print(rc, json.load(open(r'{tmp_path / "r.json"}'))['passed'], mods)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "0 True []"


# ------------------------------------------------------------------------------------------------
# board backend on fakes: pynq's DMA channels and PS clock registers over fake register files

pynq = pytest.importorskip("pynq")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pynq.ps import _ClocksZynq
from test_driver_board import FakeAllocator, FakeCoreIP, FakeDma, FakeDmaRegisters  # noqa: E402

SLCR = 0xF8000000


class FakePsDevice:
    """A pynq device whose memory-mapped PS registers are numpy arrays (SLCR of a Zynq-7000)."""

    def __init__(self):
        self.regions: dict[int, np.ndarray] = {}

    def has_capability(self, cap):
        return cap == "MEMORY_MAPPED"

    def mmap(self, base, length):
        return self.regions.setdefault(base, np.zeros(length // 4, np.uint32))


@pytest.fixture
def clocks(monkeypatch):
    """pynq.ps.Clocks over a fake SLCR: IO PLL 1000 MHz (50 MHz x 20), FCLK0 = 1000 / (d0 d1)."""
    dev = FakePsDevice()
    slcr = dev.mmap(SLCR, 0x200)
    slcr[0x108 // 4] = 20 << 12                       # IO_PLL_CTRL.PLL_FDIV

    def set_fclk0(div0, div1):
        slcr[0x170 // 4] = (div1 << 20) | (div0 << 8)  # FPGA0_CLK_CTRL, SRCSEL 0 (IO PLL)

    set_fclk0(5, 2)
    monkeypatch.setattr(pynq.ps.Clocks, "_real_instance", _ClocksZynq(device=dev), raising=False)
    return slcr, set_fclk0


def fake_board(artifact, clock_mhz):
    core = GoldenBus(artifact)
    alloc = FakeAllocator()
    bus = board.BoardBus(FakeCoreIP(core), FakeDma(FakeDmaRegisters(core, alloc)),
                         allocate=alloc, clock_mhz=clock_mhz)
    return core, bus


def test_pl_clock_is_read_and_set_through_pynq(clocks):
    slcr, set_fclk0 = clocks
    assert board.pl_clock_mhz() == (100.0, "pynq.ps.Clocks.fclk0_mhz")
    set_fclk0(10, 2)
    assert board.pl_clock_mhz()[0] == 50.0
    assert board.set_pl_clock_mhz(125)[0] == 125.0
    d0, d1 = (int(slcr[0x170 // 4]) >> 8) & 0x3F, (int(slcr[0x170 // 4]) >> 20) & 0x3F
    assert d0 * d1 == 8


def test_board_selftest_on_fakes_passes(artifact, clocks):
    _, bus = fake_board(artifact, board.pl_clock_mhz()[0])
    report = run_selftest(small(artifact, backend="board"), bus=bus)
    assert report.passed, report.text()
    env = report.step("environment").details
    assert env["pl_clock_mhz"] == 100.0 and env["versions"]["pynq"] == pynq.__version__
    assert report.step("throughput").details["clock_mhz"] == 100.0


def test_clock_mismatch_fails_the_environment_step_and_set_clock_fixes_it(artifact, clocks):
    slcr, set_fclk0 = clocks
    set_fclk0(10, 2)                                   # 50 MHz
    _, bus = fake_board(artifact, board.pl_clock_mhz()[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClockMismatchWarning)   # reported by step 1 instead
        report = run_selftest(small(artifact, backend="board"), bus=bus)
    st = statuses(report)
    assert st["environment"] == FAIL and st["core"] == st["load"] == PASS
    env = report.step("environment")
    assert "FCLK0 runs at 50 MHz" in env.summary and "--set-clock" in env.fix
    # the rates are computed at the measured clock
    assert report.step("throughput").details["clock_mhz"] == 50.0

    _, bus = fake_board(artifact, board.pl_clock_mhz()[0])
    report = run_selftest(small(artifact, backend="board", set_clock=True), bus=bus)
    env = report.step("environment")
    assert env.status == PASS and env.details["pl_clock_set_from_mhz"] == 50.0
    assert "FCLK0 100 MHz (set from 50)" in env.summary
    assert board.pl_clock_mhz()[0] == 100.0
    assert report.step("throughput").details["clock_mhz"] == 100.0


def test_a_clock_the_ps_makes_only_approximately_is_accepted(tmp_path, clocks):
    """90 MHz: the PS makes 1000/11 = 90.909 MHz (what PYNQ sets); that is the artifact's clock."""
    from pynq_neuro.compiler.resources import Budget

    art = tmp_path / "hw90"
    compile_network(MODEL, art, CompileConfig(budget=Budget(clock_mhz=90.0), sample_digits=50),
                    load_mnist("test")[0][:50])
    slcr, set_fclk0 = clocks
    set_fclk0(11, 1)
    assert board.achievable_clock_mhz(90.0) == board.pl_clock_mhz()[0] == 90.909091
    _, bus = fake_board(art, board.pl_clock_mhz()[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClockMismatchWarning)
        acc = NeuroAccelerator("board", bus=bus, artifact=art)
        acc.close()
    _, bus = fake_board(art, board.pl_clock_mhz()[0])
    report = run_selftest(small(art, backend="board", digits=40, throughput_digits=20,
                                batch_sizes=(20,)), bus=bus)
    env = report.step("environment")
    assert env.status == PASS and env.details["achievable_clock_mhz"] == 90.909091
    assert env.details["artifact_clock_mhz"] == 90.0


def test_stalled_dma_fails_the_load_step(artifact, clocks):
    core, bus = fake_board(artifact, 100.0)
    core.inject_stall("send", transfers=1, after=0)
    report = run_selftest(small(artifact, backend="board", timeout_s=0.05), bus=bus)
    st = statuses(report)
    assert st["environment"] == st["core"] == PASS and st["load"] == FAIL
    step = report.step("load")
    assert "stalled DMA" in step.cause and "MM2S" in step.cause
    assert "FCLK0" in step.fix and "reload the overlay" in step.fix
    assert st["correctness"] == SKIP


def test_accelerator_warns_on_a_clock_mismatch_and_uses_the_measured_clock(artifact):
    _, bus = fake_board(artifact, 80.0)
    with pytest.warns(ClockMismatchWarning, match="80 MHz.*compiled for 100 MHz"):
        acc = NeuroAccelerator("board", bus=bus, artifact=artifact)
    assert acc.clock_mhz == 80.0
    assert acc.throughput_test(n=20, batch_sizes=(20,))["clock_mhz"] == 80.0
    _, bus = fake_board(artifact, 100.0)
    bus.clock_measured = False                         # PYNQ could not read FCLK0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClockMismatchWarning)
        acc = NeuroAccelerator("board", bus=bus, artifact=artifact)
    assert acc.clock_mhz == artifact_clock_mhz(acc.network.manifest) == 100.0


# ------------------------------------------------------------------------------------------------
# overlay files


def bit_header(design="neuro_wrapper", part="7z020clg400", date="2026/11/30",
               time="05:10:00", version="2022.1") -> bytes:
    def field(key: bytes, text: str) -> bytes:
        raw = text.encode() + b"\x00"
        return key + struct.pack(">H", len(raw)) + raw

    return (b"\x00\x09" + b"\x0f\xf0" * 4 + b"\x00" + b"\x00\x01"
            + field(b"a", f"{design};UserID=0XFFFFFFFF;Version={version}")
            + field(b"b", part) + field(b"c", date) + field(b"d", time)
            + b"e" + struct.pack(">I", 8) + b"\xff" * 8)


def handoff(name="neuro", stamp="Mon Nov 30 04:58:12 2026", fclk="100", actual="100.000000",
            core_base=R.CORE_BASE_ADDRESS, device="7z020") -> str:
    """A hardware handoff with the elements the check reads, in Vivado's layout."""
    return (
        f'\ufeff<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
        f'<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="{stamp}" VIVADOVERSION="2022.1">\n'
        f'  <SYSTEMINFO ARCH="zynq" DEVICE="{device}" NAME="{name}" PACKAGE="clg400" '
        f'SPEEDGRADE="-1"/>\n  <MODULES>\n'
        f'    <MODULE INSTANCE="{R.DMA_INSTANCE}" VLNV="xilinx.com:ip:axi_dma:7.1"><PARAMETERS>'
        f'<PARAMETER NAME="c_include_sg" VALUE="0"/><PARAMETER NAME="c_sg_length_width" '
        f'VALUE="{R.DMA_BUFFER_LENGTH_WIDTH}"/></PARAMETERS></MODULE>\n'
        f'    <MODULE INSTANCE="{R.CORE_INSTANCE}" VLNV="{R.VLNV}"/>\n'
        f'    <MODULE INSTANCE="processing_system7_0" VLNV="xilinx.com:ip:processing_system7:5.5">'
        f'<PARAMETERS><PARAMETER NAME="PCW_FPGA0_PERIPHERAL_FREQMHZ" VALUE="{fclk}"/>'
        f'<PARAMETER NAME="PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ" VALUE="{actual}"/></PARAMETERS>'
        f'<MEMORYMAP><MEMRANGE BASEVALUE="0x{core_base:08X}" '
        f'HIGHVALUE="0x{core_base + R.CORE_RANGE - 1:08X}" INSTANCE="{R.CORE_INSTANCE}" '
        f'MEMTYPE="REGISTER"/><MEMRANGE BASEVALUE="0x{R.DMA_BASE_ADDRESS:08X}" '
        f'HIGHVALUE="0x{R.DMA_BASE_ADDRESS + 0xFFFF:08X}" INSTANCE="{R.DMA_INSTANCE}" '
        f'MEMTYPE="REGISTER"/></MEMORYMAP></MODULE>\n  </MODULES>\n</EDKSYSTEM>\n')


def overlay_pair(tmp_path, bit=None, hwh=None):
    (tmp_path / "neuro.bit").write_bytes(bit_header() if bit is None else bit)
    if hwh is not False:
        (tmp_path / "neuro.hwh").write_text(handoff() if hwh is None else hwh)
    return tmp_path / "neuro.bit"


def test_bit_header_and_hwh_are_read():
    h = read_bit_header(bit_header())
    assert (h["design_name"], h["part"], h["vivado"], h["date"], h["time"]) == (
        "neuro_wrapper", "7z020clg400", "2022.1", "2026/11/30", "05:10:00")
    with pytest.raises(ValueError, match="no Xilinx bitstream header"):
        read_bit_header(b"PK\x03\x04" + bytes(20))
    with pytest.raises(ValueError, match="ends inside a field"):
        read_bit_header(bit_header()[:20])
    info = read_hwh_info(handoff())
    assert info == {"vivado": "2022.1", "timestamp": "Mon Nov 30 04:58:12 2026",
                    "design_name": "neuro", "part": "7z020clg400", "fclk0_mhz": 100.0,
                    "fclk0_actual_mhz": 100.0}


def test_matching_overlay_files_have_no_problem(tmp_path):
    problems, info = check_overlay_files(overlay_pair(tmp_path), 100.0)
    assert problems == [] and info["hwh_info"]["fclk0_mhz"] == 100.0


@pytest.mark.parametrize("bit, hwh, clock, expected", [
    (None, False, 100.0, "neuro.hwh is missing"),
    (bit_header(design="resizer_wrapper"), None, 100.0, "built from design 'resizer_wrapper'"),
    (bit_header(part="7z010clg400"), None, 100.0, "for part 7z010clg400"),
    (bit_header(version="2020.2"), None, 100.0, "Vivado 2020.2"),
    (bit_header(date="2026/11/29"), None, 100.0, "generated after the bitstream"),
    (None, handoff(core_base=0x43C10000), 100.0, "driver expects 0x43c00000"),
    (None, handoff(fclk="142", actual="142.857132"), 100.0, "FCLK0 to 142 MHz"),
    (b"\x00\x09garbage", None, 100.0, "unreadable overlay file"),
])
def test_each_overlay_file_problem_is_reported(tmp_path, bit, hwh, clock, expected):
    problems, _ = check_overlay_files(overlay_pair(tmp_path, bit, hwh), clock)
    assert len(problems) == 1 and expected in problems[0].what, problems
    assert problems[0].fix


def test_overlay_problems_fail_the_environment_step(artifact, tmp_path):
    bit = overlay_pair(tmp_path, bit_header(design="resizer_wrapper"))
    report = run_selftest(small(artifact, overlay=bit))
    env = report.step("environment")
    assert env.status == FAIL and "resizer_wrapper" in env.summary
    assert "make -C overlays" in env.fix
    assert statuses(report)["correctness"] == PASS   # the core itself is fine


# ------------------------------------------------------------------------------------------------
# sim backend: one small run of the RTL


def test_selftest_passes_on_the_sim_backend(artifact):
    from pynq_neuro.driver.sim_bus import sim_unavailable

    reason = sim_unavailable()
    if reason is not None:
        pytest.skip(f"no RTL simulator: {reason}")
    report = run_selftest(small(artifact, backend="sim", digits=6, throughput_digits=4,
                                batch_sizes=(1, 4)))
    assert report.passed, report.text()
    assert report.backend == "sim" and report.step("correctness").details["digits"] == 6
