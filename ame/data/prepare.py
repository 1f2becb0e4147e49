"""Preparing any dataset: the one dispatch from a dataset name to the code that makes its split.json."""

from __future__ import annotations

from pathlib import Path

from .registry import get_dataset


def prepare_dataset(name: str, data_root: str | Path, custom: dict | None = None) -> Path:
    """Make ``<data_root>/<dataset id>/split.json`` exist; return its path.

    `custom` is a preset's ``custom_datasets`` mapping: a name found there is prepared from its
    image folder (`ame.data.custom`). Otherwise `name` (or an alias) is looked up in the registry:
    embedded datasets are written by `ame.data.embedded.prepare_embedded`; paper datasets are
    downloaded, converted and checked by `ame.data.remote.prepare_remote` (ImageNet: validated in
    place). A valid split.json already there is returned without any network access.
    """
    if custom and name in custom:
        from .custom import prepare_custom

        return prepare_custom(name, custom[name], data_root)
    info = get_dataset(name)
    if info.kind == "embedded":
        from .embedded import prepare_embedded  # lazy: no numpy/scikit-learn work for remote datasets

        return prepare_embedded(info.name, Path(data_root) / info.name)
    from .remote import prepare_remote

    return prepare_remote(info, data_root)
