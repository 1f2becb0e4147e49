"""`ame teacher-cache`: the teacher's log-probabilities on one grid cell's pre-drawn augmentations,
for every epoch, built once and read by each method's distillation (`ame.training.teacher_cache`
describes the format, its size and what top-k storage changes); for cells with prompt-free
students (Simple, Simple + RSM) also the frozen student tower's features of the same crops.

The frozen towers run at `inference_batch` images a pass (the evaluation batch size), not the
training batch: each crop's output does not depend on its neighbours, and a GPU runs large
batches far faster per image.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from ame.data import load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set
from ame.io import torch_save
from ame.logs import Progress
from ame.models.load import load_backbone, load_teacher, read_text_features
from ame.models.prompts import encode_image
from ame.runtime import autocast, block_type_for, resolve_device
from ame.training.teacher_cache import DTYPES, FORMAT, compress, storage_k, table_bytes, teacher_logits

log = logging.getLogger(__name__)


@torch.no_grad()
def build(params: dict, seed: int, split_path: Path, shots_path: Path, teacher_card: Path, text_features: Path,
          out_path: Path, student_backbone: Path | None = None, inference_batch: int = 256,
          workers: int = 0) -> dict:
    """Run the teacher (and, when `params['student_arch']` is set, the frozen student tower) over
    every planned crop of `params['epochs']` epochs; write the cache."""
    device = resolve_device(params["device"])
    split = load_split(split_path)
    train_set = training_set(split, read_shots(shots_path, split), params["augment"])
    batch, epochs = params["batch_size"], params["epochs"]
    plan = AugmentationPlan.draw(len(train_set), epochs, seed)
    teacher, card = load_teacher(teacher_card, device, block_type=block_type_for(params["precision"]))
    text = read_text_features(text_features, card, split.classnames).to(device)
    classes, positions = split.num_classes, plan.used_positions(batch)
    k = storage_k(epochs, positions, classes, params)
    tower = None
    if params.get("student_arch"):
        if student_backbone is None:
            raise ValueError("this cell has prompt-free students: pass --student-backbone to cache their tower's features")
        clip, card_s = load_backbone(student_backbone, block_type=block_type_for(params["precision"]))
        if card_s["arch"] != params["student_arch"]:
            raise ValueError(f"{student_backbone}: backbone {card_s['arch']}, but the cache parameters name "
                             f"{params['student_arch']}")
        tower = clip.visual.to(device).eval()
    started = time.time()
    rows: dict[str, list[torch.Tensor]] = {}
    name = f"teacher-cache {split.dataset}/{params['setting']}/seed{seed}"
    passes = -(-positions // max(batch, inference_batch))
    with Progress(name, epochs * passes, log) as progress:
        for epoch in range(epochs):
            crops = Subset(plan.epoch(train_set, epoch), range(positions))  # what the training steps use
            for images, _ in DataLoader(crops, batch_size=max(batch, inference_batch), num_workers=workers,
                                        pin_memory=device.type == "cuda"):
                images = images.to(device, non_blocking=True)
                logits = teacher_logits(teacher, images, text, params["logit_scale"], device, params["precision"])
                for key, table in compress(F.log_softmax(logits.float(), dim=-1).cpu(), k, params["dtype"]).items():
                    rows.setdefault(key, []).append(table)
                if tower is not None:
                    with autocast(device, params["precision"]):
                        pooled = encode_image(tower, images)
                    rows.setdefault("student_features", []).append(pooled.float().cpu().to(DTYPES[params["dtype"]]))
                progress.update(1, f"epoch {epoch + 1}/{epochs}")
            log.info(f"[{name}] epoch {epoch + 1}/{epochs} ({time.time() - started:.0f}s)")
    tables = {name: torch.cat(parts).reshape(epochs, positions, -1) for name, parts in rows.items()}
    torch_save({"format": FORMAT, "params": params, "seed": seed, "teacher_sha256": card["sha256"],
                "classes": classes, "batch_size": batch, "top_k": k, "order": plan.order, "seeds": plan.seeds,
                **tables}, out_path)
    return {"classes": classes, "epochs": epochs, "positions": positions, "top_k": k,
            "megabytes": round(table_bytes(epochs, positions, classes, k, params["dtype"]) / 2**20, 3),
            "seconds": round(time.time() - started, 1)}


