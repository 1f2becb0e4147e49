"""ame.models.prompts: deep vision prompts injected into open_clip's towers."""

import pytest
import torch

from ame.models.prompts import VisionPrompts, encode_image


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
