"""The user-facing driver: :class:`NeuroAccelerator` on the golden, sim or board backend."""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.artifact import Artifact, ArtifactError, hardware_differences, load_artifact
from ..util import ceil_div
from . import registers as R
from .bus import Bus
from .core import NeuroCore, pixel_words
from .errors import (CoreError, DmaTimeout, DriverError, HardwareMismatch, InputError,
                     check_int, check_positive)

BACKENDS = ("golden", "sim", "board", "auto")
DEFAULT_CLOCK_MHZ = 100.0
CLOCK_TOLERANCE = 0.01  # relative difference of the PL clock that is reported


class ClockMismatchWarning(UserWarning):
    """The PL clock of the board differs from the clock the artifact was compiled for."""


def artifact_clock_mhz(manifest: dict[str, Any]) -> float:
    """The clock an artifact was compiled for (``performance.budget.clock_mhz``; 100 MHz for
    a manifest that names none)."""
    perf = manifest.get("performance")
    budget = perf.get("budget") if isinstance(perf, dict) else None
    clock = budget.get("clock_mhz") if isinstance(budget, dict) else None
    if clock is None:
        return DEFAULT_CLOCK_MHZ
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not (
            math.isfinite(clock) and clock > 0):
        raise InputError(f"manifest.json: performance.budget.clock_mhz is {clock!r}, not a "
                         f"positive number")
    return float(clock)


def clock_difference(bus_clock_mhz: float, art: Artifact, achievable_mhz: float | None = None,
                     tolerance: float = CLOCK_TOLERANCE) -> str | None:
    """A sentence when the PL clock differs by more than ``tolerance`` from the artifact's
    clock, or from ``achievable_mhz``, the closest frequency the PS makes for it."""
    want = artifact_clock_mhz(art.manifest)
    target = achievable_mhz or want
    if abs(bus_clock_mhz - target) <= tolerance * target:
        return None
    made = f" ({target:g} MHz from the PS dividers)" if target != want else ""
    return (f"the PL clock (FCLK0) runs at {bus_clock_mhz:g} MHz, artifact {art.path} was "
            f"compiled for {want:g} MHz{made}: throughputs are computed at {bus_clock_mhz:g} "
            f"MHz; set it with pynq.ps.Clocks.fclk0_mhz = {want:g} (pynq-neuro selftest "
            f"--set-clock) or recompile with --clock-mhz {bus_clock_mhz:g}")


def _as_artifact(artifact: str | Path | Artifact) -> Artifact:
    """A verified artifact: ``load_artifact`` checks every file, and that ``network.bin`` is
    the packed form of the memory images the network is rebuilt from."""
    if isinstance(artifact, Artifact):
        return artifact
    if not isinstance(artifact, (str, os.PathLike)):
        raise InputError(f"artifact must be an artifact folder or an Artifact, got "
                         f"{type(artifact).__name__}")
    try:
        return load_artifact(artifact)
    except ArtifactError as e:
        raise InputError(f"artifact refused: {e}") from None
    except OSError as e:
        raise InputError(f"artifact refused: {artifact}: {e.strerror or e}") from None


def check_digits(digits: Any) -> tuple[np.ndarray, bool]:
    """Validate digits: a uint8 array (N, 28, 28) with N >= 1, or one digit (28, 28).
    Returns C-contiguous (N, 28, 28) and whether a single digit was given."""
    if not isinstance(digits, np.ndarray):
        raise InputError(f"digits must be a numpy array of uint8 pixels, got "
                         f"{type(digits).__name__}")
    if digits.dtype != np.uint8:
        kind = "floating-point" if np.issubdtype(digits.dtype, np.floating) else "non-uint8"
        raise InputError(f"digits must be uint8 pixels 0..255, got {kind} dtype {digits.dtype} "
                         f"(convert explicitly, e.g. (x * 255).round().astype(np.uint8) for "
                         f"values in [0, 1])")
    single = digits.shape == (28, 28)
    if single:
        digits = digits[None]
    if digits.ndim != 3 or digits.shape[1:] != (28, 28):
        raise InputError(f"digits must have shape (N, 28, 28) or (28, 28), got {digits.shape}")
    if digits.shape[0] == 0:
        raise InputError("no digits given (N = 0)")
    return np.ascontiguousarray(digits), single


