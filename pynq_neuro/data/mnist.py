"""Locate, download, verify and load the MNIST digits.

Search order used by :func:`load_mnist`:

1. ``data_dir`` argument, if given (files must be there).
2. ``$PYNQ_NEURO_DATA``, if set (files must be there).
3. For the ``"test"`` split: the copy bundled with this package.
4. The user cache: ``$PYNQ_NEURO_CACHE/mnist``, else
   ``$XDG_CACHE_HOME/pynq-neuro/mnist``, else ``~/.cache/pynq-neuro/mnist``.
5. If ``download`` is true: fetch the missing ``.gz`` files from ``MIRRORS``
   into the cache, verifying each before it is moved into place.

Every file read is checked against its canonical SHA-256 (of the
uncompressed content) and shape. Files may be raw or gzip, named like
``train-images-idx3-ubyte[.gz]`` or ``train-images.idx3-ubyte[.gz]``.
"""

from __future__ import annotations

import functools
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np

from ..fileio import fsync_dir
from .idx import DataError, read_idx

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "MnistFile",
    "bundled_test_split_dir",
    "clear_cache",
    "describe_sources",
    "load_mnist",
    "mnist_cache_dir",
]

PathLike = Union[str, "os.PathLike[str]"]

DATA_ENV = "PYNQ_NEURO_DATA"
CACHE_ENV = "PYNQ_NEURO_CACHE"
DOWNLOAD_TIMEOUT = 30.0  # seconds, per connection attempt
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # largest MNIST .gz is ~10 MB

MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
]


@dataclass(frozen=True)
class MnistFile:
    """One MNIST file: canonical name (no ``.gz``), SHA-256 of raw content, shape."""

    name: str
    sha256: str
    shape: tuple[int, ...]


MNIST_FILES: dict[str, tuple[MnistFile, MnistFile]] = {
    "train": (
        MnistFile(
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            (60000, 28, 28),
        ),
        MnistFile(
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            (60000,),
        ),
    ),
    "test": (
        MnistFile(
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            (10000, 28, 28),
        ),
        MnistFile(
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            (10000,),
        ),
    ),
}


# The MNIST check applies to MNIST only: what a failed check says about other data.
OTHER_DATA_HINT = (
    "If this is another dataset (e.g. Fashion-MNIST) and not MNIST, pass it as such: "
    "--data DIR (any folder of 28x28 IDX files, raw or .gz, or an .npz with images and "
    "labels) or --dataset fashion-mnist|kmnist; in Python, load_dataset(path=DIR).")


# --------------------------------------------------------------------------- paths


def bundled_test_split_dir() -> Path:
    """Directory holding the test split shipped inside the package."""
    return Path(__file__).resolve().parent / "mnist"


def mnist_cache_dir() -> Path:
    """Cache directory for downloaded MNIST files (not created here)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "mnist"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pynq-neuro" / "mnist"


def _candidate_names(name: str) -> list[str]:
    """Accepted file names for a canonical name, raw before gzip."""
    dotted = name.replace("-idx", ".idx", 1)
    return [name, f"{name}.gz", dotted, f"{dotted}.gz"]


def _find(directory: Path, f: MnistFile) -> Path | None:
    """First existing accepted name for ``f`` in ``directory``."""
    for candidate in _candidate_names(f.name):
        path = directory / candidate
        if path.is_file():
            return path
    return None


def _missing_text(files: list[MnistFile]) -> str:
    return ", ".join(f"{f.name}[.gz]" for f in files)


def _require_dir(directory: Path, files: tuple[MnistFile, ...], origin: str) -> list[Path]:
    """Paths of ``files`` in a directory the user pointed at; DataError if absent."""
    if not directory.is_dir():
        raise DataError(
            f"MNIST directory from {origin} does not exist: '{directory}'. "
            f"Point {origin} at the folder holding {_missing_text(list(files))}."
        )
    found = [_find(directory, f) for f in files]
    missing = [f for f, p in zip(files, found) if p is None]
    if missing:
        looked = "; ".join(", ".join(_candidate_names(f.name)) for f in missing)
        raise DataError(
            f"MNIST files missing in '{directory}' (from {origin}): "
            f"{_missing_text(missing)}. Looked for: {looked}. Put the files there "
            f"(raw or .gz) or point {origin} at the folder that holds them."
        )
    return [p for p in found if p is not None]


# ------------------------------------------------------------------------ download


def _mirror_url(mirror: str, f: MnistFile) -> str:
    return mirror.rstrip("/") + "/" + f.name + ".gz"


def _fetch(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` with a timeout and a size limit."""
    request = urllib.request.Request(url, headers={"User-Agent": "pynq-neuro"})
    total = 0
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
        with open(dest, "wb") as out:
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise DataError(f"response exceeds {MAX_DOWNLOAD_BYTES} bytes")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())


def download_verified(urls: Sequence[str], folder: Path, filename: str,
                      check: Callable[[Path], None], what: str | None = None,
                      fetch: Callable[[str, Path], None] | None = None) -> Path:
    """Download ``filename`` into ``folder`` from the first of ``urls`` whose copy passes
    ``check`` (which raises :class:`DataError`). Each attempt goes to a temporary file in
    ``folder`` that is checked before ``os.replace`` moves it into place (then the folder is
    synced), so a failed download never leaves a file with an accepted name. Raises
    :class:`DataError` listing every failed attempt."""
    fetch = fetch or _fetch
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache folder '{folder}': {exc.strerror or exc}") from None
    target = folder / filename
    failures: list[str] = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            fetch(url, tmp)
            check(tmp)
            os.replace(tmp, target)
            fsync_dir(folder)
            return target
        except DataError as exc:
            failures.append(f"{url}: {exc}")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise DataError(f"could not download {what or filename}: "
                    + (" | ".join(failures) or "no mirrors"))


