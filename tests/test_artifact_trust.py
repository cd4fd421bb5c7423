"""Artifacts are written atomically and loaded only when every byte is accounted for: fault
injection into every write step, property fuzzing of every file, and hostile file systems
(path traversal, FIFOs, symbolic links, sparse giants, foreign folders)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pynq_neuro.compiler import artifact as A
from pynq_neuro.compiler.artifact import (VERSION, ArtifactError, hardware_fingerprint,
                                          load_artifact, verilog_header, write_artifact)
from pynq_neuro.compiler.compile import CompileConfig, compile_network
from pynq_neuro.compiler.mapping import Folding, map_network
from pynq_neuro.driver import InputError, NeuroAccelerator
from pynq_neuro.golden.synthetic import random_network

FOLDS = [Folding(2, 3), Folding(1, 5)]
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def small_network(seed: int, input_bits: int = 8):
    return random_network(seed, [(6, 3, 2)], wbits=2, abits=2, input_bits=input_bits,
                          density=0.5)


def _digits(n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    x[rng.random(x.shape) < 0.7] = 0
    return x


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A small artifact compiled with explicit foldings."""
    path = tmp_path_factory.mktemp("trust") / "a"
    compile_network(small_network(1), path, CompileConfig(foldings=FOLDS, sample_digits=16),
                    images=_digits())
    return path


@pytest.fixture(scope="module")
def reference(original):
    return load_artifact(original)


def same_network(a, b) -> bool:
    if (a.input_bits, a.num_classes, len(a.layers)) != (b.input_bits, b.num_classes,
                                                       len(b.layers)):
        return False
    for x, y in zip(a.layers, b.layers):
        if (x.in_channels, x.out_channels, x.taps, x.stride, x.in_frames, x.weight_bits,
                x.act_bits) != (y.in_channels, y.out_channels, y.taps, y.stride, y.in_frames,
                                y.weight_bits, y.act_bits):
            return False
        mx = np.ones(x.codes.shape, bool) if x.mask is None else x.mask
        my = np.ones(y.codes.shape, bool) if y.mask is None else y.mask
        if not (np.array_equal(mx, my) and np.array_equal(x.codes[mx], y.codes[my])):
            return False
        for name in ("thresholds", "bias"):
            p, q = getattr(x, name), getattr(y, name)
            if (p is None) != (q is None) or (p is not None and not np.array_equal(p, q)):
                return False
    return True


def digest(path: Path) -> str:
    return hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()


