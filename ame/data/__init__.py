"""Datasets: registry, embedded mini sets, split.json reading, K-shot sampling, image loading.

`ImageSet`, `build_transform`, `load_rgb` and `ImageReadError` need torch and are imported on first
use, so the data-preparation steps do not pay torch's import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .embedded import SPLIT_SEED, prepare_embedded, split_indices
from .fewshot import read_shots, sample_shots, write_shots
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


def prepare_dataset(name: str, data_root: str | Path, custom: dict | None = None) -> Path:
    """Make ``<data_root>/<dataset id>/split.json`` exist; return its path.

    `custom` is a preset's ``custom_datasets`` mapping: a name found there is prepared from its
    image folder (`ame.data.custom`). Otherwise `name` (or an alias) is looked up in the registry:
    embedded datasets are written by `prepare_embedded`; paper datasets are downloaded, converted
    and checked by `ame.data.remote.prepare_remote` (ImageNet: validated in place). A valid
    split.json already there is returned without any network access.
    """
    if custom and name in custom:
        from .custom import prepare_custom

        return prepare_custom(name, custom[name], data_root)
    return get_dataset(name).prepare(data_root)


def __getattr__(attr: str) -> Any:
    if attr in _LAZY:
        from . import images

        return getattr(images, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
