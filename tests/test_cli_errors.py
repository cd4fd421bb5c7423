"""The command line's error contract: numeric arguments are checked by the parser; unreadable,
missing or corrupt files and operating-system errors are one line ``pynq-neuro: error: ...``
with status 2 and no traceback; interrupts, closed pipes and unexpected exceptions have their
own documented outcome; and the compile, verify, train and eval options behind them."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro import cli, zoo
from pynq_neuro.cli import main
from pynq_neuro.compiler.artifact import load_artifact
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.resources import Budget
from pynq_neuro.data import DataError, load_mnist, write_idx

NET = "tdnn-w2a2-sparse"
EXE = Path(sys.executable).parent / "pynq-neuro"


def one_error_line(err: str) -> str:
    """The single line of an error report (fails unless there is exactly one)."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pynq-neuro: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# numeric arguments: refused by the parser with one exact line


INT1 = "an integer >= 1"
INT0 = "an integer >= 0"
POS = "a finite number > 0"
NONNEG = "a finite number >= 0"
LIST1 = "comma-separated integers >= 1"
FOLD = "GROUPSxLANES per layer (integers >= 1), e.g. 4x128,4x128,2x64,1x5; got {v}"
SPARSITY = "S or S1,S2,... (finite numbers >= 0 and < 1), got {v}"
LANES = "lanes per layer (integers >= 1) like 32,32,16,5; got {v}"
LOW_RANK = "LAYER:RANK (layer >= 0, rank >= 1), e.g. 1:16, got {v}"

TRAIN, EVAL, COMPILE = ["train", "-o", "x.pt"], ["eval", "tdnn-w2a2"], ["compile", NET, "-o", "o"]
VERIFY, ESTIMATE, SELFTEST = ["verify", "art"], ["estimate", "art"], ["selftest"]
COMPRESS, DEMO = ["compress", "in.pt", "-o", "out.pt"], ["demo"]
EXPLORE = ["explore", "dir"]

