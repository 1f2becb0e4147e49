"""Embedded mini datasets: PNGs + split.json per the contract, 50/20/30 per class, atomic, idempotent."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from ame.contracts import SPLIT, validate
from ame.data import DIGIT_WORDS, embedded, load_split, prepare_embedded, split_indices
from ame.io import read_json


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The real Digits set, prepared once for this module (about 1 s)."""
    out = tmp_path_factory.mktemp("data") / "Digits"
    return prepare_embedded("Digits", out)


@pytest.fixture
def tiny_loader(monkeypatch):
    """Replace the Digits loader with 10 classes x 6 random 8x8 images, for fast write tests."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 8, 8), dtype=np.uint8)
    labels = np.arange(60) % 10
    monkeypatch.setitem(embedded.LOADERS, "Digits", lambda: (images, labels))
    return images, labels


def test_split_json_follows_the_contract(digits):
    obj = validate(read_json(digits), SPLIT, where=str(digits))
    assert obj["dataset"] == "Digits"
    assert obj["root"] == "images"
    assert obj["classnames"] == list(DIGIT_WORDS)
    entries = obj["train"] + obj["val"] + obj["test"]
    assert len(entries) == 1797
    for split_name in ("train", "val", "test"):
        for rel, label in obj[split_name]:
            assert re.fullmatch(rf"{split_name}/{label}/\d+\.png", rel)
    load_split(digits).check_images_exist()


def test_split_is_50_20_30_within_every_class_and_partitions_the_data(digits):
    _, labels = embedded.LOADERS["Digits"]()
    split = load_split(digits)
    seen = []
    for label in range(10):
        n = int((labels == label).sum())
        counts = [len(split.items(s, labels=[label])) for s in ("train", "val", "test")]
        assert counts == [round(0.5 * n), round(0.2 * n), n - round(0.5 * n) - round(0.2 * n)]
    for s in ("train", "val", "test"):
        seen += [int(re.search(r"(\d+)\.png$", rel).group(1)) for rel, _ in getattr(split, s)]
    assert sorted(seen) == list(range(1797))  # every image exactly once


def test_pngs_hold_the_source_pixels_at_native_resolution(digits):
    images, labels = embedded.LOADERS["Digits"]()
    split = load_split(digits)
    for path, label in split.items("test")[:5]:
        index = int(path.stem)
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (8, 8)
            assert np.array_equal(np.asarray(img), images[index])
        assert labels[index] == label
    assert images.max() == 255  # 0..16 stretched to the full byte range


def test_split_depends_only_on_labels_and_the_fixed_seed():
    labels = np.repeat(np.arange(5), 20)
    assert split_indices(labels) == split_indices(labels)
    assert split_indices(labels) != split_indices(labels, seed=embedded.SPLIT_SEED + 1)


def test_second_prepare_does_not_rewrite(digits, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in [digits, *sorted(digits.parent.rglob("*.png"))[:20]]}

    def must_not_load():
        raise AssertionError("a valid dataset was rebuilt")

    monkeypatch.setitem(embedded.LOADERS, "Digits", must_not_load)
    assert prepare_embedded("digits", digits.parent) == digits
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_interrupted_write_leaves_no_dataset_and_no_temp_folder(tmp_path, tiny_loader, monkeypatch):
    calls = []
    real_save = embedded._save_png

    def failing_save(pixels, dest):
        calls.append(dest)
        if len(calls) == 7:
            raise KeyboardInterrupt  # what a Ctrl-C mid-write looks like
        real_save(pixels, dest)

    monkeypatch.setattr(embedded, "_save_png", failing_save)
    with pytest.raises(KeyboardInterrupt):
        prepare_embedded("Digits", tmp_path / "Digits")
    assert list(tmp_path.iterdir()) == []


def test_missing_split_json_is_rebuilt_keeping_other_files(tmp_path, tiny_loader):
    out = tmp_path / "Digits"
    (out / "shots").mkdir(parents=True)
    (out / "shots" / "keep.json").write_text("{}")
    (out / "images").mkdir()
    (out / "images" / "stale.png").write_bytes(b"old")
    (out / "split.json").write_text("{not json")
    path = prepare_embedded("Digits", out)
    load_split(path).check_images_exist()
    assert (out / "shots" / "keep.json").exists()
    assert not (out / "images" / "stale.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Digits"]


def test_leftover_temp_folder_of_a_killed_run_is_removed(tmp_path, tiny_loader):
    stale = tmp_path / ".Digits.123.abcd.tmp"
    (stale / "images").mkdir(parents=True)
    prepare_embedded("Digits", tmp_path / "Digits")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Digits"]


def test_prepare_embedded_rejects_remote_datasets(tmp_path):
    with pytest.raises(ValueError, match="not an embedded dataset"):
        prepare_embedded("DTD", tmp_path / "DTD")


def test_mnist_loader_gives_500_grey_28x28_images_per_class():
    images, labels = embedded.LOADERS["MNIST"]()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
