"""Datasets of 28x28 grayscale images with labels (numpy + standard library only).

A dataset is named (the registry: ``mnist``, the default, ``fashion-mnist`` and ``kmnist``) or
given as a path: a folder of IDX files (raw or gzip, named like the MNIST files) or an ``.npz``
holding ``images`` and ``labels``. :func:`load_dataset` returns a :class:`Dataset`: the arrays,
a name and the SHA-256 *digest* of the split (see :func:`split_digest`).

A network records the dataset it was made with (:func:`record_of`: name and digest of the test
split) in its checkpoint, integer network and artifact; :func:`data_for` then picks the data to
evaluate, compile or verify it with: the recorded dataset when none is given, the given one if
its digest equals the record, and other data only when the caller says so (``other_data``),
with a warning. A file without a record is treated as MNIST, and that is said once.

Named datasets other than MNIST are kept in the user cache (``<cache>/<name>``, see
:func:`~pynq_neuro.data.mnist.mnist_cache_dir`) and downloaded on first use: each gzip file is
verified against its published SHA-256 before it is renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from ..fileio import UnsafeFileError, check_zip, read_regular
from .idx import DataError, _encode, read_idx
from .mnist import MAX_DOWNLOAD_BYTES, MNIST_FILES, _expand
from .mnist import _fetch as mnist_fetch
from .mnist import download_verified, load_mnist, mnist_cache_dir

__all__ = [
    "DATASETS", "DEFAULT_DATASET", "Dataset", "DatasetSpec", "MNIST_RECORD", "add_data_options",
    "check_labels", "check_record", "data_for", "data_options", "dataset_cache_dir", "download",
    "images_digest", "load_dataset", "load_path", "recommended_max_shift", "record_of",
    "say_once", "split_digest", "warn",
]

PathLike = Union[str, "os.PathLike[str]"]

IMAGE_SHAPE = (28, 28)
SPLITS = ("train", "test")
DEFAULT_DATASET = "mnist"
MAX_NPZ_BYTES = 512 << 20
NPZ_KEYS = {"test": (("images", "labels"), ("test_images", "test_labels")),
            "train": (("train_images", "train_labels"),)}
# File names of a split in an IDX folder (the MNIST names), before raw/gzip/dotted variants.
SPLIT_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
RECORD_KEYS = {"name": str, "sha256": str, "source": str, "train_sha256": str}


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: where it is published, the SHA-256 of each published gzip file and
    the training settings recommended for it.

    ``max_shift``: the random translation (pixels) that training applies by default. Shifted
    handwriting is still the same character, so the digit and character sets take 2; the
    article images of Fashion-MNIST fill most of the frame, a shift moves part of them out of
    it, and they take 0.
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    gz_sha256: dict[str, str]
    classes: tuple[str, ...]
    sizes: tuple[int, int] = (60000, 10000)  # train, test
    max_shift: int = 0


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", "MNIST handwritten digits",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",), {},  # verified by raw content
        tuple(str(d) for d in range(10)), max_shift=2),
    # gzip digests as published with torchvision's dataset definitions
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", "Fashion-MNIST (Zalando article images)",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train-images-idx3-ubyte.gz":
             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
         "train-labels-idx1-ubyte.gz":
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
         "t10k-images-idx3-ubyte.gz":
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
         "t10k-labels-idx1-ubyte.gz":
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot")),
    "kmnist": DatasetSpec(
        "kmnist", "Kuzushiji-MNIST (cursive Japanese characters)",
        ("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        {"train-images-idx3-ubyte.gz":
             "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
         "train-labels-idx1-ubyte.gz":
             "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
         "t10k-images-idx3-ubyte.gz":
             "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
         "t10k-labels-idx1-ubyte.gz":
             "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"},
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), max_shift=2),
}
# augmentation of data that is no registry dataset (a folder or .npz of the user's): none,
# since nothing says that a shifted image keeps its class
UNKNOWN_MAX_SHIFT = 0


def recommended_max_shift(name: str | None) -> int:
    """The training translation (pixels) recommended for the dataset ``name``: the registry
    entry's ``max_shift``, :data:`UNKNOWN_MAX_SHIFT` for any other data."""
    spec = DATASETS.get(name) if name is not None else None
    return UNKNOWN_MAX_SHIFT if spec is None else spec.max_shift


