"""ame.models.clip: open_clip backbones, tiny or paper-size, built the same way."""

import torch

from ame.models.clip import activation_class_names, create_clip, get_tokenizer
from ame.models.prompts import encode_image, encode_text


def test_tiny_backbones_use_quickgelu_like_openai_clip(student_clip, teacher_clip):
    assert activation_class_names(student_clip) == {"QuickGELU"}
    assert activation_class_names(teacher_clip) == {"QuickGELU"}


def test_unprompted_encoders_match_open_clip(student_clip):
    images = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(encode_image(student_clip.visual, images), student_clip.visual(images))
    ids = get_tokenizer("ame-tiny-student")(["a photo of a three.", "a photo of a nine."])
    torch.testing.assert_close(encode_text(student_clip, ids), student_clip.encode_text(ids))


def test_building_a_backbone_whose_weights_we_load_ourselves_logs_no_random_init_warning(caplog):
    create_clip("ame-tiny-student")
    assert not any("initialized randomly" in r.getMessage() for r in caplog.records)
