"""Datasets: registry, embedded mini sets, split.json reading, K-shot sampling, image loading.

`ImageSet`, `build_transform`, `load_rgb` and `ImageReadError` need torch and are imported on first
use, so the data-preparation steps do not pay torch's import time.
"""

from __future__ import annotations

from typing import Any

from .embedded import SPLIT_SEED, prepare_embedded, split_indices
from .fewshot import read_shots, sample_shots, write_shots
from .prepare import prepare_dataset
from .registry import (
    DATASET_NAMES,
    DATASETS,
    DIGIT_WORDS,
    EMBEDDED_DATASETS,
    PAPER_DATASETS,
    DatasetInfo,
    canonical_name,
    get_dataset,
)
from .splits import SPLIT_NAMES, Split, load_split

_LAZY = {"ImageSet", "build_transform", "load_rgb", "ImageReadError", "CLIP_MEAN", "CLIP_STD"}

__all__ = [
    "DATASETS", "DATASET_NAMES", "DIGIT_WORDS", "EMBEDDED_DATASETS", "PAPER_DATASETS", "SPLIT_NAMES",
    "SPLIT_SEED", "DatasetInfo", "Split", "canonical_name", "get_dataset", "load_split",
    "prepare_dataset", "prepare_embedded", "read_shots", "sample_shots", "split_indices",
    "write_shots", *sorted(_LAZY),
]


def __getattr__(attr: str) -> Any:
    if attr in _LAZY:
        from . import images

        return getattr(images, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
