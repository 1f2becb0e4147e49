"""Contrastive pre-training of the miniature's CLIP backbones (stand-ins for OpenAI's weights):
the captioned training set, the loss and the `Trainable` that `ame.training.engine.fit` runs.

Trained on the TRAIN splits of the preset's datasets only (never on test images), with captions made
from class names and a few templates. Identical captions are the same text, so every image whose
caption equals a text counts as a positive for it (a multi-positive InfoNCE); with ten classes a
plain diagonal target would call most same-class pairs negatives.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ame.data import ImageSet, build_transform
from ame.evaluate import ZERO_SHOT_TEMPLATE
from ame.training.engine import Trainable

# Generic templates plus per-dataset "style" templates, so the text tower learns the class word
# and the image tower learns to ignore the domain. ZERO_SHOT_TEMPLATE is what zero-shot uses.
GENERIC_TEMPLATES = (ZERO_SHOT_TEMPLATE,)
STYLE_TEMPLATES = {
    "Digits": ("a blurry scan of a handwritten {}.",),
    "MNIST": ("a sharp scan of a handwritten {}.",),
}


class Captioned(Dataset):
    """A dataset's images with a caption each: a template drawn per item, filled with the class name."""

    def __init__(self, images: ImageSet, dataset: str, classnames: list[str], seed: int) -> None:
        self.images, self.classnames = images, classnames
        self.templates = GENERIC_TEMPLATES + STYLE_TEMPLATES.get(dataset, ())
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image, label = self.images[i]
        return image, self.rng.choice(self.templates).format(self.classnames[label])


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, captions: list[str],
                     logit_scale: torch.Tensor) -> torch.Tensor:
    logits = logit_scale * image_features @ text_features.t()
    same = torch.tensor([[a == b for b in captions] for a in captions], dtype=logits.dtype)
    targets = same / same.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, items, classnames, image_size: int, batch_size: int = 256) -> float:
    model.eval()
    text = F.normalize(model.encode_text(tokenizer([ZERO_SHOT_TEMPLATE.format(c) for c in classnames])), dim=-1)
    loader = DataLoader(ImageSet(items, build_transform(False, image_size)), batch_size=batch_size)
    correct = total = 0
    for images, labels in loader:
        pred = (F.normalize(model.encode_image(images), dim=-1) @ text.t()).argmax(dim=1)
        correct += int((pred == labels).sum())
        total += len(labels)
    return 100.0 * correct / max(total, 1)


class Contrastive(Trainable):
    """CLIP trained contrastively on captioned images; per-step linear warm-up, then cosine."""

    def __init__(self, model, tokenizer, loader: DataLoader, params: dict) -> None:
        self.model, self.tokenizer, self.loader, self.base_lr = model, tokenizer, loader, params["lr"]
        self.name = f"pretrain {params['arch']}"
        self.steps = params["epochs"] * len(loader)
        self.warmup = max(1, int(self.steps * params["warmup_fraction"]))

    def batches(self, epoch: int, first_step: int):
        if first_step:
            raise ValueError("pre-training restarts only at an epoch boundary (its loader shuffles)")
        return self.loader

    def lr(self, epoch: int, step: int) -> float:
        s = epoch * len(self.loader) + step
        return self.base_lr * (min(1.0, (s + 1) / self.warmup)
                               * 0.5 * (1 + math.cos(math.pi * min(s, self.steps) / self.steps)))

    def start_epoch(self, epoch: int) -> None:
        self.model.train()

    def training_step(self, batch, epoch: int, step: int) -> dict[str, torch.Tensor]:
        images, captions = batch
        image_f = F.normalize(self.model.encode_image(images), dim=-1)
        text_f = F.normalize(self.model.encode_text(self.tokenizer(list(captions))), dim=-1)
        return {"loss": contrastive_loss(image_f, text_f, list(captions), self.model.logit_scale.exp().clamp(max=100))}

    def weights(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, state: dict) -> None:
        self.model.load_state_dict(state)