def sample_indices(total: int, n: int) -> np.ndarray:
    """Indices of ``min(n, total)`` items spread evenly over ``total`` (ascending)."""
    if n < 1:
        raise ValueError(f"a sample needs at least one item, got {n}")
    if n >= total:
        return np.arange(total)
    return np.arange(n, dtype=np.int64) * total // n


def split_digest(images_sha256: str, labels_sha256: str) -> str:
    """Digest of a split: SHA-256 of the hex SHA-256s of its images and labels, each of the
    uncompressed IDX form (uint8; for an MNIST file, its uncompressed content)."""
    return hashlib.sha256((images_sha256 + labels_sha256).encode()).hexdigest()


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(_encode(np.ascontiguousarray(array, np.uint8))).hexdigest()


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of the uncompressed IDX form of uint8 images (the sample digest of a compile)."""
    return _array_sha256(images)


MNIST_DIGESTS = {s: split_digest(MNIST_FILES[s][0].sha256, MNIST_FILES[s][1].sha256)
                 for s in SPLITS}
MNIST_RECORD = {"name": "mnist", "sha256": MNIST_DIGESTS["test"]}


@dataclass(frozen=True)
class Dataset:
    """One split of a dataset: uint8 images (N, 28, 28), uint8 labels (N,), its name, the
    digest of the split (:func:`split_digest`) and where it was read from (a path, or the
    registry name)."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    sha256: str
    source: str

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int) -> Dataset:
        """The first ``n`` images and labels; ``sha256`` stays the digest of the whole split
        they were taken from."""
        return Dataset(self.name, self.split, self.images[:n], self.labels[:n], self.sha256,
                       self.source)

    def sample(self, n: int) -> Dataset:
        """``n`` images and labels spread evenly over the split (indices ``i * len // n``);
        all of them when ``n`` is the size or more. A sample from the whole split rather than
        its head: MNIST's test split has its cleaner half first, whose digits give fewer
        events. ``sha256`` stays the digest of the whole split."""
        idx = sample_indices(len(self.images), n)
        return Dataset(self.name, self.split, self.images[idx], self.labels[idx], self.sha256,
                       self.source)

    def record(self) -> dict[str, str]:
        """What a network made with this data records (see :func:`check_record`)."""
        rec = {"name": self.name, "sha256": self.sha256}
        if self.source != self.name:
            rec["source"] = self.source
        return rec

    def describe(self) -> str:
        return f"'{self.name}' ({self.source}, sha256 {self.sha256[:12]})" \
            if self.source != self.name else f"'{self.name}' (sha256 {self.sha256[:12]})"


# ------------------------------------------------------------------------------------ checks


