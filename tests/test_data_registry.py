"""Dataset registry: canonical ids, aliases, and what `prepare` does per kind."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ame.data import (
    DATASET_NAMES,
    DATASETS,
    DIGIT_WORDS,
    EMBEDDED_DATASETS,
    PAPER_DATASETS,
    canonical_name,
    load_split,
    prepare_dataset,
)
from ame.data import embedded
from ame.io import write_json

PAPER = ["ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "Flowers102", "Food101",
         "FGVCAircraft", "SUN397", "DTD", "EuroSAT", "UCF101"]


def test_registry_holds_two_embedded_and_the_eleven_paper_datasets():
    assert sorted(PAPER_DATASETS) == sorted(PAPER)
    assert sorted(EMBEDDED_DATASETS) == ["Digits", "MNIST"]
    assert DATASET_NAMES == sorted(PAPER + ["Digits", "MNIST"])
    assert all(DATASETS[n].kind == "remote" for n in PAPER)
    assert all(DATASETS[n].kind == "embedded" for n in EMBEDDED_DATASETS)


def test_every_entry_states_a_licence_and_class_name_source():
    for info in DATASETS.values():
        assert info.licence and info.classnames_source and info.num_classes >= 2


def test_dataset_info_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS["DTD"].name = "x"


@pytest.mark.parametrize("alias, canonical", [
    ("OxfordFlowers", "Flowers102"), ("Flowers", "Flowers102"), ("oxford_flowers", "Flowers102"),
    ("DescribableTextures", "DTD"), ("dtd", "DTD"),
    ("FGVC Aircraft", "FGVCAircraft"), ("fgvc_aircraft", "FGVCAircraft"), ("Aircraft", "FGVCAircraft"),
    ("oxford_pets", "OxfordPets"), ("Pets", "OxfordPets"), ("Caltech", "Caltech101"),
    ("Cars", "StanfordCars"), ("stanford_cars", "StanfordCars"), ("Food", "Food101"),
    ("food-101", "Food101"), ("SUN", "SUN397"), ("UCF", "UCF101"), ("imagenet", "ImageNet"),
    ("EUROSAT", "EuroSAT"), ("digits", "Digits"), ("mnist", "MNIST"),
])
def test_aliases_resolve_case_insensitively(alias, canonical):
    assert canonical_name(alias) == canonical
    assert canonical_name(alias.upper()) == canonical


def test_every_canonical_name_and_alias_resolves_to_its_own_entry():
    for name, info in DATASETS.items():
        assert canonical_name(name) == name
        for alias in info.aliases:
            assert canonical_name(alias) == name


def test_unknown_dataset_error_lists_allowed_names():
    with pytest.raises(ValueError) as err:
        canonical_name("CIFAR10")
    message = str(err.value)
    assert "CIFAR10" in message
    assert all(name in message for name in DATASET_NAMES)


def test_embedded_class_names_are_english_digit_words():
    assert DIGIT_WORDS == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                           "nine")


def test_remote_prepare_offline_names_what_to_place_where_and_makes_nothing(tmp_path, monkeypatch):
    from ame.fetch import FetchError

    monkeypatch.setenv("AME_OFFLINE", "1")  # the download path itself is tested in test_data_remote*.py
    with pytest.raises(FetchError) as err:
        prepare_dataset("Flowers", tmp_path)
    message = str(err.value)
    assert "Flowers102: could not download the dataset" in message
    assert str(tmp_path / "Flowers102" / "raw") in message
    assert not (tmp_path / "Flowers102").exists()  # nothing half-made


def test_remote_prepare_accepts_a_hand_placed_valid_split(tmp_path):
    folder = tmp_path / "DTD"
    (folder / "img").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (folder / "img" / name).write_bytes(b"")
    write_json(folder / "split.json", {"dataset": "DTD", "classnames": ["banded", "woven"],
                                       "root": "img", "train": [["a.jpg", 0]], "test": [["b.jpg", 1]]})
    assert prepare_dataset("dtd", tmp_path) == folder / "split.json"


def test_prepare_dataset_writes_embedded_sets_under_data_root_slash_canonical_name(tmp_path,
                                                                                   monkeypatch):
    # A tiny stand-in loader keeps this test fast; the real loaders are tested in test_data_embedded.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    monkeypatch.setitem(embedded.LOADERS, "Digits", lambda: (images, np.arange(40) % 10))
    path = prepare_dataset("DIGITS", tmp_path)
    assert path == tmp_path / "Digits" / "split.json"
    assert load_split(path).dataset == "Digits"