def _download_file(f: MnistFile, cache: Path) -> Path:
    """Download ``f`` into ``cache`` from the first mirror that serves a valid copy (SHA-256
    and shape of the decompressed content)."""
    def check(path: Path) -> None:
        try:
            read_idx(path, f.sha256, f.shape)
        except DataError as exc:
            raise DataError(f"invalid download: {exc}") from None

    return download_verified([_mirror_url(m, f) for m in MIRRORS], cache, f"{f.name}.gz", check)


# ------------------------------------------------------------------------- loading


def _split_files(split: str) -> tuple[MnistFile, MnistFile]:
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    return MNIST_FILES[split]


def _not_found_message(split: str, files: tuple[MnistFile, ...], tried: list[str]) -> str:
    cache = mnist_cache_dir()
    names = ", ".join(f"{f.name}.gz" for f in files)
    mirror = MIRRORS[0] if MIRRORS else "an MNIST mirror"
    lines = [f"MNIST '{split}' split not found. Tried:"]
    lines += [f"  - {t}" for t in tried]
    lines += [
        "Options:",
        f"  - pass load_mnist(data_dir=...) a folder holding {names} (raw or .gz);",
        f"  - or set {DATA_ENV} to such a folder;",
        "  - or call load_mnist(..., download=True) on a machine with internet access;",
        f"  - or download {names} manually from {mirror} into '{cache}'.",
    ]
    return "\n".join(lines)


def _expand(path: PathLike, origin: str) -> Path:
    """``path`` with ``~`` expanded; DataError when the home folder is unknown."""
    try:
        return Path(path).expanduser()
    except (RuntimeError, KeyError) as exc:
        raise DataError(f"MNIST directory from {origin} '{path}': {exc}") from exc


def _resolve(split: str, data_dir: PathLike | None, download: bool) -> list[Path]:
    """Paths of the (images, labels) files for ``split``, following the search order."""
    files = _split_files(split)
    if data_dir is not None:
        return _require_dir(_expand(data_dir, "data_dir"), files, "data_dir")
    env_dir = os.environ.get(DATA_ENV)
    if env_dir:
        return _require_dir(_expand(env_dir, f"${DATA_ENV}"), files, f"${DATA_ENV}")
    tried = ["data_dir: not given", f"${DATA_ENV}: not set"]
    if split == "test":
        bundled = bundled_test_split_dir()
        found = [_find(bundled, f) for f in files]
        if all(found):
            return [p for p in found if p is not None]
        tried.append(f"bundled copy '{bundled}': files missing")
    try:
        cache = mnist_cache_dir()
    except (RuntimeError, KeyError) as exc:  # no home folder to hold the cache
        raise DataError(f"MNIST '{split}' split not found (tried: {'; '.join(tried)}) and no "
                        f"cache folder ({exc}): pass data_dir or set {DATA_ENV}") from exc
    found = [_find(cache, f) for f in files]
    missing = [f for f, p in zip(files, found) if p is None]
    if not missing:
        return [p for p in found if p is not None]
    tried.append(f"cache '{cache}': missing {_missing_text(missing)}")
    if not download:
        tried.append("download: disabled (download=False)")
        raise DataError(_not_found_message(split, files, tried))
    try:
        for f in missing:
            _download_file(f, cache)
    except DataError as exc:
        tried.append(f"download: {exc}")
        raise DataError(_not_found_message(split, files, tried)) from exc
    return [_find(cache, f) or cache / f"{f.name}.gz" for f in files]


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int, f: MnistFile) -> np.ndarray:
    """Read and verify one file; the result is made read-only and kept in memory."""
    array = read_idx(path, f.sha256, f.shape)
    array.flags.writeable = False
    return array


def _load_verified(path: Path, f: MnistFile) -> np.ndarray:
    """Cached, verified array for ``path``; re-read if the file changed on disk."""
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"Cannot access MNIST file '{path}': {exc}") from exc
    try:
        return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size, f).view()
    except DataError as e:
        if str(e).startswith(("Checksum mismatch", "Shape mismatch")):
            raise DataError(f"{e} {OTHER_DATA_HINT}") from None
        raise


def load_mnist(
    split: str = "test",
    data_dir: PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split as ``(images uint8 (N, 28, 28), labels uint8 (N,))``.

    ``split`` is ``"train"`` or ``"test"`` (else ``ValueError``); see the module
    docstring for the search order. Arrays are cached in-process and returned
    as **read-only** views (``writeable`` cannot be switched back on); call
    ``.copy()`` for a modifiable array. :func:`clear_cache` frees the memory.
    Raises :class:`DataError` if the data cannot be found or fails verification.
    """
    files = _split_files(split)
    paths = _resolve(split, data_dir, download)
    images, labels = (_load_verified(p, f) for p, f in zip(paths, files))
    return images, labels


def clear_cache() -> None:
    """Drop the in-process cache of loaded MNIST arrays."""
    _load_cached.cache_clear()


def describe_sources(split: str = "test") -> list[str]:
    """Human-readable list of the places :func:`load_mnist` looks, in order."""
    _split_files(split)
    env_dir = os.environ.get(DATA_ENV)
    sources = ["data_dir argument (if given)"]
    sources.append(f"${DATA_ENV} = '{env_dir}'" if env_dir else f"${DATA_ENV} (not set)")
    if split == "test":
        sources.append(f"bundled copy '{bundled_test_split_dir()}'")
    sources.append(f"cache '{mnist_cache_dir()}'")
    sources.append("download from: " + ", ".join(MIRRORS))
    return sources
