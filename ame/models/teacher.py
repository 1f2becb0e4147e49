"""The teacher: a CLIP with IVLP deep prompts on both towers (PromptSRC's design, as PromptKD uses).

In the miniature it is prompt-tuned here by cross-entropy on labeled shots; in the paper preset its
tensors come from PromptKD's released checkpoints. Either way it is frozen during distillation and
its normalised text features of all classes, computed once, are the student's classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ame.models.prompts import TextPrompts, VisionPrompts, encode_image, encode_text


class Teacher(nn.Module):
    def __init__(self, clip: nn.Module, tokenizer, prompt_tokens: int = 4, prompt_depth: int = 9,
                 ctx_init: str = "a photo of a") -> None:
        super().__init__()
        self.clip = clip.requires_grad_(False)
        self.tokenizer = tokenizer
        self.ctx_init = ctx_init
        with torch.device("cpu"):  # token ids are bookkeeping, also when the model is built on meta
            init_ids = tokenizer([ctx_init])[0]
        n_words = int((init_ids > 0).sum()) - 2  # minus SOS and EOS
        if n_words != prompt_tokens:
            raise ValueError(f"teacher.ctx_init '{ctx_init}' has {n_words} tokens but teacher.prompt_tokens "
                             f"is {prompt_tokens}; make them agree")
        with torch.no_grad():
            ids = init_ids[1:1 + prompt_tokens].to(clip.token_embedding.weight.device)
            init = clip.token_embedding(ids).clone()
        self.text_prompts = TextPrompts(init, prompt_depth)
        self.vision_prompts = VisionPrompts(int(clip.visual.conv1.out_channels), prompt_tokens, prompt_depth)

    def train(self, mode: bool = True):
        super().train(mode)
        self.clip.eval()
        return self

    def tokenize(self, classnames: list[str]) -> torch.Tensor:
        return self.tokenizer([f"{self.ctx_init} {c.replace('_', ' ')}." for c in classnames])

    def encode_text(self, classnames: list[str]) -> torch.Tensor:
        ids = self.tokenize(classnames).to(self.text_prompts.tokens.device)
        return F.normalize(encode_text(self.clip, ids, self.text_prompts), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(encode_image(self.clip.visual, images, self.vision_prompts), dim=-1)

    def prompt_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items() if not k.startswith("clip.")}
