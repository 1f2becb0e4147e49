"""split.json reading: validation, root resolution, base/new partition, missing images."""

from __future__ import annotations

import pytest

from ame.data import load_split
from ame.io import write_json


def _write(folder, classnames=("a", "b", "c"), root="img", **extra):
    obj = {"dataset": "Toy", "classnames": list(classnames), "root": root,
           "train": [["x0.png", 0], ["x1.png", 1], ["x2.png", 2]], "test": [["t0.png", 0]]}
    obj.update(extra)
    write_json(folder / "split.json", obj)
    return folder / "split.json"


@pytest.mark.parametrize("num_classes, n_base", [(10, 5), (37, 19), (47, 24), (3, 2)])
def test_base_is_first_ceil_half_of_labels_and_new_the_rest(tmp_path, num_classes, n_base):
    split = load_split(_write(tmp_path, classnames=[f"c{i}" for i in range(num_classes)]))
    assert split.num_classes == num_classes
    assert split.base_labels() == list(range(n_base))
    assert split.new_labels() == list(range(n_base, num_classes))


def test_ten_classes_split_into_labels_0_to_4_and_5_to_9(tmp_path):
    split = load_split(_write(tmp_path, classnames=[str(i) for i in range(10)]))
    assert (split.base_labels(), split.new_labels()) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])


def test_relative_root_resolves_against_the_split_folder_and_absolute_root_is_kept(tmp_path):
    split = load_split(_write(tmp_path))
    assert split.items("train")[1] == (tmp_path / "img" / "x1.png", 1)
    elsewhere = tmp_path / "raw"
    split = load_split(_write(tmp_path, root=str(elsewhere)))
    assert split.items("test") == [(elsewhere / "t0.png", 0)]


def test_items_filter_by_labels_and_missing_val_is_empty(tmp_path):
    split = load_split(_write(tmp_path))
    assert [label for _, label in split.items("train", labels=[0, 2])] == [0, 2]
    assert split.items("val") == []
    with pytest.raises(ValueError, match="split name"):
        split.items("validation")


def test_contract_violation_error_names_the_file_and_key(tmp_path):
    path = _write(tmp_path, train=[["x0.png", -1]])
    with pytest.raises(ValueError, match=r"split\.json: key 'train/0/1'"):
        load_split(path)


def test_label_beyond_the_class_list_is_rejected_naming_the_file(tmp_path):
    path = _write(tmp_path, test=[["t0.png", 3]])
    with pytest.raises(ValueError, match=r"split\.json.*out of range"):
        load_split(path)


def test_check_images_exist_names_the_first_missing_file(tmp_path):
    split = load_split(_write(tmp_path))
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x0.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"x1\.png.*re-run the prepare step"):
        split.check_images_exist()
