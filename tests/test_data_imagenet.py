"""ImageNet: placed by hand, validated with messages that say how to fix the layout, split in place."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ame.data import load_split
from ame.data import sources
from ame.data.registry import DATASETS, SplitSizes
from ame.data.remote import prepare_remote
from tests.fileserver import serve
from tests.remote_fixtures import jpeg, serve_on_drive

WNIDS = ["n01440764", "n01443537", "n01484850"]
NAMES = ["tench", "goldfish", "great white shark"]
CLASSNAMES_ID = "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"


def _info():
    base = DATASETS["ImageNet"]
    return dataclasses.replace(base, num_classes=3,
                               remote=dataclasses.replace(base.remote, sizes=SplitSizes(6, None, 3)))


def _place(root, flat_val=False, classnames=True):
    """A 3-class ImageNet in CoOp's layout under root/ImageNet/raw: 2 train and 1 val image per class."""
    raw = root / "ImageNet" / "raw"
    for i, wnid in enumerate(WNIDS):
        (raw / "images" / "train" / wnid).mkdir(parents=True)
        for j in range(2):
            (raw / "images" / "train" / wnid / f"{wnid}_{j}.JPEG").write_bytes(jpeg(i * 2 + j))
        val = raw / "images" / "val" if flat_val else raw / "images" / "val" / wnid
        val.mkdir(parents=True, exist_ok=True)
        (val / f"ILSVRC2012_val_0000000{i + 1}.JPEG").write_bytes(jpeg(10 + i))
    if classnames:
        (raw / "classnames.txt").write_text("".join(f"{w} {n}\n" for w, n in zip(WNIDS, NAMES)))
    return raw


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("AME_OFFLINE", "1")


