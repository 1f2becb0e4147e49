"""`ame zeroshot`: the student backbone's own zero-shot scores, a `zeroshot` row of the tables.

CLIP's zero-shot protocol: the class vectors are the normalised text features of
"a photo of a {class}." and each test image goes to the nearest one (Radford et al. 2021; PromptKD's
zero-shot CLIP rows). Writes the same run-folder contract as a distillation run.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ame import contracts
from ame.data import ImageSet, build_transform, load_split
from ame.evaluate import ZERO_SHOT_TEMPLATE, evaluation_classes, features_and_labels, scores
from ame.io import sha256_json, write_json
from ame.models.clip import get_tokenizer
from ame.models.load import load_backbone
from ame.runtime import device_name, git_sha, package_versions, resolve_device
from ame.spec.run import RunSpec
from ame.steps.run_folder import write_embeddings, write_params


@torch.no_grad()
def zero_shot(spec: RunSpec, student_backbone: Path, split_path: Path, out_dir: Path) -> dict:
    """The student backbone's own zero-shot scores ("a photo of a {class}."), a `zeroshot` row."""
    device = resolve_device(spec.device)
    split = load_split(split_path)
    clip, card = load_backbone(student_backbone)
    clip = clip.to(device)
    tokenizer = get_tokenizer(card["arch"])
    text = F.normalize(clip.encode_text(tokenizer([ZERO_SHOT_TEMPLATE.format(c.replace("_", " "))
                                                    for c in split.classnames]).to(device)), dim=-1).float().cpu()
    test_set = ImageSet(split.items("test"), build_transform(False, spec.augment.image_size))
    features, labels = features_and_labels(lambda x: F.normalize(clip.encode_image(x), dim=-1), test_set,
                                           spec.eval_batch_size, device)
    task = spec.task
    base, new = evaluation_classes(split, task)
    result = scores(features, labels, text, task, base, new)
    metrics = {"dataset": split.dataset, "task": task, "setting": spec.setting, "method": spec.method,
               "seed": spec.seed, "selection": spec.selection, **result, "last": {**result, "epoch": None},
               "best_epoch": None,
               "provenance": {"git_sha": git_sha(), "config_sha256": sha256_json(spec.to_dict()),
                              "packages": package_versions(), "teacher_sha256": None,
                              "device": device_name(device), "precision": "fp32"}}
    contracts.validate(metrics, contracts.METRICS, where=str(out_dir / "metrics.json"))
    write_embeddings(out_dir / "embeddings.npz", features, labels, split.classnames)
    write_params(out_dir, spec)
    write_json(out_dir / "metrics.json", metrics)
    return metrics
