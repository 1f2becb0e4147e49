"""Distillation of one student run (PKD or Simple, with or without RSM), resumable.

One epoch: for each batch of unlabeled training images (all classes), the frozen teacher's logits
z_t = s * norm(f_T(x)) W^T and the student's z_s = s * norm(P(f_S(x))) W^T over the teacher's text
features W of all C classes; loss = L_KD(z_s, z_t) [+ omega * H(M)]. After each epoch the student is
scored on the base test split (all test images for cross-dataset), which selects the best epoch as
the reference does; the last epoch is recorded too.

The augmented batches come from a pre-drawn plan (`ame.data.plan`), so with `kd.teacher_cache`
enabled the teacher's logits can be read from a cache built once per grid cell
(`ame.teacher_cache`) instead of being recomputed by every method, for the very same crops.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ame import contracts
from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set
from ame.evaluate import evaluation_classes, features_and_labels, scores, subset_accuracy
from ame.io import read_json, sha256_file, sha256_json, torch_save, write_bytes, write_json, write_npz, write_text
from ame.kd import kd_loss
from ame.models.student import Student
from ame.optim import build_optimizer, epoch_lr, set_lr
from ame.models.load import load_backbone, load_teacher, read_text_features
from ame.rsm import RSM
from ame.runtime import (autocast, block_type_for, device_name, git_sha, package_versions, resolve_device,
                         seed_everything)
from ame.teacher_cache import TeacherCache, teacher_logits
from ame.spec.layout import RUN_FILES
from ame.spec.methods import method, run_code
from ame.spec.run import RunSpec


@dataclass
class RunInputs:
    split: Path
    shots: Path
    student_backbone: Path
    teacher: Path
    text_features: Path
    teacher_cache: Path | None = None  # kd.teacher_cache: this seed's cache, read instead of the teacher


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


def _teacher_or_cache(spec: RunSpec, inputs: RunInputs, plan: AugmentationPlan, classes: int,
                      device: torch.device) -> tuple:
    """(teacher, None, card) online, or (None, cache, card) when kd.teacher_cache gave this run a cache."""
    if inputs.teacher_cache is None:
        if spec.teacher_cache:
            raise ValueError("kd.teacher_cache is enabled but no cache file was given; pass --teacher-cache "
                             "(the teacher_cache step builds it)")
        teacher, card = load_teacher(inputs.teacher, device, block_type=block_type_for(spec.precision))
        return teacher, None, card
    card = read_json(inputs.teacher)
    cache = TeacherCache.open(inputs.teacher_cache, spec.teacher_cache, spec.seed, plan, classes, card["sha256"])
    return None, cache, card


def write_params(out_dir: Path, spec: RunSpec) -> None:
    """params.json: the run's whole specification, in the clear (RunSpec.from_dict reads it back)."""
    write_json(out_dir / "params.json", spec.to_dict())


