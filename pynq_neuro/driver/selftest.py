"""Board bring-up self-test of ``neuro_core`` (numpy only; pynq only on the board).

The same steps run on the PYNQ-Z2 (``board`` backend), against the RTL in simulation (``sim``)
and against the numpy model of the core (``golden``):

1. environment: pynq, image, Python and numpy versions; whether the ``.bit`` and ``.hwh`` belong
   together; the PL clock (``pynq.ps.Clocks.fclk0_mhz``) against the artifact's clock;
2. core: ID, versions and synthesized parameters against the artifact;
3. load: ``network.bin`` through the stream, ``LOAD_OK``;
4. correctness: classes and logits of MNIST test digits equal the golden model's, bit for bit;
5. throughput against batch size (data movement and the CYCLES register) next to the
   compiler's cycle model;
6. recovery: a deliberate short frame gives error 1, a reset recovers, digits classify again.

Every failing step says what it saw, the likely cause and the fix. :func:`run_selftest` returns
a :class:`SelftestReport` (``verdict()`` is one line, ``to_dict()`` the JSON report).
"""

from __future__ import annotations

import math
import platform
import re
import struct
import time
import warnings
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import registers as R
from .accelerator import (CLOCK_TOLERANCE, ClockMismatchWarning, NeuroAccelerator,
                          artifact_clock_mhz, compare_hardware, open_bus)
from .bus import Bus
from .core import pixel_words
from .errors import (CoreError, DmaTimeout, DriverError, HardwareMismatch, InputError,
                     check_int, check_positive)

BACKENDS = ("board", "sim", "golden")
PASS, FAIL, SKIP = "pass", "fail", "skip"
CYCLE_TOLERANCE = 0.15          # relative: CYCLES register against the cycle model
SIM_DIGITS = 16                 # default digits of the sim backend (the simulator is slow)
TEST_DIGITS = 10_000
THROUGHPUT_DIGITS = {"board": 1000, "golden": 200, "sim": 8}
BATCH_SIZES = (1, 10, 100, 1000)
ERROR_POLLS = 64                # STATUS reads until a short frame's error shows
MAX_OVERLAY_BYTES = 64 << 20    # the xc7z020's bitstream is about 4 MB
HWH_NEWER_SLACK_S = 600         # a .hwh written this much after the bitstream is stale
IMAGE_FILES = ("/home/xilinx/REVISION", "/etc/os-release")
STEP_NAMES = ("environment", "core", "load", "correctness", "throughput", "recovery")


# ------------------------------------------------------------------------------------------------
# configuration and results


@dataclass
class SelftestConfig:
    """What to test. ``digits=None``: the 10,000 test digits (board, golden) or
    :data:`SIM_DIGITS` (sim); ``artifact=None``: the artifact installed with the overlay on a
    board, else the zoo's hardware model compiled into the user cache."""

    backend: str = "board"
    overlay: str | Path | None = None
    artifact: str | Path | None = None
    digits: int | None = None
    throughput_digits: int | None = None
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    set_clock: bool = False
    timeout_s: float = 5.0
    data_dir: str | None = None
    clock_tolerance: float = CLOCK_TOLERANCE
    cycle_tolerance: float = CYCLE_TOLERANCE

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got "
                             f"{self.backend!r}")
        for name in ("digits", "throughput_digits"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        try:
            sizes = tuple(self.batch_sizes)
        except TypeError:
            sizes = ()
        if not sizes:
            raise InputError(f"batch_sizes must be integers 1..{R.BATCH_MAX}, got "
                             f"{self.batch_sizes!r}")
        self.batch_sizes = tuple(check_int("each batch size", b, 1, R.BATCH_MAX) for b in sizes)
        for name in ("timeout_s", "clock_tolerance", "cycle_tolerance"):
            setattr(self, name, check_positive(name, getattr(self, name)))


@dataclass
class StepResult:
    """One step: ``status`` pass, fail or skip; on failure the ``cause`` and the ``fix``."""

    number: int
    name: str
    status: str
    summary: str
    cause: str = ""
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        text = f"[{self.status.upper():4}] {self.number} {self.name}: {self.summary}"
        if self.status == FAIL:
            text += f"\n         cause: {self.cause}\n         fix:   {self.fix}"
        return text


@dataclass
class SelftestReport:
    backend: str
    artifact: str | None
    steps: list[StepResult]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(s.status != FAIL for s in self.steps) and bool(self.steps)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def verdict(self) -> str:
        """One line: PASS, or FAIL with the first failing step and its fix."""
        done = sum(s.status == PASS for s in self.steps)
        if self.passed:
            return (f"selftest PASS on '{self.backend}': {done}/{len(self.steps)} steps passed "
                    f"({self.seconds:.1f} s)")
        bad = next(s for s in self.steps if s.status == FAIL)
        return (f"selftest FAIL on '{self.backend}': step {bad.number} {bad.name}: "
                f"{bad.summary}; fix: {bad.fix}")

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict(), "passed": self.passed, "backend": self.backend,
                "artifact": self.artifact, "seconds": self.seconds,
                "steps": [asdict(s) for s in self.steps]}

    def text(self) -> str:
        return "\n".join([*(s.line() for s in self.steps), self.verdict()])