NUMERIC = [
    (TRAIN, "--channels", ["0", "16,0", "-8", "a,b", ""], LIST1),
    (TRAIN, "--taps", ["0", "3,-1"], LIST1),
    (TRAIN, "--strides", ["0", "1,0"], LIST1),
    (TRAIN, "--wbits", ["0", "9", "-1", "nan", "2.5"], "an integer in 1..8"),
    (TRAIN, "--abits", ["0", "9"], "an integer in 1..8"),
    (TRAIN, "--input-bits", ["0", "9", "-8"], "an integer in 1..8"),
    (TRAIN, "--epochs", ["0", "-1", "nan", "1.5", "inf"], INT1),
    (TRAIN, "--lr", ["0", "-0.001", "nan", "inf", "-inf", "x"], POS),
    (TRAIN, "--weight-decay", ["-1e-4", "nan", "inf"], NONNEG),
    (TRAIN, "--batch-size", ["0", "-128", "1e3"], INT1),
    (TRAIN, "--max-shift", ["-1", "28", "nan"], "an integer in 0..27"),
    (TRAIN, "--rows", ["0", "29", "-1", "nan", "2.5"], "an integer in 1..28"),
    (TRAIN, "--seed", ["-1", str(2**64), "0.5"], f"an integer in 0..{2**64 - 1}"),
    (TRAIN, "--threads", ["0", "-2", "257"], "an integer in 1..256"),
    (TRAIN, "--train-images", ["0", "-5", "nan"], INT1),
    (EVAL, "--images", ["0", "-5", "nan", "inf", "1e3"], INT1),
    (COMPILE, "--target", ["0", "-1", "nan", "inf"], POS),
    (COMPILE, "--clock-mhz", ["0", "-100", "nan", "inf", "-inf"], POS),
    (COMPILE, "--luts", ["0", "-1", "nan", "inf", "1.5"], INT1),
    (COMPILE, "--bram36", ["-1", "nan", "inf"], INT0),
    (COMPILE, "--dsp", ["-1", "nan"], INT0),
    (COMPILE, "--sample-digits", ["0", "-5", "nan", "1e3"], INT1),
    (COMPILE, "--folding", ["0x128", "4x0", "4x-1", "4", "ax5", "4x128x2"], FOLD),
    (VERIFY, "--images", ["0", "16385", "-1", "nan"], "an integer in 1..16384"),
    (VERIFY, "--stall", ["-1", "100", "nan"], "an integer in 0..99"),
    (VERIFY, "--clock-mhz", ["0", "nan", "inf", "-5"], POS),
    (ESTIMATE, "--timeout", ["0", "-1", "nan", "inf"], POS),
    (COMPRESS, "--budget", ["0", "-1", "nan"], INT1),
    (COMPRESS, "--sparsity", ["1", "1.5", "-0.1", "nan", "0.5,inf", "x", ""], SPARSITY),
    (COMPRESS, "--lanes", ["0", "32,-1", "a"], LANES),
    (COMPRESS, "--min-per-unit", ["-1", "nan"], INT0),
    (COMPRESS, "--low-rank", ["1:0", "-1:4", "1:x", "1", "1:2:3"], LOW_RANK),
    (COMPRESS, "--epochs", ["-1", "nan"], INT0),
    (COMPRESS, "--lr", ["0", "-1", "nan", "inf"], POS),
    (COMPRESS, "--threads", ["0", "300"], "an integer in 1..256"),
    (COMPRESS, "--weight-decay", ["-1e-4", "nan", "inf"], NONNEG),
    (COMPRESS, "--batch-size", ["0", "-128", "1e3"], INT1),
    (COMPRESS, "--max-shift", ["-1", "28", "nan"], "an integer in 0..27"),
    (COMPRESS, "--train-images", ["0", "-1"], INT1),
    (COMPRESS, "--seed", ["-1"], f"an integer in 0..{2**64 - 1}"),
    (COMPRESS, "--input-bits", ["0", "9", "x"], "pixel bits 1..8, got {v}"),
    (COMPRESS, "--distill-weight", ["-0.1", "1.5", "nan"], "a number in [0, 1], got {v}"),
    (COMPRESS, "--temperature", ["0", "-1", "nan", "inf"], POS),
    (EXPLORE, "--trials", ["0", "-1", "nan", "2.5"], INT1),
    (EXPLORE, "--population", ["0", "-4"], INT1),
    (EXPLORE, "--seed", ["-1", str(2**64)], f"an integer in 0..{2**64 - 1}"),
    (EXPLORE, "--images", ["0", "-5", "inf"], INT1),
    (EXPLORE, "--epochs", ["-1", "nan"], INT0),
    (EXPLORE, "--train-images", ["0", "-1"], INT1),
    (EXPLORE, "--sample-digits", ["0", "1e3"], INT1),
    (EXPLORE, "--cpus", ["0", "4097", "nan"], "an integer in 1..4096"),
    (EXPLORE, "--cpus-per-trial", ["0", "-1"], "an integer in 1..4096"),
    (EXPLORE, "--threads", ["0", "257"], "an integer in 1..256"),
    (EXPLORE, "--rtl-images", ["0", "-1"], INT1),
    (EXPLORE, "--shards", ["0", "257", "x"], "an integer in 1..256"),
    (EXPLORE, "--front-limit", ["0", "nan"], INT1),
    (EXPLORE, "--estimate-timeout", ["0", "-1", "nan", "inf"], POS),
    (DEMO, "--images", ["0", "-5", "nan", "inf"], INT1),
    (SELFTEST, "--digits", ["0", "-5", "nan"], INT1),
    (SELFTEST, "--throughput-digits", ["0", "-1"], INT1),
    (SELFTEST, "--batch-sizes", ["0", "1,70000", "x"], "comma-separated integers in 1..65535"),
    (SELFTEST, "--timeout", ["0", "-1", "nan", "inf"], POS),
]
NUMERIC_CASES = [pytest.param(prefix, opt, v, what, id=f"{prefix[0]}{opt}={v}")
                 for prefix, opt, values, what in NUMERIC for v in values]


@pytest.mark.parametrize("prefix, option, value, what", NUMERIC_CASES)
def test_bad_numeric_argument_is_refused_by_the_parser(capsys, prefix, option, value, what):
    assert main([*prefix, f"{option}={value}"]) == 2
    out, err = capsys.readouterr()
    text = what.format(v=repr(value)) if "{v}" in what else f"{what}, got {value!r}"
    assert err.splitlines() == [f"pynq-neuro: error: {prefix[0]}: argument {option}: "
                                f"expected {text}"]
    assert out == ""