def compare_hardware(artifact_hw: dict[str, Any], core_hw: dict[str, Any]
                     ) -> list[tuple[str, str, Any, Any]]:
    """Every difference between an artifact's ``hardware`` section and the parameters read
    back from a core (fingerprint, input bits, format version, every layer field):
    ``(where, field, artifact value, core value)``."""
    return hardware_differences(artifact_hw, core_hw, where="core")


def open_bus(backend: str, art: Artifact | None, overlay: Any = None) -> Bus:
    """The bus of ``backend`` (``golden``, ``sim`` or ``board``): the simulated ones are built
    for ``art`` and run at its clock; the board's runs at the PL clock PYNQ reports."""
    if backend in ("golden", "sim") and art is None:
        raise InputError(f"backend {backend!r} needs the artifact of the hardware to "
                         f"simulate (artifact=...)")
    if backend == "golden":
        from .golden_bus import GoldenBus

        return GoldenBus(art, clock_mhz=artifact_clock_mhz(art.manifest))
    if backend == "sim":
        try:
            from .sim_bus import SimBus
        except ImportError as e:
            raise DriverError(f"the sim backend is not available: {e}") from None
        return SimBus(art.path, clock_mhz=artifact_clock_mhz(art.manifest))
    if backend != "board":
        raise InputError(f"backend must be golden, sim or board, got {backend!r}")
    from .board import open_board_bus

    try:
        return open_board_bus(overlay)
    except (DriverError, InputError):
        raise
    except Exception as e:  # noqa: BLE001 - pynq and the device report in many ways
        raise DriverError(f"the board backend could not open the overlay "
                          f"({type(e).__name__}: {e})") from e


