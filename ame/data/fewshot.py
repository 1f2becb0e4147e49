"""K-shot sampling of the training split, identical to Dassl's ``generate_fewshot_dataset``.

Reference behaviour (Dassl ``DatasetBase.generate_fewshot_dataset(*data_sources, num_shots=-1,
repeat=False)``, which CoOp's and PromptKD's datasets call as ``generate_fewshot_dataset(train,
num_shots=num_shots)``, after the trainer's ``set_random_seed(seed)`` has run ``random.seed(seed)``):
group the training items by label; for each label **in order of first appearance in the training
list** (Dassl's ``defaultdict``), take ``random.sample(items_of_that_label, K)`` when the label has
at least K items, and otherwise all of its items, in split order, **without drawing any random
number** (``repeat=False``). Items of a label keep their split order. ``random.sample`` consumes the
generator according to the population's length only, so sampling positions within a label's list
picks exactly the items Dassl would pick from its list of Datum objects.

First-appearance order matters: CoOp's split files for StanfordCars and Flowers102, for instance,
list their training classes in a non-ascending order, and visiting labels in sorted order would give
every class other random numbers than the reference's. Likewise, drawing anything for a class
smaller than K would shift the picks of every later class.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from ..contracts import SHOTS, validate
from ..io import read_json, write_json
from .splits import Split, load_split


def _check_shots(shots: Any) -> None:
    ok = shots == "full" or (isinstance(shots, int) and not isinstance(shots, bool) and shots >= 1)
    if not ok:
        raise ValueError(f"shots must be a positive integer (K per class) or 'full', got {shots!r}")


def sample_shots(train_items: Sequence[Sequence[Any]], shots: int | str, seed: int) -> list[int]:
    """Indices into `train_items` (``(path, label)`` pairs) of the K-shot subset.

    Order: labels in order of first appearance; within a label, the order ``random.sample``
    returned (not sorted), so the list is exactly the sequence Dassl's sampler produces (classes
    smaller than K: all their items, in split order, drawing nothing). ``shots="full"`` returns
    every index in split order. Equivalent to Dassl's ``random.seed(seed)`` + sampling but leaves
    the global `random` state untouched.
    """
    _check_shots(shots)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if len(train_items) == 0:
        raise ValueError("cannot sample shots from an empty training split")
    if shots == "full":
        return list(range(len(train_items)))
    by_label: dict[int, list[int]] = defaultdict(list)  # insertion order = first appearance
    for index, item in enumerate(train_items):
        by_label[int(item[1])].append(index)
    # A private Random(seed) draws exactly what random.seed(seed) + random.sample would, without
    # disturbing the global state other code (e.g. data augmentation) relies on.
    rng = random.Random(seed)
    chosen: list[int] = []
    for members in by_label.values():
        if len(members) >= shots:
            chosen.extend(rng.sample(members, shots))
        else:
            chosen.extend(members)  # Dassl's repeat=False: the whole class, no random draw
    return chosen


def write_shots(split_path: str | Path, shots: int | str, seed: int, out_path: str | Path) -> Path:
    """Sample shots from the split.json at `split_path` and write the SHOTS contract to `out_path`.

    Output: ``{"dataset", "shots", "seed", "indices"}``, validated, written atomically.
    """
    split = load_split(split_path)
    obj = {
        "dataset": split.dataset,
        "shots": shots,
        "seed": seed,
        "indices": sample_shots(split.train, shots, seed),
    }
    validate(obj, SHOTS, where=str(out_path))
    write_json(out_path, obj)
    return Path(out_path)


def read_shots(path: str | Path, split: Split | None = None) -> dict:
    """Read and validate a shots file; with `split`, also check it belongs to that split."""
    obj = validate(read_json(path), SHOTS, where=str(path))
    if split is not None:
        if obj["dataset"] != split.dataset:
            raise ValueError(f"{path}: dataset {obj['dataset']!r} != {split.dataset!r} of {split.path}")
        bad = [i for i in obj["indices"] if i >= len(split.train)]
        if bad:
            raise ValueError(
                f"{path}: index {bad[0]} out of range for the {len(split.train)} train items of "
                f"{split.path}; re-run the sample_shots step"
            )
    return obj
