"""A run's student, saved self-describing (student.safetensors + student.json), describes itself
without the preset and refuses changed or outdated files (`ame.models.student_file`)."""

import shutil

import pytest

from ame.io import read_json
from ame.models.student_file import load_student


def test_the_config_describes_the_student_without_the_preset(distilled_run):
    out, _, inputs = distilled_run
    config = read_json(out / "student.json")
    assert config["format"] == "ame-student/1"
    assert config["prompts"] == {"tokens": 4, "depth": 4} and config["projector"]["out_dim"] > 0
    assert config["backbone"]["arch"] == "ame-tiny-student" and len(config["backbone"]["sha256"]) == 64
    assert config["classnames"][:2] == ["zero", "one"] and len(config["classnames"]) == 10
    assert config["params"] == read_json(out / "params.json")
    assert (out / config["text_features"]["source"]).resolve() == inputs.text_features.resolve()


def test_a_changed_weights_file_or_an_old_student_pt_is_refused_with_the_reason(distilled_run, tmp_path):
    out, _, _ = distilled_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    weights = copy / "student.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="student.safetensors changed"):
        load_student(copy)
    old = tmp_path / "old"
    old.mkdir()
    (old / "student.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="older ame"):
        load_student(old)


def test_preprocess_prepares_a_path_or_any_pil_image_as_the_runs_test_images(distilled_run):
    import torch
    from PIL import Image

    from ame.data import ImageSet, build_transform

    out, _, inputs = distilled_run
    student = load_student(out)
    path = sorted((inputs.split.parent / "images").rglob("*.png"))[0]
    expected, _ = ImageSet([(path, 0)], build_transform(False, student.image_size))[0]
    assert Image.open(path).mode == "L"  # the digits are grayscale PNGs
    assert torch.equal(student.preprocess(path), expected)
    assert torch.equal(student.preprocess(Image.open(path)), expected)
    assert expected.shape == (3, student.image_size, student.image_size)
