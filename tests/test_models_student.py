"""ame.models.student: the tiny student's trainable set, and the paper's student at its real size
(built on the meta device: shapes without data or init time).

PromptKD's student is OpenAI's CLIP ViT-B/16 with 4 vision prompt tokens per layer on 9 layers
(base-to-new) or 3 (cross-dataset) and a 512->768 projector; only prompts and projector train
(protocol §2: 1,013,760 and 995,328 trainable parameters). Simple trains the projector alone.
"""

import pytest
import torch

from ame.models.clip import activation_class_names, create_clip
from ame.models.student import Projector, Student

TEACHER_DIM = 768  # ViT-L/14's embedding: the projector maps the student's 512 into it


@pytest.fixture(scope="module")
def vit_b16():
    with torch.device("meta"):
        return create_clip("ViT-B-16-quickgelu")


def _student(clip, depth: int) -> Student:
    with torch.device("meta"):
        return Student(clip, TEACHER_DIM, prompt_tokens=4, prompt_depth=depth)


def _trainable(student: Student) -> dict[str, int]:
    return {name: p.numel() for name, p in student.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("depth,expected", [(9, 1_013_760), (3, 995_328), (0, 986_112)],
                         ids=["pkd-base2new", "pkd-cross-dataset", "simple"])
def test_student_trains_promptkds_exact_parameter_count(vit_b16, depth, expected):
    assert sum(_trainable(_student(vit_b16, depth)).values()) == expected


def test_pkd_prompts_are_four_768_wide_tokens_on_each_prompted_layer(vit_b16):
    student = _student(vit_b16, 9)
    assert tuple(student.prompts.tokens.shape) == (9, 4, 768)
    assert _trainable(student)["prompts.tokens"] == 9 * 4 * 768  # 27,648


def test_everything_but_prompts_and_projector_is_frozen(vit_b16):
    student = _student(vit_b16, 9)
    trainable = set(_trainable(student))
    assert trainable == {"prompts.tokens"} | {f"projector.{n}" for n, _ in student.projector.named_parameters()}
    frozen = sum(p.numel() for p in student.visual.parameters())
    assert frozen > 85_000_000 and not any(p.requires_grad for p in student.visual.parameters())


def test_simple_student_has_no_prompts_and_trains_the_projector_only(vit_b16):
    student = _student(vit_b16, 0)
    assert student.prompts is None
    assert all(name.startswith("projector.") for name in _trainable(student))


def test_student_backbone_uses_quickgelu_as_openai_clip(vit_b16):
    assert activation_class_names(vit_b16) == {"QuickGELU"}
    assert int(vit_b16.visual.output_dim) == 512 and int(vit_b16.visual.conv1.out_channels) == 768


def test_plain_vit_b16_name_silently_builds_gelu_so_the_quickgelu_name_matters():
    """OpenAI's weights were trained with QuickGELU; loaded into open_clip's plain 'ViT-B-16' they
    would run through GELU, with only a warning. The presets therefore name `-quickgelu` models."""
    with torch.device("meta"):
        plain = create_clip("ViT-B-16")
    assert activation_class_names(plain) == {"GELU"}


def test_custom_block_keeps_quickgelu_and_the_parameter_count(vit_b16):
    with torch.device("meta"):
        custom = create_clip("ViT-B-16-quickgelu", block_type="custom")
    assert activation_class_names(custom) == {"QuickGELU"}
    assert sum(_trainable(_student(custom, 9)).values()) == 1_013_760


def test_meta_device_refuses_pretrained_weights():
    with torch.device("meta"), pytest.raises(ValueError, match="meta device"):
        create_clip("ViT-B-16-quickgelu", pretrained="openai")


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