def test_every_numeric_option_is_covered():
    """Each numeric option of every subcommand is in the table above (a new option without a
    checked type fails here)."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    numeric = set()
    for name, p in sub.choices.items():
        for a in p._actions:
            if a.type is not None and a.option_strings:
                numeric.add((name, a.option_strings[-1]))
            if a.type in (int, float):
                pytest.fail(f"{name} {a.option_strings}: plain {a.type.__name__} is unchecked")
    covered = {(prefix[0], opt) for prefix, opt, _, _ in NUMERIC}
    assert numeric == covered


def test_good_numeric_values_parse():
    args = cli.build_parser().parse_args(
        ["compile", NET, "-o", "o", "--luts=1", "--bram36=0", "--dsp=0", "--clock-mhz=150.5",
         "--sample-digits=7", "--folding=4x128,4x128,2x64,1x5", "--target=1e6"])
    assert (args.luts, args.bram36, args.dsp, args.clock_mhz, args.sample_digits) == (
        1, 0, 0, 150.5, 7)
    assert [(f.groups, f.lanes) for f in args.folding] == [(4, 128), (4, 128), (2, 64), (1, 5)]
    args = cli.build_parser().parse_args(["verify", "a", "--images", "16384", "--stall", "99"])
    assert (args.images, args.stall, args.clock_mhz) == (16384, 99, None)


# ------------------------------------------------------------------------------------------------
# files: missing, unreadable, corrupt, foreign, in the wrong place


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, str]:
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("bad_files")
    for name in ("loop", "loop.npz", "loop.pt"):
        (root / name).symlink_to(root / name)
    (root / "plain").write_text("just text\n")
    (root / "folder").mkdir()
    (root / "folder" / "keep.txt").write_text("x\n")
    npz = zoo.network_path("tdnn-w2a2").read_bytes()
    pt = zoo.checkpoint_path("tdnn-w2a2").read_bytes()
    (root / "truncated.npz").write_bytes(npz[: len(npz) // 2])
    (root / "garbage.npz").write_bytes(b"garbage")
    np.savez(root / "foreign.npz", a=np.arange(3))
    (root / "empty.pt").write_bytes(b"")
    (root / "truncated.pt").write_bytes(pt[: len(pt) // 3])
    (root / "text.pt").write_text("not a checkpoint\n")
    (root / "pickle.pt").write_bytes(pickle.dumps({"format": "other"}))
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    with zipfile.ZipFile(root / "zip.pt", "w") as z:
        z.writestr("data.pkl", b"\x80\x05junk")
    (root / "no_manifest").mkdir()
    (root / "bad_manifest").mkdir()
    (root / "bad_manifest" / "manifest.json").write_bytes(b"\xff{")
    (root / "manifest_folder").mkdir()
    (root / "manifest_folder" / "manifest.json").mkdir()
    x, y = load_mnist("test")
    cut = root / "mnist_cut"                      # both files, the images truncated
    cut.mkdir()
    write_idx(cut / "t10k-images-idx3-ubyte.gz", x, compress=True)
    write_idx(cut / "t10k-labels-idx1-ubyte.gz", y, compress=True)
    images = (cut / "t10k-images-idx3-ubyte.gz").read_bytes()
    (cut / "t10k-images-idx3-ubyte.gz").write_bytes(images[: len(images) // 2])
    mnist = root / "mnist"                        # a folder where the labels file belongs
    mnist.mkdir()
    shutil.copy(cut / "t10k-images-idx3-ubyte.gz", mnist)
    (mnist / "t10k-labels-idx1-ubyte").mkdir()
    (root / "dir.pt").mkdir()
    return {p.name.replace(".", "_"): str(p) for p in root.iterdir()} | {
        "root": str(root), "good_pt": str(zoo.checkpoint_path("tdnn-w2a2"))}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_art") / "hw"
    compile_network(NET, out, CompileConfig(sample_digits=20, budget=Budget(clock_mhz=150.0)),
                    load_mnist("test")[0][:20])
    return out


FILE_CASES = [
    ["eval", "{loop_npz}"], ["eval", "{root}/missing.npz"], ["eval", "{truncated_npz}"],
    ["eval", "{garbage_npz}"], ["eval", "{foreign_npz}"], ["eval", "{empty_pt}"],
    ["eval", "{truncated_pt}"], ["eval", "{text_pt}"], ["eval", "{pickle_pt}"],
    ["eval", "{foreign_pt}"], ["eval", "{zip_pt}"], ["eval", "{loop_pt}"],
    ["eval", "{root}/missing.pt"], ["eval", "{no_manifest}"], ["eval", "{bad_manifest}"],
    ["eval", "tdnn-w2a2", "--data-dir", "{plain}"], ["eval", "tdnn-w2a2", "--data-dir", "{loop}"],
    ["eval", "tdnn-w2a2", "--data-dir", "{mnist}"], ["eval", "{dir_pt}"],
    ["eval", "tdnn-w2a2", "--data-dir", "{mnist_cut}"],
    ["compile", "{truncated_npz}", "-o", "{root}/o1"], ["compile", "{text_pt}", "-o", "{root}/o2"],
    ["compile", "{loop}", "-o", "{root}/o3"], ["compile", NET, "-o", "{plain}"],
    ["compile", NET, "-o", "{plain}/sub"], ["compile", NET, "-o", "{folder}"],
    ["compile", NET, "-o", "{root}/o4", "--hardware", "{plain}"],
    ["compile", NET, "-o", "{root}/o5", "--hardware", "{loop}"],
    ["compile", NET, "-o", "{root}/o6", "--data-dir", "{mnist}"],
    ["inspect", "{plain}"], ["inspect", "{loop}"], ["inspect", "{root}/missing"],
    ["inspect", "{bad_manifest}"], ["inspect", "{manifest_folder}"],
    ["verify", "{plain}"], ["verify", "{loop}"], ["verify", "{manifest_folder}"],
    ["estimate", "{loop}"], ["estimate", "{no_manifest}"],
    ["train", "-o", "{folder}"], ["train", "-o", "{plain}/x.pt"], ["train", "-o", "{root}/x.txt"],
    ["train", "-o", "{root}/missing/x.pt"], ["train", "-o", "{dir_pt}"],
    ["compress", "{truncated_pt}", "-o", "{root}/c.pt", "--budget", "100"],
    ["compress", "{pickle_pt}", "-o", "{root}/c.pt", "--budget", "100"],
    ["compress", "{root}/missing.pt", "-o", "{root}/c.pt", "--budget", "100"],
    ["compress", "{good_pt}", "-o", "{folder}", "--budget", "100"],
    ["demo", "--images", "10", "-o", "{plain}"],
]


@pytest.mark.parametrize("argv", FILE_CASES, ids=lambda a: " ".join(a))
def test_file_errors_are_one_line(capsys, monkeypatch, bad, argv):
    import pynq_neuro.train as train_module

    # refused before any training or fine-tuning starts
    monkeypatch.setattr(train_module, "train", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(train_module, "fit", lambda *a, **k: pytest.fail("fine-tuned"))
    assert main([a.format(**bad) for a in argv]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert "unexpected" not in line, line   # a user error, not reported as a bug


# ------------------------------------------------------------------------------------------------
# the error reporter itself


@pytest.mark.parametrize("exc, line", [
    (PermissionError(13, "Permission denied", "/data/net.npz"),
     "pynq-neuro: error: /data/net.npz: Permission denied"),
    (IsADirectoryError(21, "Is a directory", "/data/x.pt"),
     "pynq-neuro: error: /data/x.pt: Is a directory"),
    (OSError(40, "Too many levels of symbolic links", "/a/loop"),
     "pynq-neuro: error: /a/loop: Too many levels of symbolic links"),
    (OSError(18, "Invalid cross-device link", "/a", None, "/b"),
     "pynq-neuro: error: /a: Invalid cross-device link (-> /b)"),
    (OSError(28, "No space left on device"), "pynq-neuro: error: No space left on device"),
    (DataError("MNIST not found. Tried:\n  - here\n  - there\n"),
     "pynq-neuro: error: MNIST not found. Tried: - here - there"),
    (ValueError(""), "pynq-neuro: error: ValueError"),
    (EOFError("Ran out of input"), "pynq-neuro: error: Ran out of input"),
    (zipfile.BadZipFile("File is not a zip file"), "pynq-neuro: error: File is not a zip file"),
    (pickle.UnpicklingError("invalid load key, 'x'."),
     "pynq-neuro: error: invalid load key, 'x'."),
])
def test_errors_are_formatted_on_one_line(capsys, monkeypatch, exc, line):
    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "cmd_zoo", fail)
    assert main(["zoo"]) == 2
    assert one_error_line(capsys.readouterr().err) == line


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"), KeyError("fits"),
                                 IndexError("list index out of range"), TypeError("bad")])
def test_unexpected_exceptions_name_their_type_and_the_debug_switch(capsys, monkeypatch, exc):
    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "cmd_zoo", fail)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["zoo"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"unexpected {type(exc).__name__}: " in line and f"{cli.DEBUG_ENV}=1" in line
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert main(["zoo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "raise exc" in err
    assert err.splitlines()[-1] == line


def test_interrupt_and_closed_pipe(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    def closed(args):
        print("partial")
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_zoo", interrupted)
    assert main(["zoo"]) == 130
    assert capsys.readouterr().err == "pynq-neuro: interrupted\n"
    monkeypatch.setattr(cli, "cmd_zoo", closed)
    assert main(["zoo"]) == 141
    assert capsys.readouterr().err == ""


class ClosedPipe:
    """A standard output whose reader has gone: writes are buffered, the flush fails."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_pipe_closed_at_the_final_flush(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["zoo"]) == 141                    # done, but the reader left early
    assert capsys.readouterr().err == ""

    def refused(args):
        print("partial")
        raise ValueError("refused")

    monkeypatch.setattr(cli, "cmd_zoo", refused)
    assert main(["zoo"]) == 2                      # the error's status, reported once
    assert capsys.readouterr().err == "pynq-neuro: error: refused\n"


