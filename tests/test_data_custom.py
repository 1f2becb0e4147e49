"""Custom datasets: a folder of class sub-folders + one preset entry -> split.json, sampling, config, CLI."""

from __future__ import annotations

import json

import pytest
import yaml

from ame.data import load_split, prepare_dataset, read_shots, write_shots
from ame.data.custom import split_counts
from ame.spec import ConfigError, load_preset, validate_preset
from tests.remote_fixtures import jpeg

CLASSES = ["cat", "dog", "fox"]


def _folder(root, per_class=5):
    for i, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for j in range(per_class):
            (root / name / f"{j:02d}.jpg").write_bytes(jpeg(i * per_class + j))
        (root / name / "notes.txt").write_text("not an image")  # ignored
    return root


def _preset(**custom):
    # image_size: the default tiny models take 32-px images (the schema's default is 224)
    return {"preset": "mine", "datasets": ["MyPets"], "shots": [2], "seeds": [1], "methods": ["pkd"],
            "augment": {"image_size": 32}, "custom_datasets": custom}


def test_image_folder_becomes_a_split_pointing_into_it_in_place(tmp_path):
    root = _folder(tmp_path / "pets")
    custom = {"MyPets": {"root": str(root)}}
    path = prepare_dataset("MyPets", tmp_path / "data", custom=custom)
    split = load_split(path)
    assert path == tmp_path / "data" / "MyPets" / "split.json"
    assert json.loads(path.read_text())["root"] == "../../pets"
    assert split.classnames == CLASSES
    # CoOp's 50/20/30 per class of 5: round(2.5) = 2 train, 1 val, 2 test.
    assert [len(split.train), len(split.val), len(split.test)] == [6, 3, 6]
    assert [label for _, label in split.train] == [0, 0, 1, 1, 2, 2]
    assert all(rel.endswith(".jpg") for rel, _ in split.train + split.val + split.test)
    split.check_images_exist()
    assert sorted(p.name for p in (tmp_path / "data" / "MyPets").iterdir()) == ["split.json"]  # nothing copied
    shots = write_shots(path, 1, 1, tmp_path / "data" / "MyPets" / "shots" / "1_seed1.json")
    assert len(read_shots(shots, split)["indices"]) == 3
    # Deterministic, and not redone while folder and entry are unchanged.
    mtime = path.stat().st_mtime_ns
    assert prepare_dataset("MyPets", tmp_path / "data", custom=custom) == path
    assert path.stat().st_mtime_ns == mtime


def test_changed_fractions_or_new_images_rebuild_the_split(tmp_path):
    root = _folder(tmp_path / "pets")
    path = prepare_dataset("MyPets", tmp_path / "data", custom={"MyPets": {"root": str(root)}})
    custom = {"MyPets": {"root": str(root), "split": {"train": 0.6, "val": 0.0, "test": 0.4}}}
    assert len(load_split(prepare_dataset("MyPets", tmp_path / "data", custom=custom)).train) == 9
    (root / "cat" / "99.jpg").write_bytes(jpeg(99))
    assert len(load_split(prepare_dataset("MyPets", tmp_path / "data", custom=custom)).items("train", [0])) == 4
    assert path.exists()


@pytest.mark.parametrize("suffix, text", [
    (".json", json.dumps({"cat": "tabby cat", "dog": "golden retriever", "fox": "red fox"})),
    (".txt", "cat tabby cat\ndog golden retriever\nfox red fox\n"),
])
def test_class_name_mapping_file_renames_the_classes(tmp_path, suffix, text):
    root = _folder(tmp_path / "pets")
    (tmp_path / f"names{suffix}").write_text(text)
    custom = {"MyPets": {"root": str(root), "classnames": str(tmp_path / f"names{suffix}")}}
    split = load_split(prepare_dataset("MyPets", tmp_path / "data", custom=custom))
    assert split.classnames == ["tabby cat", "golden retriever", "red fox"]


def test_mapping_without_a_folder_names_the_folder(tmp_path):
    root = _folder(tmp_path / "pets")
    (tmp_path / "names.json").write_text(json.dumps({"cat": "tabby cat"}))
    with pytest.raises(ValueError, match=r"names\.json: no class name for the folder\(s\) dog, fox; add them"):
        prepare_dataset("MyPets", tmp_path / "data",
                        custom={"MyPets": {"root": str(root), "classnames": str(tmp_path / "names.json")}})


def test_class_folder_with_no_images_is_named_and_nothing_is_written(tmp_path):
    root = _folder(tmp_path / "pets")
    (root / "emu").mkdir()
    (root / "emu" / "readme.txt").write_text("no pictures yet")
    with pytest.raises(ValueError) as err:
        prepare_dataset("MyPets", tmp_path / "data", custom={"MyPets": {"root": str(root)}})
    assert str(err.value) == (f"MyPets: class folder {root / 'emu'} has no images (.jpg, .jpeg, .png, .bmp, "
                              ".gif, .webp, .tif, .tiff); add images or remove the folder")
    assert not (tmp_path / "data").exists()