class NeuroAccelerator:
    """Classify MNIST digits on ``neuro_core``.

    Args:
        backend: ``"golden"`` (numpy model of the core), ``"sim"`` (the RTL in cocotb),
            ``"board"`` (PYNQ overlay) or ``"auto"`` (board if pynq finds a device and the
            overlay, else sim if iverilog and cocotb are installed, else golden).
        artifact: the compiled network (directory or Artifact). It is the simulated hardware
            for golden and sim; on a board it is loaded into the overlay's core.
        overlay: board only: a :class:`~pynq_neuro.driver.board.NeuroOverlay`, a pynq Overlay,
            or a bitstream path (default: :func:`~pynq_neuro.driver.board.default_bitfile`).
        timeout_s: limit of one DMA exchange.
        max_batch: digits per DMA transfer (1..65535).
        bus: use this bus instead of creating one (``backend`` is then ignored; the bus names
            itself).
    """

    def __init__(self, backend: str = "auto", artifact: str | Path | Artifact | None = None,
                 overlay: Any = None, timeout_s: float = 5.0, max_batch: int = 1024, *,
                 bus: Bus | None = None) -> None:
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        if bus is not None and not isinstance(bus, Bus):
            raise InputError(f"bus must implement the Bus protocol (read, write, transfer, "
                             f"reset_dma, cycles, close), got {type(bus).__name__}")
        art = _as_artifact(artifact) if artifact is not None else None
        self._network: Artifact | None = None
        self._network_valid = True
        if bus is None:
            if backend == "auto":
                backend = self._auto_backend(art, overlay)
            bus = self._make_bus(backend, art, overlay)
        self.bus = bus
        self.core = NeuroCore(bus)
        try:
            self._hardware = self.core.read_hardware()
            self.core.initialize()
            if self.bus.name in ("golden", "sim") and art is not None:
                self._check_compatible(art)
                self._network = art
            elif art is not None:
                self.load_network(art)
        except BaseException:
            bus.close()  # a simulator or DMA buffers must not outlive a failed connection
            raise

    # -------------------------------------------------------------------------------------------
    # backends

    @property
    def max_batch(self) -> int:
        """Digits per DMA transfer (1..65535)."""
        return self._max_batch

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        self._max_batch = check_int("max_batch", value, 1, R.BATCH_MAX)

    @property
    def timeout_s(self) -> float:
        """Limit of one DMA exchange in seconds (finite, > 0)."""
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._timeout_s = check_positive("timeout_s", value)

    @staticmethod
    def _auto_backend(art: Artifact | None, overlay: Any) -> str:
        from . import board

        if overlay is not None or board.board_available():
            return "board"
        if art is None:
            raise InputError("backend 'auto' found no board; the sim and golden backends need "
                             "the artifact of the hardware to simulate (artifact=...)")
        from .sim_bus import sim_unavailable

        if sim_unavailable() is None:
            return "sim"
        return "golden"

    @staticmethod
    def _make_bus(backend: str, art: Artifact | None, overlay: Any) -> Bus:
        return open_bus(backend, art, overlay)

    @property
    def backend(self) -> str:
        return self.bus.name

    @property
    def clock_mhz(self) -> float:
        """The core's clock: on a board FCLK0 as PYNQ reports it (the artifact's clock when
        PYNQ cannot read it), else the simulated clock."""
        return float(getattr(self.bus, "clock_mhz", DEFAULT_CLOCK_MHZ))

    @property
    def network(self) -> Artifact | None:
        """The artifact whose network the core holds (None: the bitstream's own, unknown)."""
        return self._network if self._network_valid else None

    # -------------------------------------------------------------------------------------------
    # hardware and networks

    def hardware(self) -> dict[str, Any]:
        """ID, versions, fingerprint and per-layer fields read back from the core."""
        self._hardware = self.core.read_hardware()
        return self._hardware

    def _check_compatible(self, art: Artifact) -> None:
        hw = self._hardware
        diffs = compare_hardware(art.manifest["hardware"], hw)
        if diffs:
            listing = "; ".join(f"{where}: {field} artifact {a} != core {c}"
                                for where, field, a, c in diffs)
            raise HardwareMismatch(
                f"artifact {art.path} was compiled for other hardware ({len(diffs)} differences:"
                f" {listing}); recompile it for this core with `pynq-neuro compile --hardware`",
                diffs)

    def _check_clock(self, art: Artifact) -> None:
        """On a board: warn (:class:`ClockMismatchWarning`) when the PL clock PYNQ reports
        differs from the artifact's; when PYNQ could not read it, take the artifact's."""
        if self.bus.name != "board":
            return
        if not getattr(self.bus, "clock_measured", True):
            self.bus.clock_mhz = artifact_clock_mhz(art.manifest)
            return
        from .board import achievable_clock_mhz

        achievable = achievable_clock_mhz(artifact_clock_mhz(art.manifest))
        message = clock_difference(float(self.bus.clock_mhz), art, achievable)
        if message is not None:
            warnings.warn(message, ClockMismatchWarning, stacklevel=3)

    def load_network(self, artifact: str | Path | Artifact, via: str = "stream") -> None:
        """Load a network compiled for this core: checks the fingerprint and every layer field
        against the core (HardwareMismatch), streams ``network.bin`` (``via="stream"``: DMA with
        LOAD_MODE; ``"lite"``: LOAD_DATA writes) and checks LOAD_OK. On a board it warns
        (:class:`ClockMismatchWarning`) when the PL clock differs from the artifact's."""
        if via not in ("stream", "lite"):
            raise InputError(f"via must be 'stream' or 'lite', got {via!r}")
        art = _as_artifact(artifact)
        self._check_compatible(art)
        self._check_clock(art)
        # the bytes load_artifact verified: network.bin as read, equal to the packed memory
        # images whose network the golden model and `network` describe
        blob = art.binary
        if not blob or len(blob) % 4:
            raise InputError(f"artifact {art.path} holds no verified network.bin; load it with "
                             f"pynq_neuro.compiler.artifact.load_artifact")
        words = np.frombuffer(blob, "<u4").astype(np.uint32)
        self._network_valid = False
        try:
            if via == "stream":
                self.core.load_stream(words, self.timeout_s)
            else:
                self.core.load_lite(words, self.timeout_s)
        except DmaTimeout as e:
            self.core.recover()
            raise DmaTimeout(f"loading {art.path} timed out ({e}); the core was reset, its "
                             f"memories may hold a partial network: load again") from None
        except CoreError as e:
            self.core.recover()
            raise CoreError(f"loading {art.path} failed: {e}; the memories may hold a partial "
                            f"network: load again", code=e.code, meaning=e.meaning,
                            status=e.status) from None
        self._network = art
        self._network_valid = True

    # -------------------------------------------------------------------------------------------
    # classification

    def classify(self, digits: np.ndarray, logits: bool = False) -> Any:
        """Classes (int64 (N,), or a scalar for one (28, 28) digit) of uint8 digits; with
        ``logits=True`` also the logits (int64 (N, 10), or (10,))."""
        x, single = check_digits(digits)
        if not isinstance(logits, (bool, np.bool_)):
            raise InputError(f"logits must be True or False, got {logits!r}")
        if not self._network_valid:
            raise DriverError("the last network load failed, the core's memories may hold a "
                              "partial network: load_network() again before classifying")
        self.core.check_error("pending core error from before this call (cleared now)")
        n = len(x)
        classes = np.zeros(n, np.int64)
        all_logits = np.zeros((n, R.NUM_CLASSES), np.int64) if logits else None
        # the pixel stream the core is built for (PIXEL_STREAM, INPUT_BITS)
        bits, packed = self._hardware["input_bits"], self._hardware["packed_pixels"]
        words = pixel_words(x, bits, packed)
        per = R.beats_per_digit(bits, packed)
        batches = range(0, n, self.max_batch)
        for k, start in enumerate(batches):
            stop = min(n, start + self.max_batch)
            chunk = words[start * per: stop * per]
            try:
                res = self.core.run_batch(chunk, stop - start, logits, self.timeout_s)
            except DmaTimeout as e:
                try:    # e.g. a short frame: the result packet never ends
                    err = self.core.error()
                except DriverError:
                    err = None
                cause = f" (the core reports: {err})" if err is not None else ""
                self.core.recover()
                raise DmaTimeout(
                    f"batch {k + 1} of {len(batches)} (digits {start}..{stop - 1}) timed out: "
                    f"{e}{cause}. Their results are lost; digits 0..{start - 1} were classified "
                    f"(attached to this exception as .classes/.logits); the core and the DMA "
                    f"were reset", completed=start, classes=classes[:start].copy(),
                    logits=None if all_logits is None else all_logits[:start].copy()) from None
            except CoreError as e:
                self.core.recover()
                raise CoreError(f"batch {k + 1} of {len(batches)} (digits {start}..{stop - 1}): "
                                f"{e}; the core was reset", code=e.code, meaning=e.meaning,
                                status=e.status) from None
            classes[start:stop] = res.classes
            if all_logits is not None:
                all_logits[start:stop] = res.logits
        if single:
            return (classes[0], all_logits[0]) if logits else classes[0]
        return (classes, all_logits) if logits else classes

    # -------------------------------------------------------------------------------------------
    # measurement

    def throughput_test(self, n: int = 1000, batch_sizes: tuple[int, ...] = (1, 10, 100, 1000),
                        digits: np.ndarray | None = None) -> dict[str, Any]:
        """Classify ``n`` digits (MNIST test digits unless ``digits`` is given) once per batch
        size and report digits/s: compute only from the CYCLES register, and with data
        movement (board: wall time; sim and golden: simulated cycles of the bus)."""
        n = check_int("n", n, 1)
        try:
            batch_sizes = tuple(batch_sizes)
        except TypeError:
            raise InputError(f"batch_sizes must be a sequence of integers 1..{R.BATCH_MAX}, got "
                             f"{batch_sizes!r}") from None
        if not batch_sizes:
            raise InputError("batch_sizes is empty: give at least one batch size")
        batch_sizes = tuple(check_int("each batch size", b, 1, R.BATCH_MAX) for b in batch_sizes)
        x = self._test_digits(n) if digits is None else check_digits(digits)[0]
        x = np.ascontiguousarray(np.resize(x, (n, 28, 28)))
        clock = self.clock_mhz
        source = {"board": "wall clock (data movement) and the CYCLES register (compute) at "
                           "the PL clock PYNQ reports",
                  "sim": "simulated clock cycles of the RTL",
                  "golden": "the compiler's cycle model (golden backend: no hardware)"}
        saved = self.max_batch
        rows = []
        try:
            for b in batch_sizes:
                self.max_batch = int(b)
                c0, t0 = self.core.counters()["cycles"], time.perf_counter()
                bus0 = self.bus.cycles()
                self.classify(x)
                wall = time.perf_counter() - t0
                bus1 = self.bus.cycles()
                busy = (self.core.counters()["cycles"] - c0) & 0xFFFFFFFF
                if bus0 is None or bus1 is None:
                    moved = wall
                else:
                    moved = (bus1 - bus0) / (clock * 1e6)
                rows.append({"batch": int(b), "transfers": ceil_div(n, int(b)),
                             "cycles_per_digit": busy / n,
                             "digits_per_s": clock * 1e6 * n / busy if busy else float("nan"),
                             "digits_per_s_with_data_movement":
                                 n / moved if moved > 0 else float("nan"),
                             "wall_s": wall})
        finally:
            self.max_batch = saved
        best = max(rows, key=lambda r: r["batch"])
        return {"digits_per_s": best["digits_per_s"],
                "digits_per_s_with_data_movement": best["digits_per_s_with_data_movement"],
                "cycles_per_digit": best["cycles_per_digit"], "per_batch_size": rows,
                "backend": self.backend, "clock_mhz": clock, "n": n,
                "source": source.get(self.backend, "bus cycles")}

    @staticmethod
    def _test_digits(n: int) -> np.ndarray:
        from ..data import load_mnist

        try:
            return load_mnist("test")[0][:n]
        except Exception:  # noqa: BLE001 - any loader failure: random sparse digits
            rng = np.random.default_rng(0)
            x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            x[rng.random(x.shape) < 0.8] = 0
            return x

    # -------------------------------------------------------------------------------------------
    # state

    def status(self) -> dict[str, Any]:
        """STATUS decoded, counters, CONTROL bits, BATCH, backend and loaded network."""
        s = self.core.status()
        net = self.network
        return {**s, "backend": self.backend,
                "network": None if net is None else net.manifest["network"]["name"],
                "network_valid": self._network_valid}

    def reset(self) -> None:
        """Soft reset of the core and reset of the DMA; errors and counters are cleared, logits
        and load mode off, BATCH 1."""
        self.core.initialize()

    def close(self) -> None:
        self.bus.close()

    def __enter__(self) -> "NeuroAccelerator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        net = self.network
        name = net.manifest["network"]["name"] if net is not None else "bitstream network"
        return (f"NeuroAccelerator(backend={self.backend!r}, fingerprint="
                f"{self._hardware['fingerprint']}, network={name!r})")


__all__ = ["BACKENDS", "ClockMismatchWarning", "NeuroAccelerator", "artifact_clock_mhz",
           "check_digits", "clock_difference", "compare_hardware", "open_bus"]
