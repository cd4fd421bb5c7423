"""RTL verification and synthesis estimates of ``neuro_core`` (the Verilog under ``hdl/``).

* :mod:`pynq_neuro.rtl.regression`: the Verilator fast path (``sim/fast/tb_neuro_core.v``) on
  MNIST digits, compared with the golden model and the compiler's cycle model;
* :mod:`pynq_neuro.rtl.estimate`: Yosys ``synth_xilinx`` resource and logic-depth estimate;
* :mod:`pynq_neuro.rtl.cli`: the ``verify --rtl`` and ``estimate`` commands.

The sources are found in the repository checkout (or in ``$PYNQ_NEURO_HDL`` / ``$PYNQ_NEURO_SIM``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import PynqNeuroError

REPO = Path(__file__).resolve().parents[2]

# Modules of the core, in dependency order (pn_net and its helpers are found by pattern).
SHELL_MODULES = ("pn_skid_buffer.v", "pn_input.v", "pn_loader.v", "pn_axil_regs.v",
                 "neuro_core.v")


class RtlError(PynqNeuroError, RuntimeError):
    """A tool is missing, a build failed, or a simulation did not finish."""


def hdl_dir() -> Path:
    """Folder of the Verilog sources."""
    return Path(os.environ.get("PYNQ_NEURO_HDL", REPO / "hdl"))


def sim_dir() -> Path:
    """Folder of the simulation benches."""
    return Path(os.environ.get("PYNQ_NEURO_SIM", REPO / "sim"))


def hdl_sources(directory: Path | None = None) -> list[Path]:
    """Every module of the core (``hdl/*.v``), sorted by name."""
    d = directory or hdl_dir()
    files = sorted(d.glob("*.v"))
    if not files:
        raise RtlError(f"no Verilog sources in {d}")
    return files


def hdl_headers(directory: Path | None = None) -> list[Path]:
    """The headers the modules include (``hdl/*.vh``; ``hdl/`` is on every include path)."""
    return sorted((directory or hdl_dir()).glob("*.vh"))


def bench_include_dir() -> Path:
    """Folder of the headers the Verilog benches share (``sim/common``)."""
    return sim_dir() / "common"


def bench_headers() -> list[Path]:
    """The headers the Verilog benches include (``sim/common/*.vh``)."""
    return sorted(bench_include_dir().glob("*.vh"))


def hdl_files(directory: Path | None = None) -> list[Path]:
    """Everything a build of the core reads from ``hdl/``: the modules and their headers (the
    content of build-cache keys)."""
    return hdl_sources(directory) + hdl_headers(directory)


def have_datapath(directory: Path | None = None) -> bool:
    """True when the datapath (``pn_net.v``) is present next to the shell."""
    return ((directory or hdl_dir()) / "pn_net.v").exists()


def which(tool: str) -> str | None:
    """Path of an executable, or None."""
    return shutil.which(tool)


def require(tool: str) -> str:
    path = which(tool)
    if path is None:
        raise RtlError(f"{tool} not found on PATH (apt-get install -y iverilog verilator yosys)")
    return path


def run_cocotb(toplevel: str, sources: list[str | Path], test_module: str,
               build_dir: Path, *, parameters: dict | None = None,
               includes: list[Path] = (), defines: dict | None = None,
               extra_env: dict | None = None, testcase: str | None = None) -> tuple[int, int]:
    """Build ``toplevel`` with Icarus and run the cocotb tests of ``test_module`` (a module in
    :func:`sim_dir`). ``sources`` are paths or names of files in :func:`hdl_dir`. Returns
    ``(tests, failures)``; raises :class:`RtlError` when a test fails."""
    import sys

    require("iverilog")
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    for p in (str(REPO), str(sim_dir())):
        if p not in sys.path:
            sys.path.insert(0, p)
    files = [Path(s) if Path(s).is_absolute() else hdl_dir() / s for s in sources]
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("icarus")
    runner.build(sources=files, hdl_toplevel=toplevel,
                 includes=[str(i) for i in (*includes, hdl_dir())],
                 defines=defines or {}, parameters=parameters or {}, build_dir=build_dir,
                 always=True, timescale=("1ns", "1ps"))
    xml = build_dir / f"{test_module}.results.xml"
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                    test_dir=build_dir, results_xml=str(xml), extra_env=extra_env or {},
                    testcase=testcase)
    except SystemExit as e:
        raise RtlError(f"{test_module}: simulation failed (exit {e.code}); see the log "
                       "above") from None
    tests, failed = get_results(xml)
    if failed:
        raise RtlError(f"{test_module}: {failed} of {tests} cocotb tests failed")
    return tests, failed


__all__ = ["REPO", "RtlError", "SHELL_MODULES", "bench_headers", "bench_include_dir", "hdl_dir", "hdl_files", "hdl_headers", "hdl_sources", "have_datapath",
           "require", "run_cocotb", "sim_dir", "which"]
