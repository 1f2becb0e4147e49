"""Teacher check: score a loaded teacher on its dataset's test split, as PromptKD reports teachers.

Base-to-new: Base/New/HM among base/new classes (PromptKD appendix Table 10); the cross-dataset
source teacher: all-class accuracy (Table 11). The class vectors are the stored text features the
distillation runs read, so this checks the whole chain — checkpoint conversion, loading, text
features — and with released teachers it is the one end-to-end test that conversion worked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ame import contracts
from ame.data import ImageSet, build_transform, load_split
from ame.evaluate import evaluation_classes, features_and_labels, scores
from ame.io import write_json
from ame.models.load import load_teacher, read_text_features
from ame.runtime import autocast, device_name, resolve_device

log = logging.getLogger(__name__)


@torch.no_grad()
def check_teacher(params: dict, card_path: Path, features_path: Path, split_path: Path, out_path: Path) -> dict:
    """Write `out_path` (contracts.TEACHER_CHECK) with the teacher's test accuracy; return it."""
    device = resolve_device(params["device"])
    teacher, card = load_teacher(card_path, device)
    split = load_split(split_path)
    text = read_text_features(features_path, card, split.classnames)
    test = ImageSet(split.items("test"), build_transform(False, params["image_size"]))
    with autocast(device, params["precision"]):
        features, labels = features_and_labels(teacher.encode_image, test, params["batch_size"], device)
    task = params["task"]
    base, new = evaluation_classes(split, task)
    result = {"task": task, "dataset": split.dataset, "source": params["source"],
              **scores(features, labels, text, task, base, new),
              "n_test": len(test), "n_classes": split.num_classes, "teacher_sha256": card["sha256"],
              "device": device_name(device), "precision": params["precision"]}
    contracts.validate(result, contracts.TEACHER_CHECK, where=str(out_path))
    write_json(out_path, result)
    log.info(f"[teacher-check {task}/{split.dataset}] "
          f"{ {k: result[k] for k in ('base', 'new', 'hm', 'accuracy') if result[k] is not None} }")
    return result
