"""Dataset access: IDX files, MNIST and other 28x28 datasets (numpy + standard library
only)."""

from __future__ import annotations

from .datasets import (
    DATASETS,
    DEFAULT_DATASET,
    MNIST_RECORD,
    Dataset,
    DatasetSpec,
    add_data_options,
    check_labels,
    check_record,
    data_for,
    data_options,
    dataset_cache_dir,
    images_digest,
    load_dataset,
    record_of,
    sample_indices,
    split_digest,
)
from .idx import DataError, read_idx, sha256_of_idx, write_idx
from .prepare import prepare_digit, prepare_digits
from .strokes import EXAMPLES, cell_strokes, render_strokes, transform_strokes
from .mnist import (
    MNIST_FILES,
    bundled_test_split_dir,
    clear_cache,
    describe_sources,
    load_mnist,
    mnist_cache_dir,
)

__all__ = [
    "EXAMPLES",
    "cell_strokes",
    "render_strokes",
    "transform_strokes",
    "DATASETS",
    "DEFAULT_DATASET",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "MNIST_FILES",
    "MNIST_RECORD",
    "add_data_options",
    "bundled_test_split_dir",
    "check_labels",
    "check_record",
    "clear_cache",
    "data_for",
    "data_options",
    "dataset_cache_dir",
    "describe_sources",
    "images_digest",
    "load_dataset",
    "load_mnist",
    "mnist_cache_dir",
    "prepare_digit",
    "prepare_digits",
    "read_idx",
    "record_of",
    "sha256_of_idx",
    "sample_indices",
    "split_digest",
    "write_idx",
]
