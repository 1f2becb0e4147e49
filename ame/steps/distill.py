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
from ame.evaluate import evaluation_classes, scores
from ame.io import read_json, sha256_file, sha256_json, write_json
from ame.models.load import load_backbone, load_teacher, read_text_features
from ame.models.student import Student
from ame.models.student_file import save_student
from ame.rsm import RSM, StackedRSM
from ame.runtime import block_type_for, device_name, git_sha, package_versions, resolve_device, seed_everything
from ame.spec.methods import method, run_code
from ame.spec.run import RunSpec
from ame.steps.run_folder import (drop_finished, keep_finished, restore_finished, write_embeddings,
                                  write_history, write_params)
from ame.training.distillation import Distillation, history_row
from ame.training.engine import Checkpointing, fit_runs, resume_position
from ame.training.live import LIVE_FOLDER
from ame.training.lockstep import StackedStudent
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


def _teacher_or_caches(specs: list[RunSpec], inputs: list[RunInputs], plans: list[AugmentationPlan], classes: int,
                       device: torch.device) -> tuple:
    """(teacher, None, card) online, or (None, caches, card) when kd.teacher_cache gave the runs caches."""
    given = [i.teacher_cache is not None for i in inputs]
    if not any(given):
        if specs[0].teacher_cache:
            raise ValueError("kd.teacher_cache is enabled but no cache file was given; pass --teacher-cache "
                             "(the teacher_cache step builds it)")
        teacher, card = load_teacher(inputs[0].teacher, device, block_type=block_type_for(specs[0].precision))
        return teacher, None, card
    if not all(given):
        raise ValueError("give a teacher cache for every seed or for none")
    card = read_json(inputs[0].teacher)
    caches = [TeacherCache.open(i.teacher_cache, s.teacher_cache, s.seed, plan, classes, card["sha256"])
              for s, i, plan in zip(specs, inputs, plans)]
    return None, caches, card


def _shared(inputs: list[RunInputs]) -> RunInputs:
    """The inputs every seed of a cell shares (split, backbone, teacher, text features); refuses others."""
    first = inputs[0]
    for name in ("split", "student_backbone", "teacher", "text_features"):
        if len({str(getattr(i, name)) for i in inputs}) != 1:
            raise ValueError(f"runs trained in lockstep share their --{name.replace('_', '-')} file; got "
                             f"{sorted({str(getattr(i, name)) for i in inputs})}")
    return first


def distill(spec: RunSpec, inputs: RunInputs, out_dir: Path, scratch_dir: Path, *,
            save_minutes: float = 15.0, save_steps: int | None = None, collapse_percent: float = 5.0,
            key: str | None = None, workers: int = 0) -> dict:
    """Train the student of one run alone (`distill_lockstep` with one run); its metrics.json content."""
    return distill_lockstep([spec], [inputs], [out_dir], [scratch_dir], save_minutes=save_minutes,
                            save_steps=save_steps, collapse_percent=collapse_percent,
                            keys=[key] if key is not None else None, workers=workers)[0]


