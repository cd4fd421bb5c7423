"""Tests for pynq_neuro.data: IDX reading/writing and MNIST loading."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from pynq_neuro.data import (
    MNIST_FILES,
    DataError,
    bundled_test_split_dir,
    load_mnist,
    mnist_cache_dir,
    read_idx,
    sha256_of_idx,
    write_idx,
)
from pynq_neuro.data import mnist as mnist_mod

# Captured before any test isolates the environment.
SHARED_DIR = os.environ.get("PYNQ_NEURO_DATA")
TEST_FILES = MNIST_FILES["test"]
TRAIN_FILES = MNIST_FILES["train"]


def _dir_with(files, *dirs) -> Path | None:
    """First directory among ``dirs`` holding every file of ``files``."""
    for d in dirs:
        if d and all(mnist_mod._find(Path(d), f) for f in files):
            return Path(d)
    return None


TRAIN_DIR = _dir_with(TRAIN_FILES, SHARED_DIR, mnist_cache_dir())
needs_train = pytest.mark.skipif(TRAIN_DIR is None, reason="MNIST train files not available")


@pytest.fixture
def isolated(monkeypatch, tmp_path) -> Path:
    """No $PYNQ_NEURO_DATA, an empty cache, no mirrors, a fresh in-process cache."""
    cache_root = tmp_path / "cache_root"
    monkeypatch.delenv("PYNQ_NEURO_DATA", raising=False)
    monkeypatch.setenv("PYNQ_NEURO_CACHE", str(cache_root))
    monkeypatch.setattr(mnist_mod, "MIRRORS", [])
    mnist_mod.clear_cache()
    yield cache_root / "mnist"
    mnist_mod.clear_cache()


@pytest.fixture
def no_bundle(monkeypatch, tmp_path, isolated) -> Path:
    """Like ``isolated`` but the bundled test split is hidden, to force a download."""
    empty = tmp_path / "no_bundle"
    empty.mkdir()
    monkeypatch.setattr(mnist_mod, "bundled_test_split_dir", lambda: empty)
    return isolated


@pytest.fixture
def good_mirror(tmp_path) -> Path:
    """A directory serving the genuine test-split .gz files."""
    mirror = tmp_path / "good_mirror"
    mirror.mkdir()
    for f in TEST_FILES:
        shutil.copyfile(bundled_test_split_dir() / f"{f.name}.gz", mirror / f"{f.name}.gz")
    return mirror


def _bad_mirror(root: Path, name: str) -> Path:
    """A directory serving corrupt test-split files of three kinds."""
    mirror = root / name
    mirror.mkdir()
    images, labels = TEST_FILES
    good = (bundled_test_split_dir() / f"{images.name}.gz").read_bytes()
    (mirror / f"{images.name}.gz").write_bytes(good[: len(good) // 2])  # truncated gzip
    # A well-formed IDX file with the right shape but wrong content.
    write_idx(mirror / f"{labels.name}.gz", np.zeros(labels.shape, np.uint8), compress=True)
    return mirror


def _url(directory: Path) -> str:
    return directory.as_uri() + "/"


def _files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _check_test_split(images: np.ndarray, labels: np.ndarray) -> None:
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


# ------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("compress", [False, True])
def test_roundtrip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = rng.integers(-100, 100, size=(3, 4, 5)).astype(dtype)
    if array.dtype.kind == "f":
        array += 0.25
    path = tmp_path / "a.idx"
    digest = write_idx(path, array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    out = read_idx(path, expected_sha256=digest, expected_shape=(3, 4, 5))
    np.testing.assert_array_equal(out, array)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.flags.c_contiguous and out.flags.owndata and out.flags.writeable
    assert sha256_of_idx(path) == digest


@pytest.mark.parametrize("shape", [(7,), (2, 3), (1, 2, 3, 4)])
def test_roundtrip_ndim(tmp_path, shape):
    array = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    write_idx(tmp_path / "a", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)


def test_gzip_detected_by_magic_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "plain.gz", array, compress=False)
    write_idx(tmp_path / "packed.idx", array, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.idx"), array)


def test_big_endian_on_disk(tmp_path):
    write_idx(tmp_path / "a", np.array([1, 258], dtype=np.int16))
    assert (tmp_path / "a").read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 2])


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="5-D"):
        write_idx(tmp_path / "a", np.zeros((1,) * 5, dtype=np.uint8))
    assert not (tmp_path / "a").exists()


def _raw(tmp_path, data: bytes) -> Path:
    path = tmp_path / "x.idx"
    path.write_bytes(data)
    return path


def test_bad_magic(tmp_path):
    with pytest.raises(DataError, match="expected 0000"):
        read_idx(_raw(tmp_path, b"\x01\x00\x08\x01" + struct.pack(">I", 0)))


def test_too_short(tmp_path):
    with pytest.raises(DataError, match="2 bytes"):
        read_idx(_raw(tmp_path, b"\x00\x00"))


def test_wrong_type_code(tmp_path):
    with pytest.raises(DataError, match="type code 0x0A"):
        read_idx(_raw(tmp_path, b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00"))


@pytest.mark.parametrize("ndim", [0, 5])
def test_bad_ndim(tmp_path, ndim):
    data = bytes([0, 0, 8, ndim]) + struct.pack(f">{ndim}I", *([1] * ndim)) + b"\x00"
    with pytest.raises(DataError, match=f"declares {ndim} dimensions"):
        read_idx(_raw(tmp_path, data))


def test_truncated_header(tmp_path):
    with pytest.raises(DataError, match="truncated inside its header"):
        read_idx(_raw(tmp_path, b"\x00\x00\x08\x02" + struct.pack(">I", 3)))


def test_truncated_payload(tmp_path):
    path = tmp_path / "a"
    write_idx(path, np.arange(12, dtype=np.int32).reshape(3, 4))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"truncated.*\(48 bytes\) but 47 bytes"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "a"
    write_idx(path, np.arange(6, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_trailing_bytes_inside_gzip(tmp_path):
    path = tmp_path / "a"
    write_idx(path, np.arange(6, dtype=np.uint8))
    path.write_bytes(gzip.compress(path.read_bytes() + b"junk"))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "a.gz"
    write_idx(path, np.arange(1000, dtype=np.float64), compress=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        sha256_of_idx(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "a.gz"
    write_idx(path, np.arange(1000, dtype=np.int32), compress=True)
    data = bytearray(path.read_bytes())
    for i in range(20, 40):  # inside the deflate stream
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="Cannot read IDX file"):
        read_idx(tmp_path / "nope")


def test_checksum_mismatch(tmp_path):
    path = tmp_path / "a"
    actual = write_idx(path, np.arange(5, dtype=np.uint8))
    wrong = "0" * 64
    with pytest.raises(DataError) as info:
        read_idx(path, expected_sha256=wrong)
    message = str(info.value)
    assert str(path) in message and actual in message and wrong in message


def test_checksum_is_of_uncompressed_content(tmp_path):
    array = np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / "raw", array)
    write_idx(tmp_path / "gz", array, compress=True)
    expected = hashlib.sha256((tmp_path / "raw").read_bytes()).hexdigest()
    assert sha256_of_idx(tmp_path / "gz") == expected
    assert read_idx(tmp_path / "gz", expected_sha256=expected.upper()).shape == (5,)


def test_shape_mismatch(tmp_path):
    write_idx(tmp_path / "a", np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds shape \(2, 3\), expected \(3, 2\)"):
        read_idx(tmp_path / "a", expected_shape=(3, 2))


# ----------------------------------------------------------------------- MNIST


def test_digest_table_matches_shared_sums():
    digests = {f.name: f.sha256 for files in MNIST_FILES.values() for f in files}
    assert len(digests) == 4 and all(len(d) == 64 for d in digests.values())
    sums = Path(SHARED_DIR or "/nonexistent") / "SHA256SUMS.uncompressed"
    if not sums.is_file():
        pytest.skip("SHA256SUMS.uncompressed not available")
    listed = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line.strip())
    assert listed == digests


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


def test_bundled_test_split(isolated):
    for f in TEST_FILES:
        assert sha256_of_idx(bundled_test_split_dir() / f"{f.name}.gz") == f.sha256
    images, labels = load_mnist("test", download=False)
    _check_test_split(images, labels)
    assert not isolated.exists()  # nothing was cached or downloaded


def test_load_from_explicit_dir(isolated):
    source = Path(SHARED_DIR) if SHARED_DIR else bundled_test_split_dir()
    images, labels = load_mnist("test", data_dir=source, download=False)
    _check_test_split(images, labels)


def test_load_via_env_var(monkeypatch, isolated):
    source = Path(SHARED_DIR) if SHARED_DIR else bundled_test_split_dir()
    monkeypatch.setenv("PYNQ_NEURO_DATA", str(source))
    _check_test_split(*load_mnist("test", download=False))


def test_accepts_raw_and_dotted_names(tmp_path, isolated):
    images, labels = TEST_FILES
    folder = tmp_path / "variants"
    folder.mkdir()
    raw = gzip.decompress((bundled_test_split_dir() / f"{images.name}.gz").read_bytes())
    (folder / "t10k-images.idx3-ubyte").write_bytes(raw)
    shutil.copyfile(
        bundled_test_split_dir() / f"{labels.name}.gz", folder / "t10k-labels.idx1-ubyte.gz"
    )
    _check_test_split(*load_mnist("test", data_dir=folder))


def test_explicit_dir_missing_files(tmp_path, isolated):
    folder = tmp_path / "partial"
    folder.mkdir()
    shutil.copyfile(
        bundled_test_split_dir() / "t10k-images-idx3-ubyte.gz",
        folder / "t10k-images-idx3-ubyte.gz",
    )
    with pytest.raises(DataError) as info:
        load_mnist("test", data_dir=folder)
    message = str(info.value)
    assert str(folder) in message and "t10k-labels-idx1-ubyte" in message
    assert "t10k-images-idx3-ubyte[" not in message  # only the missing file is named


def test_explicit_dir_does_not_exist(tmp_path, isolated):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist("test", data_dir=tmp_path / "nowhere")


def test_env_dir_is_strict(monkeypatch, tmp_path, isolated):
    monkeypatch.setenv("PYNQ_NEURO_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"\$PYNQ_NEURO_DATA"):
        load_mnist("test")  # the bundled copy is not used when the variable is set


def test_explicit_dir_corrupt_file(tmp_path, isolated):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    images, labels = TEST_FILES
    shutil.copyfile(bundled_test_split_dir() / f"{images.name}.gz", folder / f"{images.name}.gz")
    write_idx(folder / labels.name, np.ones(labels.shape, np.uint8))
    with pytest.raises(DataError, match="Checksum mismatch") as info:
        load_mnist("test", data_dir=folder)
    assert labels.name in str(info.value) and labels.sha256 in str(info.value)


def test_offline_with_nothing(no_bundle):
    with pytest.raises(DataError) as info:
        load_mnist("test", download=False)
    message = str(info.value)
    assert "PYNQ_NEURO_DATA" in message and "download=False" in message
    assert str(no_bundle) in message  # tells where to put the files
    with pytest.raises(DataError, match="PYNQ_NEURO_DATA"):
        load_mnist("train", download=False)


def test_download_fills_cache_then_reuses_it(monkeypatch, no_bundle, good_mirror):
    monkeypatch.setattr(mnist_mod, "MIRRORS", [_url(good_mirror)])
    calls: list[str] = []
    real_urlopen = mnist_mod.urllib.request.urlopen

    def counting_urlopen(request, *args, **kwargs):
        calls.append(request.full_url)
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(mnist_mod.urllib.request, "urlopen", counting_urlopen)
    _check_test_split(*load_mnist("test"))
    assert len(calls) == 2
    assert _files_in(no_bundle) == sorted(f"{f.name}.gz" for f in TEST_FILES)
    for f in TEST_FILES:
        assert sha256_of_idx(no_bundle / f"{f.name}.gz") == f.sha256

    mnist_mod.clear_cache()
    monkeypatch.setattr(mnist_mod, "MIRRORS", [])
    _check_test_split(*load_mnist("test", download=True))
    assert len(calls) == 2  # served from the cache, no new requests


def test_corrupt_mirror_then_good_mirror(monkeypatch, tmp_path, no_bundle, good_mirror):
    bad = _bad_mirror(tmp_path, "bad_mirror")
    monkeypatch.setattr(mnist_mod, "MIRRORS", [_url(bad), _url(good_mirror)])
    _check_test_split(*load_mnist("test"))
    assert _files_in(no_bundle) == sorted(f"{f.name}.gz" for f in TEST_FILES)
    for f in TEST_FILES:
        assert sha256_of_idx(no_bundle / f"{f.name}.gz") == f.sha256


def test_all_mirrors_corrupt(monkeypatch, tmp_path, no_bundle):
    bad1 = _bad_mirror(tmp_path, "bad1")
    bad2 = _bad_mirror(tmp_path, "bad2")
    missing = tmp_path / "empty_mirror"
    monkeypatch.setattr(mnist_mod, "MIRRORS", [_url(bad1), _url(bad2), _url(missing)])
    with pytest.raises(DataError) as info:
        load_mnist("test")
    message = str(info.value)
    assert _url(bad1) in message and _url(bad2) in message and _url(missing) in message
    assert "PYNQ_NEURO_DATA" in message
    assert _files_in(no_bundle) == []  # no partial or corrupt file left behind


def test_arrays_are_cached_and_read_only(isolated):
    images1, labels1 = load_mnist("test")
    images2, _ = load_mnist("test")
    assert np.shares_memory(images1, images2)
    assert not images1.flags.writeable and not labels1.flags.writeable
    with pytest.raises(ValueError):
        images1[0, 0, 0] = 1
    with pytest.raises(ValueError):
        images1.flags.writeable = True
    copy = images1.copy()
    copy[0, 0, 0] = 255
    assert load_mnist("test")[0][0, 0, 0] == 0


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PYNQ_NEURO_CACHE", str(tmp_path / "c"))
    assert mnist_cache_dir() == tmp_path / "c" / "mnist"
    monkeypatch.delenv("PYNQ_NEURO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert mnist_cache_dir() == tmp_path / "x" / "pynq-neuro" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert mnist_cache_dir() == Path.home() / ".cache" / "pynq-neuro" / "mnist"


@needs_train
def test_train_split(isolated):
    images, labels = load_mnist("train", data_dir=TRAIN_DIR, download=False)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) == set(range(10))
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
