"""`ame distill`: train the students of one grid cell (one run per seed) and write their run folders.

Composes the library: the split and shots (`ame.data`), the pre-drawn augmentation plan
(`ame.data.plan`), the student backbone, the teacher and its text features (`ame.models.load`),
the student and RSM (`ame.models.student`, `ame.rsm`), PromptKD's optimiser (`ame.training.optim`)
and the training loop (`ame.training.engine.fit` running `ame.training.distillation.Distillation`);
then evaluation (`ame.evaluate`) and the run folder's files (`ame.steps.run_folder`).

With `kd.teacher_cache` the teacher's logits are read from a cache built once per grid cell
(`ame teacher-cache`) instead of being recomputed by every method, for the very same crops.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ame import contracts
from ame.data import ImageSet, build_transform, load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set
from ame.evaluate import evaluation_classes, features_and_labels, scores
from ame.io import read_json, sha256_file, sha256_json, write_json
from ame.models.load import load_backbone, load_teacher, read_text_features
from ame.models.student import Student
from ame.models.student_file import save_student
from ame.rsm import RSM
from ame.runtime import block_type_for, device_name, git_sha, package_versions, resolve_device, seed_everything
from ame.spec.methods import method, run_code
from ame.spec.run import RunSpec
from ame.steps.run_folder import (drop_finished, keep_finished, restore_finished, write_embeddings,
                                  write_history, write_params)
from ame.training.distillation import Distillation, history_row
from ame.training.engine import Checkpointing, fit
from ame.training.live import LIVE_FOLDER
from ame.training.optim import build_optimizer
from ame.training.teacher_cache import TeacherCache

log = logging.getLogger(__name__)


@dataclass
class RunInputs:
    split: Path
    shots: Path
    student_backbone: Path
    teacher: Path
    text_features: Path
    teacher_cache: Path | None = None  # kd.teacher_cache: this seed's cache, read instead of the teacher


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


def distill(spec: RunSpec, inputs: RunInputs, out_dir: Path, scratch_dir: Path, *,
            save_minutes: float = 15.0, save_steps: int | None = None, collapse_percent: float = 5.0,
            key: str | None = None) -> dict:
    """Train the student of run `spec` (through `ame.training.engine.fit`); write params.json, metrics.json,
    history.csv, embeddings.npz and the selected student (student.safetensors + student.json,
    `ame.models.student_file`) to out_dir.

    Live training curves (DVCLive, `ame.training.live`) go to scratch_dir/dvclive/ after every epoch.
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
    task = Distillation(spec, student, rsm, text, teacher, cache, plan, train_set, select_set, base, device,
                         collapse_percent, split.num_classes + batch, live_folder=scratch_dir / LIVE_FOLDER)
    # AMP's float16 gradients underflow without loss scaling; for fp32 and bf16 this is a no-op.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "amp")
    # Resume state lives outside the declared outputs (engines delete those before a rerun).
    checkpoint = Checkpointing(scratch_dir / "state.pt", key or run_key(spec, inputs), save_minutes, save_steps)
    result = fit(task, optimizer, epochs=optim["epochs"], steps_per_epoch=plan.steps_per_epoch(batch),
                 scaler=scaler, checkpoint=checkpoint)
    task.close()

    features, labels = features_and_labels(task.encode, test_set, spec.eval_batch_size, device)
    last_scores = {**scores(features, labels, text.cpu(), spec.task, base, new), "epoch": optim["epochs"]}
    last_student = student.trainable_state() if spec.selection == "last" else None
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
    if selection == "last":
        student.load_trainable_state(last_student)
    save_student(out_dir, student, text, split.classnames, inputs.student_backbone, inputs.text_features,
                 spec.to_dict(), spec.kd.logit_scale)
    write_history(out_dir / "history.csv", [history_row(r, rsm is not None) for r in result.history])
    write_params(out_dir, spec)
    write_json(out_dir / "metrics.json", metrics)  # last: its presence marks a complete run
    checkpoint.clear()
    return metrics


def run_key(spec: RunSpec, inputs: RunInputs) -> str:
    """What a finished run's results depend on: its specification, its code and its input files."""
    files = [inputs.split, inputs.shots, inputs.student_backbone, inputs.teacher, inputs.text_features,
             inputs.teacher_cache]
    return sha256_json({"spec": spec.to_dict(), "code": run_code("distill", spec.method),
                        "inputs": [sha256_file(f) if f is not None else None for f in files]})


def distill_cell(cell: dict, seeds: list[int], inputs: list[RunInputs], out_dirs: list[Path],
                 scratch_dirs: list[Path], *, save_minutes: float = 15.0, collapse_percent: float = 5.0) -> None:
    """Train one run per seed: the cell's run specification `cell` (a `RunSpec` dict without its
    seed) with each of `seeds`; `inputs`, `out_dirs` and `scratch_dirs` are per seed.

    A rerun of a grouped job (killed during a later seed) restores the seeds it had finished
    instead of training them again; their kept copies are dropped once the whole job is done."""
    if not (len(seeds) == len(inputs) == len(out_dirs) == len(scratch_dirs)):
        raise ValueError("give one shots file, one output folder, one scratch folder and (with a cache) one "
                         "teacher cache per seed")
    grouped = len(seeds) > 1
    for seed, run_inputs, out_dir, scratch in zip(seeds, inputs, out_dirs, scratch_dirs):
        run_spec = RunSpec.from_dict({**cell, "seed": seed}, where="--spec")
        key = run_key(run_spec, run_inputs)  # hashes the inputs once: keys resume state and the kept copy
        if grouped and restore_finished(out_dir, scratch, key):
            log.info(f"[distill] {out_dir}: finished earlier in this job; restored, not retrained")
            continue
        metrics = distill(run_spec, run_inputs, out_dir, scratch, save_minutes=save_minutes,
                          collapse_percent=collapse_percent, key=key)
        if grouped:
            keep_finished(out_dir, scratch, key)
        summary = {k: metrics[k] for k in ("base", "new", "hm", "accuracy") if metrics[k] is not None}
        log.info(f"[distill] {out_dir}: {summary}")
    for scratch in scratch_dirs:
        drop_finished(scratch)