def distill(spec: RunSpec, inputs: RunInputs, out_dir: Path, scratch_dir: Path, *,
            save_minutes: float = 15.0, save_steps: int | None = None, collapse_percent: float = 5.0) -> dict:
    """Train the student of run `spec`; write params.json, metrics.json, history.csv, embeddings.npz
    and student.pt to out_dir.

    Resume state (trainable weights, optimiser, scaler, RNG, the epoch's running loss sums, history,
    best epoch) goes to scratch_dir/state.pt atomically at each epoch's end, every `save_minutes`
    of training and (if given) every `save_steps` steps; a rerun after a kill at any moment resumes
    from the last save, mid-epoch included, and writes the same bytes as an uninterrupted run.

    A non-finite loss or gradient raises FloatingPointError (run, epoch, step, each loss term); an
    epoch whose mean H(M) falls below `collapse_percent` % of its maximum log(C + B) is reported on
    stderr as a collapsed manifold (a warning only; 0 turns it off).
    """
    m = method(spec.method)
    if not m.trains or spec.kd is None or spec.optim is None:
        raise ValueError(f"run specification of {spec.method}: not a distillation method (kd and optim needed)")
    seed = spec.seed
    seed_everything(seed)
    device = resolve_device(spec.device)
    task = spec.task
    split = load_split(inputs.split)
    shots = read_shots(inputs.shots, split)
    base, new = evaluation_classes(split, task)

    text = read_text_features(inputs.text_features, read_json(inputs.teacher), split.classnames).to(device)
    precision = spec.precision
    student_clip, _ = load_backbone(inputs.student_backbone, block_type=block_type_for(precision))
    depth = spec.prompts.depth if spec.prompts is not None else 0
    tokens = spec.prompts.tokens if spec.prompts is not None else 1
    student = Student(student_clip, int(text.shape[1]), tokens, depth).to(device)
    rsm = None
    if spec.rsm is not None:
        rsm = RSM(int(text.shape[1]), spec.rsm.rank, spec.rsm.trainable).to(device)
    trainable = [p for p in student.parameters() if p.requires_grad]
    if rsm is not None:
        trainable += [p for p in rsm.parameters() if p.requires_grad]
    optim = asdict(spec.optim)
    optimizer = build_optimizer(trainable, optim)

    aug = asdict(spec.augment)
    train_set = training_set(split, shots, aug)
    batch = optim["batch_size"]
    plan = AugmentationPlan.draw(len(train_set), optim["epochs"], seed)
    teacher, cache, teacher_card = _teacher_or_cache(spec, inputs, plan, split.num_classes, device)
    test_set = ImageSet(split.items("test"), build_transform(False, aug["image_size"]))
    # Model selection scores base-class test images only (all of them for cross-dataset).
    select_classes = base
    select_set = ImageSet(split.items("test", labels=select_classes), build_transform(False, aug["image_size"]))
    scale, tau, weight = spec.kd.logit_scale, spec.kd.temperature, spec.kd.weight
    omega = spec.rsm.omega if rsm is not None else 0.0
    # AMP's float16 gradients underflow without loss scaling; for fp32 and bf16 this is a no-op.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "amp")

    def encode(images):
        with autocast(device, precision):
            return student(images)

    # Resume state lives outside the declared outputs (engines delete those before a rerun).
    state_path = scratch_dir / "state.pt"
    run_sha = sha256_json(spec.to_dict())
    history: list[dict] = []
    best = {"acc": -1.0, "epoch": None, "state": None}
    start_epoch, start_step, start_sums = 0, 0, None
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("run_sha") == run_sha:
            student.load_trainable_state(state["student"])
            if rsm is not None:
                rsm.load_state_dict(state["rsm"])
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"])
            history, best, start_epoch = state["history"], state["best"], state["epoch"]
            start_step, start_sums = state.get("step", 0), state.get("sums")
            print(f"[distill] resuming from epoch {start_epoch + 1}, step {start_step}", file=sys.stderr, flush=True)

    def save(epoch: int, step: int, sums: dict) -> None:
        """State after `step` steps of 0-based `epoch` (step 0: the epoch has not begun)."""
        torch_save({"run_sha": run_sha, "epoch": epoch, "step": step, "sums": dict(sums),
                    "student": student.trainable_state(), "rsm": rsm.state_dict() if rsm is not None else None,
                    "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "rng": _rng_state(),
                    "history": history, "best": best}, state_path)

    started = last_save = time.time()
    steps = plan.steps_per_epoch(batch)
    for epoch in range(start_epoch, optim["epochs"]):
        lr = epoch_lr(optim, epoch)
        set_lr(optimizer, lr)
        student.train()
        begin = start_step if epoch == start_epoch else 0
        sums = dict(start_sums) if begin and start_sums else {"kd": 0.0, "h": 0.0, "total": 0.0}
        loader = plan.loader(train_set, epoch, batch, start_step=begin)
        # labels are never used: the distillation is unsupervised
        for step, (images, _) in enumerate(loader, start=begin):
            images = images.to(device)
            if cache is None:
                t_logits = teacher_logits(teacher, images, text, scale, device, precision)
            else:
                t_logits = cache.log_probs(epoch, step).to(device)  # log-probs: the same KD as the logits
            with autocast(device, precision):
                student_features = student(images)
                student_logits = scale * student_features @ text.t()
            kd = kd_loss(student_logits.float(), t_logits.float(), tau, weight)
            entropy = rsm(student_features.float(), text) if rsm is not None else torch.zeros((), device=device)
            loss = kd + omega * entropy
            where = f"{task}/{split.dataset}/{spec.setting}/{spec.method}/seed{seed}, epoch {epoch + 1}, " \
                    f"step {step + 1}"
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"run {where}: non-finite loss (L_KD {kd.item():.6g}, H(M) {entropy.item():.6g}, total "
                    f"{loss.item():.6g}); no metrics are written and the last resume state is kept. Lower "
                    "optim.lr or rsm.omega, or use runtime.precision: fp32")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if precision != "amp" and not all(torch.isfinite(p.grad).all() for p in trainable if p.grad is not None):
                # (AMP's scaler skips such steps by design; elsewhere they would poison the weights.)
                raise FloatingPointError(f"run {where}: non-finite gradient (L_KD {kd.item():.6g}, H(M) "
                                         f"{entropy.item():.6g}); no metrics are written. Lower optim.lr or rsm.omega")
            scaler.step(optimizer)
            scaler.update()
            sums["kd"] += kd.item()
            sums["h"] += entropy.item()
            sums["total"] += loss.item()
            done = step + 1
            if done < steps and ((save_steps and done % save_steps == 0)
                                 or time.time() - last_save >= 60 * save_minutes):
                save(epoch, done, sums)
                last_save = time.time()
        student.eval()
        acc = subset_accuracy(*features_and_labels(encode, select_set, spec.eval_batch_size, device),
                              text.cpu(), select_classes)
        n = max(steps, 1)
        history.append({"epoch": epoch + 1, "lr": f"{lr:.6g}", "kd_loss": f"{sums['kd'] / n:.6g}",
                        "rsm_entropy": f"{sums['h'] / n:.6g}" if rsm is not None else "",
                        "total_loss": f"{sums['total'] / n:.6g}", "base_acc": f"{acc:.4f}"})
        if acc > best["acc"]:
            best = {"acc": acc, "epoch": epoch + 1, "state": {"student": student.trainable_state(),
                    "rsm": copy.deepcopy(rsm.state_dict()) if rsm is not None else None}}
        collapse = entropy_collapse(sums["h"] / n, split.num_classes + batch, collapse_percent) \
            if rsm is not None else None
        if collapse:
            print(f"[distill {task}/{split.dataset}/{spec.setting}/{spec.method}/seed{seed}] warning: epoch "
                  f"{epoch + 1}: {collapse}", file=sys.stderr, flush=True)
        print(f"[distill {task}/{split.dataset}/{spec.setting}/{spec.method}/seed{seed}] epoch {epoch + 1}/"
              f"{optim['epochs']} lr {lr:.2e} kd {sums['kd'] / n:.4f} H {sums['h'] / n:.4f} "
              f"{'base' if task == 'base2new' else 'test'} acc {acc:.2f} ({time.time() - started:.0f}s)",
              file=sys.stderr, flush=True)
        if epoch + 1 < optim["epochs"]:
            save(epoch + 1, 0, {})
            last_save = time.time()

    features, labels = features_and_labels(encode, test_set, spec.eval_batch_size, device)
    last_scores = {**scores(features, labels, text.cpu(), task, base, new), "epoch": optim["epochs"]}
    student.load_trainable_state(best["state"]["student"])
    student.eval()
    best_features, labels = features_and_labels(encode, test_set, spec.eval_batch_size, device)
    best_scores = scores(best_features, labels, text.cpu(), task, base, new)
    selection = spec.selection
    chosen = best_scores if selection == "best" else last_scores
    chosen_features = best_features if selection == "best" else features
    metrics = {
        "dataset": split.dataset, "task": task, "setting": spec.setting, "method": spec.method, "seed": seed,
        "selection": selection, **{k: chosen[k] for k in ("base", "new", "hm", "accuracy")},
        "last": last_scores, "best_epoch": best["epoch"],
        "provenance": {"git_sha": git_sha(), "config_sha256": run_sha, "packages": package_versions(),
                       "teacher_sha256": teacher_card["sha256"], "device": device_name(device),
                       "precision": precision},
    }
    contracts.validate(metrics, contracts.METRICS, where=str(out_dir / "metrics.json"))
    write_embeddings(out_dir / "embeddings.npz", chosen_features, labels, split.classnames)
    torch_save(best["state"] if selection == "best" else {"student": student.trainable_state()}, out_dir / "student.pt")
    _save_history(out_dir / "history.csv", history)
    write_params(out_dir, spec)
    write_json(out_dir / "metrics.json", metrics)  # last: its presence marks a complete run
    state_path.unlink(missing_ok=True)
    return metrics


