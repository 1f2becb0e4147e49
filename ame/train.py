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
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ame import contracts
from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set
from ame.engine import Checkpointing, EpochRecord, Trainable, fit
from ame.evaluate import evaluation_classes, features_and_labels, scores, subset_accuracy
from ame.io import read_json, sha256_file, sha256_json, torch_save, write_bytes, write_json, write_npz, write_text
from ame.kd import kd_loss
from ame.models.load import load_backbone, load_teacher, read_text_features
from ame.models.student import Student
from ame.optim import build_optimizer, epoch_lr
from ame.rsm import RSM
from ame.runtime import (autocast, block_type_for, device_name, git_sha, package_versions, resolve_device,
                         seed_everything)
from ame.spec.layout import RUN_FILES
from ame.spec.methods import method, run_code
from ame.spec.run import RunSpec
from ame.teacher_cache import TeacherCache, teacher_logits

log = logging.getLogger(__name__)


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


class _Distillation(Trainable):
    """One student (+ RSM) trained by KD from the teacher (online, or read from its cache)."""

    advice = "Lower optim.lr or rsm.omega, or use runtime.precision: fp32"

    def __init__(self, spec: RunSpec, student: Student, rsm: RSM | None, text: torch.Tensor, teacher, cache,
                 plan: AugmentationPlan, train_set, select_set, select_classes, device, collapse_percent: float,
                 rows: int) -> None:
        self.spec, self.student, self.rsm, self.text, self.teacher, self.cache = spec, student, rsm, text, teacher, cache
        self.plan, self.train_set, self.select_set, self.select_classes = plan, train_set, select_set, select_classes
        self.device, self.collapse_percent, self.rows = device, collapse_percent, rows
        self.name = f"{spec.task}/{spec.dataset}/{spec.setting}/{spec.method}/seed{spec.seed}"
        self.optim = asdict(spec.optim)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.spec.precision):
            return self.student(images)

    def batches(self, epoch: int, first_step: int):
        return self.plan.loader(self.train_set, epoch, self.optim["batch_size"], start_step=first_step)

    def lr(self, epoch: int, step: int) -> float:
        return epoch_lr(self.optim, epoch)

    def start_epoch(self, epoch: int) -> None:
        self.student.train()

    def training_step(self, batch, epoch: int, step: int) -> dict[str, torch.Tensor]:
        images, _ = batch  # labels are never used: the distillation is unsupervised
        images = images.to(self.device)
        kd_spec, precision = self.spec.kd, self.spec.precision
        if self.cache is None:
            t_logits = teacher_logits(self.teacher, images, self.text, kd_spec.logit_scale, self.device, precision)
        else:
            t_logits = self.cache.log_probs(epoch, step).to(self.device)  # log-probs: the same KD as the logits
        with autocast(self.device, precision):
            student_features = self.student(images)
            student_logits = kd_spec.logit_scale * student_features @ self.text.t()
        kd = kd_loss(student_logits.float(), t_logits.float(), kd_spec.temperature, kd_spec.weight)
        if self.rsm is None:
            entropy, omega = torch.zeros((), device=self.device), 0.0
        else:
            entropy, omega = self.rsm(student_features.float(), self.text), self.spec.rsm.omega
        return {"L_KD": kd, "H(M)": entropy, "loss": kd + omega * entropy}

    def evaluate(self, epoch: int) -> float:
        self.student.eval()
        # Model selection scores base-class test images only (all of them for cross-dataset).
        return subset_accuracy(*features_and_labels(self.encode, self.select_set, self.spec.eval_batch_size,
                                                    self.device), self.text.cpu(), self.select_classes)

    def weights(self) -> dict:
        return {"student": self.student.trainable_state(),
                "rsm": copy.deepcopy(self.rsm.state_dict()) if self.rsm is not None else None}

    def load_weights(self, state: dict) -> None:
        self.student.load_trainable_state(state["student"])
        if self.rsm is not None:
            self.rsm.load_state_dict(state["rsm"])

    def epoch_end(self, record: EpochRecord) -> None:
        if self.rsm is None:
            return
        collapse = entropy_collapse(record.means["H(M)"], self.rows, self.collapse_percent)
        if collapse:
            log.warning(f"[{self.name}] epoch {record.epoch}: {collapse}")


def _history_row(record: EpochRecord, rsm: bool) -> dict:
    return {"epoch": record.epoch, "lr": f"{record.lr:.6g}", "kd_loss": f"{record.means['L_KD']:.6g}",
            "rsm_entropy": f"{record.means['H(M)']:.6g}" if rsm else "",
            "total_loss": f"{record.means['loss']:.6g}", "base_acc": f"{record.score:.4f}"}