def listing(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------------
# mutation helpers: change a file, then repair the digests so that deeper checks are reached


def read_manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def write_manifest(path: Path, m: dict, refix: bool = True) -> None:
    """Write ``m``; with ``refix`` its fingerprint and neuro_params.vh (file, digest, size)
    follow its hardware section, as far as the edited manifest still allows."""
    if refix:
        with contextlib.suppress(Exception):
            m["hardware"]["fingerprint"] = hardware_fingerprint(m["hardware"])
        with contextlib.suppress(Exception):
            vh = verilog_header(m).encode()
            (path / "neuro_params.vh").write_bytes(vh)
            m["files"]["neuro_params.vh"] = hashlib.sha256(vh).hexdigest()
            m["sizes"]["neuro_params.vh"] = len(vh)
    (path / "manifest.json").write_text(json.dumps(m))


def replace_file(path: Path, rel: str, data: bytes) -> None:
    """New content for a listed file, with its digest and size repaired in the manifest."""
    (path / rel).write_bytes(data)
    m = read_manifest(path)
    m["files"][rel] = hashlib.sha256(data).hexdigest()
    m["sizes"][rel] = len(data)
    write_manifest(path, m, refix=False)


def with_crc(data: bytes) -> bytes:
    if len(data) < 20:
        return data
    return data[:-4] + zlib.crc32(data[16:-4]).to_bytes(4, "little")


@contextlib.contextmanager
def copy_of(src: Path):
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "a"
        shutil.copytree(src, dst, symlinks=True)
        yield dst


def refused_or_identical(path: Path, reference) -> str:
    try:
        art = load_artifact(path)
    except ArtifactError as e:
        assert "\n" not in str(e)
        return "refused"
    assert same_network(art.network, reference.network)
    assert art.binary == reference.binary
    return "identical"


# ------------------------------------------------------------------------------------------------
# the artifact loads, and a load accounts for every file


def test_compiled_artifact_loads_with_every_file_listed(original, reference):
    m = reference.manifest
    assert listing(original) == set(m["files"]) | {"manifest.json"}
    for rel, sha in m["files"].items():
        data = (original / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == m["sizes"][rel]
    assert reference.binary == (original / "network.bin").read_bytes()
    assert same_network(reference.network, small_network(1))
    assert [e["name"] for e in m["memories"]] == \
        ["L0_syn_g0", "L0_syn_g1", "L0_idx_g0", "L0_idx_g1", "L0_par",
         "L1_syn_g0", "L1_idx_g0", "L1_par"]
    # the load stream read as the source gives the same banks
    assert [b.words for b in load_artifact(original, "bin").banks] == \
        [b.words for b in reference.banks]


def test_inspect_plots_are_ignored_and_coe_may_be_left_out(original, reference):
    with copy_of(original) as p:
        (p / "inspect").mkdir()
        (p / "inspect" / "layers.png").write_bytes(b"\x89PNG")
        shutil.rmtree(p / "coe")     # a board install carries no Vivado images
        assert same_network(load_artifact(p).network, reference.network)
        (p / "coe").mkdir()          # but a partial coe/ folder is refused
        with pytest.raises(ArtifactError, match="missing file coe/"):
            load_artifact(p)


@pytest.mark.parametrize("rel", ["mem/L7_syn_g0.mem", "coe/extra.coe", "notes.txt",
                                 "mem/sub/L0_par.mem"])
def test_unlisted_files_are_refused(original, rel):
    with copy_of(original) as p:
        (p / rel).parent.mkdir(parents=True, exist_ok=True)
        (p / rel).write_text("0\n")
        with pytest.raises(ArtifactError, match="not listed|a folder where"):
            load_artifact(p)


# ------------------------------------------------------------------------------------------------
# property fuzzing: every mutation is refused or harmless


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in ("performance", "meta"):
                yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    yield path


@pytest.fixture(scope="module")
def manifest_paths(reference):
    return [p for p in _leaves(reference.manifest) if p]


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


ODD_VALUES = [True, False, None, 1.5, 1.0, "1", [], {}, -1, 0, 2**31, 2**40, -(2**40),
              "/etc/passwd", "../../../../etc/passwd", "mem/../../x.mem", "mem/./L0_par.mem",
              "mem//L0_par.mem", "", "C:\\evil", "a" * 64]


@FUZZ
@given(data=st.data())
def test_fuzzed_manifests_are_refused_or_identical(original, reference, manifest_paths, data):
    with copy_of(original) as p:
        m = read_manifest(p)
        path = data.draw(st.sampled_from(manifest_paths), label="path")
        parent, key = _get(m, path[:-1]), path[-1]
        op = data.draw(st.sampled_from(["value", "delete", "number", "swap", "rename"]),
                       label="op")
        value = parent[key]
        if op == "value":
            parent[key] = data.draw(st.sampled_from(ODD_VALUES), label="value")
        elif op == "delete":
            del parent[key]
        elif op == "number":
            if type(value) is int:
                parent[key] = value + data.draw(st.sampled_from([-1, 1, 2, 7, -value]))
            else:
                parent[key] = data.draw(st.integers(-3, 3))
        elif op == "swap":   # two siblings exchange their values
            keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
            other = data.draw(st.sampled_from(keys), label="other")
            parent[key], parent[other] = parent[other], parent[key]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(ODD_VALUES[13:]), label="new key")] = \
                parent.pop(key)
        write_manifest(p, m, refix=data.draw(st.booleans(), label="refix"))
        refused_or_identical(p, reference)


