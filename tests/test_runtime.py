"""One flag, `runtime.precision` (fp32 | bf16 | amp): fp32 is the CPU default, bf16 autocasts with
open_clip's custom attention block (its fast CPU path), amp is CUDA float16 autocast with loss
scaling and refuses to run on a CPU."""

import dataclasses

import pytest
import torch

from ame.io import read_json
from ame.models.clip import create_clip
from ame.models.student import Student
from ame.runtime import autocast, block_type_for
from ame.steps.distill import distill

# bf16 keeps 8 mantissa bits (relative step 2^-8 = 0.004). Through the tiny student's 6 layers and
# the projector its unit-norm features differ from fp32 by 0.003-0.005 per coordinate at most
# (measured over 3 random initialisations), cosine similarity >= 0.9998. Bounds with ~4x room:
BF16_FEATURE_ATOL = 0.02
BF16_MIN_COSINE = 0.999


def test_precision_flag_picks_the_vision_block():
    assert block_type_for("bf16") == "custom"
    assert block_type_for("fp32") is None and block_type_for("amp") is None


def test_custom_and_default_blocks_have_identical_state_dict_keys():
    with torch.device("meta"):
        default, custom = create_clip("ViT-B-16-quickgelu"), create_clip("ViT-B-16-quickgelu", block_type="custom")
    assert list(default.state_dict()) == list(custom.state_dict())
    assert {k: v.shape for k, v in default.state_dict().items()} == {k: v.shape for k, v in custom.state_dict().items()}


def test_custom_block_loads_default_weights_and_matches_in_fp32():
    torch.manual_seed(0)
    default = create_clip("ame-tiny-student")
    custom = create_clip("ame-tiny-student", block_type="custom")
    custom.load_state_dict(default.state_dict())
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(custom.encode_image(images), default.encode_image(images), atol=1e-5, rtol=1e-5)


def test_bf16_with_custom_block_stays_close_to_fp32():
    torch.manual_seed(0)
    default = create_clip("ame-tiny-student")
    custom = create_clip("ame-tiny-student", block_type="custom")
    custom.load_state_dict(default.state_dict())
    fp32 = Student(default, out_dim=48, prompt_depth=4).eval()
    bf16 = Student(custom, out_dim=48, prompt_depth=4).eval()
    bf16.load_trainable_state(fp32.trainable_state())
    images = torch.randn(8, 3, 32, 32)
    reference = fp32(images)
    with autocast(torch.device("cpu"), "bf16"):
        low = bf16(images)
    assert low.dtype == torch.bfloat16  # the autocast really ran in bf16
    low = low.float()
    assert (low - reference).abs().max().item() < BF16_FEATURE_ATOL
    assert torch.nn.functional.cosine_similarity(low, reference).min().item() > BF16_MIN_COSINE


def test_amp_on_cpu_fails_with_what_to_use_instead():
    with pytest.raises(RuntimeError, match="'amp' needs a CUDA device; use 'bf16' or 'fp32' on CPU"):
        autocast(torch.device("cpu"), "amp")


def test_unknown_precision_names_the_allowed_values():
    with pytest.raises(ValueError, match="allowed values: fp32, bf16, amp"):
        autocast(torch.device("cpu"), "fp16")


def test_a_bf16_run_trains_on_cpu_with_the_custom_block_and_records_its_precision(world, tmp_path,  # noqa: F811
                                                                                  monkeypatch):
    import ame.steps.distill as train

    spec, inputs = world
    built = []
    real = train.load_backbone

    def recording_load_backbone(card, block_type=None):
        built.append(block_type)
        return real(card, block_type=block_type)

    monkeypatch.setattr(train, "load_backbone", recording_load_backbone)
    metrics = distill(dataclasses.replace(spec, precision="bf16"), inputs, tmp_path / "run", tmp_path / "scratch")
    assert built == ["custom"]
    assert metrics["provenance"]["precision"] == "bf16"
    assert read_json(tmp_path / "run" / "params.json")["precision"] == "bf16"
    assert 0 <= metrics["hm"] <= 100
