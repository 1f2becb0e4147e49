"""`ame teacher-features`: a teacher's text features of all classes, computed once.

The student's classifier is the teacher's text features (PromptKD): every distillation run, the
teacher check and the teacher cache read this file (`ame.models.load.read_text_features`) instead
of running the teacher's text tower again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ame.data import load_split
from ame.io import torch_save
from ame.models.load import load_teacher


@torch.no_grad()
def text_features(card_path: Path, split_path: Path, out_path: Path, device: torch.device) -> dict:
    """Write the teacher's normalised text features of the split's C classes (C x d, float32) with
    the class names and the teacher card's sha256; returns their shape."""
    teacher, card = load_teacher(card_path, device)
    split = load_split(split_path)
    features = teacher.encode_text(split.classnames).float().cpu()
    torch_save({"features": features, "classnames": split.classnames, "teacher_sha256": card["sha256"]}, out_path)
    return {"shape": list(features.shape)}