@FUZZ
@given(data=st.data())
def test_fuzzed_load_streams_are_refused(original, reference, data):
    blob = (original / "network.bin").read_bytes()
    op = data.draw(st.sampled_from(["flip", "truncate", "extend", "word"]), label="op")
    out = bytearray(blob)
    if op == "flip":
        for _ in range(data.draw(st.integers(1, 3))):
            out[data.draw(st.integers(0, len(out) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "truncate":
        out = out[:data.draw(st.integers(0, len(out) - 1))]
    elif op == "extend":
        out += data.draw(st.binary(min_size=1, max_size=16))
    else:
        i = 4 * data.draw(st.integers(0, len(out) // 4 - 1))
        out[i:i + 4] = data.draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
    if data.draw(st.booleans(), label="fix crc"):
        out = bytearray(with_crc(bytes(out)))
    if bytes(out) == blob:
        return
    with copy_of(original) as p:
        replace_file(p, "network.bin", bytes(out))
        assert refused_or_identical(p, reference) == "refused"


@FUZZ
@given(data=st.data())
def test_fuzzed_memory_images_are_refused(original, reference, data):
    entry = data.draw(st.sampled_from(reference.manifest["memories"]), label="bank")
    rel = entry[data.draw(st.sampled_from(["mem", "coe"]), label="file")]
    text = (original / rel).read_bytes()
    lines = text.split(b"\n")
    op = data.draw(st.sampled_from(["char", "extra", "drop", "upper", "comment", "crlf"]))
    i = data.draw(st.integers(0, len(lines) - 2), label="line")
    if op == "char":
        line = bytearray(lines[i])
        j = data.draw(st.integers(0, len(line) - 1))
        line[j] = data.draw(st.sampled_from(b"0123456789abcdefgxF "))
        lines[i] = bytes(line)
    elif op == "extra":
        lines.insert(i, lines[i])
    elif op == "drop":
        del lines[i]
    elif op == "upper":
        lines[i] = lines[i].upper()
    elif op == "comment":
        lines[i] += b" // note"
    else:
        lines[i] += b"\r"
    out = b"\n".join(lines)
    if out == text:
        return
    with copy_of(original) as p:
        replace_file(p, rel, out)
        assert refused_or_identical(p, reference) == "refused"


@FUZZ
@given(data=st.data())
def test_fuzzed_verilog_headers_are_refused(original, reference, data):
    text = (original / "neuro_params.vh").read_bytes()
    lines = text.split(b"\n")
    i = data.draw(st.integers(0, len(lines) - 2))
    op = data.draw(st.sampled_from(["digit", "drop", "duplicate", "append"]))
    if op == "digit":
        digits = [j for j, c in enumerate(lines[i]) if chr(c).isdigit()]
        if not digits:
            return
        line = bytearray(lines[i])
        j = data.draw(st.sampled_from(digits))
        line[j] = ord(str((int(chr(line[j])) + data.draw(st.integers(1, 9))) % 10))
        lines[i] = bytes(line)
    elif op == "drop":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    else:
        lines.insert(i, b"`define PN_EXTRA 1")
    with copy_of(original) as p:
        replace_file(p, "neuro_params.vh", b"\n".join(lines))
        assert refused_or_identical(p, reference) == "refused"


# ------------------------------------------------------------------------------------------------
# specific hostile artifacts


def _edit(path: Path, change, refix: bool = True) -> None:
    m = read_manifest(path)
    change(m)
    write_manifest(path, m, refix)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(version=True), "version must be an integer, got a boolean"),
    (lambda m: m.update(version=1.0), "version must be an integer"),
    (lambda m: m["hardware"]["layers"][0].update(lanes=3.0), r"layers\[0\].lanes must be"),
    (lambda m: m["hardware"]["layers"][1].update(groups="1"), "must be an integer, got a str"),
    (lambda m: m["network"].update(input_bits=True), "network.input_bits must be an integer"),
    (lambda m: m.update(memories={}), "memories must be a list"),
    (lambda m: m["hardware"].pop("constants"), "hardware lacks constants"),
    (lambda m: m["memories"][0].update(extra=1), "unknown fields extra"),
    (lambda m: m["files"].update({"/etc/passwd": "0" * 64}), "'/etc/passwd' is not"),
    (lambda m: m["files"].update({"mem/../../../etc/passwd": "0" * 64}), "not a normalised"),
    (lambda m: m["memories"][4].update(mem="../../../../etc/passwd"), "memories.4..mem"),
    (lambda m: m["memories"][4].update(mem="/etc/passwd"), "memories.4..mem"),
    (lambda m: m["hardware"]["layers"][0].update(weight_bits=9),
     "cannot hold this artifact: layer 0: weight_bits = 9"),
    (lambda m: m["hardware"]["layers"][0].update(in_channels=27), "in_channels = 27"),
    (lambda m: m.update(files=dict(m["files"], **{"mem/L0_par.mem": "f" * 64})), "SHA-256"),
    (lambda m: m["hardware"].update(input_bits=4), "hardware.input_bits is 4, expected 8"),
    (lambda m: m["hardware"].update(packed_pixels=1), "hardware.packed_pixels must be a boolean"),
    (lambda m: m["hardware"].update(pixels_per_beat=28), "hardware has unknown fields"),
])
def test_hostile_manifests_are_refused(original, change, message):
    with copy_of(original) as p:
        _edit(p, change)
        with pytest.raises(ArtifactError, match=message.replace("memories.4..mem",
                                                                r"memories\[4\]\.mem")):
            load_artifact(p)


def test_swapped_bank_entries_are_refused(original, reference):
    """Two banks exchange their manifest entries, or their files and digests."""
    with copy_of(original) as p:
        _edit(p, lambda m: m["memories"].__setitem__(slice(0, 2), m["memories"][1::-1]))
        with pytest.raises(ArtifactError, match=r"memories\[0\]\.name"):
            load_artifact(p)
    with copy_of(original) as p:
        a, b = p / "mem" / "L0_syn_g0.mem", p / "mem" / "L0_syn_g1.mem"
        da, db = a.read_bytes(), b.read_bytes()
        replace_file(p, "mem/L0_syn_g0.mem", db)
        replace_file(p, "mem/L0_syn_g1.mem", da)
        with pytest.raises(ArtifactError, match="network.bin: bank L0_syn_g0 word"):
            load_artifact(p)


def test_payload_edit_with_repaired_crc_and_digest_is_refused(original):
    """The load stream is compared word by word with the memory images."""
    with copy_of(original) as p:
        blob = bytearray((p / "network.bin").read_bytes())
        blob[40] ^= 0x04
        replace_file(p, "network.bin", with_crc(bytes(blob)))
        with pytest.raises(ArtifactError, match="network.bin: bank L0_syn_g0 word"):
            load_artifact(p)
        with pytest.raises(InputError, match="network.bin"):
            NeuroAccelerator("golden", artifact=p)


def test_index_table_padding_must_be_zero(original, reference):
    """The index entries past the last local channel of a tap (the table has a power of two
    entries per tap) are 0: a consistent edit of all three copies of one is refused."""
    banks = [dataclasses.replace(b, words=list(b.words)) for b in reference.banks]
    bank = next(b for b in banks if b.name == "L0_idx_g0")
    h = reference.manifest["hardware"]["layers"][0]
    stride = h["index_depth"] // h["taps"]
    assert stride > h["local_channels"] and bank.words[h["local_channels"]] == 0
    bank.words[h["local_channels"]] = 1
    with copy_of(original) as p:
        replace_file(p, "mem/L0_idx_g0.mem", A.mem_text(bank).encode())
        replace_file(p, "coe/L0_idx_g0.coe", A.coe_text(bank).encode())
        replace_file(p, "network.bin", A.pack_binary(banks))
        with pytest.raises(ArtifactError, match="index table of group 0 is not in the canonical"):
            load_artifact(p)


def test_nan_and_duplicate_keys_in_a_manifest_are_refused(original):
    with copy_of(original) as p:
        text = (p / "manifest.json").read_text()
        (p / "manifest.json").write_text(text.replace(f'"version": {VERSION}', '"version": NaN', 1))
        with pytest.raises(ArtifactError, match="NaN is not a JSON number"):
            load_artifact(p)
        (p / "manifest.json").write_text(text[:-2] + f', "version": {VERSION}}}')
        with pytest.raises(ArtifactError, match="appears twice"):
            load_artifact(p)
        (p / "manifest.json").write_text(text[:-2] + ', "performance": {"x": 1e999}}')
        with pytest.raises(ArtifactError, match="out of range"):
            load_artifact(p)


def test_core_limits_are_checked_on_load(original, monkeypatch):
    from pynq_neuro.compiler import limits

    seen = []

    def fake(layers, input_bits, num_classes, *args, rows=None):
        seen.append((len(layers), input_bits, num_classes, rows))
        return [limits.Violation(0, "lanes", 3, "at most 2")]

    rows = json.loads((original / "manifest.json").read_text())["network"]["rows"]
    monkeypatch.setattr(limits, "violations", fake)
    with pytest.raises(ArtifactError, match=r"cannot hold this artifact: .*lanes"):
        load_artifact(original)
    assert seen == [(2, 8, 10, rows)]


def _run_with_timeout(fn, seconds: float = 10.0):
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    return t.is_alive(), result


@pytest.mark.parametrize("rel", ["mem/L0_par.mem", "network.bin", "manifest.json",
                                 "coe/L1_par.coe"])
def test_a_fifo_in_place_of_a_file_is_refused_without_hanging(original, rel):
    with copy_of(original) as p:
        (p / rel).unlink()
        os.mkfifo(p / rel)
        hung, result = _run_with_timeout(lambda: load_artifact(p))
        if hung:  # release the reader before failing
            fd = os.open(p / rel, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        assert not hung, "load_artifact blocked on a FIFO"
        assert isinstance(result.get("error"), ArtifactError)
        assert "regular file" in str(result["error"]) or "not listed" in str(result["error"])


@pytest.mark.parametrize("target", ["file", "folder", "top", "loop"])
def test_symbolic_links_are_refused(original, tmp_path, target):
    outside = tmp_path / "outside"
    shutil.copytree(original, outside)
    with copy_of(original) as p:
        if target == "file":      # same bytes, but outside the artifact
            (p / "mem" / "L0_par.mem").unlink()
            (p / "mem" / "L0_par.mem").symlink_to(outside / "mem" / "L0_par.mem")
        elif target == "folder":
            shutil.rmtree(p / "mem")
            (p / "mem").symlink_to(outside / "mem")
        elif target == "top":
            (p / "network.bin").unlink()
            (p / "network.bin").symlink_to(outside / "network.bin")
        else:
            (p / "mem" / "L0_par.mem").unlink()
            (p / "mem" / "L0_par.mem").symlink_to("L0_par.mem")
        with pytest.raises(ArtifactError, match="symbolic link"):
            load_artifact(p)


def test_a_folder_where_a_file_belongs_and_missing_files(original):
    with copy_of(original) as p:
        (p / "network.bin").unlink()
        with pytest.raises(ArtifactError, match="missing file network.bin"):
            load_artifact(p)
        (p / "network.bin").mkdir()
        with pytest.raises(ArtifactError, match="a folder where a file belongs"):
            load_artifact(p)
    with copy_of(original) as p:
        shutil.rmtree(p / "mem")
        with pytest.raises(ArtifactError, match="missing file mem"):
            load_artifact(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_files_are_refused(original):
    with copy_of(original) as p:
        (p / "mem" / "L0_par.mem").chmod(0)
        with pytest.raises(ArtifactError, match="permission denied"):
            load_artifact(p)


@pytest.mark.parametrize("rel, size", [("network.bin", 8 << 30), ("manifest.json", 64 << 20)])
def test_giant_sparse_files_are_refused_before_reading(original, rel, size, monkeypatch):
    read = []
    real = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: read.append(n) or real(fd, n))
    with copy_of(original) as p:
        try:
            os.truncate(p / rel, size)   # sparse: no disk is used
        except OSError as e:
            pytest.skip(f"no sparse files here: {e}")
        start = time.perf_counter()
        with pytest.raises(ArtifactError, match=f"{rel}: {size} bytes"):
            load_artifact(p)
        assert time.perf_counter() - start < 5
        assert sum(read) < 1 << 20


def test_paths_that_are_no_artifact_folder(original, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="is a file"):
        load_artifact(tmp_path / "file")
    with pytest.raises(ArtifactError, match="no such artifact folder"):
        load_artifact(tmp_path / "absent")
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_artifact(tmp_path)


def test_driver_errors_for_bad_artifact_paths(original, tmp_path):
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "absent"):
        with pytest.raises(InputError, match="artifact refused"):
            NeuroAccelerator("golden", artifact=bad)
    acc = NeuroAccelerator("golden", artifact=original)
    with pytest.raises(InputError, match="is a file"):
        acc.load_network(tmp_path / "file")
    with pytest.raises(InputError, match="artifact"):
        acc.load_network(42)


def test_load_network_streams_the_verified_bytes(original, reference):
    acc = NeuroAccelerator("golden", artifact=original)
    sent = []
    real = acc.core.load_stream
    acc.core.load_stream = lambda words, timeout: sent.append(words.copy()) or real(words,
                                                                                    timeout)
    acc.load_network(original)
    assert sent[0].astype("<u4").tobytes() == (original / "network.bin").read_bytes()
    assert acc.status()["load_ok"]
    x = _digits(32)
    from pynq_neuro.golden import run

    assert np.array_equal(acc.classify(x), run(reference.network, x).classes)


# ------------------------------------------------------------------------------------------------
# the fingerprint covers every parameter built into a core


def test_fingerprint_covers_every_core_parameter(reference):
    hw = reference.manifest["hardware"]
    base = hardware_fingerprint(hw)
    changes = [(k,) for k in A.HW_NETWORK_FIELDS] + [("constants", k) for k in hw["constants"]]
    changes += [("layers", i, k) for i in range(len(hw["layers"])) for k in A.HW_LAYER_FIELDS]
    for path in changes:
        other = json.loads(json.dumps(hw))
        parent = _get(other, path[:-1])
        parent[path[-1]] += 1
        assert hardware_fingerprint(other) != base, path


def test_the_packed_stream_is_part_of_the_fingerprint_and_the_header(tmp_path, reference):
    """A packed stream changes the fingerprint and adds PN_PACKED_PIXELS to the header; a byte
    stream writes neither the field nor the macro, so earlier artifacts keep their
    fingerprints."""
    hw = reference.manifest["hardware"]
    assert "packed_pixels" not in hw and not reference.packed_pixels
    assert "PN_PACKED_PIXELS" not in (reference.path / "neuro_params.vh").read_text()
    assert hardware_fingerprint({**hw, "packed_pixels": False}) == hw["fingerprint"]
    assert hardware_fingerprint({**hw, "packed_pixels": True}) != hw["fingerprint"]
    compile_network(reference.network, tmp_path / "p", CompileConfig(
        foldings=FOLDS, sample_digits=16, packed_pixels=True), images=_digits())
    packed = load_artifact(tmp_path / "p")
    assert packed.packed_pixels and packed.manifest["hardware"]["packed_pixels"] is True
    assert packed.beats_per_row == reference.beats_per_row == 7   # 8-bit pixels: four a beat
    assert "`define PN_PACKED_PIXELS 1" in (tmp_path / "p" / "neuro_params.vh").read_text()
    assert packed.manifest["compile_config"]["packed_pixels"] is True
    assert packed.fingerprint != reference.fingerprint
    # the field removed (a byte stream claimed): the fingerprint no longer matches; with the
    # fingerprint fixed too, the header still asks for the packed stream
    with copy_of(tmp_path / "p") as q:
        _edit(q, lambda m: m["hardware"].pop("packed_pixels"), refix=False)
        with pytest.raises(ArtifactError, match="do not match their fingerprint"):
            load_artifact(q)
    with copy_of(tmp_path / "p") as q:
        def unpack(m):
            m["hardware"].pop("packed_pixels")
            m["hardware"]["fingerprint"] = hardware_fingerprint(m["hardware"])
        _edit(q, unpack, refix=False)
        with pytest.raises(ArtifactError, match="neuro_params.vh"):
            load_artifact(q)


def test_input_bits_4_and_8_are_different_hardware(tmp_path, reference):
    net4 = small_network(1, input_bits=4)
    compile_network(net4, tmp_path / "b", CompileConfig(foldings=FOLDS, sample_digits=16),
                    images=_digits())
    other = load_artifact(tmp_path / "b")
    assert other.fingerprint != reference.fingerprint
    diffs = reference.hardware_differences(other.manifest["hardware"])
    fields = {(where, k) for where, k, _, _ in diffs}
    assert ("network", "input_bits") in fields and ("network", "fingerprint") in fields
    want = {(f"layer {i}", k) for i, (a, b) in enumerate(zip(
        reference.manifest["hardware"]["layers"], other.manifest["hardware"]["layers"]))
        for k in A.HW_LAYER_FIELDS if a[k] != b[k]}
    assert want <= fields
    with pytest.raises(ArtifactError, match="input_bits artifact 8 != hardware 4"):
        reference.check_hardware(other.manifest["hardware"])


def test_check_hardware_lists_every_difference(reference):
    other = json.loads(json.dumps(reference.manifest["hardware"]))
    other["layers"][0]["lanes"] += 1
    other["layers"][1]["acc_bits"] += 2
    other["constants"]["ROW_BUFFERS"] += 1
    other["logit_bits"] += 2
    with pytest.raises(ArtifactError) as info:
        reference.check_hardware(other)
    msg = str(info.value)
    for text in ("layer 0: lanes", "layer 1: acc_bits", "ROW_BUFFERS", "logit_bits",
                 "4 differences"):
        assert text in msg
    assert "\n" not in msg


# ------------------------------------------------------------------------------------------------
# writing: refusals, replacement, stale files


def _maps(seed: int, folds=FOLDS):
    net = small_network(seed)
    return net, map_network(net, folds)


def test_foreign_folders_are_refused_unless_forced(tmp_path):
    net, maps = _maps(2)
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ArtifactError, match=f"{out}.*--force"):
        write_artifact(out, net, maps)
    assert (out / "thesis.tex").read_text() == "precious"
    write_artifact(out, net, maps, force=True)
    assert not (out / "thesis.tex").exists()
    assert same_network(load_artifact(out).network, net)
    (tmp_path / "empty").mkdir()
    write_artifact(tmp_path / "empty", net, maps)     # an empty folder needs no force
    load_artifact(tmp_path / "empty")


def test_a_file_as_output_is_refused(tmp_path):
    net, maps = _maps(2)
    (tmp_path / "out").write_text("x")
    with pytest.raises(ArtifactError, match="is a file, not a folder"):
        write_artifact(tmp_path / "out", net, maps)
    assert (tmp_path / "out").read_text() == "x"


@pytest.mark.parametrize("where", ["file", "below a file", "foreign folder"])
def test_compile_refuses_an_unusable_output_before_any_work(tmp_path, monkeypatch, where):
    """The output is checked before the golden model, the folding search or the mapping run."""
    import pynq_neuro.compiler.compile as C

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    out = {"file": tmp_path / "f", "below a file": tmp_path / "f" / "sub",
           "foreign folder": tmp_path / "d"}[where]

    def no_work(*args, **kwargs):
        raise AssertionError("compile worked before checking its output")

    monkeypatch.setattr(C, "run", no_work)
    with pytest.raises(ArtifactError, match="file, not a folder|use --force"):
        compile_network(small_network(0), out, CompileConfig(foldings=FOLDS), images=_digits())
    assert (tmp_path / "f").read_text() == "x"
    assert (tmp_path / "d" / "notes.txt").read_text() == "mine"


def test_replacing_an_artifact_leaves_no_stale_file(tmp_path):
    out = tmp_path / "a"
    net, maps = _maps(3, [Folding(4, 3), Folding(2, 5)])   # more banks
    write_artifact(out, net, maps)
    (out / "inspect").mkdir()
    (out / "inspect" / "plot.png").write_bytes(b"old plot")
    many = listing(out)
    net2, maps2 = _maps(4)
    write_artifact(out, net2, maps2)                        # no force needed
    files = listing(out)
    assert files == set(read_manifest(out)["files"]) | {"manifest.json"}
    assert len(many - {"inspect/plot.png"}) > len(files)
    assert same_network(load_artifact(out).network, net2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_nan_in_a_manifest_is_refused_before_writing(tmp_path):
    net, maps = _maps(2)
    out = tmp_path / "a"
    write_artifact(out, net, maps)
    before = digest(out)
    with pytest.raises(ArtifactError, match=r"performance\.cycles\[1\] is not finite"):
        write_artifact(out, net, maps, extra={"performance": {"cycles": [1.0, float("nan")]}})
    with pytest.raises(ArtifactError, match="not JSON"):
        write_artifact(out, net, maps, extra={"performance": {"n": np.int64(3)}})
    assert digest(out) == before and "NaN" not in (out / "manifest.json").read_text()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_leftovers_of_a_hard_kill_do_not_confuse_loads_and_are_cleaned(tmp_path, reference):
    net, maps = _maps(2)
    out = tmp_path / "a"
    write_artifact(out, net, maps)
    pid = _dead_pid()
    half = tmp_path / f".a.tmp-{pid}-0badc0de"
    shutil.copytree(out, half)
    (half / "network.bin").write_bytes(b"half")
    assert same_network(load_artifact(out).network, net)
    # killed between moving the old artifact aside and moving the new one in
    os.rename(out, tmp_path / f".a.old-{pid}-12345678")
    with pytest.raises(ArtifactError, match=r"\.a\.old-.*rename it to a"):
        load_artifact(out)
    net2, maps2 = _maps(5)
    write_artifact(out, net2, maps2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert same_network(load_artifact(out).network, net2)


# ------------------------------------------------------------------------------------------------
# fault injection: an interruption at every step of a write


PRIMITIVES = ("open", "write", "fsync", "rename", "replace", "mkdir")


@contextlib.contextmanager
def interrupt_at(k: int, exc: BaseException):
    """Make the k-th call of the write primitives raise ``exc`` (once); yields the counter."""
    calls = {"n": 0, "hit": False}
    real = {name: getattr(os, name) for name in PRIMITIVES}

    def wrap(name):
        def call(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == k:
                calls["hit"] = True
                raise exc
            return real[name](*args, **kwargs)
        return call

    for name in PRIMITIVES:
        setattr(os, name, wrap(name))
    try:
        yield calls
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)


def _outcome(out: Path, versions: dict[str, object]) -> str:
    art = load_artifact(out)
    name = next(n for n, d in versions.items() if d == digest(out))
    assert listing(out) == set(art.manifest["files"]) | {"manifest.json"}
    return name


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "full")],
                         ids=["ctrl-c", "disk-full"])
