"""Raw dataset trees -> the split.json contract (design §4), and the checks a prepared split must pass.

Readers return a `Converted` (class names in label order + ``(relpath, label)`` items per split,
paths relative to the image root, in the order of the source file, which few-shot sampling depends
on). `check_sizes` compares with the protocol's counts, `verify_images` opens every listed image,
`write_split` validates and writes atomically. Nothing here downloads.

Class names are exactly the protocol's: the third field of CoOp's split_zhou JSONs (what Dassl's
``lab2cname`` yields), FGVC-Aircraft's ``variants.txt`` lines, ImageNet's ``classnames.txt``
(`ame.data.imagenet`). Underscores are kept; prompts replace them with spaces.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from ..contracts import SPLIT, validate
from ..io import write_json
from .registry import SplitSizes
from .splits import SPLIT_NAMES

Item = tuple[str, int]

log = logging.getLogger(__name__)

#: Test switch: with this environment variable set to 1, a paper dataset may have fewer classes and
#: images than the protocol's (its class count and split sizes are reported, not enforced; ImageNet
#: may have any number of class folders). Only the
#: paper-path smoke test (tests/paper_smoke.py, `make paper-smoke`) sets it, to run paper datasets'
#: real converters on miniature copies; never set it for results.
SMALL_SPLITS = "AME_TEST_SMALL_SPLITS"


def small_splits_allowed() -> bool:
    """Whether the `SMALL_SPLITS` test switch is on ("1"); any other non-empty value is an error."""
    value = os.environ.get(SMALL_SPLITS, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"environment variable {SMALL_SPLITS}={value!r}: set it to 1 (or unset it)")
    return value == "1"


@dataclass
class Converted:
    """A dataset read from its raw files, before it is written as split.json.

    source: the file the split came from (named in messages).
    """

    classnames: list[str]
    splits: dict[str, list[Item]] = field(default_factory=dict)
    source: Path | None = None

    def count(self, split_name: str) -> int:
        return len(self.splits.get(split_name, []))


def _relpath(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: image path must be a non-empty string, got {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{where}: image path {value!r} must be relative to the image folder")
    return value


def read_zhou_split(path: str | Path, num_classes: int | None = None) -> Converted:
    """Read a CoOp ``split_zhou_<Dataset>.json``: ``{"train"|"val"|"test": [[path, label, name]]}``.

    Class i's name is the third field of its items; all of a label's items must agree, and the
    labels must be exactly ``0..C-1`` (C = `num_classes` when given).
    """
    path = Path(path)
    fix = f"delete {path} and rerun to download it again"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found; rerun to download it, or place it there by hand")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid split file ({err}); {fix}") from None
    if not isinstance(obj, dict) or any(not isinstance(obj.get(s), list) for s in SPLIT_NAMES):
        raise ValueError(f"{path}: a split file must map train, val and test to lists of "
                         f"[path, label, class name]; {fix}")
    names: dict[int, str] = {}
    splits: dict[str, list[Item]] = {}
    for split_name in SPLIT_NAMES:
        items: list[Item] = []
        for i, entry in enumerate(obj[split_name]):
            where = f"{path}: {split_name}[{i}]"
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], int)
                    and not isinstance(entry[1], bool) and entry[1] >= 0 and isinstance(entry[2], str)):
                raise ValueError(f"{where}: expected [path, label >= 0, class name], got {entry!r}; {fix}")
            rel, label, name = _relpath(entry[0], where), entry[1], entry[2]
            if names.setdefault(label, name) != name:
                raise ValueError(f"{where}: label {label} is named both {names[label]!r} and {name!r}; {fix}")
            items.append((rel, label))
        splits[split_name] = items
    labels = sorted(names)
    expected = num_classes if num_classes is not None else len(labels)
    if labels != list(range(expected)):
        raise ValueError(f"{path}: labels must be 0..{expected - 1}, found {len(labels)} labels "
                         f"from {labels[0] if labels else '-'} to {labels[-1] if labels else '-'}; {fix}")
    return Converted([names[i] for i in labels], splits, path)


def read_fgvc_variants(raw: str | Path, num_classes: int | None = None) -> Converted:
    """FGVC-Aircraft as CoOp reads it: class i = line i of ``variants.txt``; items from
    ``images_variant_{train,val,test}.txt`` lines ``<image id> <variant name>`` -> ``<id>.jpg``."""
    raw = Path(raw)
    variants = raw / "variants.txt"
    classnames = [line.strip() for line in variants.read_text(encoding="utf-8").splitlines()]
    if num_classes is not None and len(classnames) != num_classes:
        raise ValueError(f"{variants}: {len(classnames)} variants, expected {num_classes}; the file is not "
                         f"FGVC-Aircraft 2013b's: delete {raw} and rerun to download it again")
    label_of = {name: i for i, name in enumerate(classnames)}
    splits: dict[str, list[Item]] = {}
    for split_name in SPLIT_NAMES:
        listing = raw / f"images_variant_{split_name}.txt"
        items: list[Item] = []
        for n, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            image_id, _, variant = line.strip().partition(" ")
            if variant not in label_of:
                raise ValueError(f"{listing}: line {n}: variant {variant!r} is not in {variants}; delete "
                                 f"{raw} and rerun to download FGVC-Aircraft again")
            items.append((f"{image_id}.jpg", label_of[variant]))
        splits[split_name] = items
    return Converted(classnames, splits, raw / "images_variant_train.txt")


def check_sizes(dataset: str, converted: Converted, sizes: SplitSizes, fix: str) -> None:
    """Raise ValueError naming the dataset, split and counts when train or test differs from the
    protocol's (protocol.md §5b). Val is not checked: its published counts are unverified. Under
    the `SMALL_SPLITS` test switch the difference is logged as a warning instead."""
    for split_name in ("train", "test"):
        expected, found = getattr(sizes, split_name), converted.count(split_name)
        if found != expected and small_splits_allowed():
            log.warning(f"{dataset}: {split_name} has {found:,} images, the protocol's {expected:,}; accepted "
                        f"because {SMALL_SPLITS}=1 (a test switch: never use it for results)")
        elif found != expected:
            source = f" (read from {converted.source})" if converted.source else ""
            raise ValueError(f"{dataset}: the {split_name} split has {found:,} images but the protocol's has "
                             f"{expected:,}{source}; this is not the canonical split: {fix}")


def _problem(path: Path, level: str) -> str | None:
    from PIL import Image

    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as img:
            from ame.data.pixels import decodable

            if not decodable(img.mode):
                return f"PIL mode {img.mode!r} is not supported (convert it to 8-bit RGB or greyscale)"
            if level == "decode":
                # JPEG: decode at 1/8 scale; every byte is still read, so truncation still shows.
                img.draft("RGB", (64, 64))
                img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return f"{type(err).__name__}: {err}"
    return None


def verify_images(dataset: str, root: Path, converted: Converted, *, level: str, fix: str) -> None:
    """Open every listed image (``level="decode"``: decode it; ``"open"``: read its header).

    Raises ValueError naming the count, the first few bad files with their problem, and `fix`.
    """
    from tqdm import tqdm

    entries = [(rel, split_name) for split_name in SPLIT_NAMES for rel, _ in converted.splits.get(split_name, [])]
    bad: list[str] = []
    for rel, split_name in tqdm(entries, desc=f"{dataset}: checking images", unit="img", file=sys.stderr,
                                mininterval=2.0, disable=None):
        problem = _problem(root / rel, level)
        if problem is not None:
            bad.append(f"{root / rel} ({split_name}: {problem})")
    if bad:
        shown = "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
        raise ValueError(f"{dataset}: {len(bad)} of {len(entries)} listed images are missing, truncated or "
                         f"unreadable: {shown}. {fix[:1].upper()}{fix[1:]}")


def write_split(path: str | Path, dataset: str, classnames: Iterable[str], root: str,
                splits: dict[str, list[Item]], **extra: object) -> Path:
    """Validate against `ame.contracts.SPLIT` and write split.json atomically (`extra`: more keys)."""
    path = Path(path)
    obj = {"dataset": dataset, "classnames": list(classnames), "root": root,
           **{s: [[rel, int(label)] for rel, label in splits.get(s, [])] for s in SPLIT_NAMES}, **extra}
    validate(obj, SPLIT, where=str(path))
    write_json(path, obj)
    return path