# ------------------------------------------------------------------------------------------------
# environment: versions, overlay files, PL clock


def image_version(files: tuple[str, ...] = IMAGE_FILES) -> str | None:
    """The board image: the first line of ``/home/xilinx/REVISION`` (PYNQ images), else
    ``PRETTY_NAME`` of ``/etc/os-release``."""
    for name in files:
        try:
            text = Path(name).read_text(errors="replace")[:4096]
        except OSError:
            continue
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
        if m:
            return m.group(1)
        first = text.strip().splitlines()[0] if text.strip() else ""
        if first:
            return first
    return None


def versions() -> dict[str, Any]:
    """Python, numpy, pynq (None when not installed) and the image."""
    try:
        import pynq

        pynq_version: str | None = str(getattr(pynq, "__version__", "unknown"))
    except ImportError:
        pynq_version = None
    return {"python": platform.python_version(), "numpy": np.__version__,
            "pynq": pynq_version, "image": image_version(), "machine": platform.machine()}


def read_bit_header(data: bytes) -> dict[str, str]:
    """Fields of a Xilinx ``.bit`` header: ``design`` (with ``UserID`` and ``Version``),
    ``part``, ``date``, ``time``. Raises ValueError when the header is malformed."""
    if len(data) < 13 or data[:2] != b"\x00\x09":
        raise ValueError("no Xilinx bitstream header (expected 00 09 at the start)")
    pos = 2 + 9 + 2     # length 9, the 9-byte sync field, length 1 ('a' follows)
    out: dict[str, str] = {}
    keys = {b"a": "design", b"b": "part", b"c": "date", b"d": "time"}
    while pos < len(data):
        key = data[pos:pos + 1]
        if key == b"e" or key not in keys:
            break
        if pos + 3 > len(data):
            raise ValueError("bitstream header ends inside a field")
        (n,) = struct.unpack(">H", data[pos + 1:pos + 3])
        value = data[pos + 3:pos + 3 + n]
        if len(value) != n:
            raise ValueError("bitstream header ends inside a field")
        out[keys[key]] = value.rstrip(b"\x00").decode("ascii", "replace")
        pos += 3 + n
    if "design" not in out or "part" not in out:
        raise ValueError("bitstream header without design name or part")
    design, *rest = out["design"].split(";")
    out["design_name"] = design
    for item in rest:
        k, _, v = item.partition("=")
        if k == "Version":
            out["vivado"] = v
    return out


def read_hwh_info(text: str) -> dict[str, Any]:
    """What a ``.hwh`` says about its build: Vivado version, timestamp, design name, device,
    FCLK0 as requested and as the PS makes it (MHz). Raises ValueError when it is not XML."""
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as e:
        raise ValueError(f"not a readable .hwh: {e}") from None
    sysinfo = root.find("SYSTEMINFO")
    params: dict[str, str] = {}
    for m in root.iter("MODULE"):
        if str(m.get("VLNV", "")).startswith("xilinx.com:ip:processing_system7:"):
            params = {p.get("NAME", ""): p.get("VALUE", "") for p in m.iter("PARAMETER")}
    def mhz(name: str) -> float | None:
        try:
            return float(params[name])
        except (KeyError, ValueError):
            return None

    return {"vivado": root.get("VIVADOVERSION"), "timestamp": root.get("TIMESTAMP"),
            "design_name": None if sysinfo is None else sysinfo.get("NAME"),
            "part": None if sysinfo is None else
            f"{sysinfo.get('DEVICE', '')}{sysinfo.get('PACKAGE', '')}",
            "fclk0_mhz": mhz("PCW_FPGA0_PERIPHERAL_FREQMHZ"),
            "fclk0_actual_mhz": mhz("PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ")}


def _bit_time(header: dict[str, str]) -> datetime | None:
    try:
        return datetime.strptime(f"{header['date']} {header['time']}", "%Y/%m/%d %H:%M:%S")
    except (KeyError, ValueError):
        return None