def test_an_interruption_at_any_step_leaves_one_whole_artifact(tmp_path, exc):
    old_net, old_maps = _maps(6)
    new_net, new_maps = _maps(7, [Folding(1, 2), Folding(1, 3)])
    seed = tmp_path / "seed" / "a"
    write_artifact(seed, old_net, old_maps)
    fresh = tmp_path / "fresh" / "a"
    write_artifact(fresh, new_net, new_maps)
    versions = {"old": digest(seed), "new": digest(fresh)}
    seen, k = [], 0
    while True:
        k += 1
        work = tmp_path / f"k{k}"
        out = work / "a"
        shutil.copytree(seed, out)
        raised = None
        with interrupt_at(k, exc) as calls:
            try:
                write_artifact(out, new_net, new_maps)
            except BaseException as e:  # noqa: BLE001
                raised = e
        if not calls["hit"]:
            assert raised is None and _outcome(out, versions) == "new"
            break
        expected = ArtifactError if isinstance(exc, OSError) else KeyboardInterrupt
        # an OSError may be absorbed (an existing parent folder, a failed cleanup)
        assert raised is None or isinstance(raised, expected), (k, raised)
        seen.append(_outcome(out, versions))
        assert raised is not None or seen[-1] == "new"
        left = sorted(p.name for p in work.iterdir() if p.name != "a")
        # only the removal of the replaced folder can be cut short; the next write cleans it
        assert all(n.startswith(".a.old-") for n in left) and (not left or seen[-1] == "new")
        if left:
            write_artifact(out, new_net, new_maps)
            assert sorted(p.name for p in work.iterdir()) == ["a"]
        shutil.rmtree(work)
    assert k > 40 and "old" in seen and "new" in seen