def test_unreadable_image_is_named_and_nothing_is_written(tmp_path):
    root = _folder(tmp_path / "pets")
    (root / "dog" / "03.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError) as err:
        prepare_dataset("MyPets", tmp_path / "data", custom={"MyPets": {"root": str(root)}})
    message = str(err.value)
    assert message.startswith(f"MyPets: 1 of 15 listed images are missing, truncated or unreadable: {root / 'dog' / '03.jpg'} (")
    assert message.endswith(f"Remove or replace those files in {root}, then rerun")
    assert not (tmp_path / "data" / "MyPets" / "split.json").exists()


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"custom dataset folder .*nowhere does not exist; fix "
                                                r"custom_datasets\.MyPets\.root"):
        prepare_dataset("MyPets", tmp_path / "data", custom={"MyPets": {"root": str(tmp_path / "nowhere")}})


def test_each_class_gets_a_train_and_a_test_image_when_it_can():
    assert split_counts(5, {"train": 0.5, "val": 0.2, "test": 0.3}) == {"train": 2, "val": 1, "test": 2}
    assert split_counts(3, {"train": 0.5, "val": 0.2, "test": 0.3}) == {"train": 1, "val": 1, "test": 1}
    assert split_counts(2, {"train": 0.5, "val": 0.2, "test": 0.3}) == {"train": 1, "val": 0, "test": 1}
    with pytest.raises(ValueError, match="1 image"):
        split_counts(1, {"train": 0.5, "val": 0.2, "test": 0.3}, where="x")


def test_preset_accepts_custom_ids_in_datasets_and_cross_dataset_targets(tmp_path):
    raw = _preset(MyPets={"root": "pets"})
    raw["cross_dataset"] = {"enabled": True, "source": "Digits", "targets": ["MyPets", "MNIST"]}
    cfg = validate_preset(raw, name="mine", where="mine.yaml")
    assert cfg["datasets"] == ["MyPets"] and cfg["cross_dataset"]["targets"] == ["MyPets", "MNIST"]
    assert cfg["custom_datasets"]["MyPets"]["split"] == {"train": 0.5, "val": 0.2, "test": 0.3}


@pytest.mark.parametrize("custom, message", [
    ({"DTD": {"root": "x"}}, "key 'custom_datasets.DTD': 'DTD' already names the built-in dataset DTD"),
    ({"my_pets": {"root": "x"}}, "key 'custom_datasets.my_pets': a dataset id must be letters and digits"),
    ({"MyPets": {"root": "x", "split": {"train": 0.5, "val": 0.2, "test": 0.2}}},
     "key 'custom_datasets.MyPets.split': the fractions sum to 0.9; they must sum to 1"),
])
def test_bad_custom_entries_fail_before_any_job(custom, message):
    with pytest.raises(ConfigError, match="^mine.yaml: " + message.replace(".", r"\.").replace("(", r"\(")):
        validate_preset(_preset(**custom), name="mine", where="mine.yaml")


def test_unknown_dataset_error_lists_the_custom_ids_too():
    raw = _preset(MyPets={"root": "x"})
    raw["datasets"] = ["MyCats"]
    with pytest.raises(ConfigError, match=r"key 'datasets\.0': unknown dataset 'MyCats' \(did you mean 'MyPets'\?\); "
                                           r"allowed values: .*UCF101, MyPets"):
        validate_preset(raw, name="mine", where="mine.yaml")


def test_cli_prepare_takes_the_custom_dataset_entry_of_the_resolved_preset(tmp_path, monkeypatch, capsys):
    from ame.cli import main

    _folder(tmp_path / "pets")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(_preset(MyPets={"root": "pets"})))
    cfg = load_preset(tmp_path / "mine.yaml")
    entry = cfg["custom_datasets"]["MyPets"]  # what the prepare rule passes, defaults filled in
    assert entry == {"root": "pets", "split": {"train": 0.5, "val": 0.2, "test": 0.3}}
    monkeypatch.chdir(tmp_path)  # a relative root is relative to where ame runs
    main(["prepare", "--dataset", "MyPets", "--data-root", "data", "--custom", json.dumps(entry, sort_keys=True)])
    assert capsys.readouterr().out.strip() == "data/MyPets/split.json"
    split = load_split(tmp_path / "data" / "MyPets" / "split.json")
    assert split.classnames == CLASSES and [len(split.train), len(split.val), len(split.test)] == [6, 3, 6]
    # The entry is the job's whole definition: other fractions give another split.
    other = {**entry, "split": {"train": 0.6, "val": 0.0, "test": 0.4}}
    main(["prepare", "--dataset", "MyPets", "--data-root", "data", "--custom", json.dumps(other, sort_keys=True)])
    assert len(load_split(tmp_path / "data" / "MyPets" / "split.json").train) == 9


def test_cli_prepare_of_a_custom_dataset_without_its_entry_fails(tmp_path, monkeypatch, capsys):
    from ame.cli import main

    _folder(tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["prepare", "--dataset", "MyPets", "--data-root", "data", "--custom", "null"])
    assert "MyPets" in capsys.readouterr().err
    assert not (tmp_path / "data" / "MyPets" / "split.json").exists()
