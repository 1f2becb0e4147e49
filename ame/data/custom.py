"""Custom datasets: a folder of images in class sub-folders becomes a dataset with one config entry.

Preset entry (schema key ``custom_datasets``)::

    custom_datasets:
      MyPets:                                   # the dataset id: letters and digits, not a known id
        root: /data/my_pets                     # one sub-folder per class, images inside (any depth)
        classnames: /data/my_pets/names.json    # optional: folder -> class name
        split: {train: 0.5, val: 0.2, test: 0.3}

Labels follow the sorted class-folder names; the class name is the folder name unless the mapping
file says otherwise (JSON ``{"folder": "name"}``, or text lines ``folder name words``). Each class is
split on its own with a fixed generator (`ame.data.embedded.SPLIT_SEED`), so the split depends only
on the folder's content and the fractions. split.json points into the folder in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..io import sha256_json
from .convert import Converted, verify_images, write_split
from .embedded import SPLIT_SEED
from .splits import SPLIT_NAMES, load_split

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")  # Snakemake's {dataset} wildcard is [A-Za-z0-9]+
DEFAULT_SPLIT = {"train": 0.5, "val": 0.2, "test": 0.3}  # CoOp's rule for datasets without a split


def check_custom_datasets(specs: dict[str, Any] | None) -> dict[str, dict]:
    """Check what the schema cannot: names usable as ids, fractions that sum to 1.

    Returns the specs with the split defaults filled in. Raises ValueError naming the key.
    """
    from .registry import canonical_name

    out = {}
    for name, spec in (specs or {}).items():
        key = f"custom_datasets.{name}"
        if not NAME_PATTERN.match(name):
            raise ValueError(f"key '{key}': a dataset id must be letters and digits, starting with a letter")
        try:
            known = canonical_name(name)
        except ValueError:
            known = None
        if known is not None:
            raise ValueError(f"key '{key}': '{name}' already names the built-in dataset {known}; choose another id")
        if not isinstance(spec, dict) or not isinstance(spec.get("root"), str) or not spec["root"]:
            raise ValueError(f"key '{key}.root': give the folder holding one sub-folder per class")
        split = {**DEFAULT_SPLIT, **(spec.get("split") or {})}
        if set(split) != set(SPLIT_NAMES) or any(not isinstance(v, (int, float)) or v < 0 for v in split.values()):
            raise ValueError(f"key '{key}.split': give train, val and test as fractions >= 0")
        if not math.isclose(sum(split.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"key '{key}.split': the fractions sum to {sum(split.values()):g}; they must sum to 1")
        if split["train"] <= 0 or split["test"] <= 0:
            raise ValueError(f"key '{key}.split': train and test need a fraction above 0")
        if spec.get("classnames") and Path(spec["classnames"]).is_file():
            try:
                check_unique_class_names(Path(spec["classnames"]), _class_mapping(Path(spec["classnames"])))
            except ValueError as err:
                raise ValueError(f"key '{key}.classnames': {err}") from None
        out[name] = {**spec, "split": split}
    return out


def split_counts(n: int, fractions: dict[str, float], where: str = "") -> dict[str, int]:
    """Images per split for a class of `n`: CoOp's rounding (train = round(n·p_train), val =
    round(n·p_val), test = the rest), then at least one train and one test image, taken from the
    largest other split. Raises ValueError when the class is too small for that."""
    train = min(round(n * fractions["train"]), n)
    val = min(round(n * fractions["val"]), n - train)
    counts = {"train": train, "val": val, "test": n - train - val}
    for need in ("train", "test"):
        if counts[need] == 0:
            donors = [s for s in SPLIT_NAMES if s != need and counts[s] > (1 if s in ("train", "test") else 0)]
            if not donors:
                raise ValueError(f"{where}: {n} image(s) cannot give both train and test one image; add images")
            counts[max(donors, key=lambda s: counts[s])] -= 1
            counts[need] += 1
    return counts


def _images(folder: Path) -> list[str]:
    """Image files below `folder` (any depth), relative to it, sorted; hidden entries skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in filenames:
            if not fname.startswith(".") and fname.lower().endswith(IMAGE_SUFFIXES):
                found.append(os.path.relpath(os.path.join(dirpath, fname), folder))
    return sorted(Path(p).as_posix() for p in found)


