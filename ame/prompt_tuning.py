"""Teacher prompt tuning for the miniature: IVLP prompts trained by cross-entropy on labeled shots.

It stands in for fetching PromptKD's released PromptSRC teachers: base-to-new teachers see labeled
shots of the base classes only; the cross-dataset teacher sees all classes of the source dataset.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.engine import Trainable, fit
from ame.evaluate import features_and_labels, subset_accuracy
from ame.io import read_json, sha256_file, torch_save, write_json
from ame.models.load import build_teacher, load_teacher
from ame.optim import build_optimizer, epoch_lr
from ame.runtime import autocast, resolve_device, seed_everything

log = logging.getLogger(__name__)


class _PromptTuning(Trainable):
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
    optim = {k: params[k] for k in ("lr", "momentum", "weight_decay", "epochs", "warmup_epochs", "warmup_lr")}
    optimizer = build_optimizer(trainable, optim)
    task = _PromptTuning(teacher, loader, names, optim, params, device, f"teacher {split.dataset}")
    fit(task, optimizer, epochs=params["epochs"], steps_per_epoch=len(loader))

    teacher.eval()
    val_items = split.items("val") or split.items("train")
    val_set = ImageSet(val_items, build_transform(False, aug["image_size"]))
    with torch.no_grad():
        text = teacher.encode_text(split.classnames).cpu()
        feats, labels = features_and_labels(teacher.encode_image, val_set, 256, device)
    val = {"trained_classes": round(subset_accuracy(feats, labels, text, classes), 2)}
    if not params["all_classes"]:
        val["new_classes"] = round(subset_accuracy(feats, labels, text, split.new_labels()), 2)
    log.info(f"[teacher {split.dataset}] val accuracy {val}")
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