def _hwh_time(info: dict[str, Any]) -> datetime | None:
    try:
        return datetime.strptime(" ".join(str(info["timestamp"]).split()), "%a %b %d %H:%M:%S %Y")
    except (TypeError, ValueError):
        return None


@dataclass
class Problem:
    """One finding of the environment step."""

    what: str
    cause: str
    fix: str


def check_overlay_files(bit: Path, clock_mhz: float | None = None,
                        tolerance: float = CLOCK_TOLERANCE) -> tuple[list[Problem], dict]:
    """Whether ``bit`` and the ``.hwh`` beside it belong together (names, build times, design
    name, part, Vivado version), whether the ``.hwh`` holds the core and the DMA where the
    driver looks for them, and its FCLK0 against ``clock_mhz`` (the artifact's clock)."""
    from ..fileio import read_regular
    from ..overlay.contract import Contract
    from ..overlay.hwh import check_hwh

    rebuild = "rebuild and install both files together: make -C overlays (docs/board-bringup.md)"
    bit = Path(bit)
    hwh = bit.with_suffix(".hwh")
    info: dict[str, Any] = {"bit": str(bit), "hwh": str(hwh)}
    problems: list[Problem] = []
    for path, other in ((bit, hwh), (hwh, bit)):
        if not path.is_file():
            problems.append(Problem(f"{path} is missing", f"PYNQ needs {bit.name} and "
                                    f"{hwh.name} side by side, with the same name",
                                    f"copy {path.name} from the build of {other.name} next to "
                                    f"it (overlays/build/out/), or pass --overlay"))
    if problems:
        return problems, info
    try:
        header = read_bit_header(read_regular(bit, MAX_OVERLAY_BYTES)[:4096])
        hwh_text = read_regular(hwh, MAX_OVERLAY_BYTES).decode("utf-8", "replace")
        hinfo = read_hwh_info(hwh_text)
    except (ValueError, OSError) as e:
        return [Problem(f"unreadable overlay file: {e}", "a truncated or foreign file",
                        rebuild)], info
    info.update({"bit_header": header, "hwh_info": hinfo,
                 "bit_mtime": bit.stat().st_mtime, "hwh_mtime": hwh.stat().st_mtime})
    if hinfo["design_name"] and not header["design_name"].startswith(hinfo["design_name"]):
        problems.append(Problem(
            f"the bitstream was built from design {header['design_name']!r}, the .hwh describes"
            f" {hinfo['design_name']!r}", "the two files come from different projects", rebuild))
    if hinfo["part"] and hinfo["part"] not in header["part"]:
        problems.append(Problem(f"the bitstream is for part {header['part']}, the .hwh for "
                                f"{hinfo['part']}", "files of another board", rebuild))
    if header.get("vivado") and hinfo["vivado"] and header["vivado"] != hinfo["vivado"]:
        problems.append(Problem(f"the bitstream was written by Vivado {header['vivado']}, the "
                                f".hwh by {hinfo['vivado']}", "files of two builds", rebuild))
    tb, th = _bit_time(header), _hwh_time(hinfo)
    if tb is not None and th is not None and (th - tb).total_seconds() > HWH_NEWER_SLACK_S:
        problems.append(Problem(f"the .hwh ({th}) was generated after the bitstream ({tb})",
                                "the block design was regenerated and the bitstream not rebuilt"
                                " (a stale bitstream)", rebuild))
    for m in check_hwh(hwh_text, Contract.from_driver(R)):
        problems.append(Problem(f"{hwh.name}: {m}", "the overlay does not hold the core and the "
                                "DMA where the driver expects them (another overlay, or an "
                                "edited block design)", rebuild))
    if clock_mhz is not None and hinfo["fclk0_mhz"] is not None and not _close(
            hinfo["fclk0_mhz"], clock_mhz, tolerance):
        problems.append(Problem(
            f"the .hwh sets FCLK0 to {hinfo['fclk0_mhz']:g} MHz, the artifact was compiled for "
            f"{clock_mhz:g} MHz", "the overlay was built for another clock than the artifact",
            "rebuild the overlay from this artifact (make -C overlays ARTIFACT=...), or "
            "recompile the artifact with --clock-mhz " f"{hinfo['fclk0_mhz']:g}"))
    return problems, info


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(b), 1e-9)


def read_pl_clock() -> tuple[float | None, str]:
    """FCLK0 in MHz as PYNQ reports it (``pynq.ps.Clocks.fclk0_mhz``), or None and why not."""
    from .board import pl_clock_mhz

    return pl_clock_mhz()


def set_pl_clock(mhz: float) -> tuple[float | None, str]:
    """Set FCLK0 through PYNQ (``pynq.ps.Clocks.fclk0_mhz = mhz``); the clock read back."""
    from .board import set_pl_clock_mhz

    return set_pl_clock_mhz(mhz)


