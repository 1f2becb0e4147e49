"""Distillation of one student run (PKD or Simple, with or without RSM), resumable.

One epoch: for each batch of unlabeled training images (all classes), the frozen teacher's logits
z_t = s * norm(f_T(x)) W^T and the student's z_s = s * norm(P(f_S(x))) W^T over the teacher's text
features W of all C classes; loss = L_KD(z_s, z_t) [+ omega * H(M)]. After each epoch the student is
scored on the base test split (all test images for cross-dataset), which selects the best epoch as
the reference does; the last epoch is recorded too.
"""

from __future__ import annotations

import copy
import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ame import contracts
from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.evaluate import features_and_labels, scores, subset_accuracy
from ame.io import atomic_path, sha256_file, torch_save, write_json, write_text
from ame.kd import kd_loss
from ame.models.student import Student
from ame.optim import build_optimizer, epoch_lr, set_lr
from ame.pretrain import load_backbone
from ame.prompt_tuning import load_teacher
from ame.rsm import RSM
from ame.runtime import (autocast, device_name, git_sha, package_versions, resolve_device, seed_everything)
from ame.config import params_sha256, uses_prompts, uses_rsm


@dataclass
class RunInputs:
    split: Path
    shots: Path
    student_backbone: Path
    teacher: Path
    text_features: Path


