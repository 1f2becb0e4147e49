"""ame.data.convert: CoOp split files are read strictly and checked against the protocol's class
count and split sizes; only the documented test switch (AME_TEST_SMALL_SPLITS=1) relaxes that."""

import json
import logging

import pytest

from ame.data.convert import SMALL_SPLITS, Converted, check_sizes, read_zhou_split
from ame.data.registry import SplitSizes

SIZES = SplitSizes(train=4, val=2, test=4)


def _split_file(tmp_path, classes=2, per_split=2):
    obj = {name: [[f"c{c}/{name}{i}.jpg", c, f"class_{c}"] for c in range(classes) for i in range(per_split)]
           for name in ("train", "val", "test")}
    path = tmp_path / "split_zhou_Test.json"
    path.write_text(json.dumps(obj))
    return path


def test_a_split_file_gives_class_names_in_label_order_and_items_in_file_order(tmp_path):
    converted = read_zhou_split(_split_file(tmp_path), num_classes=2)
    assert converted.classnames == ["class_0", "class_1"]
    assert converted.splits["train"] == [("c0/train0.jpg", 0), ("c0/train1.jpg", 0), ("c1/train0.jpg", 1),
                                         ("c1/train1.jpg", 1)]


def test_a_class_count_other_than_the_protocols_is_refused(tmp_path):
    with pytest.raises(ValueError):
        read_zhou_split(_split_file(tmp_path, classes=2), num_classes=47)


def test_split_sizes_other_than_the_protocols_stop_preparation(monkeypatch):
    monkeypatch.delenv(SMALL_SPLITS, raising=False)
    small = Converted(["a"], {"train": [("x.jpg", 0)] * 3, "val": [], "test": [("y.jpg", 0)] * 4})
    with pytest.raises(ValueError, match="the train split has 3 images but the protocol's has 4"):
        check_sizes("Test", small, SIZES, "fix it")
    check_sizes("Test", Converted(["a"], {"train": [("x.jpg", 0)] * 4, "test": [("y.jpg", 0)] * 4}), SIZES, "")


def test_the_test_switch_turns_size_errors_into_warnings_and_only_the_value_1_is_accepted(monkeypatch, caplog):
    small = Converted(["a"], {"train": [("x.jpg", 0)] * 3, "val": [], "test": [("y.jpg", 0)] * 4})
    monkeypatch.setenv(SMALL_SPLITS, "1")
    with caplog.at_level(logging.WARNING, logger="ame"):
        check_sizes("Test", small, SIZES, "fix it")
    assert "Test: train has 3 images, the protocol's 4; accepted because AME_TEST_SMALL_SPLITS=1" in caplog.text
    monkeypatch.setenv(SMALL_SPLITS, "yes")
    with pytest.raises(ValueError, match="AME_TEST_SMALL_SPLITS='yes': set it to 1"):
        check_sizes("Test", small, SIZES, "fix it")
