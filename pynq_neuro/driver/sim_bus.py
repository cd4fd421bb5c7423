"""Simulation backend of the driver: the ``neuro_core`` RTL in a simulator child process.

:class:`SimBus` implements the :class:`~pynq_neuro.driver.bus.Bus` protocol against the Verilog
of ``hdl/`` built for an artifact (its ``neuro_params.vh`` and ``mem/`` images). The simulator
owns the clock, so it runs in a child process and every bus call is one synchronous request
over a pair of pipes; simulated time only advances while a request is served. The protocol
and both servers are in ``sim/cosim_server.py``:

* engine ``"icarus"``: Icarus Verilog + cocotb 2 with cocotbext-axi (``vvp`` with the cocotb
  test module ``cosim_server``);
* engine ``"verilator"``: the same bench written in Verilog, built with ``verilator --binary``.
  Icarus runs the full-size networks at tens of cycles per second, Verilator at tens of
  thousands, so ``"auto"`` (the default, or ``$PYNQ_NEURO_SIM_ENGINE``) picks Verilator when it
  is installed.

Timeouts: a transfer's ``timeout_s`` becomes a budget of simulated clock cycles (see
:class:`CycleBudget`); the simulator gives up after that many cycles and the bus stays usable
(``reset_dma()``). A wall-clock guard on top stops a simulator that stops answering.

Builds are cached under ``build/rtl/cosim/<engine>-<digest>`` (digest of the Verilog, the
bench and the hardware parameters of ``neuro_params.vh``). The memory images are read when the
simulation starts from ``mem/`` in its working directory, a link to the artifact's ``mem/``, so
every artifact of the same hardware shares one build.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bus import as_words
from .errors import DmaTimeout, DriverError, InputError, check_int, check_positive

TOPLEVEL = "neuro_core"
BENCH_TOP = "tb_cosim"
SERVER_MODULE = "cosim_server"
ENGINES = ("icarus", "verilator")
ENGINE_ENV = "PYNQ_NEURO_SIM_ENGINE"
MAX_SEND_WORDS = 1 << 22   # capacity of the Verilator bench's buffers
MAX_RECV_WORDS = 1 << 20
WALL_MARGIN_S = 60.0       # on top of the server's own wall-clock guard
UNKNOWN = 0xFFFF_FFFF      # a word count the server does not know
MEM_DIR = "mem/"           # memory images, relative to the simulator's working directory


@dataclass(frozen=True)
class CycleBudget:
    """How a transfer's ``timeout_s`` maps to simulated cycles.

    ``cycles = min(timeout_s * clock_hz, base_cycles + cycles_per_word * words)``, where
    ``words`` is the number of words sent plus the size of the receive buffer. The cap is far
    above what a correct transfer needs (a digit is 196 words and a few hundred cycles) and
    keeps a transfer that never ends from simulating for hours. The wall-clock guard is
    ``wall_base_s + cycles / min_cycles_per_s`` seconds (the Icarus server gives up after that
    time and answers with a timeout; the client stops a simulator that has not answered a
    minute later)."""

    base_cycles: int = 200_000
    cycles_per_word: int = 64
    wall_base_s: float = 120.0
    min_cycles_per_s: float = 20.0

    def cycles(self, timeout_s: float, clock_mhz: float, words: int) -> int:
        wanted = timeout_s * clock_mhz * 1e6   # a float: may exceed any integer width
        cap = self.base_cycles + self.cycles_per_word * words
        return max(1, int(min(wanted, cap, 0xFFFF_FFFF)))

    def wall_s(self, cycles: int) -> float:
        return self.wall_base_s + cycles / self.min_cycles_per_s


# ---------------------------------------------------------------------------------------------
# engines and builds


def _missing_python(*modules: str) -> str | None:
    for mod in modules:
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"python package {mod.split('.')[0]} is not installed"
    return None


def sim_unavailable(engine: str = "auto") -> str | None:
    """Why the simulation backend cannot run here with ``engine`` (None: it can)."""
    from ..rtl import have_datapath, sim_dir

    if not (sim_dir() / f"{SERVER_MODULE}.py").exists():
        return f"{sim_dir() / (SERVER_MODULE + '.py')} not found (needs the source checkout)"
    if not have_datapath():
        return "the Verilog sources (hdl/pn_net.v) are not present"
    engine = resolve_engine(engine)
    if engine == "verilator":
        return None if shutil.which("verilator") else "verilator not found on PATH"
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (Icarus Verilog)"
    return _missing_python("cocotb", "cocotb_tools", "cocotbext.axi", "find_libpython")


def resolve_engine(engine: str = "auto") -> str:
    """``"icarus"`` or ``"verilator"`` for ``engine`` (``"auto"``: ``$PYNQ_NEURO_SIM_ENGINE``,
    else Verilator when it is installed, else Icarus)."""
    if engine == "auto":
        engine = os.environ.get(ENGINE_ENV, "auto") or "auto"
    if engine == "auto":
        return "verilator" if shutil.which("verilator") else "icarus"
    if engine not in ENGINES:
        raise InputError(f"unknown simulation engine {engine!r} (one of auto, "
                         f"{', '.join(ENGINES)})")
    return engine


def _artifact_dir(artifact: str | os.PathLike) -> Path:
    if not isinstance(artifact, (str, os.PathLike)):
        raise InputError(f"artifact must be a directory path, got {type(artifact).__name__}")
    try:
        art = Path(artifact).resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symbolic-link loop (Python < 3.13)
        raise InputError(f"{artifact}: not an artifact directory ({e})") from None
    if not (art / "neuro_params.vh").is_file() or not (art / "mem").is_dir():
        raise InputError(f"{art}: not an artifact directory (needs neuro_params.vh and mem/)")
    return art


@functools.lru_cache(maxsize=None)
def _server_module():
    """``sim/cosim_server.py`` (the protocol's servers), imported from the checkout."""
    from ..rtl import sim_dir

    path = sim_dir() / f"{SERVER_MODULE}.py"
    spec = importlib.util.spec_from_file_location(f"_pn_{SERVER_MODULE}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hardware_defines(art: Path) -> bytes:
    """The macro definitions of ``neuro_params.vh`` (its comments name the network)."""
    text = (art / "neuro_params.vh").read_text()
    return "\n".join(l.strip() for l in text.splitlines()
                     if l.strip() and not l.strip().startswith("//")).encode()


def build_key(artifact: str | os.PathLike, engine: str) -> str:
    """Digest of everything the build of ``engine`` depends on: the Verilog, the bench and the
    hardware parameters. The memory images are not part of it: the simulator reads them from
    ``mem/`` in its working directory, a link to the artifact's images."""
    from ..rtl import bench_headers, hdl_files
    from ..rtl.verilator import KEY_CHARS, hash_files

    art = _artifact_dir(artifact)
    h = hashlib.sha256(f"{engine} {MEM_DIR}".encode())
    if engine == "verilator":
        h.update(_server_module().VERILATOR_BENCH.read_bytes())
    hash_files(h, hdl_files() + (bench_headers() if engine == "verilator" else []))
    h.update(_hardware_defines(art))
    return f"{engine}-{h.hexdigest()[:KEY_CHARS]}"


def _compile(engine: str, art: Path, out: Path) -> list[str]:
    """Command that builds ``engine``'s simulator into the directory ``out``."""
    from ..rtl import bench_include_dir, hdl_dir, hdl_sources
    from ..rtl.verilator import command

    sources = [str(p) for p in hdl_sources()]
    define = f"PN_MEM_DIR=\"{MEM_DIR}\""
    if engine == "icarus":
        (out / "cmds.f").write_text("+timescale+1ns/1ps\n")
        return ["iverilog", "-o", str(out / "sim.vvp"), "-s", TOPLEVEL, "-g2012", f"-D{define}",
                f"-I{art}", f"-I{hdl_dir()}", "-f", str(out / "cmds.f"), *sources]
    (out / "tb_cosim.v").write_text(_server_module().VERILATOR_BENCH.read_text())
    return command("verilator", top=BENCH_TOP, mdir=out / "obj", exe=out / "Vtb_cosim",
                   includes=[art, hdl_dir(), bench_include_dir()], defines=[define],
                   sources=[*sources, out / "tb_cosim.v"])


def _executable(engine: str, out: Path) -> Path:
    return out / ("sim.vvp" if engine == "icarus" else "Vtb_cosim")


def build(artifact: str | os.PathLike, engine: str = "auto",
          build_root: str | os.PathLike | None = None) -> Path:
    """Build the simulator of ``neuro_core`` for an artifact (or reuse the cached build);
    returns the ``sim.vvp`` file (Icarus) or the executable (Verilator)."""
    from ..rtl import REPO
    from ..rtl.verilator import build_once

    engine = resolve_engine(engine)
    art = _artifact_dir(artifact)
    root = Path(build_root) if build_root else REPO / "build" / "rtl" / "cosim"
    out = root / build_key(art, engine)

    def build_in(tmp: Path) -> None:
        cmd = _compile(engine, art, tmp)
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        (tmp / "build.log").write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0 or not _executable(engine, tmp).exists():
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise DriverError(f"{engine} failed to build {TOPLEVEL} for {art} (log "
                              f"{tmp / 'build.log'}):\n{tail}")
        shutil.rmtree(tmp / "obj", ignore_errors=True)

    return build_once(out, _executable(engine, out).name, build_in)


def _command(engine: str, exe: Path, run_dir: Path, req_fd: int, resp_fd: int,
             period_ps: int, budget: CycleBudget) -> tuple[list[str], dict[str, str]]:
    """Command line and environment of the simulator process."""
    from ..rtl import REPO, sim_dir

    env = dict(os.environ)
    if engine == "verilator":
        return [str(exe), f"+req=/dev/fd/{req_fd}", f"+resp=/dev/fd/{resp_fd}"], env
    # what cocotb's Icarus runner sets up for vvp
    import cocotb_tools.config as cfg
    import find_libpython

    server = _server_module()
    libpython = env.get("LIBPYTHON_LOC") or find_libpython.find_libpython()
    if libpython is None:
        raise DriverError("libpython not found (needed to embed Python in the simulator)")
    env["PATH"] = env.get("PATH", "") + os.pathsep + str(cfg.libs_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(sim_dir()), str(REPO)] + sys.path)
    env["PYGPI_PYTHON_BIN"] = sys.executable
    env["GPI_USERS"] = f"{libpython};{cfg.pygpi_entry_point()}"
    env["COCOTB_TOPLEVEL"] = TOPLEVEL
    env["COCOTB_TEST_MODULES"] = SERVER_MODULE
    env["TOPLEVEL_LANG"] = "verilog"
    env["COCOTB_RESULTS_FILE"] = str(run_dir / "results.xml")
    env.pop("COCOTB_TEST_FILTER", None)
    env[server.REQ_FD_ENV] = str(req_fd)
    env[server.RESP_FD_ENV] = str(resp_fd)
    env[server.PERIOD_ENV] = str(period_ps)
    env[server.WALL_ENV] = f"{budget.wall_base_s},{1.0 / budget.min_cycles_per_s}"
    return ["vvp", "-m", str(cfg.lib_entry("vpi", "icarus")), str(exe), "-none"], env


def _terminate(proc: subprocess.Popen, fds: list[int]) -> None:
    """Stop the simulator and close the pipes (also at garbage collection and exit)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no simulator log)"


# ---------------------------------------------------------------------------------------------
# the bus


class SimBus:
    """The Bus of a simulated ``neuro_core``.

    ``artifact_dir``: the hardware to simulate (``neuro_params.vh``, ``mem/``); ``build_dir``:
    root of the cached builds (default ``build/rtl/cosim`` in the checkout); ``clock_mhz``:
    the clock the cycle budgets and throughputs refer to; ``engine``: ``"auto"``,
    ``"icarus"`` or ``"verilator"``; ``budget``: the timeout-to-cycles rule;
    ``startup_timeout_s``: bound on the simulator start (elaboration, memory images)."""

    name = "sim"

    def __init__(self, artifact_dir: str | os.PathLike, *,
                 build_dir: str | os.PathLike | None = None, clock_mhz: float = 100.0,
                 engine: str = "auto", budget: CycleBudget = CycleBudget(),
                 startup_timeout_s: float = 300.0):
        self._closed = True
        clock_mhz = check_positive("clock_mhz", clock_mhz)
        startup_timeout_s = check_positive("startup_timeout_s", startup_timeout_s)
        if not isinstance(budget, CycleBudget):
            raise InputError(f"budget must be a CycleBudget, got {type(budget).__name__}")
        self.engine = resolve_engine(engine)
        reason = sim_unavailable(self.engine)
        if reason is not None:
            raise DriverError(f"simulation backend ({self.engine}) unavailable: {reason}")
        self.artifact = _artifact_dir(artifact_dir)
        self.clock_mhz = float(clock_mhz)
        self.budget = budget
        self._cycles = 0
        self._buf = b""
        t0 = time.perf_counter()
        self.executable = build(self.artifact, self.engine, build_dir)
        self.build_seconds = time.perf_counter() - t0
        runs = self.executable.parent / "runs"
        runs.mkdir(exist_ok=True)
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=runs))
        (self.run_dir / MEM_DIR.rstrip("/")).symlink_to(self.artifact / "mem",
                                                         target_is_directory=True)
        self.log_path = self.run_dir / "sim.log"
        self._launch(startup_timeout_s)
        self.startup_seconds = time.perf_counter() - t0 - self.build_seconds

    # -- process ---------------------------------------------------------------------------------

    def _launch(self, startup_timeout_s: float) -> None:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        period_ps = max(2, round(1e6 / self.clock_mhz / 2) * 2)
        try:
            cmd, env = _command(self.engine, self.executable, self.run_dir, req_r, resp_w,
                                period_ps, self.budget)
            with open(self.log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    cmd, cwd=self.run_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, pass_fds=(req_r, resp_w), start_new_session=True)
        except BaseException:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            raise
        os.close(req_r)
        os.close(resp_w)
        self._req, self._resp = req_w, resp_r
        self._fds = [req_w, resp_r]
        self._finalizer = weakref.finalize(self, _terminate, self._proc, self._fds)
        self._closed = False
        status, cycles, _, _ = self._reply_line(startup_timeout_s, "starting the simulator")
        if status != "HI":
            self._fail(f"unexpected first line from the simulator: {status!r}")
        self._cycles = cycles

    @property
    def pid(self) -> int | None:
        """Process id of the simulator (None once closed)."""
        return None if self._closed else self._proc.pid

    def _fail(self, reason: str) -> None:
        """The simulator is unusable: stop it and raise with the end of its log."""
        self._closed = True
        self._finalizer()
        code = self._proc.returncode
        state = "stopped" if code is None else f"exit code {code}"
        raise DriverError(f"co-simulation ({self.engine}) failed: {reason} (simulator {state}); "
                          f"last lines of {self.log_path}:\n{_tail(self.log_path)}")

    def _line(self, deadline: float, what: str) -> str:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"no answer within the wall-clock guard while {what}")
            ready, _, _ = select.select([self._resp], [], [], min(left, 5.0))
            if not ready:
                if self._proc.poll() is not None:
                    self._fail(f"the simulator exited while {what}")
                continue
            chunk = os.read(self._resp, 1 << 20)
            if not chunk:
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
                self._fail(f"the simulator closed its reply pipe while {what}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")

    def _reply_line(self, timeout_s: float, what: str) -> tuple[str, int, str, str]:
        line = self._line(time.monotonic() + timeout_s, what)
        parts = line.split(maxsplit=3)
        if len(parts) < 2 or not parts[1].isdigit():
            self._fail(f"malformed reply {line!r} while {what}")
        parts += [""] * (4 - len(parts))
        self._cycles = int(parts[1])
        if parts[0] == "ER":
            raise DriverError(f"the simulator rejected the request while {what}: "
                              f"{' '.join(parts[2:]).strip()}")
        return parts[0], int(parts[1]), parts[2], parts[3]

    def _request(self, line: str, payload: bytes = b"", timeout_s: float = 120.0,
                 what: str | None = None) -> tuple[str, int, str, str]:
        what = what or f"waiting for {line.split()[0]!r}"
        if self._closed:
            raise DriverError("the co-simulation is closed")
        try:
            data = line.encode() + b"\n" + payload
            view = memoryview(data)
            while view:
                n = os.write(self._req, view)
                view = view[n:]
        except OSError as e:
            self._fail(f"cannot send the request ({type(e).__name__}: {e})")
        return self._reply_line(timeout_s, what)

    # -- Bus -------------------------------------------------------------------------------------

    def read(self, offset: int) -> int:
        _, _, value, _ = self._request(f"R {_offset(offset):x} 0 0")
        return int(value, 16)

    def write(self, offset: int, value: int) -> None:
        value = check_int("register value", value, 0, 0xFFFF_FFFF)
        self._request(f"W {_offset(offset):x} {value:x} 0")

    def transfer(self, send: np.ndarray | None, recv_words: int,
                 timeout_s: float) -> np.ndarray:
        words = as_words(send, MAX_SEND_WORDS)
        if words is None:
            words = np.zeros(0, np.uint32)
        recv_words = check_int("recv_words", recv_words, 0, MAX_RECV_WORDS)
        timeout_s = check_positive("timeout_s", timeout_s)
        budget = self.budget.cycles(timeout_s, self.clock_mhz, len(words) + recv_words)
        payload = "".join(f"{w:08x}\n" for w in words.tolist()).encode()
        status, _, a, b = self._request(
            f"T {len(words):x} {recv_words:x} {budget:x}", payload,
            self.budget.wall_s(budget) + WALL_MARGIN_S, "waiting for a DMA transfer")
        if status == "OK":
            n = int(a, 16)
            lines = [self._line(time.monotonic() + 60.0, "reading received words")
                     for _ in range(n)]
            return np.array([int(x, 16) for x in lines], dtype=np.uint32)
        if status == "TO":
            sent, got = int(a, 16), int(b, 16)
            received = "" if got == UNKNOWN else f" after {got} words"
            late = " and ".join(([f"MM2S (core took {sent} of {len(words)} words)"]
                                 if len(words) and sent < len(words) else [])
                                + ([f"S2MM (no TLAST{received})"] if recv_words else []))
            raise DmaTimeout(f"DMA transfer not finished after {budget} simulated cycles "
                             f"(timeout {timeout_s:g} s at {self.clock_mhz:g} MHz): {late} "
                             "still running; reset_dma() aborts it")
        if status == "OV":
            raise DriverError(f"DMA receive overflow: the result packet is longer than the "
                              f"{recv_words}-word buffer; reset_dma() recovers the channel")
        self._fail(f"unexpected reply {status!r} to a transfer")
        raise AssertionError  # unreachable

    def reset_dma(self) -> None:
        self._request("D 0 0 0")

    def cycles(self) -> int | None:
        """Clock cycles simulated so far (time only advances while a request is served)."""
        return self._cycles

    def close(self) -> None:
        """End the simulation and wait for the simulator to exit (idempotent)."""
        if self._closed:
            return
        clean = False
        try:
            self._request("Q 0 0 0", timeout_s=30.0)
            self._proc.wait(30.0)
            clean = self._proc.returncode == 0
        except (DriverError, subprocess.TimeoutExpired):
            pass
        self._closed = True
        self._finalizer()
        if clean:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> SimBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from garbage collection
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pid {self.pid}"
        return f"SimBus({str(self.artifact)!r}, {self.engine}, {self.clock_mhz:g} MHz, {state})"


def _offset(offset: int) -> int:
    offset = check_int("register offset", offset, 0)
    if not 0 <= offset < 0x1000 or offset % 4:
        raise InputError(f"register offset 0x{offset:x} is not a word address of the core "
                         "(0x000..0xFFC)")
    return offset


__all__ = ["CycleBudget", "ENGINES", "SimBus", "build", "build_key", "resolve_engine",
           "sim_unavailable"]