def distill_lockstep(specs: list[RunSpec], inputs: list[RunInputs], out_dirs: list[Path], scratch_dirs: list[Path],
                     *, save_minutes: float = 15.0, save_steps: int | None = None, collapse_percent: float = 5.0,
                     keys: list[str] | None = None, workers: int = 0, decoded_cache_mb: float = 4096,
                     keep_copies: bool = False) -> list[dict]:
    """Train the students of R runs of one cell and method (its seeds) in lockstep
    (`ame.training.distillation.Distillation` through `ame.training.engine.fit_runs`); write each
    run's params.json, metrics.json, history.csv, embeddings.npz and selected student
    (student.safetensors + student.json, `ame.models.student_file`) to its out_dir, exactly as the
    run trained alone would. Returns each run's metrics.

    Each run's initial weights are drawn as they would be alone (its seed set before building its
    backbone, student and RSM), its training images, crops and order come from its own shots and
    plan. Live training curves (DVCLive, `ame.training.live`) go to <scratch>/dvclive/ after every
    epoch. Each run's resume state goes to <scratch>/state.pt at each epoch's end, every
    `save_minutes` of training and (if given) every `save_steps` steps, keyed by the run's
    specification, code and inputs (`keys`: `run_key(spec, inputs)`, computed when not given); a
    rerun after a kill resumes every run from its last save, mid-epoch included, and writes the
    same bytes as an uninterrupted run. A non-finite loss or gradient raises FloatingPointError
    (run, epoch, step, each loss term); an epoch whose mean H(M) falls below `collapse_percent` %
    of its maximum log(C + B) is reported on stderr as a collapsed manifold (a warning only; 0
    turns it off). `workers` data-loading processes decode and augment images; the training images
    stay decoded in memory when they fit in `decoded_cache_mb` (`_cache_decoded`). With `keep_copies`
    (grouped jobs) each finished run is also kept in its scratch folder as soon as it is written
    (`keep_finished`), so a job killed while writing the runs restores those it wrote.
    """
    spec = specs[0]
    m = method(spec.method)
    if not m.trains or spec.kd is None or spec.optim is None:
        raise ValueError(f"run specification of {spec.method}: not a distillation method (kd and optim needed)")
    if len({sha256_json({**s.to_dict(), "seed": 0}) for s in specs}) != 1:
        raise ValueError("runs trained in lockstep must share their specification except the seed")
    if not (len(specs) == len(inputs) == len(out_dirs) == len(scratch_dirs)):
        raise ValueError("give one input set, output folder and scratch folder per run")
    shared = _shared(inputs)
    device = resolve_device(spec.device)
    split = load_split(shared.split)
    base, new = evaluation_classes(split, spec.task)
    text = read_text_features(shared.text_features, read_json(shared.teacher), split.classnames).to(device)
    precision, optim, aug = spec.precision, asdict(spec.optim), asdict(spec.augment)
    depth = spec.prompts.depth if spec.prompts is not None else 0
    tokens = spec.prompts.tokens if spec.prompts is not None else 1
    students, rsms, train_sets, plans, decoded = [], [], [], [], {}
    for run_spec, run_inputs in zip(specs, inputs):
        # Each run's random draws as alone: its seed, then its backbone, student and RSM.
        seed_everything(run_spec.seed)
        student_clip, _ = load_backbone(shared.student_backbone, block_type=block_type_for(precision))
        students.append(Student(student_clip, int(text.shape[1]), tokens, depth))
        students[-1].visual = students[0].visual  # one frozen tower for all: the others' copies are freed
        if spec.rsm is not None:
            rsms.append(RSM(int(text.shape[1]), spec.rsm.rank, spec.rsm.trainable))
        train_sets.append(training_set(split, read_shots(run_inputs.shots, split), aug, store=decoded))
        plans.append(AugmentationPlan.draw(len(train_sets[-1]), optim["epochs"], run_spec.seed))
    _cache_decoded(train_sets, decoded_cache_mb, workers)
    student = StackedStudent(students).to(device)
    rsm = StackedRSM(rsms).to(device) if rsms else None
    template = students[0]  # a plain Student on the shared tower: what each run's files are written from
    del students, rsms
    trainable = [p for p in student.parameters() if p.requires_grad]
    if rsm is not None:
        trainable += [p for p in rsm.parameters() if p.requires_grad]
    optimizer = build_optimizer(trainable, optim)

    batch = optim["batch_size"]
    teacher, caches, teacher_card = _teacher_or_caches(specs, inputs, plans, split.num_classes, device)
    test_set = ImageSet(split.items("test"), build_transform(False, aug["image_size"]))
    select_set = ImageSet(split.items("test", labels=base), build_transform(False, aug["image_size"]))
    task = Distillation(specs, student, rsm, text, teacher, caches, plans, train_sets, select_set, base, device,
                        collapse_percent, split.num_classes + batch,
                        live_folders=[d / LIVE_FOLDER for d in scratch_dirs], workers=workers)
    keys = keys or [run_key(s, i) for s, i in zip(specs, inputs)]
    # Resume state lives outside the declared outputs (engines delete those before a rerun).
    checkpoints = [Checkpointing(d / "state.pt", k, save_minutes, save_steps) for d, k in zip(scratch_dirs, keys)]
    results = fit_runs(task, optimizer, epochs=optim["epochs"], steps_per_epoch=plans[0].steps_per_epoch(batch),
                       checkpoints=checkpoints, amp=precision == "amp")
    task.close()

    last_features, labels = task.features(test_set)
    last_states = [student.run_state(r) for r in range(len(specs))]
    for r, result in enumerate(results):
        student.load_run_state(r, result.best_weights["student"])
    student.eval()
    best_features, labels = task.features(test_set)
    all_metrics = []
    for r, (run_spec, result) in enumerate(zip(specs, results)):
        out_dir = out_dirs[r]
        last_scores = {**scores(last_features[r], labels, text.cpu(), spec.task, base, new), "epoch": optim["epochs"]}
        best_scores = scores(best_features[r], labels, text.cpu(), spec.task, base, new)
        selection = spec.selection
        chosen = best_scores if selection == "best" else last_scores
        chosen_features = best_features[r] if selection == "best" else last_features[r]
        metrics = {
            "dataset": split.dataset, "task": spec.task, "setting": spec.setting, "method": spec.method,
            "seed": run_spec.seed, "selection": selection, **{k: chosen[k] for k in ("base", "new", "hm", "accuracy")},
            "last": last_scores, "best_epoch": result.best_epoch,
            "provenance": {"git_sha": git_sha(), "config_sha256": sha256_json(run_spec.to_dict()),
                           "packages": package_versions(), "teacher_sha256": teacher_card["sha256"],
                           "device": device_name(device), "precision": precision},
        }
        contracts.validate(metrics, contracts.METRICS, where=str(out_dir / "metrics.json"))
        write_embeddings(out_dir / "embeddings.npz", chosen_features, labels, split.classnames)
        template.load_trainable_state(result.best_weights["student"] if selection == "best" else last_states[r])
        save_student(out_dir, template, text, split.classnames, shared.student_backbone, shared.text_features,
                     run_spec.to_dict(), spec.kd.logit_scale)
        write_history(out_dir / "history.csv", [history_row(h, rsm is not None) for h in result.history])
        write_params(out_dir, run_spec)
        write_json(out_dir / "metrics.json", metrics)  # last: its presence marks a complete run
        if keep_copies:
            keep_finished(out_dir, scratch_dirs[r], keys[r])
        checkpoints[r].clear()
        all_metrics.append(metrics)
    return all_metrics


