"""Teacher prompt tuning for the miniature: IVLP prompts trained by cross-entropy on labeled shots
(the `Trainable` that `ame.training.engine.fit` runs; `ame teacher` composes it).

It stands in for fetching PromptKD's released PromptSRC teachers: base-to-new teachers see labeled
shots of the base classes only; the cross-dataset teacher sees all classes of the source dataset.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ame.runtime import autocast
from ame.training.engine import Trainable
from ame.training.optim import epoch_lr


class PromptTuning(Trainable):
    """IVLP prompts trained by cross-entropy over the trained classes' text features."""

    def __init__(self, teacher, loader: DataLoader, names: list[str], optim: dict, params: dict, device,
                 name: str) -> None:
        self.teacher, self.loader, self.names, self.optim, self.device = teacher, loader, names, optim, device
        self.scale, self.precision, self.name = params["logit_scale"], params["precision"], name

    def batches(self, epoch: int, first_step: int):
        if first_step:
            raise ValueError("prompt tuning restarts only at an epoch boundary (its loader shuffles)")
        return self.loader

    def lr(self, epoch: int, step: int) -> float:
        return epoch_lr(self.optim, epoch)

    def start_epoch(self, epoch: int) -> None:
        self.teacher.train()

    def training_step(self, batch, epoch: int, step: int) -> dict[str, torch.Tensor]:
        images, labels = batch
        with autocast(self.device, self.precision):
            logits = self.scale * self.teacher.encode_image(images.to(self.device)) @ self.teacher.encode_text(
                self.names).t()
            return {"loss": F.cross_entropy(logits.float(), labels.to(self.device))}

    def weights(self) -> dict:
        return self.teacher.prompt_state()

    def load_weights(self, state: dict) -> None:
        self.teacher.load_state_dict(state, strict=False)