def test_system_exit_with_a_message_is_one_line(capsys, monkeypatch):
    def leave(args):
        raise SystemExit("cannot go on\nat all")

    monkeypatch.setattr(cli, "cmd_zoo", leave)
    assert main(["zoo"]) == 2
    assert one_error_line(capsys.readouterr().err) == "pynq-neuro: error: cannot go on at all"


def test_unknown_home_folder_is_a_data_error(capsys, monkeypatch, tmp_path):
    from pynq_neuro.data import mnist

    assert main(["eval", "tdnn-w2a2", "--data-dir", "~no-such-user-pn/mnist"]) == 2
    assert "home directory" in one_error_line(capsys.readouterr().err)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("PYNQ_NEURO_DATA", raising=False)
    monkeypatch.setattr(mnist, "bundled_test_split_dir", lambda: tmp_path)
    monkeypatch.setattr(mnist, "mnist_cache_dir", no_home)
    assert main(["eval", "tdnn-w2a2"]) == 2
    assert "no cache folder" in one_error_line(capsys.readouterr().err)


def test_help_and_version_return_zero(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("pynq-neuro ")
    assert main(["compile", "--help"]) == 0
    assert "--allow-over-budget" in capsys.readouterr().out
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("pynq-neuro: error: ")


# ------------------------------------------------------------------------------------------------
# real processes


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(cli.DEBUG_ENV, None)
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, **kw)