# ------------------------------------------------------------------------------------------------
# the artifact


def default_artifact(backend: str, log: Callable[[str], None] = lambda s: None) -> Path:
    """The artifact installed with the overlay (board), else the zoo's hardware model compiled
    with the default settings into the user cache. A cached compile is reused when it verifies
    and was made from the same network, settings and compiler (its folder name holds their
    digest), so a new zoo model or compiler never runs against a stale artifact."""
    import hashlib
    import json

    from .. import compiler, zoo
    from ..compiler.artifact import ArtifactError, load_artifact
    from ..compiler.compile import CompileConfig
    from ..data import mnist_cache_dir
    from ..overlays import ARTIFACT_DIR

    if backend == "board" and (ARTIFACT_DIR / "manifest.json").is_file():
        return ARTIFACT_DIR
    name = zoo.hardware_default()
    h = hashlib.sha256(zoo.network_path(name).read_bytes())
    h.update(json.dumps(CompileConfig().to_dict(), sort_keys=True).encode())
    for src in sorted(Path(compiler.__file__).parent.glob("*.py")):
        h.update(src.read_bytes())
    out = mnist_cache_dir().parent / "selftest" / f"{name}-{h.hexdigest()[:16]}"
    try:
        load_artifact(out)
        return out
    except (ArtifactError, OSError, ValueError):
        pass
    from ..compiler.compile import CompileConfig, compile_network
    from ..data import load_mnist, sample_indices

    log(f"compiling {name} (default settings) into {out} ...")
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg, x = CompileConfig(), load_mnist("test")[0]
    compile_network(name, out, cfg, x[sample_indices(len(x), cfg.sample_digits)], force=True)
    return out


# ------------------------------------------------------------------------------------------------
# diagnosis of driver errors

FIX_DMA = ("check step 1 (bitstream and .hwh of one build, FCLK0 running at the artifact's "
           "clock), reload the overlay or power-cycle the board; if it persists, rebuild the "
           "overlay (make -C overlays)")
FIX_SHORT = ("the pixel stream reaches the core shorter than a digit's beats (196, or fewer "
             "for a packed stream): check the DMA's "
             "stream width (c_m_axis_mm2s_tdata_width 32, PN_STREAM_BITS) and the buffer "
             "length register width in the .hwh, then rebuild the overlay")
OPEN_FIX = {
    "board": "check that the overlay loads with pynq (pynq.Overlay(BIT)) and holds neuro_core_0 "
             "and axi_dma_0 (step 1); run as root on the PYNQ image",
    "sim": "install Verilator 5 (or Icarus Verilog with cocotb) and run from the repository "
           "checkout (docs/cosim.md); the simulator's build log is named in the cause",
    "golden": "check the artifact: pynq-neuro verify ARTIFACT",
}
FIX_RECOMPILE = ("use the artifact installed with this bitstream (pynq_neuro/overlays/neuro/"
                 "artifact), or recompile for this core: pynq-neuro compile MODEL --hardware "
                 "<that artifact> -o DIR")


def _core_code(e: BaseException) -> int | None:
    if isinstance(e, CoreError) and e.code:
        return e.code
    m = re.search(r"core error (\d+)", str(e))
    return int(m.group(1)) if m else None


def diagnose(e: BaseException) -> tuple[str, str]:
    """Likely cause and fix of a driver error."""
    code = _core_code(e)
    if code == 1:
        return (f"the core saw TLAST inside a digit (error 1, short frame): {e}", FIX_SHORT)
    if code == 2:
        return (f"the core saw a digit longer than its beats (error 2): {e}", FIX_SHORT)
    if code in (3, 4, 6):
        return (f"the core refused the load stream (error {code}: {R.error_meaning(code)})",
                FIX_RECOMPILE)
    if code == 5:
        return ("the load stream's CRC did not match (error 5): words were lost or changed on "
                "the way", FIX_DMA)
    if isinstance(e, HardwareMismatch):
        return (str(e), FIX_RECOMPILE)
    if isinstance(e, DmaTimeout):
        return (f"a DMA transfer did not finish (stalled DMA or a stopped core): {e}", FIX_DMA)
    if isinstance(e, DriverError) and "ID reads" in str(e):
        return (str(e), "load the pynq-neuro overlay (--overlay neuro.bit); another bitstream "
                        "is in the fabric")
    return (f"{type(e).__name__}: {e}", FIX_DMA)


# ------------------------------------------------------------------------------------------------
# the steps


