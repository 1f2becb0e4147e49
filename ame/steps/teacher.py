"""`ame teacher`: a teacher's weights file and card, prompt-tuned here or imported from PromptKD.

teacher.source: train — IVLP prompts tuned by cross-entropy on labeled shots (the miniature's
stand-in for the release; `ame.training.prompt_tuning`). teacher.source: fetch — PromptKD's released
PromptSRC checkpoint located or fetched (`ame.models.releases`), converted (`ame.models.promptkd`)
and recorded. Both write the same pair of files, so everything downstream (`load_teacher`, text
features, distillation) is the same for both. An imported weights file holds the converted tensors
in the checkpoint's own dtypes (the backbone's token embedding excepted, which the checkpoint
lacks), so later steps need neither the release file nor the conversion code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.evaluate import features_and_labels, subset_accuracy
from ame.io import read_json, sha256_file, torch_save, write_json
from ame.models import promptkd
from ame.models.load import build_teacher
from ame.models.releases import locate_checkpoint
from ame.runtime import resolve_device, seed_everything
from ame.training.engine import fit
from ame.training.optim import build_optimizer
from ame.training.prompt_tuning import PromptTuning

log = logging.getLogger(__name__)

FORMAT = "promptkd"


def _scalar(value):
    return value if isinstance(value, (int, float, str, bool)) or value is None else repr(value)


def _warn_skips(dataset: str, summary: dict) -> None:
    kept = [k for k in summary["kept_from_backbone"] if k not in promptkd.NOT_IN_CHECKPOINT]
    if summary["unknown_skipped"]:
        log.warning(f"[teacher {dataset}] skipped tensors outside the mapping: {summary['unknown_skipped']}")
    if kept:
        log.warning(f"[teacher {dataset}] absent from the checkpoint, kept the backbone's weights: {kept}")


def import_teacher(params: dict, backbone_card: Path, out_weights: Path, out_card: Path, *,
                   allow_unknown_keys: bool = False) -> dict:
    """Convert PromptKD's released teacher for (params['task'], params['dataset']) into our format."""
    path, digest = locate_checkpoint(params["task"], params["dataset"], params["checkpoint_root"],
                                     mirror=params.get("checkpoint_mirror"))
    checkpoint = promptkd.read_checkpoint(path)
    state = promptkd.checkpoint_state(checkpoint, where=str(path))
    teacher = build_teacher(params, backbone_card)
    conversion = promptkd.convert(state, teacher, allow_unknown_keys=allow_unknown_keys, where=str(path))
    promptkd.load_converted(teacher, conversion.state, conversion.kept, where=str(path))
    summary = conversion.summary()
    _warn_skips(params["dataset"], summary)
    torch_save({"format": FORMAT, "state": conversion.state, "kept": conversion.kept}, out_weights)
    backbone = read_json(backbone_card)
    card = {"format": FORMAT, "arch": backbone["arch"], "backbone_card": str(backbone_card),
            "backbone_sha256": backbone["sha256"], "file": Path(out_weights).name,
            "sha256": sha256_file(out_weights), "dataset": params["dataset"], "task": params["task"],
            "source": {"path": str(path), "sha256": digest, "epoch": _scalar(checkpoint.get("epoch")),
                       "val_result": _scalar(checkpoint.get("val_result"))},
            "conversion": summary, "params": params}
    write_json(out_card, card)
    log.info(f"[teacher {params['dataset']}] converted {path} ({summary['consumed']} tensors; ignored "
          f"{summary['ignored']})")
    return card


def train_teacher(params: dict, backbone_card: Path, split_path: Path, shots_path: Path,
                  out_weights: Path, out_card: Path) -> dict:
    """Tune IVLP prompts on `params['shots']` labeled shots per class (base classes, or all with
    `all_classes`); write the prompts and a card with the val accuracy of trained and new classes."""
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
    task = PromptTuning(teacher, loader, names, optim, params, device, f"teacher {split.dataset}")
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


def make_teacher(params: dict, backbone_card: Path, split_path: Path, shots_path: Path | None, out_weights: Path,
                 out_card: Path, *, allow_unknown_keys: bool = False) -> dict:
    """The teacher `params['source']` asks for: tuned here (`train`, needs the shots file) or
    PromptKD's release imported (`fetch`; the shots file is not read). ValueError otherwise."""
    if params["source"] == "fetch":
        return import_teacher(params, backbone_card, out_weights, out_card,
                              allow_unknown_keys=allow_unknown_keys or params.get("allow_unknown_keys", False))
    if shots_path is None:
        raise ValueError("teacher.source: train tunes prompts on labeled shots; pass --shots")
    return train_teacher(params, backbone_card, split_path, shots_path, out_weights, out_card)