def distill(spec: RunSpec, inputs: RunInputs, out_dir: Path, scratch_dir: Path, *,
            save_minutes: float = 15.0, save_steps: int | None = None, collapse_percent: float = 5.0,
            key: str | None = None) -> dict:
    """Train the student of run `spec` (through `ame.engine.fit`); write params.json, metrics.json,
    history.csv, embeddings.npz and student.pt to out_dir.

    Resume state goes to scratch_dir/state.pt at each epoch's end, every `save_minutes` of training
    and (if given) every `save_steps` steps, keyed by the run's specification, code and inputs
    (`key`: `run_key(spec, inputs)`, computed when the caller has not); a rerun after a kill at any moment resumes from the last save, mid-epoch included,
    and writes the same bytes as an uninterrupted run. A non-finite loss or gradient raises
    FloatingPointError (run, epoch, step, each loss term); an epoch whose mean H(M) falls below
    `collapse_percent` % of its maximum log(C + B) is reported on stderr as a collapsed manifold
    (a warning only; 0 turns it off).
    """
    m = method(spec.method)
    if not m.trains or spec.kd is None or spec.optim is None:
        raise ValueError(f"run specification of {spec.method}: not a distillation method (kd and optim needed)")
    seed_everything(spec.seed)
    device = resolve_device(spec.device)
    split = load_split(inputs.split)
    shots = read_shots(inputs.shots, split)
    base, new = evaluation_classes(split, spec.task)

    text = read_text_features(inputs.text_features, read_json(inputs.teacher), split.classnames).to(device)
    precision = spec.precision
    student_clip, _ = load_backbone(inputs.student_backbone, block_type=block_type_for(precision))
    depth = spec.prompts.depth if spec.prompts is not None else 0
    tokens = spec.prompts.tokens if spec.prompts is not None else 1
    student = Student(student_clip, int(text.shape[1]), tokens, depth).to(device)
    rsm = RSM(int(text.shape[1]), spec.rsm.rank, spec.rsm.trainable).to(device) if spec.rsm is not None else None
    trainable = [p for p in student.parameters() if p.requires_grad]
    if rsm is not None:
        trainable += [p for p in rsm.parameters() if p.requires_grad]
    optim = asdict(spec.optim)
    optimizer = build_optimizer(trainable, optim)

    aug = asdict(spec.augment)
    train_set = training_set(split, shots, aug)
    batch = optim["batch_size"]
    plan = AugmentationPlan.draw(len(train_set), optim["epochs"], spec.seed)
    teacher, cache, teacher_card = _teacher_or_cache(spec, inputs, plan, split.num_classes, device)
    test_set = ImageSet(split.items("test"), build_transform(False, aug["image_size"]))
    select_set = ImageSet(split.items("test", labels=base), build_transform(False, aug["image_size"]))
    task = _Distillation(spec, student, rsm, text, teacher, cache, plan, train_set, select_set, base, device,
                         collapse_percent, split.num_classes + batch)
    # AMP's float16 gradients underflow without loss scaling; for fp32 and bf16 this is a no-op.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "amp")
    # Resume state lives outside the declared outputs (engines delete those before a rerun).
    checkpoint = Checkpointing(scratch_dir / "state.pt", key or run_key(spec, inputs), save_minutes, save_steps)
    result = fit(task, optimizer, epochs=optim["epochs"], steps_per_epoch=plan.steps_per_epoch(batch),
                 scaler=scaler, checkpoint=checkpoint)

    features, labels = features_and_labels(task.encode, test_set, spec.eval_batch_size, device)
    last_scores = {**scores(features, labels, text.cpu(), spec.task, base, new), "epoch": optim["epochs"]}
    student.load_trainable_state(result.best_weights["student"])
    student.eval()
    best_features, labels = features_and_labels(task.encode, test_set, spec.eval_batch_size, device)
    best_scores = scores(best_features, labels, text.cpu(), spec.task, base, new)
    selection = spec.selection
    chosen = best_scores if selection == "best" else last_scores
    chosen_features = best_features if selection == "best" else features
    metrics = {
        "dataset": split.dataset, "task": spec.task, "setting": spec.setting, "method": spec.method,
        "seed": spec.seed, "selection": selection, **{k: chosen[k] for k in ("base", "new", "hm", "accuracy")},
        "last": last_scores, "best_epoch": result.best_epoch,
        "provenance": {"git_sha": git_sha(), "config_sha256": sha256_json(spec.to_dict()),
                       "packages": package_versions(), "teacher_sha256": teacher_card["sha256"],
                       "device": device_name(device), "precision": precision},
    }
    contracts.validate(metrics, contracts.METRICS, where=str(out_dir / "metrics.json"))
    write_embeddings(out_dir / "embeddings.npz", chosen_features, labels, split.classnames)
    torch_save(result.best_weights if selection == "best" else {"student": student.trainable_state()},
               out_dir / "student.pt")
    _save_history(out_dir / "history.csv", [_history_row(r, rsm is not None) for r in result.history])
    write_params(out_dir, spec)
    write_json(out_dir / "metrics.json", metrics)  # last: its presence marks a complete run
    checkpoint.clear()
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