def folder_state(spec: dict) -> str:
    """sha256 of a custom dataset's files (class folders, image paths, sizes, modification times)
    and of its class-name file: any added, removed or changed image or class changes it. Snakemake
    tracks it as the prepare job's parameter, so such a change re-prepares the dataset."""
    root = Path(spec["root"])
    if not root.is_dir():
        return "missing"
    files = [root / rel for rel in _images(root)]
    if spec.get("classnames"):
        files.append(Path(spec["classnames"]))
    digest = hashlib.sha256()
    for path in files:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed since it was listed: the next run sees the change
            continue
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _class_mapping(path: Path) -> dict[str, str]:
    """folder -> class name from a JSON object or ``folder name words`` text lines."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class-name mapping not found; fix 'classnames' in the preset or remove it")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); it must map folder names to class names") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ValueError(f"{path}: must be a JSON object mapping folder names to class names")
        return {k: v.strip() for k, v in mapping.items()}
    mapping = {}
    for line in text.splitlines():
        folder, _, name = line.strip().partition(" ")
        if folder:
            mapping[folder] = name.strip()
    return mapping


def check_unique_class_names(path: Path, mapping: dict[str, str]) -> None:
    """Two folders with one class name would make two classes share one text prompt."""
    seen: dict[str, str] = {}
    for folder, name in mapping.items():
        if name and name.lower() in seen:
            raise ValueError(f"{path}: folders '{seen[name.lower()]}' and '{folder}' both map to the class name "
                             f"'{name}'; give every class its own name (or merge the two folders)")
        seen[name.lower()] = folder


def read_class_mapping(path: Path, folders: list[str]) -> list[str]:
    """Class names for `folders` from a JSON object or ``folder name words`` text lines."""
    mapping = _class_mapping(path)
    missing = [f for f in folders if not mapping.get(f, "")]
    if missing:
        raise ValueError(f"{path}: no class name for the folder(s) {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}; add them to the mapping")
    check_unique_class_names(path, {f: mapping[f] for f in folders})
    return [mapping[f] for f in folders]


def _read_folder(name: str, root: Path, spec: dict) -> tuple[Converted, dict]:
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: custom dataset folder {root} does not exist; fix "
                                f"custom_datasets.{name}.root in the preset")
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if len(folders) < 2:
        raise ValueError(f"{name}: {root} must hold one sub-folder of images per class (at least 2), "
                         f"found {len(folders)}")
    listing = {}
    for folder in folders:
        files = _images(root / folder)
        if not files:
            raise ValueError(f"{name}: class folder {root / folder} has no images "
                             f"({', '.join(IMAGE_SUFFIXES)}); add images or remove the folder")
        listing[folder] = files
    classnames = (read_class_mapping(Path(spec["classnames"]), folders) if spec.get("classnames")
                  else list(folders))
    rng = np.random.default_rng(SPLIT_SEED)
    splits: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLIT_NAMES}
    for label, folder in enumerate(folders):
        files = listing[folder]
        counts = split_counts(len(files), spec["split"], where=f"{name}: class folder {root / folder}")
        order = rng.permutation(len(files))
        bounds = {"train": (0, counts["train"]), "val": (counts["train"], counts["train"] + counts["val"]),
                  "test": (counts["train"] + counts["val"], len(files))}
        for split_name, (lo, hi) in bounds.items():
            splits[split_name].extend((f"{folder}/{files[i]}", label) for i in sorted(order[lo:hi]))
    fingerprint = {"root": str(root), "classnames": classnames, "split": spec["split"], "listing": listing}
    return Converted(classnames, splits, root), fingerprint


def prepare_custom(name: str, spec: dict, data_root: str | Path) -> Path:
    """Write ``<data_root>/<name>/split.json`` for the custom dataset `spec` (a preset entry).

    Returns at once when the existing split.json was made from the same folder content, mapping
    and fractions. Every image is decoded first; a missing folder, a class folder without images,
    an unreadable image or a bad mapping stops with a message naming it, and no split.json.
    """
    spec = check_custom_datasets({name: spec})[name]
    root = Path(spec["root"]).expanduser().absolute()
    out_dir = Path(data_root) / name
    split_path = out_dir / "split.json"
    converted, fingerprint = _read_folder(name, root, spec)
    digest = sha256_json(fingerprint)
    if split_path.is_file():
        try:
            current = json.loads(split_path.read_text()).get("custom_sha256")
            load_split(split_path)
        except (ValueError, OSError):
            current = None
        if current == digest:
            return split_path
    verify_images(name, root, converted, level="decode",
                  fix=f"remove or replace those files in {root}, then rerun")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_split(split_path, name, converted.classnames, os.path.relpath(root, out_dir.absolute()),
                converted.splits, custom_sha256=digest)
    counts = " / ".join(f"{converted.count(s)} {s}" for s in SPLIT_NAMES)
    log.info(f"{name}: {len(converted.classnames)} classes ({counts}) from {root} -> {split_path}")
    return split_path
