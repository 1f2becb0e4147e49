"""Accuracy, Base / New / HM, and the features the report plots.

Base-to-new follows PromptKD: Base = accuracy on base-class test images classified among the base
classes only; New = the same for new classes; HM = 2BN/(B+N). Cross-dataset: accuracy on all test
images among all classes.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader

from ame.metrics import harmonic_mean

# CLIP's zero-shot prompt, as PromptKD's zero-shot baselines and the miniature's backbones use it.
ZERO_SHOT_TEMPLATE = "a photo of a {}."


def evaluation_classes(split, task: str) -> tuple[list[int], list[int]]:
    """(base, new) labels: the base/new halves for base-to-new; all classes and none for xd."""
    if task == "base2new":
        return split.base_labels(), split.new_labels()
    return list(range(split.num_classes)), []


@torch.no_grad()
def features_and_labels(encode: Callable[[torch.Tensor], torch.Tensor], dataset, batch_size: int,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    feats, labels = [], []
    for images, y in DataLoader(dataset, batch_size=batch_size):
        feats.append(encode(images.to(device)).float().cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


def subset_accuracy(features: torch.Tensor, labels: torch.Tensor, text_features: torch.Tensor,
                    classes: list[int]) -> float:
    """Top-1 accuracy (%) of images whose label is in `classes`, classified among `classes` only."""
    classes_t = torch.as_tensor(classes)
    keep = torch.isin(labels, classes_t)
    if not keep.any():
        raise ValueError("no evaluation images for the requested classes")
    logits = features[keep] @ text_features[classes_t].to(features.dtype).t()
    predicted = classes_t[logits.argmax(dim=1)]
    return 100.0 * float((predicted == labels[keep]).float().mean())


def scores(features: torch.Tensor, labels: torch.Tensor, text_features: torch.Tensor, task: str,
           base: list[int], new: list[int]) -> dict:
    """The metrics.json score block for one set of test features."""
    if task == "base2new":
        b = subset_accuracy(features, labels, text_features, base)
        n = subset_accuracy(features, labels, text_features, new)
        return {"base": round(b, 4), "new": round(n, 4), "hm": round(harmonic_mean(b, n), 4), "accuracy": None}
    acc = subset_accuracy(features, labels, text_features, base + new)
    return {"base": None, "new": None, "hm": None, "accuracy": round(acc, 4)}


def classification_scores(features: torch.Tensor, labels: torch.Tensor, text_features: torch.Tensor,
                          classes: list[int]) -> dict:
    """Scores (%) of images whose label is in `classes`, classified among `classes` only (as
    `subset_accuracy`): top-1, top-5 (top-C with fewer than five classes) and mean per-class
    recall (CLIP_benchmark's), with the number of images."""
    classes_t = torch.as_tensor(classes)
    keep = torch.isin(labels, classes_t)
    if not keep.any():
        raise ValueError("no evaluation images for the requested classes")
    logits = features[keep] @ text_features[classes_t].to(features.dtype).t()
    truth = labels[keep]
    ranked = classes_t[logits.topk(min(5, len(classes)), dim=1).indices]
    top1 = ranked[:, 0] == truth
    top5 = (ranked == truth[:, None]).any(dim=1)
    recalls = [float(top1[truth == c].float().mean()) for c in classes if (truth == c).any()]
    return {"top1": 100.0 * float(top1.float().mean()), "top5": 100.0 * float(top5.float().mean()),
            "mean_per_class_recall": 100.0 * sum(recalls) / len(recalls), "n_images": int(keep.sum())}