def _cycle_model(art: Any, x: np.ndarray) -> Any:
    """The compiler's cycle model of the artifact's mapping for digits ``x``."""
    from ..compiler.cycles import simulate

    return simulate(art.cycle_maps(), art.network, x, beats_per_row=art.beats_per_row)


class Selftest:
    """The steps over one accelerator; :func:`run_selftest` runs them in order."""

    def __init__(self, cfg: SelftestConfig, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.log = log
        self.steps: list[StepResult] = []
        self.art: Any = None
        self.acc: NeuroAccelerator | None = None
        self.backend = cfg.backend

    def add(self, name: str, status: str, summary: str, cause: str = "", fix: str = "",
            **details: Any) -> StepResult:
        step = StepResult(STEP_NAMES.index(name) + 1, name, status, summary, cause, fix, details)
        self.steps.append(step)
        self.log(step.line())
        return step

    def skip_rest(self, why: str) -> None:
        done = {s.name for s in self.steps}
        for name in STEP_NAMES:
            if name not in done:
                self.add(name, SKIP, why)

    # -- 1 ----------------------------------------------------------------------------------

    def environment(self, bus_given: bool) -> tuple[list[Problem], dict[str, Any]]:
        """Versions and overlay files (before the overlay is loaded)."""
        info: dict[str, Any] = {"versions": versions()}
        problems: list[Problem] = []
        if self.backend == "board" and info["versions"]["pynq"] is None:
            problems.append(Problem("pynq is not installed", "not on the PYNQ image, or another "
                                    "Python environment", "run on the PYNQ-Z2 image (pynq 3.x) "
                                    "in its venv, or choose --backend sim or golden"))
        bit = self.cfg.overlay
        if bit is None and self.backend == "board" and not bus_given:
            from .board import default_bitfile

            bit = default_bitfile()
            if bit is None:
                problems.append(Problem("no overlay bitstream", "neither --overlay, "
                                        "$PYNQ_NEURO_OVERLAY nor an installed neuro.bit",
                                        "pass --overlay neuro.bit (with neuro.hwh beside it) or "
                                        "install the overlay: make -C overlays"))
        if bit is not None:
            clock = artifact_clock_mhz(self.art.manifest) if self.art is not None else None
            found, files = check_overlay_files(Path(bit), clock, self.cfg.clock_tolerance)
            problems += found
            info["overlay"] = files
        return problems, info

    def clock(self, problems: list[Problem], info: dict[str, Any], measure: bool = True) -> None:
        """The PL clock against the artifact's (board only; after the overlay was loaded, which
        sets FCLK0 from the .hwh), then the verdict of step 1."""
        want = artifact_clock_mhz(self.art.manifest)
        info["artifact_clock_mhz"] = want
        target = want
        if self.backend == "board" and measure:
            from .board import achievable_clock_mhz

            # the PS dividers make only some frequencies: PYNQ sets the closest to the clock
            target = achievable_clock_mhz(want) or want
            info["achievable_clock_mhz"] = target
        if self.backend == "board" and not measure:
            info["pl_clock_mhz"] = None
            info["pl_clock_source"] = "not read: the overlay could not be opened"
        elif self.backend == "board":
            got, how = read_pl_clock()
            info["pl_clock_mhz"], info["pl_clock_source"] = got, how
            if got is None:
                problems.append(Problem(f"PYNQ could not read the PL clock ({how})",
                                        "pynq cannot reach the PS clock registers",
                                        "run as root on the PYNQ image (sudo), pynq 3.x"))
            elif not _close(got, target, self.cfg.clock_tolerance):
                if self.cfg.set_clock:
                    new, how = set_pl_clock(want)
                    info["pl_clock_set_from_mhz"], info["pl_clock_mhz"] = got, new
                    if new is None or not _close(new, target, self.cfg.clock_tolerance):
                        problems.append(Problem(
                            f"FCLK0 could not be set to {want:g} MHz (reads {new} MHz: {how})",
                            "the PS clock dividers cannot make this frequency",
                            f"recompile the artifact with --clock-mhz {got:g}"))
                    else:
                        info["note"] = f"FCLK0 set from {got:g} to {new:g} MHz"
                        if self.acc is not None:
                            self.acc.bus.clock_mhz = new
                else:
                    made = f" ({target:g} MHz from the PS dividers)" if target != want else ""
                    problems.append(Problem(
                        f"FCLK0 runs at {got:g} MHz, the artifact was compiled (and the overlay "
                        f"timed) for {want:g} MHz{made}",
                        "the overlay was loaded with another clock, or something changed "
                        "pynq.ps.Clocks.fclk0_mhz",
                        f"rerun with --set-clock (pynq.ps.Clocks.fclk0_mhz = {want:g}), or "
                        f"recompile the artifact with --clock-mhz {got:g}"))
        else:
            info["pl_clock_mhz"] = None
            info["pl_clock_source"] = f"no PL clock on the {self.backend} backend"
        v = info["versions"]
        clock = (f"FCLK0 {info['pl_clock_mhz']:g} MHz" if info["pl_clock_mhz"]
                 else f"no PL clock ({self.backend})")
        if "pl_clock_set_from_mhz" in info:
            clock += f" (set from {info['pl_clock_set_from_mhz']:g})"
        summary = (f"python {v['python']}, numpy {v['numpy']}, pynq {v['pynq'] or '-'}, "
                   f"image {v['image'] or '-'}; {clock}, artifact {want:g} MHz")
        if problems:
            first = problems[0]
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            self.add("environment", FAIL, first.what + more, first.cause, first.fix,
                     problems=[asdict(p) for p in problems], **info)
        else:
            self.add("environment", PASS, summary, **info)

    # -- 2 ----------------------------------------------------------------------------------

    def core(self) -> bool:
        assert self.acc is not None
        try:
            hw = self.acc.hardware()
        except DriverError as e:
            cause, fix = diagnose(e)
            self.add("core", FAIL, "the core's identification could not be read", cause, fix)
            return False
        diffs = compare_hardware(self.art.manifest["hardware"], hw)
        details = {"core": hw, "artifact_fingerprint": self.art.fingerprint,
                   "differences": [list(map(str, d)) for d in diffs]}
        if diffs:
            listing = "; ".join(f"{w}: {f} artifact {a} != core {c}" for w, f, a, c in diffs)
            self.add("core", FAIL, f"fingerprint {hw['fingerprint']} of the core, artifact "
                     f"{self.art.fingerprint} ({len(diffs)} differences)",
                     f"the artifact was compiled for other hardware: {listing}",
                     FIX_RECOMPILE, **details)
            return False
        self.add("core", PASS, f"ID {hw['id']:#010x}, core version {hw['core_version']}, "
                 f"format {hw['format_version']}, fingerprint {hw['fingerprint']}, "
                 f"{hw['num_layers']} layers as in the artifact", **details)
        return True

    # -- 3 ----------------------------------------------------------------------------------

    def load(self) -> bool:
        assert self.acc is not None
        t0 = time.perf_counter()
        try:
            self.acc.load_network(self.art)
            status = self.acc.status()
        except DriverError as e:
            cause, fix = diagnose(e)
            self.add("load", FAIL, f"streaming network.bin failed ({type(e).__name__})",
                     cause, fix)
            return False
        seconds = time.perf_counter() - t0
        if not status["load_ok"] or status["error"]:
            self.add("load", FAIL, f"LOAD_OK {status['load_ok']}, error "
                     f"{status['error_meaning']}", "the core did not confirm the load",
                     FIX_RECOMPILE, status=status)
            return False
        self.add("load", PASS, f"{len(self.art.binary):,} bytes of network.bin through the "
                 f"stream in {seconds:.2f} s; LOAD_OK", seconds=seconds,
                 bytes=len(self.art.binary))
        return True

    # -- 4 ----------------------------------------------------------------------------------

    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        from ..data import load_mnist

        x, y = load_mnist("test", self.cfg.data_dir)
        n = self.cfg.digits or (SIM_DIGITS if self.backend == "sim" else TEST_DIGITS)
        return x[:n], y[:n]

    def correctness(self, x: np.ndarray, y: np.ndarray) -> bool:
        from ..golden import run

        assert self.acc is not None
        t0 = time.perf_counter()
        try:
            classes, logits = self.acc.classify(x, logits=True)
        except DriverError as e:
            cause, fix = diagnose(e)
            self.add("correctness", FAIL, f"classifying {len(x):,} digits failed "
                     f"({type(e).__name__})", cause, fix)
            return False
        seconds = time.perf_counter() - t0
        gold = run(self.art.network, x)
        bad_class = np.flatnonzero(classes != gold.classes)
        bad_logit = np.flatnonzero(np.any(logits != gold.logits, axis=1))
        acc = float(np.mean(classes == y))
        details = {"digits": int(len(x)), "accuracy": acc,
                   "golden_accuracy": float(np.mean(gold.classes == y)),
                   "class_mismatches": int(len(bad_class)),
                   "logit_mismatches": int(len(bad_logit)), "seconds": seconds,
                   "first_mismatches": [int(i) for i in np.union1d(bad_class, bad_logit)[:10]]}
        if len(bad_class) or len(bad_logit):
            self.add("correctness", FAIL, f"{len(bad_logit)} of {len(x):,} digits with logits "
                     f"different from the golden model ({len(bad_class)} classes)",
                     "the core computes something else than its artifact: wrong weights in the"
                     " memories, or a timing failure (a design that misses timing at FCLK0 "
                     "corrupts results)", "check step 1's clock and the overlay's timing report"
                     " (overlays/build/report.json); reload the network; rebuild the overlay at"
                     " a lower clock (make -C overlays CLOCK_MHZ=...)", **details)
            return False
        self.add("correctness", PASS, f"{len(x):,} digits: classes and logits equal the golden "
                 f"model bit for bit; accuracy {100 * acc:.2f} %", **details)
        return True

    # -- 5 ----------------------------------------------------------------------------------

    def throughput(self, x: np.ndarray) -> None:
        assert self.acc is not None
        n = min(self.cfg.throughput_digits or THROUGHPUT_DIGITS[self.backend], len(x))
        sizes = sorted({b for b in self.cfg.batch_sizes if b < n} | {n})
        try:
            tp = self.acc.throughput_test(n=n, batch_sizes=tuple(sizes), digits=x[:n])
        except DriverError as e:
            cause, fix = diagnose(e)
            self.add("throughput", FAIL, "measuring throughput failed", cause, fix)
            return
        model = _cycle_model(self.art, x[:n])
        # CYCLES counts cycles with a digit in flight: for back-to-back digits the span from
        # the first beat to the last result
        span = float(model.result_times[-1] - (model.result_times[0] - model.latency[0]))
        predicted = span / n
        measured = tp["cycles_per_digit"]
        ratio = measured / predicted if predicted else float("nan")
        clock = tp["clock_mhz"]
        details = {**tp, "predicted_cycles_per_digit": predicted,
                   "predicted_steady_cycles_per_digit": model.cycles_per_digit,
                   "predicted_digits_per_s": clock * 1e6 / model.cycles_per_digit,
                   "measured_over_predicted": ratio}
        if not abs(ratio - 1) <= self.cfg.cycle_tolerance:
            self.add("throughput", FAIL, f"{measured:.1f} cycles per digit (CYCLES register), "
                     f"the cycle model predicts {predicted:.1f}",
                     "the core is slower (or faster) than the compiler's model: back-pressure "
                     "on the result stream, a core built for another artifact, or a counter "
                     "that does not run", "compare with `pynq-neuro verify ARTIFACT --rtl`; "
                     "check STALL_CYCLES and INPUT_STALL_CYCLES in acc.status()", **details)
            return
        rows = tp["per_batch_size"]
        self.add("throughput", PASS, f"{tp['digits_per_s']:,.0f} digits/s at {clock:g} MHz "
                 f"(model {details['predicted_digits_per_s']:,.0f}); with data movement "
                 + ", ".join(f"batch {r['batch']}: {r['digits_per_s_with_data_movement']:,.0f}"
                             for r in rows) + " digits/s", **details)

    # -- 6 ----------------------------------------------------------------------------------

    def recovery(self, x: np.ndarray) -> None:
        from ..golden import run

        assert self.acc is not None
        acc = self.acc
        hw = acc.hardware()
        beats = R.beats_per_digit(hw["input_bits"], hw["packed_pixels"])
        short = beats // 2   # TLAST half-way through a digit
        words = pixel_words(x[:1], hw["input_bits"], hw["packed_pixels"])[:short]
        try:
            acc.core.check_error("before the short frame")
            acc.core.set_logits(False)
            acc.core.set_batch(1)
            acc.bus.transfer(words.astype(np.uint32), 0, self.cfg.timeout_s)
            # the DMA is done when the core took the beats; its input unit sees the early
            # TLAST a few cycles later (the register slice in front of it)
            err = None
            for _ in range(ERROR_POLLS):
                err = acc.core.error()
                if err is not None:
                    break
        except DriverError as e:
            cause, fix = diagnose(e)
            self.add("recovery", FAIL, "sending a short frame failed", cause, fix)
            return
        if err is None or err.code != 1:
            got = "no error" if err is None else f"error {err.code} ({err.meaning})"
            self.add("recovery", FAIL, f"a short frame ({short} of {beats} beats, TLAST) "
                     f"gave {got}, expected error 1",
                     "the core does not check frame lengths: an older or other core in the "
                     "bitstream", "rebuild the overlay from this checkout (make -C overlays)")
            return
        try:
            acc.reset()
            status = acc.status()
            k = min(len(x), 32)
            classes = acc.classify(x[:k])
        except DriverError as e:
            cause, fix = diagnose(e)
            self.add("recovery", FAIL, "the core did not recover after the reset", cause, fix)
            return
        if status["error"] or not np.array_equal(classes, run(self.art.network, x[:k]).classes):
            self.add("recovery", FAIL, "after the reset the core still reports an error or "
                     "classifies wrongly", "the soft reset does not clear the datapath",
                     "reload the overlay; if it persists, rebuild it", status=status)
            return
        self.add("recovery", PASS, f"short frame -> error 1 ({err.meaning.split(':')[0]}); "
                 f"reset cleared it; {k} digits classified correctly again",
                 error_code=err.code)


    def run_steps(self, problems: list[Problem], info: dict[str, Any]) -> None:
        """Steps 1 (clock and verdict) to 6 on the open accelerator."""
        self.clock(problems, info)
        if self.core() and self.load():
            try:
                x, y = self.digits()
            except (OSError, ValueError) as e:
                self.add("correctness", FAIL, f"no MNIST test digits: {e}",
                         "the test set is not where the loader looks",
                         "set PYNQ_NEURO_DATA to a folder with the MNIST files (or --data-dir)")
            else:
                self.correctness(x, y)
                if self.acc is not None and self.acc.network is not None:
                    self.throughput(x)
                    self.recovery(x)
        self.skip_rest("an earlier step failed")


def run_selftest(cfg: SelftestConfig, *, bus: Bus | None = None,
                 log: Callable[[str], None] = lambda s: None) -> SelftestReport:
    """Run the steps; ``bus`` replaces the backend's own (a core behind any transport).
    Never raises for a failing board: every failure is a failed step."""
    from ..compiler.artifact import ArtifactError, load_artifact

    t0 = time.perf_counter()
    st = Selftest(cfg, log)
    if bus is not None:
        st.backend = bus.name if bus.name in BACKENDS else cfg.backend
    try:
        path = cfg.artifact if cfg.artifact is not None else default_artifact(st.backend, log)
        st.art = load_artifact(path)
    except (ArtifactError, OSError, ValueError, KeyError) as e:
        _, info = st.environment(bus is not None)
        st.add("environment", FAIL, f"artifact refused: {e}", "the artifact folder is missing, "
               "incomplete or altered", "recompile it: pynq-neuro compile MODEL -o DIR "
               "(or pass --artifact DIR)", **info)
        st.skip_rest("no artifact")
        return SelftestReport(st.backend, None, st.steps, time.perf_counter() - t0)
    problems, info = st.environment(bus is not None)
    opened = bus is not None
    caught: list[warnings.WarningMessage] = []
    try:
        if bus is None:
            with warnings.catch_warnings(record=True) as caught:   # pynq's, kept in the report
                warnings.simplefilter("always")
                bus = open_bus(st.backend, st.art, cfg.overlay)
            opened = True
        st.acc = NeuroAccelerator(bus=bus, timeout_s=cfg.timeout_s)
    except (DriverError, InputError) as e:   # a failed NeuroAccelerator closed its bus
        info["open_warnings"] = [str(w.message) for w in caught]
        st.clock(problems, info, measure=False)
        cause, fix = diagnose(e) if opened else (str(e), OPEN_FIX[st.backend])
        st.add("core", FAIL, f"no core on the {st.backend} backend", cause, fix)
        st.skip_rest("no core")
        return SelftestReport(st.backend, str(st.art.path), st.steps, time.perf_counter() - t0)
    info["open_warnings"] = [str(w.message) for w in caught]
    try:
        with warnings.catch_warnings():
            # step 1 reports a clock mismatch; the driver's warning would only repeat it
            warnings.simplefilter("ignore", ClockMismatchWarning)
            st.run_steps(problems, info)
    finally:
        st.acc.close()
    return SelftestReport(st.backend, str(st.art.path), st.steps, time.perf_counter() - t0)


def write_report(report: SelftestReport, path: str | Path) -> None:
    """The JSON report, written atomically."""
    import json

    from ..fileio import atomic_write_text

    atomic_write_text(path, json.dumps(_plain(report.to_dict()), indent=2, allow_nan=False)
                      + "\n")


def _plain(o: Any) -> Any:
    """``o`` as strict JSON values: numpy scalars and arrays as Python ones, paths as text,
    NaN and infinities (a rate without cycles) as null."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [_plain(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, Path):
        return str(o)
    return o


__all__ = ["BACKENDS", "Problem", "SelftestConfig", "SelftestReport", "StepResult",
           "check_overlay_files", "default_artifact", "diagnose", "image_version",
           "read_bit_header", "read_hwh_info", "run_selftest", "versions", "write_report"]
