"""Checkpoints (.pt) and integer networks (.npz) on disk: atomic writes, weights-only loading,
checkpoint digests that expose stale networks, interrupted saves and corrupted files."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import sparse_digits, tiny_config, tiny_model, train_split_available  # noqa: E402
from pynq_neuro import zoo  # noqa: E402
from pynq_neuro.compress.factorize import compress  # noqa: E402
from pynq_neuro.data import load_mnist  # noqa: E402
from pynq_neuro.fileio import (  # noqa: E402
    UnsafeFileError,
    atomic_write_bytes,
    atomic_write_json,
    check_zip,
    read_regular,
    sha256_file,
)
from pynq_neuro.golden import IntegerNetwork, NetworkError, run  # noqa: E402
from pynq_neuro.golden.network import CHECKPOINT_DIGEST_KEY  # noqa: E402
from pynq_neuro.lower import lower  # noqa: E402
from pynq_neuro.models import ModelConfig, NeuroNet  # noqa: E402
from pynq_neuro.train import (  # noqa: E402
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    TrainConfig,
    checkpoint_bytes,
    checkpoint_dict,
    checkpoint_from_bytes,
    load_checkpoint,
    lower_checkpoint,
    model_from_checkpoint,
    plain,
    predict,
    save_checkpoint,
    save_checkpoint_and_network,
    train,
)

torch.set_num_threads(1)

TINY = tiny_config()


digits = sparse_digits


def tiny_checkpoint(seed: int, cfg: ModelConfig = TINY) -> tuple[dict, NeuroNet]:
    model = tiny_model(seed, cfg)
    return checkpoint_dict(model, TrainConfig(epochs=0), [], 0.5, f"test model {seed}"), model


def same_network(a: IntegerNetwork, b: IntegerNetwork) -> bool:
    if (a.input_bits, a.num_classes, a.meta, len(a.layers)) != \
            (b.input_bits, b.num_classes, b.meta, len(b.layers)):
        return False
    for x, y in zip(a.layers, b.layers):
        for f in ("in_channels", "out_channels", "taps", "stride", "in_frames", "weight_bits",
                  "act_bits"):
            if getattr(x, f) != getattr(y, f):
                return False
        for f in ("codes", "thresholds", "bias", "mask"):
            u, v = getattr(x, f), getattr(y, f)
            if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
                return False
    return True


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- fileio


def test_atomic_write_replaces_whole_files_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new" * 1000)
    assert target.read_bytes() == b"new" * 1000
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_write_json(tmp_path / "b.json", {"x": [1, 2]}, indent=1)
    assert (tmp_path / "b.json").read_text() == '{\n "x": [\n  1,\n  2\n ]\n}'
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "b.json", {"x": object()})
    assert (tmp_path / "b.json").read_text().startswith("{\n")  # the old file is untouched
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write_bytes(tmp_path / "dir", b"x")
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "c.bin", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.json", "dir"]


def test_reads_open_only_regular_files_of_bounded_size(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"0123456789")
    assert read_regular(f, 10) == b"0123456789"
    assert sha256_file(f, 10) == hashlib.sha256(b"0123456789").hexdigest()
    with pytest.raises(UnsafeFileError, match="has 10 bytes, more than the 9 allowed"):
        read_regular(f, 9)
    with pytest.raises(UnsafeFileError, match="more than the 9 allowed"):
        sha256_file(f, 9)
    os.mkfifo(tmp_path / "fifo")  # opening it for reading must not wait for a writer
    for path in (tmp_path / "fifo", tmp_path):
        with pytest.raises(UnsafeFileError, match="is not a regular file"):
            read_regular(path, 100)
        with pytest.raises(UnsafeFileError, match="is not a regular file"):
            sha256_file(path, 100)
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "missing", 100)


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_check_zip_accounts_for_every_byte():
    good = _zip(a=b"A" * 1000, b=b"B" * 10)
    check_zip(good, 2, 1010)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a", b"xyz")
    stored = bytearray(buf.getvalue())
    stored[stored.index(b"xyz")] = ord("X")  # the content no longer matches its CRC-32
    folder = bytearray(good)  # member "b" marked as an MS-DOS folder in the central directory
    entry = folder.rindex(b"PK\x01\x02")
    folder[entry + 38] |= 0x10
    named_folder = _zip(**{"a": b"A", "d/": b""})
    refused = {
        "appended": (good + b"\0", 2, 1010, "data after its end record"),
        "prepended": (b"\0" + good, 2, 1010, "data before the first member"),
        "too many members": (good, 1, 1010, "2 members"),
        "too large": (good, 2, 1009, "unpack to more than 1009"),
        "bad crc": (bytes(stored), 2, 1010, "corrupt zip container"),
        "empty": (b"", 2, 1010, "not a zip container"),
        "folder attribute": (bytes(folder), 2, 1010, "marked as a folder"),
        "folder name": (named_folder, 2, 1010, "marked as a folder"),
    }
    for name, (data, members, size, message) in refused.items():
        with pytest.raises(UnsafeFileError, match=message):
            check_zip(data, members, size)


# --------------------------------------------------------------------------- weights-only loads


def test_zoo_checkpoints_load_weights_only_and_predict_as_shipped(monkeypatch):
    images = load_mnist("test")[0][:300]
    real_load = torch.load
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    for name in zoo.names():
        path = zoo.checkpoint_path(name)
        trusted = real_load(path, map_location="cpu", weights_only=False)
        with monkeypatch.context() as m:
            m.setattr(torch, "load", spy)
            model = model_from_checkpoint(path)
        reference = NeuroNet(ModelConfig.from_dict(trusted["model_config"]))
        reference.load_state_dict(trusted["state_dict"])
        reference.eval()
        for dtype in (torch.float32, torch.float64):
            assert np.array_equal(predict(model, images, dtype=dtype)[0],
                                  predict(reference, images, dtype=dtype)[0]), name
        if zoo.network_path(name) is not None:
            shipped = zoo.load_network(name)
            if CHECKPOINT_DIGEST_KEY in shipped.meta:  # recorded since digests exist: it matches
                assert shipped.meta[CHECKPOINT_DIGEST_KEY] == hashlib.sha256(
                    path.read_bytes()).hexdigest(), name
            relowered = lower(model, meta=shipped.meta)
            assert same_network(relowered, shipped), name
            golden = run(shipped, images).classes
            assert np.array_equal(golden, predict(model, images, dtype=torch.float64)[1]), name
    assert calls == [True] * len(zoo.names())


def test_saved_checkpoints_hold_only_plain_data(tmp_path):
    ckpt, _ = tiny_checkpoint(1)
    ckpt["extra"] = {"n": np.int64(3), "x": np.float32(0.5), "p": tmp_path, "t": (1, "a")}
    save_checkpoint(ckpt, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)  # no allowed extra globals
    assert raw["extra"] == {"n": 3, "x": 0.5, "p": str(tmp_path), "t": (1, "a")}
    assert type(raw["torch_version"]) is str and raw["model_config"]["channels"] == (8, 6)
    with pytest.raises(TypeError, match=r"checkpoint\['bad'\] holds a object"):
        plain({"bad": object()})


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    payload = _Payload(marker)
    pickle.loads(pickle.dumps(payload))  # the payload is real: unpickled unsafely, it runs
    assert marker.exists()
    marker.unlink()
    evil = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "state_dict": {}, "model_config": {}, "hook": payload}, evil)
    (tmp_path / "evil_pickle.pt").write_bytes(pickle.dumps(payload))
    for path, message in ((evil, "Python objects other than tensors and plain data"),
                          (tmp_path / "evil_pickle.pt", "not a zip container")):
        for load in (load_checkpoint, model_from_checkpoint):
            with pytest.raises(CheckpointError, match=message) as e:
                load(path)
            assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert "posix.system" in str(e.value) or "not a zip" in str(e.value)
    assert not marker.exists()


def _state_of(cfg: ModelConfig) -> dict:
    return tiny_model(0, cfg).state_dict()


def _bad_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    ckpt, _ = tiny_checkpoint(2)
    good = checkpoint_bytes(ckpt)
    cases: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, message: str) -> None:
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        cases[name] = (path, message)

    def variant(name: str, message: str, **changes) -> None:
        body = {**ckpt, **changes}
        body = {k: v for k, v in body.items() if v is not _DROP}
        buf = io.BytesIO()
        torch.save(body, buf)
        put(name, buf.getvalue(), message)

    put("truncated", good[: len(good) // 2], "not a readable checkpoint")
    put("empty", b"", "not a readable checkpoint")
    put("random", bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)),
        "not a readable checkpoint")
    put("foreign_zip", _zip(**{"x/data.pkl": b"not a pickle"}), "not a readable checkpoint")
    put("network", lower(tiny_model(2)).to_bytes(), "not a readable checkpoint")
    variant("no_format", "is not a pynq-neuro checkpoint", format=_DROP)
    variant("new_version", "unsupported checkpoint version 2", version=2)
    variant("no_state", "missing or malformed state_dict", state_dict=_DROP)
    variant("no_config", "missing model_config", model_config=_DROP)
    variant("bad_config", "invalid model_config", model_config={**ckpt["model_config"],
                                                                 "wbits": 9})
    variant("unknown_field", "invalid model_config", model_config={**ckpt["model_config"],
                                                                    "depth": 3})
    variant("wrong_shapes", "does not fit the model_config .*size mismatch",
            state_dict=_state_of(ModelConfig("tdnn", (9, 6), (3, 3), (2, 2), wbits=2, abits=2)))
    variant("missing_key", "does not fit the model_config .*Missing key",
            state_dict={k: v for k, v in ckpt["state_dict"].items() if k != "norms.0.bias"})
    nan_state = dict(ckpt["state_dict"])
    nan_state["norms.1.weight"] = nan_state["norms.1.weight"].clone().fill_(float("inf"))
    variant("not_finite", "norms.1.weight holds values that are not finite", state_dict=nan_state)
    variant("metrics_list", "metrics must be a dict", metrics=[1, 2])
    return cases


_DROP = object()


def test_unusable_checkpoints_are_refused_in_one_line(tmp_path):
    cases = _bad_checkpoints(tmp_path)
    assert len(cases) == 15
    for name, (path, message) in cases.items():
        with pytest.raises(CheckpointError, match=message) as e:
            model_from_checkpoint(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value), name
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    os.mkfifo(tmp_path / "fifo.pt")
    for path in (tmp_path / "fifo.pt", tmp_path):
        with pytest.raises(CheckpointError, match="is not a regular file"):
            load_checkpoint(path)


# --------------------------------------------------------------------------- pairs and digests


def test_a_pair_records_the_checkpoint_digest_and_a_stale_network_is_refused(tmp_path):
    ckpt, model = tiny_checkpoint(3)
    out = tmp_path / "m.pt"
    npz = save_checkpoint_and_network(ckpt, out, model)
    assert npz == tmp_path / "m.npz"
    net = IntegerNetwork.load(npz)
    assert net.meta["checkpoint"] == "m.pt"
    assert net.meta[CHECKPOINT_DIGEST_KEY] == sha256_file(out, 1 << 30)
    assert same_network(net, lower(model, meta=net.meta))
    # a new checkpoint beside the old network (the pair save was interrupted in between)
    other, other_model = tiny_checkpoint(4)
    save_checkpoint(other, out)
    with pytest.raises(NetworkError, match=r"m.npz was written from another checkpoint than "
                                           r".*m.pt .*lower_checkpoint\(") as e:
        IntegerNetwork.load(npz)
    assert "\n" not in str(e.value)
    assert same_network(IntegerNetwork.load(npz, check_checkpoint=False), net)
    # the network alone, elsewhere, has nothing to be compared with
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "m.npz").write_bytes(npz.read_bytes())
    assert same_network(IntegerNetwork.load(tmp_path / "alone" / "m.npz"), net)
    # re-lowering the checkpoint writes a network that belongs to it again
    assert lower_checkpoint(out) == npz
    fresh = IntegerNetwork.load(npz)
    assert same_network(fresh, lower(other_model, meta=fresh.meta))
    # a float checkpoint has no integer form
    fckpt, fmodel = tiny_checkpoint(5, ModelConfig("tdnn", (8,), (3,), (2,)))
    assert save_checkpoint_and_network(fckpt, tmp_path / "f.pt", fmodel) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "f.pt", "m.npz", "m.pt"]
    with pytest.raises(ValueError, match="floating-point model"):
        lower_checkpoint(tmp_path / "f.pt")


def test_a_checkpoint_whose_network_cannot_be_made_is_kept(tmp_path, monkeypatch):
    import pynq_neuro.lower

    def broken(*args, **kwargs):
        raise NetworkError("thresholds exceed the accumulator range")

    monkeypatch.setattr(pynq_neuro.lower, "lower", broken)
    ckpt, model = tiny_checkpoint(14)
    with pytest.raises(ValueError, match=r"saved .*m.pt, but its integer network could not be "
                                         r"made: thresholds exceed"):
        save_checkpoint_and_network(ckpt, tmp_path / "m.pt", model)
    assert same_state(load_checkpoint(tmp_path / "m.pt")["state_dict"], model.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.parametrize("meta,message", [
    ({CHECKPOINT_DIGEST_KEY: "00" * 31, "checkpoint": "m.pt"}, "is not a SHA-256 digest"),
    ({CHECKPOINT_DIGEST_KEY: "AB" * 32, "checkpoint": "m.pt"}, "is not a SHA-256 digest"),
    ({CHECKPOINT_DIGEST_KEY: 5, "checkpoint": "m.pt"}, "is not a SHA-256 digest"),
    ({CHECKPOINT_DIGEST_KEY: "ab" * 32, "checkpoint": "../m.pt"}, "plain file name"),
    ({CHECKPOINT_DIGEST_KEY: "ab" * 32, "checkpoint": "/etc/passwd"}, "plain file name"),
    ({CHECKPOINT_DIGEST_KEY: "ab" * 32}, "plain file name"),
    ({CHECKPOINT_DIGEST_KEY: "ab" * 32, "checkpoint": "fifo.pt"}, "is not a regular file"),
])
def test_recorded_digests_must_be_well_formed(tmp_path, meta, message):
    os.mkfifo(tmp_path / "fifo.pt")
    (tmp_path / "m.pt").write_bytes(b"x")
    lower(tiny_model(6), meta=meta).save(tmp_path / "n.npz")
    with pytest.raises(NetworkError, match=message):
        IntegerNetwork.load(tmp_path / "n.npz")


# --------------------------------------------------------------------------- interruptions


class Faults:
    """Counts calls of the write primitives (``os.write``, ``os.fsync``, ``os.replace``) and
    raises ``KeyboardInterrupt`` at call ``k`` (a write first writes half of its bytes). Every
    write is short (at most ``CHUNK`` bytes), as the operating system may make it."""

    CHUNK = 4096

    def __init__(self, monkeypatch: pytest.MonkeyPatch, k: int) -> None:
        self.k, self.calls = k, 0
        for name in ("write", "fsync", "replace"):
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name, real):
        def primitive(*args):
            self.calls += 1
            if name == "write":
                fd, data = args
                data = memoryview(data)[: self.CHUNK]
                if self.calls == self.k:
                    real(fd, data[: len(data) // 2])
                    raise KeyboardInterrupt
                return real(fd, data)
            if self.calls == self.k:
                raise KeyboardInterrupt
            return real(*args)
        return primitive


def interrupt_everywhere(reset, action, check) -> int:
    """Run ``action`` once per write primitive call, interrupted at that call, then once to
    the end; ``check(interrupted)`` inspects the files after each run. Returns the number of
    interruption points."""
    k = 1
    while True:
        reset()
        with pytest.MonkeyPatch.context() as mp:
            Faults(mp, k)
            try:
                action()
                interrupted = False
            except KeyboardInterrupt:
                interrupted = True
        check(interrupted)
        if not interrupted:
            return k - 1
        k += 1


class PairState:
    """The old checkpoint/network pair at ``out`` and the checks after an interrupted save."""

    def __init__(self, out: Path) -> None:
        self.out, self.npz = out, out.with_suffix(".npz")
        self.old_pt, self.old_npz = out.read_bytes(), self.npz.read_bytes()
        self.seen: set[tuple[str, str]] = set()

    def reset(self) -> None:
        self.out.write_bytes(self.old_pt)
        self.npz.write_bytes(self.old_npz)

    def check(self, interrupted: bool) -> None:
        assert sorted(p.name for p in self.out.parent.iterdir()) == sorted(
            [self.out.name, self.npz.name]), "a temporary file was left behind"
        pt = "old" if self.out.read_bytes() == self.old_pt else "new"
        npz = "old" if self.npz.read_bytes() == self.old_npz else "new"
        if pt == "new":
            model_from_checkpoint(self.out)  # whole and usable
        if (pt, npz) == ("new", "old"):
            with pytest.raises(NetworkError, match="written from another checkpoint"):
                IntegerNetwork.load(self.npz)
        else:
            assert (pt, npz) != ("old", "new"), "the network was written before the checkpoint"
            net = IntegerNetwork.load(self.npz)
            assert net.meta[CHECKPOINT_DIGEST_KEY] == sha256_file(self.out, 1 << 30)
        assert interrupted or (pt, npz) == ("new", "new")
        self.seen.add((pt, npz))


def test_interrupted_pair_saves_leave_the_old_pair_or_the_new_one(tmp_path):
    old, old_model = tiny_checkpoint(7)
    new, new_model = tiny_checkpoint(8)
    out = tmp_path / "m.pt"
    save_checkpoint_and_network(old, out, old_model)
    state = PairState(out)
    points = interrupt_everywhere(state.reset,
                                  lambda: save_checkpoint_and_network(new, out, new_model),
                                  state.check)
    assert points >= 8
    assert state.seen == {("old", "old"), ("new", "old"), ("new", "new")}
    assert same_state(load_checkpoint(out)["state_dict"], new_model.state_dict())


def test_interrupted_network_saves_leave_the_old_network_or_the_new_one(tmp_path):
    a, b = lower(tiny_model(9)), lower(tiny_model(10))
    path = tmp_path / "n.npz"
    a.save(path)
    old = path.read_bytes()
    seen = []

    def check(interrupted: bool) -> None:
        assert [p.name for p in tmp_path.iterdir()] == ["n.npz"]
        net = IntegerNetwork.load(path)
        seen.append("a" if same_network(net, a) else "b")
        assert seen[-1] == "a" or same_network(net, b)
        assert interrupted or seen[-1] == "b"

    points = interrupt_everywhere(lambda: path.write_bytes(old), lambda: b.save(path), check)
    assert points >= 4 and set(seen) == {"a", "b"}


def _needs_mnist() -> None:
    if not train_split_available():
        pytest.skip("MNIST training split not available")


def test_interrupted_training_saves_leave_the_old_pair_or_the_new_one(tmp_path):
    _needs_mnist()
    out = tmp_path / "m.pt"
    cfg = TrainConfig(epochs=1, train_images=64, threads=1)
    train(TINY, TrainConfig(epochs=1, train_images=64, threads=1, seed=1), output=out,
          log=lambda s: None, progress=False)
    state = PairState(out)
    points = interrupt_everywhere(
        state.reset, lambda: train(TINY, cfg, output=out, log=lambda s: None, progress=False),
        state.check)
    assert points >= 8 and ("new", "old") in state.seen


def test_interrupted_compress_saves_leave_the_old_pair_or_the_new_one(tmp_path):
    _needs_mnist()
    out = tmp_path / "m.pt"
    source, model = tiny_checkpoint(11)
    save_checkpoint_and_network(source, out, model)
    state = PairState(out)
    points = interrupt_everywhere(
        state.reset,
        lambda: compress(source, [{"pass": "prune", "sparsity": 0.5}], finetune_epochs=0,
                         train_images=64, threads=1, output=out, log=lambda s: None,
                         progress=False),
        state.check)
    assert points >= 8 and ("new", "old") in state.seen
    assert model_from_checkpoint(out).synapses() < model.synapses()


# --------------------------------------------------------------------------- corrupted files


def _reference_network() -> tuple[IntegerNetwork, bytes]:
    model = tiny_model(12)
    model.layers[0].set_mask(torch.rand(model.layers[0].weight.shape,
                                        generator=torch.Generator().manual_seed(0)) > 0.5)
    net = lower(model, meta={"name": "fuzz"})
    return net, net.to_bytes()


NET, NET_BYTES = _reference_network()
CKPT_BYTES = checkpoint_bytes(tiny_checkpoint(13)[0])
CKPT = checkpoint_from_bytes(CKPT_BYTES)


@st.composite
def corrupted(draw, data: bytes) -> bytes:
    n = len(data)
    kind = draw(st.sampled_from(["flip", "truncate", "append", "splice"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, n - 1))]
    if kind == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    if kind == "splice":
        at = draw(st.integers(0, n))
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    out = bytearray(data)
    # anywhere, but often in the headers at the start or the central directory at the end
    where = st.one_of(st.integers(0, n - 1), st.integers(max(0, n - 400), n - 1),
                      st.integers(0, min(n, 200) - 1))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(where)
        out[i] = (out[i] + draw(st.integers(1, 255))) % 256
    return bytes(out)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted(NET_BYTES))
def test_corrupted_network_files_are_refused_or_load_identically(data):
    try:
        net = IntegerNetwork.from_bytes(data, "fuzz.npz")
    except NetworkError as e:
        assert "\n" not in str(e)
        return
    assert same_network(net, NET)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted(CKPT_BYTES))
def test_corrupted_checkpoint_files_are_refused_or_load_identically(data):
    try:
        ckpt = checkpoint_from_bytes(data, "fuzz.pt")
        model = model_from_checkpoint(ckpt, "fuzz.pt")
    except CheckpointError as e:
        assert "\n" not in str(e)
        return
    assert {k: v for k, v in ckpt.items() if k != "state_dict"} == \
        {k: v for k, v in CKPT.items() if k != "state_dict"}
    assert same_state(ckpt["state_dict"], CKPT["state_dict"])
    assert same_state(model.state_dict(), CKPT["state_dict"])


def test_the_fuzzed_files_are_valid_to_begin_with(tmp_path):
    (tmp_path / "n.npz").write_bytes(NET_BYTES)
    assert same_network(IntegerNetwork.load(tmp_path / "n.npz"), NET)
    (tmp_path / "m.pt").write_bytes(CKPT_BYTES)
    assert same_state(load_checkpoint(tmp_path / "m.pt")["state_dict"], CKPT["state_dict"])
