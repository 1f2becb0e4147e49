"""Reading split.json (design §4) and the base/new class partition of the PromptKD protocol."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..contracts import SPLIT, validate
from ..io import read_json

SPLIT_NAMES = ("train", "val", "test")

Item = tuple[str, int]


@dataclass(frozen=True)
class Split:
    """A validated split.json.

    `root` is absolute; `train`/`val`/`test` hold ``(relpath, label)`` pairs exactly as in the file
    (relative to `root`), so indices into `train` are the ones shot files refer to.
    """

    path: Path
    dataset: str
    classnames: list[str]
    root: Path
    train: list[Item]
    val: list[Item] = field(default_factory=list)
    test: list[Item] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """C, the number of classes (= len(classnames))."""
        return len(self.classnames)

    def base_labels(self) -> list[int]:
        """The protocol's base classes: the first ceil(C/2) labels in sorted order."""
        return list(range(math.ceil(self.num_classes / 2)))

    def new_labels(self) -> list[int]:
        """The protocol's new classes: the labels after the base ones."""
        return list(range(math.ceil(self.num_classes / 2), self.num_classes))

    def items(self, split_name: str, labels: Iterable[int] | None = None) -> list[tuple[Path, int]]:
        """``(absolute image path, label)`` for one split, optionally only the given labels.

        Labels are returned unchanged (not re-indexed), in file order. A split absent from the file
        (only "val" may be) gives an empty list.
        """
        if split_name not in SPLIT_NAMES:
            raise ValueError(f"split name must be one of {SPLIT_NAMES}, got {split_name!r}")
        keep = None if labels is None else set(labels)
        return [
            (self.root / rel, label)
            for rel, label in getattr(self, split_name)
            if keep is None or label in keep
        ]

    def check_images_exist(self, split_names: Iterable[str] = SPLIT_NAMES) -> None:
        """Raise FileNotFoundError naming the first image listed in the file but missing on disk."""
        for name in split_names:
            for path, _ in self.items(name):
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{self.path}: {name} image {path} does not exist; re-run the prepare step "
                        f"for {self.dataset} (or fix 'root' in the split.json)"
                    )


def load_split(path: str | Path) -> Split:
    """Read, validate against `ame.contracts.SPLIT` and return the split.json at `path`.

    `root` is resolved relative to the folder holding the split.json unless it is absolute. Labels
    must lie in ``[0, C)``. Every error names the file.
    """
    path = Path(path)
    obj = validate(read_json(path), SPLIT, where=str(path))
    num_classes = len(obj["classnames"])
    for name in SPLIT_NAMES:
        for i, (_, label) in enumerate(obj.get(name, [])):
            if label >= num_classes:
                raise ValueError(
                    f"{path}: key '{name}/{i}': label {label} out of range for {num_classes} classes"
                )
    root = Path(obj["root"])
    if not root.is_absolute():
        root = path.absolute().parent / root
    return Split(
        path=path,
        dataset=obj["dataset"],
        classnames=list(obj["classnames"]),
        root=root,
        **{name: [(rel, label) for rel, label in obj.get(name, [])] for name in SPLIT_NAMES},
    )