def test_imagenet_split_points_into_the_raw_tree_in_place(tmp_path):
    raw = _place(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    path = prepare_remote(_info(), tmp_path)
    split = load_split(path)
    assert json.loads(path.read_text())["root"] == "raw/images"
    assert split.classnames == NAMES  # label = index of the wnid among the sorted train folders
    assert split.train[:3] == [("train/n01440764/n01440764_0.JPEG", 0), ("train/n01440764/n01440764_1.JPEG", 0),
                               ("train/n01443537/n01443537_0.JPEG", 1)]
    assert split.test == [(f"val/{w}/ILSVRC2012_val_0000000{i + 1}.JPEG", i) for i, w in enumerate(WNIDS)]
    assert split.val == []
    assert sorted(tmp_path.rglob("*")) == sorted(before + [path])  # nothing copied, only split.json added
    assert split.root == raw / "images"


def test_missing_imagenet_explains_the_licence_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        prepare_remote(_info(), tmp_path)
    images = tmp_path / "ImageNet" / "raw" / "images"
    assert str(err.value) == (
        "ImageNet cannot be downloaded automatically: its terms of access forbid redistribution. Download "
        "ILSVRC2012 (the training and the validation images) from https://image-net.org/download.php, then "
        f"make {images} hold two folders, train/ and val/, each with one sub-folder per class named by its "
        "WordNet id (n01440764/, n01443537/, ...). Links are fine and nothing is copied: "
        f"mkdir -p {images} && ln -s /path/to/ILSVRC2012/train {images}/train && "
        f"ln -s /path/to/ILSVRC2012/val {images}/val . Then rerun. See docs/datasets.md (ImageNet).")
    assert list(tmp_path.iterdir()) == []


def test_flat_imagenet_val_folder_is_explained(tmp_path):
    raw = _place(tmp_path, flat_val=True)
    with pytest.raises(ValueError) as err:
        prepare_remote(_info(), tmp_path)
    val = raw / "images" / "val"
    assert str(err.value) == (
        f"ImageNet: {val} holds 3 images directly instead of one sub-folder per class, so the test split "
        f"would be empty. Sort them into class folders: cd {val} && wget -qO- "
        "https://raw.githubusercontent.com/soumith/imagenetloader.torch/master/valprep.sh | bash (it creates "
        "the 1,000 n* folders and moves each ILSVRC2012_val_*.JPEG into its class), then rerun.")
    assert not (tmp_path / "ImageNet" / "split.json").exists()


def test_unextracted_per_class_train_archives_are_explained(tmp_path):
    raw = tmp_path / "ImageNet" / "raw"
    (raw / "images" / "val").mkdir(parents=True)
    (raw / "images" / "train").mkdir(parents=True)
    for wnid in WNIDS:
        (raw / "images" / "train" / f"{wnid}.tar").write_bytes(b"x")
    train = raw / "images" / "train"
    with pytest.raises(ValueError) as err:
        prepare_remote(_info(), tmp_path)
    assert str(err.value) == (
        f"ImageNet: {train} holds 3 per-class .tar archives that are not extracted yet. Extract each into a "
        f"folder of its name: cd {train} && for f in *.tar; do d=${{f%.tar}}; mkdir -p $d && tar -xf $f -C $d "
        "&& rm $f; done . Then rerun.")


def test_missing_val_folder_and_differing_class_folders_are_named(tmp_path):
    raw = _place(tmp_path)
    val = raw / "images" / "val"
    (val / WNIDS[2]).rename(val / "n99999999")
    with pytest.raises(ValueError) as err:
        prepare_remote(_info(), tmp_path)
    assert str(err.value) == (
        f"ImageNet: the class folders of {val} and {raw / 'images' / 'train'} differ (1 only in train, e.g. "
        "n01484850; 1 only in val, e.g. n99999999); both must hold the same 3 WordNet-id folders. Then rerun.")
    for sub in val.iterdir():
        for f in sub.iterdir():
            f.unlink()
        sub.rmdir()
    val.rmdir()
    with pytest.raises(FileNotFoundError) as err:
        prepare_remote(_info(), tmp_path)
    assert str(err.value) == (
        f"ImageNet: {val} is missing; it must hold the validation images in one sub-folder per class "
        f"(n01440764/, n01443537/, ...), e.g. ln -s /path/to/ILSVRC2012/val {val} . Then rerun.")


def test_empty_class_folder_is_named(tmp_path):
    raw = _place(tmp_path)
    for f in (raw / "images" / "train" / WNIDS[1]).iterdir():
        f.unlink()
    with pytest.raises(ValueError) as err:
        prepare_remote(_info(), tmp_path)
    assert str(err.value) == (f"ImageNet: class folder {raw / 'images' / 'train' / WNIDS[1]} holds no images; "
                              "restore it from your ImageNet copy, then rerun.")


def test_missing_classnames_offline_says_where_to_get_it(tmp_path):
    raw = _place(tmp_path, classnames=False)
    with pytest.raises(FileNotFoundError) as err:
        prepare_remote(_info(), tmp_path)
    assert str(err.value) == (
        f"ImageNet: classnames.txt is neither at {raw / 'classnames.txt'} nor at "
        f"{tmp_path / 'ImageNet' / 'classnames.txt'}, and downloading it failed (ImageNet/classnames.txt: not "
        "downloaded because AME_OFFLINE is set). Download CoOp's classnames.txt (CLIP's class names) from "
        f"https://drive.google.com/file/d/{CLASSNAMES_ID}/view and place it at "
        f"{tmp_path / 'ImageNet' / 'classnames.txt'}, then rerun.")


def test_missing_classnames_is_fetched_from_drive_beside_split_json(tmp_path, monkeypatch):
    monkeypatch.delenv("AME_OFFLINE")
    _place(tmp_path, classnames=False)
    text = "".join(f"{w} {n}\n" for w, n in zip(WNIDS, NAMES)).encode()
    with serve({}) as (url, handler):
        monkeypatch.setattr(sources, "DRIVE_DOWNLOAD", url + "/uc?export=download&id={id}")
        serve_on_drive(handler, url, CLASSNAMES_ID, text, confirm=False)
        split = load_split(prepare_remote(_info(), tmp_path))
    assert split.classnames == NAMES
    assert (tmp_path / "ImageNet" / "classnames.txt").read_bytes() == text
