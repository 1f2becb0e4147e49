"""`ame teacher-cache`: the teacher's log-probabilities on one grid cell's pre-drawn augmentations,
for every epoch, built once and read by each method's distillation (`ame.training.teacher_cache`
describes the format, its size and what top-k storage changes).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ame.data import load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set
from ame.io import torch_save
from ame.logs import Progress
from ame.models.load import load_teacher, read_text_features
from ame.runtime import block_type_for, resolve_device
from ame.training.teacher_cache import FORMAT, compress, storage_k, table_bytes, teacher_logits

log = logging.getLogger(__name__)


@torch.no_grad()
def build(params: dict, seed: int, split_path: Path, shots_path: Path, teacher_card: Path, text_features: Path,
          out_path: Path) -> dict:
    """Run the teacher over every planned batch of `params['epochs']` epochs; write the cache."""
    device = resolve_device(params["device"])
    split = load_split(split_path)
    train_set = training_set(split, read_shots(shots_path, split), params["augment"])
    batch, epochs = params["batch_size"], params["epochs"]
    plan = AugmentationPlan.draw(len(train_set), epochs, seed)
    teacher, card = load_teacher(teacher_card, device, block_type=block_type_for(params["precision"]))
    text = read_text_features(text_features, card, split.classnames).to(device)
    classes, positions = split.num_classes, plan.used_positions(batch)
    k = storage_k(epochs, positions, classes, params)
    started = time.time()
    rows: dict[str, list[torch.Tensor]] = {}
    name = f"teacher-cache {split.dataset}/{params['setting']}/seed{seed}"
    with Progress(name, epochs * plan.steps_per_epoch(batch), log) as progress:
        for epoch in range(epochs):
            for images, _ in plan.loader(train_set, epoch, batch):
                logits = teacher_logits(teacher, images.to(device), text, params["logit_scale"], device,
                                        params["precision"])
                for key, table in compress(F.log_softmax(logits.float(), dim=-1).cpu(), k, params["dtype"]).items():
                    rows.setdefault(key, []).append(table)
                progress.update(1, f"epoch {epoch + 1}/{epochs}")
            log.info(f"[{name}] epoch {epoch + 1}/{epochs} ({time.time() - started:.0f}s)")
    tables = {name: torch.cat(parts).reshape(epochs, positions, -1) for name, parts in rows.items()}
    torch_save({"format": FORMAT, "params": params, "seed": seed, "teacher_sha256": card["sha256"],
                "classes": classes, "batch_size": batch, "top_k": k, "order": plan.order, "seeds": plan.seeds,
                **tables}, out_path)
    return {"classes": classes, "epochs": epochs, "positions": positions, "top_k": k,
            "megabytes": round(table_bytes(epochs, positions, classes, k, params["dtype"]) / 2**20, 3),
            "seconds": round(time.time() - started, 1)}


