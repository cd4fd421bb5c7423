"""Dataset access: IDX files and MNIST (numpy + standard library only)."""

from __future__ import annotations

from .idx import DataError, read_idx, sha256_of_idx, write_idx
from .mnist import (
    MNIST_FILES,
    bundled_test_split_dir,
    clear_cache,
    describe_sources,
    load_mnist,
    mnist_cache_dir,
)

__all__ = [
    "DataError",
    "MNIST_FILES",
    "bundled_test_split_dir",
    "clear_cache",
    "describe_sources",
    "load_mnist",
    "mnist_cache_dir",
    "read_idx",
    "sha256_of_idx",
    "write_idx",
]