def test_an_interrupted_first_write_leaves_nothing_or_everything(tmp_path):
    net, maps = _maps(6)
    k = 0
    while True:
        k += 1
        work = tmp_path / f"k{k}"
        work.mkdir()
        with interrupt_at(k, KeyboardInterrupt()) as calls:
            with contextlib.suppress(KeyboardInterrupt):
                write_artifact(work / "a", net, maps)
        names = sorted(p.name for p in work.iterdir())
        if not calls["hit"]:
            break
        assert names in ([], ["a"]), names
        if names:
            assert same_network(load_artifact(work / "a").network, net)
    assert names == ["a"] and k > 30


def test_ctrl_c_during_the_swap_is_delivered_after_it(tmp_path, monkeypatch):
    old_net, old_maps = _maps(6)
    new_net, new_maps = _maps(7)
    out = tmp_path / "a"
    write_artifact(out, old_net, old_maps)
    real = os.rename

    def rename(src, dst):
        if Path(dst).name.startswith(".a.old-"):
            os.kill(os.getpid(), signal.SIGINT)   # a real Ctrl-C between the two renames
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    # Python's own Ctrl-C handler, also when the tests run as a background job (which
    # inherits SIGINT ignored, and an ignored signal rightly stays ignored after the swap)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_artifact(out, new_net, new_maps)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert same_network(load_artifact(out).network, new_net)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
