"""K-shot sampling: Dassl compatibility, determinism, and the SHOTS file contract."""

from __future__ import annotations

import random

import pytest

from ame.contracts import SHOTS, validate
from ame.data import load_split, read_shots, sample_shots, write_shots
from ame.io import read_json, write_json


def _synthetic_train():
    """Labels interleaved and unevenly sized; class 3 has only 2 items (fewer than most K)."""
    sizes = {0: 9, 1: 12, 2: 7, 3: 2, 4: 20}
    rng = random.Random(99)
    labels = [label for label, n in sizes.items() for _ in range(n)]
    rng.shuffle(labels)
    return [(f"img/{i:03d}.png", label) for i, label in enumerate(labels)]


def _dassl_reference(items, k, seed):
    """Independent re-statement of Dassl's generate_fewshot_dataset(repeat=True) as CoOp calls it:
    Python `random`, labels in order of first appearance, `random.sample` per label; a class with
    fewer than k items draws `random.choices(group, k=k)` there, which we replace by the whole group
    (design §1: no duplicates) while keeping the draw, so later classes are unaffected."""
    random.seed(seed)
    tracker = {}
    for item in items:
        tracker.setdefault(item[1], []).append(item)
    picked = []
    for group in tracker.values():
        if len(group) >= k:
            picked.extend(random.sample(group, k))
        else:
            random.choices(group, k=k)
            picked.extend(group)
    return picked


@pytest.mark.parametrize("k", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sampling_matches_the_dassl_reference(k, seed):
    items = _synthetic_train()
    state = random.getstate()
    expected = _dassl_reference(items, k, seed)
    random.setstate(state)
    assert [items[i] for i in sample_shots(items, k, seed)] == expected


def test_small_class_keeps_its_items_but_consumes_dassls_draws_so_later_classes_match():
    # Labels first appear as 2, 0, 1 (like CoOp's StanfordCars/Flowers102 splits); class 0 is small.
    items = [(f"a{i}", 2) for i in range(10)] + [("b0", 0), ("b1", 0)] + [(f"c{i}", 1) for i in range(10)]
    random.seed(1)
    dassl = []
    for group in ([x for x in items if x[1] == 2], [x for x in items if x[1] == 0], [x for x in items if x[1] == 1]):
        dassl.extend(random.sample(group, 4) if len(group) >= 4 else random.choices(group, k=4))
    ours = [items[i] for i in sample_shots(items, 4, seed=1)]
    assert ours[:4] == dassl[:4] and ours[-4:] == dassl[-4:]
    assert ours[4:6] == [("b0", 0), ("b1", 0)]


def test_same_seed_gives_same_indices_and_seeds_1_and_2_differ():
    items = _synthetic_train()
    assert sample_shots(items, 4, 1) == sample_shots(items, 4, 1)
    assert sample_shots(items, 4, 1) != sample_shots(items, 4, 2)


def test_k_per_class_and_small_classes_contribute_everything():
    items = _synthetic_train()
    chosen = sample_shots(items, 4, seed=1)
    labels = [items[i][1] for i in chosen]
    first_seen = list(dict.fromkeys(label for _, label in items))
    assert labels == sorted(labels, key=first_seen.index)  # grouped, labels in order of first appearance
    assert {label: labels.count(label) for label in set(labels)} == {0: 4, 1: 4, 2: 4, 3: 2, 4: 4}
    assert len(set(chosen)) == len(chosen)


def test_full_returns_every_train_index_in_order():
    items = _synthetic_train()
    assert sample_shots(items, "full", seed=5) == list(range(len(items)))


def test_sampling_leaves_the_global_random_state_alone():
    state = random.getstate()
    sample_shots(_synthetic_train(), 2, seed=7)
    assert random.getstate() == state


@pytest.mark.parametrize("bad", [0, -1, "16", "all", 1.5, True, None])
def test_invalid_shots_error_names_the_allowed_values(bad):
    with pytest.raises(ValueError, match="positive integer.*'full'"):
        sample_shots(_synthetic_train(), bad, seed=1)


@pytest.fixture
def split_path(tmp_path):
    items = _synthetic_train()
    write_json(tmp_path / "split.json", {"dataset": "Toy", "classnames": list("abcde"), "root": ".",
                                         "train": [list(x) for x in items], "test": [list(items[0])]})
    return tmp_path / "split.json"


def test_shots_file_round_trips_and_follows_the_contract(split_path, tmp_path):
    out = write_shots(split_path, 2, 1, tmp_path / "shots" / "2_seed1.json")
    obj = validate(read_json(out), SHOTS, where=str(out))
    assert obj == {"dataset": "Toy", "shots": 2, "seed": 1,
                   "indices": sample_shots(load_split(split_path).train, 2, 1)}
    assert read_shots(out, split=load_split(split_path)) == obj
    assert write_shots(split_path, "full", 1, tmp_path / "full.json") == tmp_path / "full.json"


def test_shots_file_with_out_of_range_index_is_rejected_naming_it(split_path, tmp_path):
    write_json(tmp_path / "bad.json", {"dataset": "Toy", "shots": 1, "seed": 1, "indices": [999]})
    with pytest.raises(ValueError, match=r"bad\.json: index 999 out of range"):
        read_shots(tmp_path / "bad.json", split=load_split(split_path))
    write_json(tmp_path / "worse.json", {"dataset": "Toy", "shots": 0, "seed": 1, "indices": [0]})
    with pytest.raises(ValueError, match=r"worse\.json: key 'shots'"):
        read_shots(tmp_path / "worse.json")
