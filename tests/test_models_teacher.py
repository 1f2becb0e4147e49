"""ame.models.teacher: the IVLP-prompted teacher's text path."""

import pytest
import torch
import torch.nn.functional as F

from ame.models.clip import get_tokenizer
from ame.models.teacher import Teacher


def test_teacher_first_text_context_starts_as_the_init_words(teacher_clip):
    tokenizer = get_tokenizer("ame-tiny-teacher")
    teacher = Teacher(teacher_clip, tokenizer, prompt_tokens=4, prompt_depth=1, ctx_init="a photo of a")
    plain = F.normalize(teacher_clip.encode_text(tokenizer(["a photo of a three."])), dim=-1)
    torch.testing.assert_close(teacher.encode_text(["three"]), plain)


def test_teacher_rejects_ctx_init_of_the_wrong_length(teacher_clip):
    with pytest.raises(ValueError, match="prompt_tokens"):
        Teacher(teacher_clip, get_tokenizer("ame-tiny-teacher"), prompt_tokens=4, ctx_init="a photo")