def _cache_decoded(train_sets: list, budget_mb: float, workers: int) -> None:
    """Keep the runs' training images (one shared store) decoded when they fit in `budget_mb`:
    with data-loading workers, decoded now so that every worker inherits them; without, as they
    are first read. Larger sets are decoded at every step, so memory stays within the job's."""
    union = ImageSet(sorted({item for s in train_sets for item in s.items}))
    fits = union.decoded_bytes(sample=256) <= budget_mb * 2**20
    for s in train_sets:
        s.cache = fits
    if fits and workers > 0:
        for s in train_sets:
            s.preload()  # one shared store: each image is decoded once
    log.info(f"[distill] {len(union)} training images {'kept decoded in memory' if fits else 'decoded at every step'} "
             f"(decoded_cache_mb {budget_mb:g})")


def run_key(spec: RunSpec, inputs: RunInputs) -> str:
    """What a finished run's results depend on: its specification, its code and its input files."""
    files = [inputs.split, inputs.shots, inputs.student_backbone, inputs.teacher, inputs.text_features,
             inputs.teacher_cache]
    return sha256_json({"spec": spec.to_dict(), "code": run_code("distill", spec.method),
                        "inputs": [sha256_file(f) if f is not None else None for f in files]})


def distill_cell(cell: dict, seeds: list[int], inputs: list[RunInputs], out_dirs: list[Path],
                 scratch_dirs: list[Path], *, save_minutes: float = 15.0, collapse_percent: float = 5.0,
                 workers: int = 0, decoded_cache_mb: float = 4096) -> None:
    """Train one run per seed in lockstep: the cell's run specification `cell` (a `RunSpec` dict
    without its seed) with each of `seeds`; `inputs`, `out_dirs` and `scratch_dirs` are per seed.

    A rerun of a grouped job restores the seeds it had finished instead of training them again
    (their kept copies are dropped once the whole job is done); the others resume from their own
    states, those at one position (epoch, step) and with training sets of one size in lockstep."""
    if not (len(seeds) == len(inputs) == len(out_dirs) == len(scratch_dirs)):
        raise ValueError("give one shots file, one output folder, one scratch folder and (with a cache) one "
                         "teacher cache per seed")
    grouped = len(seeds) > 1
    pending: dict[tuple, list[tuple]] = {}
    for seed, run_inputs, out_dir, scratch in zip(seeds, inputs, out_dirs, scratch_dirs):
        run_spec = RunSpec.from_dict({**cell, "seed": seed}, where="--spec")
        key = run_key(run_spec, run_inputs)  # hashes the inputs once: keys resume state and the kept copy
        if grouped and restore_finished(out_dir, scratch, key):
            log.info(f"[distill] {out_dir}: finished earlier in this job; restored, not retrained")
            continue
        position = resume_position(Checkpointing(scratch / "state.pt", key))
        images = len(read_json(run_inputs.shots)["indices"])
        pending.setdefault((position, images), []).append((run_spec, run_inputs, out_dir, scratch, key))
    for group in pending.values():
        specs, group_inputs, group_out, group_scratch, keys = (list(x) for x in zip(*group))
        all_metrics = distill_lockstep(specs, group_inputs, group_out, group_scratch, save_minutes=save_minutes,
                                       collapse_percent=collapse_percent, keys=keys, workers=workers,
                                       decoded_cache_mb=decoded_cache_mb, keep_copies=grouped)
        for out_dir, metrics in zip(group_out, all_metrics):
            summary = {k: metrics[k] for k in ("base", "new", "hm", "accuracy") if metrics[k] is not None}
            log.info(f"[distill] {out_dir}: {summary}")
    for scratch in scratch_dirs:
        drop_finished(scratch)