def _checked(images: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Refuse anything but uint8 images (N >= 1, 28, 28) with N uint8 labels."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{where}: images must be uint8 of shape (N, 28, 28), got "
                        f"{images.dtype} {images.shape}")
    if len(images) < 1:
        raise DataError(f"{where}: holds no images")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels must be a 1-D integer array, got {labels.dtype} "
                        f"{labels.shape}")
    if len(labels) != len(images):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() > 255:
        raise DataError(f"{where}: labels must be class numbers 0..255, found "
                        f"{int(labels.min())}..{int(labels.max())}")
    return images, labels.astype(np.uint8, copy=False)


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Refuse labels that are no class of a network with ``num_classes`` outputs."""
    if len(labels) and int(labels.max()) >= num_classes:
        raise DataError(f"{where}: label {int(labels.max())} is no class of a network with "
                        f"{num_classes} outputs")


def check_record(rec: Any, where: str = "dataset record") -> dict[str, str]:
    """Refuse a dataset record unless it is ``{"name": str, "sha256": 64 hex digits}`` with
    optional ``source`` (str) and ``train_sha256`` (64 hex digits) and nothing else."""
    if type(rec) is not dict:
        raise DataError(f"{where} must be an object, got {type(rec).__name__}")
    missing = [k for k in ("name", "sha256") if k not in rec]
    unknown = sorted(k for k in rec if k not in RECORD_KEYS)
    if missing or unknown:
        raise DataError(f"{where}: " + "; ".join(
            ([f"lacks {', '.join(missing)}"] if missing else []) +
            ([f"unknown fields {', '.join(map(str, unknown))}"] if unknown else [])))
    for k, v in rec.items():
        if type(v) is not str or not v:
            raise DataError(f"{where}: {k} must be a non-empty string")
        if k.endswith("sha256") and not _is_hex64(v):
            raise DataError(f"{where}: {k} is not a SHA-256 (64 lowercase hex digits)")
    return rec


def _is_hex64(v: str) -> bool:
    return len(v) == 64 and all(c in "0123456789abcdef" for c in v)


# ------------------------------------------------------------------------------------ folders


def _names(stem: str, split: str) -> list[str]:
    stems = [stem] + ([stem.replace("t10k-", "test-", 1)] if split == "test" else [])
    out = []
    for s in stems:
        dotted = s.replace("-idx", ".idx", 1)
        out += [s, f"{s}.gz", dotted, f"{dotted}.gz"]
    return out


def _find_split(directory: Path, split: str) -> list[Path]:
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise DataError(f"data folder '{directory}' {what}")
    found = []
    for stem in SPLIT_FILES[split]:
        path = next((directory / n for n in _names(stem, split)
                     if (directory / n).is_file()), None)
        if path is None:
            raise DataError(
                f"no {split} {stem.split('-')[1]} in '{directory}': expected one of "
                f"{', '.join(_names(stem, split))} (IDX, raw or gzip)")
        found.append(path)
    return found


def _identify(paths: list[Path], split: str, digest: str, fallback: str) -> str:
    """The registry name of files whose content or published gzip digest is known."""
    if digest == MNIST_DIGESTS[split]:
        return "mnist"
    if all(p.suffix == ".gz" for p in paths):
        try:
            got = [hashlib.sha256(read_regular(p, MAX_DOWNLOAD_BYTES)).hexdigest() for p in paths]
        except (OSError, UnsafeFileError):
            return fallback
        for spec in DATASETS.values():
            want = [spec.gz_sha256.get(f"{stem}.gz") for stem in SPLIT_FILES[split]]
            if got == want:
                return spec.name
    return fallback


def _local_name(path: Path) -> str:
    """Name of data at ``path`` that is no registry dataset: the file or folder name, marked
    when it would read as a registry name."""
    stem = path.resolve().stem or "data"
    return f"{stem}-local" if stem in DATASETS else stem


def _load_folder(directory: Path, split: str, name: str | None = None) -> Dataset:
    paths = _find_split(directory, split)
    images = read_idx(paths[0])
    labels = read_idx(paths[1])
    images, labels = _checked(images, labels, str(directory))
    digest = split_digest(_array_sha256(images), _array_sha256(labels))
    name = name or _identify(paths, split, digest, _local_name(directory))
    return Dataset(name, split, images, labels, digest, str(directory.resolve()))


def _load_npz(path: Path, split: str) -> Dataset:
    try:
        data = read_regular(path, MAX_NPZ_BYTES)
        check_zip(data, 16, 4 * MAX_NPZ_BYTES)
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"data file '{path}' does not exist") from None
    except (OSError, UnsafeFileError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"'{path}' is not a readable .npz of images and labels "
                        f"({getattr(e, 'strerror', None) or e})") from None
    known = {k for pairs in NPZ_KEYS.values() for pair in pairs for k in pair}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise DataError(f"'{path}': unknown arrays {', '.join(unknown)}; an image .npz holds "
                        f"images and labels (test split), optionally train_images and "
                        f"train_labels")
    pair = next((p for p in NPZ_KEYS[split] if p[0] in arrays and p[1] in arrays), None)
    if pair is None:
        want = " or ".join("+".join(p) for p in NPZ_KEYS[split])
        raise DataError(f"'{path}' has no {split} split: it needs the arrays {want}")
    images, labels = _checked(arrays[pair[0]], arrays[pair[1]], str(path))
    digest = split_digest(_array_sha256(images), _array_sha256(labels))
    name = "mnist" if digest == MNIST_DIGESTS[split] else _local_name(path)
    return Dataset(name, split, images, labels, digest, str(path.resolve()))


def load_path(path: PathLike, split: str = "test") -> Dataset:
    """A split from a folder of IDX files or an ``.npz`` (see the module docstring)."""
    _split(split)
    p = _expand(path, "--data")
    if p.is_file() or p.suffix == ".npz":
        return _load_npz(p, split)
    return _load_folder(p, split)


# ---------------------------------------------------------------------------------- registry


def dataset_cache_dir(name: str) -> Path:
    """Cache folder of a named dataset (``mnist_cache_dir()`` for MNIST)."""
    return mnist_cache_dir().parent / name


_fetch = mnist_fetch  # the one downloader (size limit, timeout, fsync)


def download(spec: DatasetSpec, filename: str, folder: Path) -> Path:
    """Download ``filename`` (a ``.gz``) of ``spec`` into ``folder``: each mirror's copy goes to
    a temporary file that must match the published SHA-256 before it is renamed into place
    (then the folder is synced). Raises :class:`DataError` listing every failed mirror."""
    want = spec.gz_sha256.get(filename)
    if want is None:
        raise DataError(f"{spec.name}: no published SHA-256 for {filename}; not downloading it")

    def check(path: Path) -> None:
        got = hashlib.sha256(read_regular(path, MAX_DOWNLOAD_BYTES)).hexdigest()
        if got != want:
            raise DataError(f"SHA-256 {got[:16]}..., published {want[:16]}...")

    return download_verified([m.rstrip("/") + "/" + filename for m in spec.mirrors], folder,
                             filename, check, what=f"{spec.name} {filename}",
                             fetch=lambda url, dest: _fetch(url, dest))


def _load_named(name: str, split: str, download_missing: bool) -> Dataset:
    if name == "mnist":
        images, labels = load_mnist(split, download=download_missing)
        return Dataset("mnist", split, images, labels, MNIST_DIGESTS[split], "mnist")
    spec = DATASETS[name]
    folder = dataset_cache_dir(name)
    arrays = []
    for stem in SPLIT_FILES[split]:
        gz = folder / f"{stem}.gz"
        if not gz.is_file():
            if not download_missing:
                raise DataError(f"{name}: {gz.name} is not in the cache '{folder}' and "
                                f"downloads are off; put the file there or pass --data DIR")
            download(spec, gz.name, folder)
        try:
            got = hashlib.sha256(read_regular(gz, MAX_DOWNLOAD_BYTES)).hexdigest()
        except (OSError, UnsafeFileError) as e:
            raise DataError(f"cannot read '{gz}': {getattr(e, 'strerror', None) or e}") from None
        if got != spec.gz_sha256[gz.name]:
            raise DataError(f"'{gz}' is not the published {name} file (SHA-256 {got[:16]}..., "
                            f"published {spec.gz_sha256[gz.name][:16]}...); delete it to "
                            f"download it again")
        arrays.append(read_idx(gz))
    images, labels = _checked(arrays[0], arrays[1], str(folder))
    want = spec.sizes[SPLITS.index(split)]
    if len(images) != want:
        raise DataError(f"{name}: the {split} split in '{folder}' has {len(images)} images, "
                        f"expected {want}")
    digest = split_digest(_array_sha256(images), _array_sha256(labels))
    return Dataset(name, split, images, labels, digest, name)


def _split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def load_dataset(name: str | None = None, split: str = "test", *, path: PathLike | None = None,
                 download: bool = True) -> Dataset:
    """One split of a named dataset (default ``mnist``) or of the data at ``path`` (a folder of
    IDX files or an ``.npz``); not both. Raises :class:`DataError` for missing or invalid
    data, ``ValueError`` for an unknown name or split."""
    _split(split)
    if path is not None:
        if name is not None:
            raise ValueError("give a dataset name or a data path, not both")
        return load_path(path, split)
    name = DEFAULT_DATASET if name is None else name
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (or pass a "
                         f"folder of IDX files or an .npz with --data)")
    return _load_named(name, split, download)


# ------------------------------------------------------------------ the dataset of a network

_SAID: set[str] = set()


def warn(message: str) -> None:
    """A warning on standard error (the default ``log`` of :func:`data_for`)."""
    print(f"pynq-neuro: warning: {message}", file=sys.stderr)


def say_once(message: str, log: Callable[[str], None] = warn) -> None:
    """``log(message)`` the first time this process says it."""
    if message not in _SAID:
        _SAID.add(message)
        log(message)


def record_of(rec: Any, what: str, log: Callable[[str], None] = warn) -> dict[str, str]:
    """The checked dataset record ``rec`` of a network; ``None`` (a file from before datasets
    were recorded) means MNIST, which is said once per ``what``."""
    if rec is None:
        say_once(f"{what} records no dataset; treating it as MNIST", log)
        return dict(MNIST_RECORD)
    return check_record(rec, f"{what}: dataset record")


def data_for(record: dict[str, str], what: str, *, name: str | None = None,
             path: PathLike | None = None, other_data: bool = False, split: str = "test",
             log: Callable[[str], None] = warn) -> Dataset:
    """The data to run a network on, given its dataset ``record`` (see :func:`record_of`).

    Nothing given: the recorded dataset (by name, else from its recorded source), whose digest
    must equal the record's. Given data (``name`` or ``path``) must have the recorded digest,
    unless ``other_data``: then it is used and ``log`` warns. ``what`` names the network in
    messages. Raises :class:`DataError`."""
    rec_name, rec_sha = record["name"], record["sha256"]
    recorded = f"'{rec_name}' (sha256 {rec_sha[:12]})"
    if name is None and path is None:
        if rec_name in DATASETS:
            ds = load_dataset(rec_name, split)
        elif "source" in record and os.path.exists(record["source"]):
            ds = load_path(record["source"], split)
        else:
            where = f" from {record['source']}" if "source" in record else ""
            raise DataError(f"{what} was made with dataset {recorded}{where}, which is not "
                            f"available here; pass --data DIR|FILE holding it")
        if split == "test" and ds.sha256 != rec_sha:
            raise DataError(f"{what} was made with dataset {recorded}, but the data found for "
                            f"it differs ({ds.describe()}); pass --data with the original data")
        return ds
    ds = load_dataset(name, split, path=path)
    if split == "test" and ds.sha256 != rec_sha:
        if not other_data:
            raise DataError(f"{what} was made with dataset {recorded}, not with the given data "
                            f"{ds.describe()}; pass --other-data to use it anyway")
        log(f"{what} was made with dataset {recorded}; using other data {ds.describe()} "
            f"as asked (--other-data)")
    return ds


# ---------------------------------------------------------------------- command-line options


def add_data_options(p: argparse.ArgumentParser, other_data: bool = True,
                     default: str = "the dataset the network records") -> None:
    """``--data DIR|FILE`` (alias ``--data-dir``), ``--dataset NAME`` and, for commands that
    run an existing network, ``--other-data``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", "--data-dir", dest="data", metavar="DIR|FILE",
                   help="folder of 28x28 IDX files (raw or .gz) or .npz with images and labels "
                        f"(default: {default})")
    g.add_argument("--dataset", choices=tuple(DATASETS), help="a named dataset")
    if other_data:
        p.add_argument("--other-data", action="store_true",
                       help="accept data other than the dataset the network records (warns)")


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`data_for` from :func:`add_data_options`' options."""
    return {"name": args.dataset, "path": args.data,
            "other_data": bool(getattr(args, "other_data", False))}
