"""ame.models.load: every backbone, teacher and stored text-feature file is loaded through one place,
checked against the card that describes it."""

import json

import pytest
import torch

from ame.models.clip import create_clip
from ame.models.load import load_backbone, load_weights_file, read_text_features


def test_weights_for_another_architecture_name_the_file_the_key_and_both_shapes(tmp_path):
    path = tmp_path / "teacher.pt"
    torch.save(create_clip("ame-tiny-teacher").state_dict(), path)
    student = create_clip("ame-tiny-student")
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(ValueError, match=r"teacher\.pt: tensor '[\w.]+' has shape \(.*\) in the file but \(.*\) in "
                                         r"ame-tiny-student"):
        load_weights_file(student, path, "ame-tiny-student")
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in before.items())  # all tensors or none


def test_a_state_dict_missing_tensors_is_refused_naming_them(tmp_path):
    state = create_clip("ame-tiny-student").state_dict()
    dropped = sorted(state)[0]
    del state[dropped]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=f"not a state dict of ame-tiny-student: missing \\['{dropped}'\\]"):
        load_weights_file(create_clip("ame-tiny-student"), path, "ame-tiny-student")


def test_text_features_are_checked_against_their_teacher_and_class_names(tmp_path):
    path = tmp_path / "features.pt"
    torch.save({"features": torch.ones(2, 4), "classnames": ["a", "b"], "teacher_sha256": "1" * 64}, path)
    assert read_text_features(path, {"sha256": "1" * 64}, ["a", "b"]).shape == (2, 4)
    with pytest.raises(ValueError, match="computed from another teacher"):
        read_text_features(path, {"sha256": "2" * 64}, ["a", "b"])
    with pytest.raises(ValueError, match="class names differ"):
        read_text_features(path, {"sha256": "1" * 64}, ["b", "a"])


def test_a_card_for_open_clip_weights_is_checked_against_the_cached_file(tmp_path, monkeypatch):
    cached = tmp_path / "open_clip_pytorch_model.bin"
    cached.write_bytes(b"other bytes")
    monkeypatch.setattr("ame.models.load.tag_weights_file", lambda arch, tag: cached)
    card = tmp_path / "teacher.json"
    card.write_text(json.dumps({"arch": "ViT-L-14-quickgelu", "weights": "openai", "file": str(cached),
                                "sha256": "0" * 64, "params": {}}))
    with pytest.raises(ValueError, match="open_clip_pytorch_model.bin changed since .*teacher.json was written"):
        load_backbone(card)