def entropy_collapse(mean_entropy: float, rows: int, percent: float) -> str | None:
    """Why an epoch's mean H(M) (nats) counts as collapsed, or None.

    H(M) of Eq. 5 is at most log(rows), rows = C classes + B images of a batch; below `percent` %
    of that, softmax(s) sits on a few rows of M and the regulariser has stopped shaping the others.
    """
    ceiling = math.log(rows)
    if percent <= 0 or mean_entropy >= percent / 100 * ceiling:
        return None
    return (f"H(M) collapsed: epoch mean {mean_entropy:.4g} nats < {percent:g}% of its maximum "
            f"log({rows}) = {ceiling:.4g} nats (the rows' softmax sits on a few rows); consider a smaller "
            "rsm.omega")


# A run's files, metrics.json last: its presence marks a complete run, when written and when restored.
_RUN_FILES_METRICS_LAST = sorted(RUN_FILES, key=lambda name: name == "metrics.json")


def run_key(spec: RunSpec, inputs: RunInputs) -> str:
    """What a finished run's results depend on: its specification, its code and its input files."""
    files = [inputs.split, inputs.shots, inputs.student_backbone, inputs.teacher, inputs.text_features,
             inputs.teacher_cache]
    return sha256_json({"spec": spec.to_dict(), "code": run_code("distill", spec.method),
                        "inputs": [sha256_file(f) if f is not None else None for f in files]})


