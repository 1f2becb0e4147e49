"""ImageNet (ILSVRC2012): a layout validator that explains every fix, and its conversion in place.

ImageNet's terms of access forbid redistribution, so the images are never downloaded here: the user
places them (links are fine) in CoOp's layout under ``<data_root>/ImageNet/raw``::

    raw/images/train/<wnid>/*.JPEG     1,000 class folders (n01440764, n01443537, ...)
    raw/images/val/<wnid>/*.JPEG       the same 1,000 folders (the official val set = our test split)
    raw/classnames.txt                 "<wnid> <class name>" per line (CoOp's copy of CLIP's names)

``classnames.txt`` may also sit at ``<data_root>/ImageNet/classnames.txt``; when it is nowhere, it is
fetched from CoOp's Google-Drive id into that second place (the raw tree may be read-only).

Conversion follows CoOp's ``datasets/imagenet.py``: label = index of the wnid among the sorted
train folders, class name = the rest of the wnid's line in classnames.txt, train items from
``images/train``, test items from ``images/val``, no val split. Split files point into the raw tree;
nothing is copied. One deliberate difference: CoOp lists a folder's files in ``os.listdir`` order,
which depends on the file system, so its K-shot picks are not reproducible across machines; we sort
file names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .convert import Converted

WNID = re.compile(r"^n\d{8}$")
VALPREP_URL = "https://raw.githubusercontent.com/soumith/imagenetloader.torch/master/valprep.sh"
DOWNLOAD_PAGE = "https://image-net.org/download.php"

NOT_PLACED = (
    "ImageNet cannot be downloaded automatically: its terms of access forbid redistribution. "
    f"Download ILSVRC2012 (the training and the validation images) from {DOWNLOAD_PAGE}, then make "
    "{images} hold two folders, train/ and val/, each with one sub-folder per class named by its "
    "WordNet id (n01440764/, n01443537/, ...). Links are fine and nothing is copied: "
    "mkdir -p {images} && ln -s /path/to/ILSVRC2012/train {images}/train && "
    "ln -s /path/to/ILSVRC2012/val {images}/val . Then rerun. See docs/datasets.md (ImageNet)."
)
MISSING_SPLIT_DIR = (
    "ImageNet: {folder} is missing; it must hold the {what} images in one sub-folder per class "
    "(n01440764/, n01443537/, ...), e.g. ln -s /path/to/ILSVRC2012/{name} {folder} . Then rerun."
)
FLAT_VAL = (
    "ImageNet: {val} holds {count} images directly instead of one sub-folder per class, so the test "
    "split would be empty. Sort them into class folders: cd {val} && wget -qO- {valprep} | bash "
    "(it creates the 1,000 n* folders and moves each ILSVRC2012_val_*.JPEG into its class), then rerun."
)
TAR_TRAIN = (
    "ImageNet: {train} holds {count} per-class .tar archives that are not extracted yet. Extract "
    "each into a folder of its name: cd {train} && for f in *.tar; do d=${{f%.tar}}; mkdir -p $d && "
    "tar -xf $f -C $d && rm $f; done . Then rerun."
)
CLASS_COUNT = (
    "ImageNet: {folder} has {count} class folders but {expected} are expected, one per WordNet id "
    "(n01440764/ ... n15075141/){detail}. Restore the missing folders from your ImageNet copy, then rerun."
)
VAL_MISMATCH = (
    "ImageNet: the class folders of {val} and {train} differ ({detail}); both must hold the same "
    "{expected} WordNet-id folders. Then rerun."
)
EMPTY_CLASS = "ImageNet: class folder {folder} holds no images; restore it from your ImageNet copy, then rerun."
NO_CLASSNAMES = (
    "ImageNet: classnames.txt is neither at {first} nor at {second}, and downloading it failed "
    "({reason}). Download CoOp's classnames.txt (CLIP's class names) from {page} and place it at "
    "{second}, then rerun."
)
BAD_CLASSNAMES = (
    "ImageNet: {file} names no class for {count} of the class folders (e.g. {examples}); it must be "
    "CoOp's classnames.txt with one '<wnid> <class name>' line per class, from {page}."
)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _scan(folder: Path) -> tuple[list[str], list[str]]:
    """(sub-folder names, file names) of `folder`, sorted, hidden entries skipped."""
    dirs, files = [], []
    with os.scandir(folder) as it:
        for entry in it:
            if _hidden(entry.name):
                continue
            (dirs if entry.is_dir() else files).append(entry.name)
    return sorted(dirs), sorted(files)


def validate_layout(raw: str | Path, num_classes: int | None = 1000) -> list[str]:
    """Check ``raw/images/{train,val}`` and return the sorted train wnids (= labels 0..C-1);
    `num_classes` None accepts any number of class folders (the AME_TEST_SMALL_SPLITS test switch).

    Raises FileNotFoundError / ValueError whose message says what is wrong and how to fix it:
    nothing placed yet, a missing split folder, a flat val folder (CoOp#60), unextracted per-class
    train archives, a wrong number of class folders, train/val folders that differ.
    """
    images = Path(raw) / "images"
    train, val = images / "train", images / "val"
    if not train.is_dir() and not val.is_dir():
        raise FileNotFoundError(NOT_PLACED.format(images=images))
    for folder, what, name in ((train, "training", "train"), (val, "validation", "val")):
        if not folder.is_dir():
            raise FileNotFoundError(MISSING_SPLIT_DIR.format(folder=folder, what=what, name=name))
    train_dirs, train_files = _scan(train)
    tars = [f for f in train_files if f.endswith(".tar")]
    if tars and len(train_dirs) < (num_classes or len(train_files)):
        raise ValueError(TAR_TRAIN.format(train=train, count=len(tars)))
    val_dirs, val_files = _scan(val)
    if not val_dirs and val_files:
        raise ValueError(FLAT_VAL.format(val=val, count=len(val_files), valprep=VALPREP_URL))
    if num_classes is not None and len(train_dirs) != num_classes:
        odd = [d for d in train_dirs if not WNID.match(d)]
        detail = f"; not WordNet ids: {', '.join(odd[:5])}" if odd else ""
        raise ValueError(CLASS_COUNT.format(folder=train, count=len(train_dirs), expected=num_classes,
                                            detail=detail))
    if val_dirs != train_dirs:
        only_train = sorted(set(train_dirs) - set(val_dirs))
        only_val = sorted(set(val_dirs) - set(train_dirs))
        parts = []
        if only_train:
            parts.append(f"{len(only_train)} only in train, e.g. {', '.join(only_train[:3])}")
        if only_val:
            parts.append(f"{len(only_val)} only in val, e.g. {', '.join(only_val[:3])}")
        raise ValueError(VAL_MISMATCH.format(val=val, train=train, detail="; ".join(parts), expected=num_classes))
    return train_dirs


def classnames_locations(raw: str | Path, dataset_dir: str | Path) -> tuple[Path, Path]:
    """Where classnames.txt is looked for: in the raw tree (CoOp's place), then beside split.json."""
    return Path(raw) / "classnames.txt", Path(dataset_dir) / "classnames.txt"


def read_classnames(path: str | Path, wnids: list[str], page: str = "") -> list[str]:
    """Class names in label order from a CoOp classnames.txt (``<wnid> <name words>`` per line).

    Parsed as CoOp does (split on single spaces, the rest re-joined); every wnid must be named.
    """
    path = Path(path)
    names: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(" ")
        if parts[0]:
            names[parts[0]] = " ".join(parts[1:])
    missing = [w for w in wnids if not names.get(w)]
    if missing:
        raise ValueError(BAD_CLASSNAMES.format(file=path, count=len(missing), examples=", ".join(missing[:3]),
                                               page=page))
    return [names[w] for w in wnids]


def read_imagenet(raw: str | Path, classnames: list[str], wnids: list[str]) -> Converted:
    """Train items from ``images/train/<wnid>/``, test items from ``images/val/<wnid>/``, relative
    to ``raw/images``; every class folder must hold at least one file."""
    images = Path(raw) / "images"
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for split_name, folder in (("train", "train"), ("test", "val")):
        for label, wnid in enumerate(wnids):
            _, files = _scan(images / folder / wnid)
            if not files:
                raise ValueError(EMPTY_CLASS.format(folder=images / folder / wnid))
            splits[split_name].extend((f"{folder}/{wnid}/{name}", label) for name in files)
    return Converted(classnames, splits, images)