def _save_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=contracts.HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _rng_state() -> dict:
    import random

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    import random

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def distill(params: dict, seed: int, inputs: RunInputs, out_dir: Path, scratch_dir: Path) -> dict:
    """Train one student for `seed`; write metrics.json, history.csv, embeddings.npz, student.pt to out_dir."""
    seed_everything(seed)
    device = resolve_device(params["device"])
    task, method = params["task"], params["method"]
    split = load_split(inputs.split)
    shots = read_shots(inputs.shots, split)
    train_items = [(split.root / split.train[i][0], split.train[i][1]) for i in shots["indices"]]
    base, new = (split.base_labels(), split.new_labels()) if task == "base2new" else (
        list(range(split.num_classes)), [])

    teacher, teacher_card = load_teacher(inputs.teacher, device)
    feats = torch.load(inputs.text_features, map_location="cpu", weights_only=True)
    if feats["classnames"] != split.classnames:
        raise ValueError(f"{inputs.text_features}: class names differ from {inputs.split}; rerun teacher_features")
    text = feats["features"].to(device)
    student_clip, _ = load_backbone(inputs.student_backbone)
    depth = params["prompts"]["depth"] if uses_prompts(method) else 0
    tokens = params["prompts"]["tokens"] if uses_prompts(method) else 1
    student = Student(student_clip, int(text.shape[1]), tokens, depth).to(device)
    rsm = None
    if uses_rsm(method):
        rsm = RSM(int(text.shape[1]), params["rsm"]["rank"], params["rsm"]["trainable"]).to(device)
    trainable = [p for p in student.parameters() if p.requires_grad]
    if rsm is not None:
        trainable += [p for p in rsm.parameters() if p.requires_grad]
    optim = params["optim"]
    optimizer = build_optimizer(trainable, optim)

    aug = params["augment"]
    train_set = ImageSet(train_items, build_transform(True, aug["image_size"], (aug["scale_min"], 1.0), aug["hflip"]))
    batch = optim["batch_size"]
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=len(train_set) >= batch,
                        generator=generator)
    test_set = ImageSet(split.items("test"), build_transform(False, aug["image_size"]))
    # Model selection scores base-class test images only (all of them for cross-dataset).
    select_classes = base
    select_set = ImageSet(split.items("test", labels=select_classes), build_transform(False, aug["image_size"]))
    scale, tau, weight = params["kd"]["logit_scale"], params["kd"]["temperature"], params["kd"]["weight"]
    omega = params["rsm"]["omega"] if rsm is not None else 0.0
    precision = params["precision"]

    def encode(images):
        with autocast(device, precision):
            return student(images)

    # Resume state lives outside the declared outputs (engines delete those before a rerun).
    state_path = scratch_dir / "state.pt"
    run_sha = params_sha256({**params, "seed": seed})
    history: list[dict] = []
    best = {"acc": -1.0, "epoch": None, "state": None}
    start_epoch = 0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("run_sha") == run_sha:
            student.load_trainable_state(state["student"])
            if rsm is not None:
                rsm.load_state_dict(state["rsm"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            _set_rng_state(state["rng"])
            history, best, start_epoch = state["history"], state["best"], state["epoch"]
            print(f"[distill] resuming from epoch {start_epoch}", file=sys.stderr, flush=True)

    started = time.time()
    for epoch in range(start_epoch, optim["epochs"]):
        lr = epoch_lr(optim, epoch)
        set_lr(optimizer, lr)
        student.train()
        sums = {"kd": 0.0, "h": 0.0, "total": 0.0}
        for images, _ in loader:  # labels are never used: the distillation is unsupervised
            images = images.to(device)
            with torch.no_grad(), autocast(device, precision):
                teacher_logits = scale * teacher.encode_image(images) @ text.t()
            with autocast(device, precision):
                student_features = student(images)
                student_logits = scale * student_features @ text.t()
            kd = kd_loss(student_logits.float(), teacher_logits.float(), tau, weight)
            entropy = rsm(student_features.float(), text) if rsm is not None else torch.zeros((), device=device)
            loss = kd + omega * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["kd"] += kd.item()
            sums["h"] += entropy.item()
            sums["total"] += loss.item()
        student.eval()
        acc = subset_accuracy(*features_and_labels(encode, select_set, params["eval"]["batch_size"], device),
                              text.cpu(), select_classes)
        n = max(len(loader), 1)
        history.append({"epoch": epoch + 1, "lr": f"{lr:.6g}", "kd_loss": f"{sums['kd'] / n:.6g}",
                        "rsm_entropy": f"{sums['h'] / n:.6g}" if rsm is not None else "",
                        "total_loss": f"{sums['total'] / n:.6g}", "base_acc": f"{acc:.4f}"})
        if acc > best["acc"]:
            best = {"acc": acc, "epoch": epoch + 1, "state": {"student": student.trainable_state(),
                    "rsm": copy.deepcopy(rsm.state_dict()) if rsm is not None else None}}
        print(f"[distill {task}/{split.dataset}/{params['setting']}/{method}/seed{seed}] epoch {epoch + 1}/"
              f"{optim['epochs']} lr {lr:.2e} kd {sums['kd'] / n:.4f} H {sums['h'] / n:.4f} "
              f"{'base' if task == 'base2new' else 'test'} acc {acc:.2f} ({time.time() - started:.0f}s)",
              file=sys.stderr, flush=True)
        if (epoch + 1) % params["checkpoint_every"] == 0 and epoch + 1 < optim["epochs"]:
            torch_save({"run_sha": run_sha, "epoch": epoch + 1, "student": student.trainable_state(),
                        "rsm": rsm.state_dict() if rsm is not None else None, "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(), "rng": _rng_state(), "history": history,
                        "best": best}, state_path)

    features, labels = features_and_labels(encode, test_set, params["eval"]["batch_size"], device)
    last_scores = {**scores(features, labels, text.cpu(), task, base, new), "epoch": optim["epochs"]}
    student.load_trainable_state(best["state"]["student"])
    student.eval()
    best_features, labels = features_and_labels(encode, test_set, params["eval"]["batch_size"], device)
    best_scores = scores(best_features, labels, text.cpu(), task, base, new)
    selection = params["eval"]["selection"]
    chosen = best_scores if selection == "best" else last_scores
    chosen_features = best_features if selection == "best" else features
    metrics = {
        "dataset": split.dataset, "task": task, "setting": params["setting"], "method": method, "seed": seed,
        "selection": selection, **{k: chosen[k] for k in ("base", "new", "hm", "accuracy")},
        "last": last_scores, "best_epoch": best["epoch"],
        "provenance": {"git_sha": git_sha(), "config_sha256": params_sha256(params), "packages": package_versions(),
                       "teacher_sha256": teacher_card["sha256"], "device": device_name(device),
                       "precision": precision},
    }
    contracts.validate(metrics, contracts.METRICS, where=str(out_dir / "metrics.json"))
    write_embeddings(out_dir / "embeddings.npz", chosen_features, labels, split.classnames)
    torch_save(best["state"] if selection == "best" else {"student": student.trainable_state()}, out_dir / "student.pt")
    _save_history(out_dir / "history.csv", history)
    write_json(out_dir / "metrics.json", metrics)  # last: its presence marks a complete run
    state_path.unlink(missing_ok=True)
    return metrics


def write_embeddings(path: Path, features: torch.Tensor, labels: torch.Tensor, classnames: list[str]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, features=features.numpy().astype(np.float32), labels=labels.numpy(),
                                classnames=np.array(classnames))


@torch.no_grad()
def zero_shot(params: dict, student_backbone: Path, split_path: Path, out_dir: Path) -> dict:
    """The student backbone's own zero-shot scores ("a photo of a {class}."), a `zeroshot` row."""
    import torch.nn.functional as F

    from ame.models.clip import get_tokenizer
    from ame.pretrain import ZERO_SHOT_TEMPLATE

    device = resolve_device(params["device"])
    split = load_split(split_path)
    clip, card = load_backbone(student_backbone)
    clip = clip.to(device)
    tokenizer = get_tokenizer(card["arch"])
    text = F.normalize(clip.encode_text(tokenizer([ZERO_SHOT_TEMPLATE.format(c.replace("_", " "))
                                                    for c in split.classnames]).to(device)), dim=-1).float().cpu()
    test_set = ImageSet(split.items("test"), build_transform(False, params["augment"]["image_size"]))
    features, labels = features_and_labels(lambda x: F.normalize(clip.encode_image(x), dim=-1), test_set,
                                           params["eval"]["batch_size"], device)
    task = params["task"]
    base, new = (split.base_labels(), split.new_labels()) if task == "base2new" else (
        list(range(split.num_classes)), [])
    result = scores(features, labels, text, task, base, new)
    metrics = {"dataset": split.dataset, "task": task, "setting": "zeroshot", "method": "zeroshot", "seed": 0,
               "selection": params["eval"]["selection"], **result, "last": {**result, "epoch": None},
               "best_epoch": None,
               "provenance": {"git_sha": git_sha(), "config_sha256": params_sha256(params),
                              "packages": package_versions(), "teacher_sha256": None,
                              "device": device_name(device), "precision": "fp32"}}
    contracts.validate(metrics, contracts.METRICS, where=str(out_dir / "metrics.json"))
    write_embeddings(out_dir / "embeddings.npz", features, labels, split.classnames)
    write_json(out_dir / "metrics.json", metrics)
    return metrics