def keep_finished(out_dir: Path, scratch_dir: Path, key: str) -> None:
    """Copy a finished run into its scratch folder, so that a rerun of the same job (whose outputs
    the engine deletes first) restores it instead of training it again."""
    kept = scratch_dir / "finished"
    for name in _RUN_FILES_METRICS_LAST:
        write_bytes(kept / name, (out_dir / name).read_bytes())
    write_json(kept / "key.json", {"key": key})  # last: marks a complete copy


def restore_finished(out_dir: Path, scratch_dir: Path, key: str) -> bool:
    """Put back a run kept by `keep_finished` under the same key; False when there is none."""
    kept = scratch_dir / "finished"
    try:
        if read_json(kept / "key.json").get("key") != key:
            return False
    except (FileNotFoundError, ValueError):
        return False
    for name in _RUN_FILES_METRICS_LAST:
        write_bytes(out_dir / name, (kept / name).read_bytes())
    return True


def drop_finished(scratch_dir: Path) -> None:
    """Remove a kept copy (pipeline-made scratch files only) once the whole job has finished."""
    shutil.rmtree(scratch_dir / "finished", ignore_errors=True)


def write_embeddings(path: Path, features: torch.Tensor, labels: torch.Tensor, classnames: list[str]) -> None:
    write_npz(path, features=features.numpy().astype(np.float32), labels=labels.numpy(),
              classnames=np.array(classnames))


@torch.no_grad()
def zero_shot(spec: RunSpec, student_backbone: Path, split_path: Path, out_dir: Path) -> dict:
    """The student backbone's own zero-shot scores ("a photo of a {class}."), a `zeroshot` row."""
    import torch.nn.functional as F

    from ame.models.clip import get_tokenizer
    from ame.pretrain import ZERO_SHOT_TEMPLATE

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
