"""Teacher prompt tuning for the miniature: IVLP prompts trained by cross-entropy on labeled shots.

It stands in for fetching PromptKD's released PromptSRC teachers: base-to-new teachers see labeled
shots of the base classes only; the cross-dataset teacher sees all classes of the source dataset.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.evaluate import features_and_labels, subset_accuracy
from ame.io import read_json, sha256_file, torch_save, write_json
from ame.models.load import build_teacher, load_teacher
from ame.optim import build_optimizer, epoch_lr, set_lr
from ame.runtime import autocast, resolve_device, seed_everything


def train_teacher(params: dict, backbone_card: Path, split_path: Path, shots_path: Path,
                  out_weights: Path, out_card: Path) -> dict:
    seed_everything(params["seed"])
    device = resolve_device(params["device"])
    split = load_split(split_path)
    classes = list(range(split.num_classes)) if params["all_classes"] else split.base_labels()
    shots = read_shots(shots_path, split)
    train = [split.train[i] for i in shots["indices"] if split.train[i][1] in classes]
    # Cross-entropy over the trained classes only, relabelled 0..k-1 in label order.
    relabel = {c: i for i, c in enumerate(classes)}
    items = [(split.root / path, relabel[label]) for path, label in train]
    names = [split.classnames[c] for c in classes]

    teacher = build_teacher(params, backbone_card).to(device)
    aug = params["augment"]
    loader = DataLoader(ImageSet(items, build_transform(True, aug["image_size"], (aug["scale_min"], 1.0), aug["hflip"])),
                        batch_size=params["batch_size"], shuffle=True, drop_last=len(items) >= params["batch_size"],
                        generator=torch.Generator().manual_seed(params["seed"]))
    trainable = [p for p in teacher.parameters() if p.requires_grad]
    optim = {"lr": params["lr"], "momentum": 0.9, "weight_decay": 5e-4, "epochs": params["epochs"],
             "warmup_epochs": 1, "warmup_lr": 1e-5}
    optimizer = build_optimizer(trainable, optim)
    scale = params["logit_scale"]
    start = time.time()
    for epoch in range(params["epochs"]):
        set_lr(optimizer, epoch_lr(optim, epoch))
        teacher.train()
        total = 0.0
        for images, labels in loader:
            with autocast(device, params["precision"]):
                logits = scale * teacher.encode_image(images.to(device)) @ teacher.encode_text(names).t()
                loss = F.cross_entropy(logits.float(), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"[teacher {split.dataset}] epoch {epoch + 1}/{params['epochs']} CE {total / len(loader):.3f} "
              f"({time.time() - start:.0f}s)", file=sys.stderr, flush=True)

    teacher.eval()
    val_items = split.items("val") or split.items("train")
    val_set = ImageSet(val_items, build_transform(False, aug["image_size"]))
    with torch.no_grad():
        text = teacher.encode_text(split.classnames).cpu()
        feats, labels = features_and_labels(teacher.encode_image, val_set, 256, device)
    val = {"trained_classes": round(subset_accuracy(feats, labels, text, classes), 2)}
    if not params["all_classes"]:
        val["new_classes"] = round(subset_accuracy(feats, labels, text, split.new_labels()), 2)
    print(f"[teacher {split.dataset}] val accuracy {val}", file=sys.stderr, flush=True)
    torch_save({"prompts": teacher.prompt_state(), "classes": classes}, out_weights)
    card = {"arch": read_json(backbone_card)["arch"], "backbone_card": str(backbone_card),
            "backbone_sha256": read_json(backbone_card)["sha256"], "file": out_weights.name,
            "sha256": sha256_file(out_weights), "dataset": split.dataset, "trained_classes": classes,
            "val_accuracy": val, "params": params}
    write_json(out_card, card)
    return card


@torch.no_grad()
def text_features(card_path: Path, split_path: Path, out_path: Path, device: torch.device) -> dict:
    """The teacher's normalised text features of all C classes, computed once after loading (C x d)."""
    teacher, card = load_teacher(card_path, device)
    split = load_split(split_path)
    features = teacher.encode_text(split.classnames).float().cpu()
    torch_save({"features": features, "classnames": split.classnames, "teacher_sha256": card["sha256"]}, out_path)
    return {"shape": list(features.shape)}
