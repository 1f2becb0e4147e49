"""The student: a frozen CLIP image tower, optional deep vision prompts (PKD), and PromptKD's projector.

Its classifier is the teacher's text features, so the projector maps the student's embedding
(512 for ViT-B/16) to the teacher's (768 for ViT-L/14). PKD trains prompts + projector; Simple
(PromptKD's "projector only" ablation) trains the projector alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ame.models.prompts import VisionPrompts, encode_image


class Projector(nn.Module):
    """Linear d_s -> d_t, BatchNorm, ReLU, Linear d_t -> d_t (PromptKD builds it from 1x1 convs)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True),
                                 nn.Linear(out_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Student(nn.Module):
    def __init__(self, clip: nn.Module, out_dim: int, prompt_tokens: int = 4, prompt_depth: int = 0) -> None:
        super().__init__()
        self.visual = clip.visual.requires_grad_(False)
        in_dim = int(self.visual.output_dim)
        width = int(self.visual.conv1.out_channels)
        self.prompts = VisionPrompts(width, prompt_tokens, prompt_depth) if prompt_depth > 0 else None
        self.projector = Projector(in_dim, out_dim)

    def train(self, mode: bool = True):
        super().train(mode)
        self.visual.eval()  # the backbone is frozen: keep any dropout off
        return self

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changes (prompts, projector incl. BatchNorm statistics)."""
        frozen = {f"visual.{k}" for k in self.visual.state_dict()}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k not in frozen}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = self.load_state_dict(state, strict=False)
        unexpected = missing.unexpected_keys
        if unexpected:
            raise KeyError(f"student state has unknown keys: {unexpected[:5]}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised student features in the teacher's embedding space."""
        return F.normalize(self.projector(encode_image(self.visual, images, self.prompts)), dim=-1)