def test_corrupt_checkpoint_in_a_real_process(bad):
    r = _run([str(EXE), "eval", bad["truncated_pt"]])
    assert r.returncode == 2 and r.stdout == ""
    assert bad["truncated_pt"] in one_error_line(r.stderr)


def test_output_into_head_prints_no_traceback(tmp_path):
    r = _run(["bash", "-c", f"set -o pipefail; '{EXE}' compile {NET} -o '{tmp_path / 'a'}' "
                            f"--sample-digits 20 --json 2>'{tmp_path / 'err'}' | head -1"])
    assert r.stdout == "{\n"
    assert (tmp_path / "err").read_text() == ""
    assert r.returncode in (0, 141)   # 141 when the pipe closed before the last write


def test_closed_stdout_ends_quietly_with_141():
    p = subprocess.Popen([str(EXE), "zoo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    p.stdout.close()   # the reader is gone before the first write
    err = p.stderr.read().decode()
    assert p.wait(120) == 141 and err == ""


# ------------------------------------------------------------------------------------------------
# options wired to the compiler, verify's clock, train's output, eval's tie rule


def test_compile_flags_reach_the_compiler(tmp_path, monkeypatch, capsys):
    import pynq_neuro.compiler.compile as compile_module

    seen = {}

    def fake(source, output, cfg, images, *, force=False):
        seen.update(cfg=cfg, force=force, images=len(images))
        return {"format": "fake"}

    monkeypatch.setattr(compile_module, "compile_network", fake)
    assert main(["compile", NET, "-o", str(tmp_path / "a"), "--sample-digits", "7", "--json"]) == 0
    assert seen["cfg"].allow_over_budget is False and seen["force"] is False
    assert main(["compile", NET, "-o", str(tmp_path / "a"), "--sample-digits", "7", "--json",
                 "--allow-over-budget", "--force", "--clock-mhz", "150"]) == 0
    assert seen["cfg"].allow_over_budget is True and seen["force"] is True
    assert seen["cfg"].budget.clock_mhz == 150.0 and seen["images"] == 7
    capsys.readouterr()


def test_over_budget_and_occupied_output(tmp_path, capsys):
    out = tmp_path / "small"
    argv = ["compile", NET, "-o", str(out), "--sample-digits", "20", "--luts", "2000"]
    assert main(argv) == 2
    assert "budget" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
    assert main([*argv, "--allow-over-budget"]) == 0
    assert load_artifact(out).manifest["performance"]["budget"]["luts"] == 2000
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine\n")
    argv = ["compile", NET, "-o", str(occupied), "--sample-digits", "20"]
    assert main(argv) == 2
    assert "--force" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--force"]) == 0
    assert load_artifact(occupied).network.synapses == zoo.load_network(NET).synapses


def test_packed_stream_against_byte_hardware_is_one_line(artifact, tmp_path, capsys):
    """--packed-pixels onto a core of the byte stream: the field, both values, nothing written."""
    out = tmp_path / "packed"
    argv = ["compile", NET, "-o", str(out), "--sample-digits", "20", "--hardware", str(artifact)]
    assert main([*argv, "--packed-pixels"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "packed_pixels: the compile asks for True, the hardware has False" in line, line
    assert not out.exists()
    assert main(argv) == 0                  # the same compile on the core's own stream
    assert not load_artifact(out).packed_pixels


def test_verify_reports_at_the_artifact_clock(artifact, monkeypatch, capsys):
    import pynq_neuro.rtl.regression as regression

    clocks = []

    def fake(path, images, *, clock_mhz, **kw):
        clocks.append(clock_mhz)
        return {"passed": True, "clock_mhz": clock_mhz}

    monkeypatch.setattr(regression, "regression", fake)
    assert main(["verify", str(artifact), "--rtl", "--images", "5", "--json"]) == 0
    assert main(["verify", str(artifact), "--rtl", "--images", "5", "--json",
                 "--clock-mhz", "120"]) == 0
    assert clocks == [150.0, 120.0]
    capsys.readouterr()
    assert main(["verify", str(artifact), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clock_mhz"] == 150.0


def test_train_refuses_an_unwritable_output_before_training(tmp_path, monkeypatch, capsys):
    import pynq_neuro.train as train_module

    monkeypatch.setattr(train_module, "train", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "net.npz").mkdir()      # the integer network of a quantized run goes here
    assert main(["train", "-o", str(tmp_path / "net.pt"), "--wbits", "2", "--abits", "2"]) == 2
    assert "net.npz" in one_error_line(capsys.readouterr().err)
    assert main(["train", "-o", str(tmp_path), "--epochs", "1"]) == 2
    one_error_line(capsys.readouterr().err)


def test_check_torch_counts_exact_ties_at_the_golden_class_as_agreement(monkeypatch):
    pytest.importorskip("torch")
    import pynq_neuro.train as train_module
    from pynq_neuro.golden import run

    x = load_mnist("test")[0][:30]
    golden = run(zoo.load_network("tdnn-w2a2"), x).classes
    logits = np.zeros((30, 10))
    logits[np.arange(30), golden] = 2.0               # agreement
    tied = [i for i in range(30) if golden[i] > 0][:4]
    logits[tied, 0] = 2.0                             # exact tie: torch's argmax says 0
    wrong = [i for i in range(30) if i not in tied][:3]
    logits[wrong, (golden[wrong] + 1) % 10] = 2.5     # a real disagreement
    nearly = [i for i in range(30) if i not in tied + wrong][:2]
    # an integer tie that floating point scaled a few ulps apart: still the tie
    logits[nearly, (golden[nearly] + 1) % 10] = np.nextafter(np.nextafter(2.0, 3.0), 3.0)
    close = [i for i in range(30) if i not in tied + wrong + nearly][:2]
    logits[close, (golden[close] + 1) % 10] = 2.0 * (1 + 1e-6)   # no tie: disagreement
    monkeypatch.setattr(train_module, "predict",
                        lambda model, images, dtype=None, **kw: (logits, logits.argmax(1)))
    r = cli.evaluate("tdnn-w2a2", images=30, check_torch=True)
    assert np.count_nonzero(logits.argmax(1) != golden) == 4 + 3 + 2 + 2
    assert r["torch_golden_mismatches"] == 3 + 2
    assert r["torch_float32_golden_mismatches"] == 3 + 2
