"""Prompt injection into open_clip towers, the student's trainable set, and the teacher's text path."""

import pytest
import torch
import torch.nn.functional as F

from ame.models.clip import activation_class_names, create_clip, get_tokenizer
from ame.models.prompts import VisionPrompts, encode_image, encode_text
from ame.models.student import Projector, Student
from ame.models.teacher import Teacher


@pytest.fixture(scope="module")
def student_clip():
    torch.manual_seed(0)
    return create_clip("ame-tiny-student")


@pytest.fixture(scope="module")
def teacher_clip():
    torch.manual_seed(0)
    return create_clip("ame-tiny-teacher")


def test_tiny_backbones_use_quickgelu_like_openai_clip(student_clip, teacher_clip):
    assert activation_class_names(student_clip) == {"QuickGELU"}
    assert activation_class_names(teacher_clip) == {"QuickGELU"}


def test_unprompted_encoders_match_open_clip(student_clip):
    images = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(encode_image(student_clip.visual, images), student_clip.visual(images))
    ids = get_tokenizer("ame-tiny-student")(["a photo of a three.", "a photo of a nine."])
    torch.testing.assert_close(encode_text(student_clip, ids), student_clip.encode_text(ids))


def test_vision_prompts_change_the_output_and_receive_gradients(student_clip):
    prompts = VisionPrompts(width=48, n_tokens=4, depth=3)
    images = torch.randn(2, 3, 32, 32)
    out = encode_image(student_clip.visual, images, prompts)
    assert out.shape == (2, 32)
    assert not torch.allclose(out, student_clip.visual(images))
    out.sum().backward()
    assert prompts.tokens.grad is not None and (prompts.tokens.grad.abs().sum(dim=(1, 2)) > 0).all()


def test_vision_prompts_are_initialised_with_std_0_02():
    torch.manual_seed(0)
    tokens = VisionPrompts(width=768, n_tokens=4, depth=9).tokens
    assert tokens.shape == (9, 4, 768)
    assert tokens.std().item() == pytest.approx(0.02, rel=0.05)


def test_projector_has_promptkds_parameter_count_at_paper_width():
    with torch.device("meta"):
        projector = Projector(512, 768)
    assert sum(p.numel() for p in projector.parameters()) == 986_112


def test_pkd_student_trains_prompts_and_projector_only(student_clip):
    student = Student(student_clip, out_dim=48, prompt_tokens=4, prompt_depth=4)
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable == {"prompts.tokens", "projector.net.0.weight", "projector.net.0.bias",
                         "projector.net.1.weight", "projector.net.1.bias", "projector.net.3.weight",
                         "projector.net.3.bias"}
    n_prompt = 4 * 4 * 48
    n_projector = 32 * 48 + 48 + 2 * 48 + 48 * 48 + 48
    assert sum(p.numel() for p in student.parameters() if p.requires_grad) == n_prompt + n_projector


def test_simple_student_has_no_prompts(student_clip):
    student = Student(student_clip, out_dim=48, prompt_depth=0)
    assert student.prompts is None
    features = student.eval()(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 48)
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))


def test_trainable_state_round_trips_without_backbone_tensors(student_clip):
    student = Student(student_clip, out_dim=48, prompt_depth=2)
    state = student.trainable_state()
    assert not any(k.startswith("visual.") for k in state)
    other = Student(student_clip, out_dim=48, prompt_depth=2)
    other.load_trainable_state(state)
    torch.testing.assert_close(other.prompts.tokens, student.prompts.tokens)


def test_teacher_first_text_context_starts_as_the_init_words(teacher_clip):
    tokenizer = get_tokenizer("ame-tiny-teacher")
    teacher = Teacher(teacher_clip, tokenizer, prompt_tokens=4, prompt_depth=1, ctx_init="a photo of a")
    plain = F.normalize(teacher_clip.encode_text(tokenizer(["a photo of a three."])), dim=-1)
    torch.testing.assert_close(teacher.encode_text(["three"]), plain)


def test_teacher_rejects_ctx_init_of_the_wrong_length(teacher_clip):
    with pytest.raises(ValueError, match="prompt_tokens"):
        Teacher(teacher_clip, get_tokenizer("ame-tiny-teacher"), prompt_tokens=4, ctx_init="a photo")


def test_building_a_backbone_whose_weights_we_load_ourselves_logs_no_random_init_warning(caplog):
    create_clip("ame-tiny-student")
    assert not any("initialized randomly" in r.getMessage() for r in caplog.records)
