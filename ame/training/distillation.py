"""Distillation (PromptKD's unsupervised KD, optionally + RSM) of R runs in lockstep, as a `Trainable`
for `ame.training.engine.fit_runs`; `ame distill` (`ame.steps.distill`) composes it.

The R runs are a grid cell's seeds (one method): one frozen student tower and one teacher serve
them all, each run keeps its own prompts, projector, RSM projections, optimiser state and BatchNorm
statistics (`ame.training.lockstep`), its own training images, crops and order
(`ame.data.plan.lockstep_loader`), and thus the very optimisation it would follow alone.

One step: for each run's batch of unlabeled training images (all classes), the frozen teacher's
logits z_t = s * norm(f_T(x)) W^T (or their log-probabilities from the run's teacher cache) and the
student's z_s = s * norm(P(f_S(x))) W^T over the teacher's text features W of all C classes;
loss_r = L_KD(z_s, z_t) [+ omega * H(M)] (AME Eq. 5-6), and the sum over runs is minimised. After
each epoch every run is scored on the selection images (base-class test images; all of them for
cross-dataset), which picks its best epoch as the reference does.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict
from typing import TYPE_CHECKING

import torch

from ame.data.plan import AugmentationPlan, lockstep_loader
from ame.evaluate import subset_accuracy
from ame.kd import kd_loss_per_run
from ame.runtime import autocast
from ame.spec.run import RunSpec
from ame.training.engine import EpochRecord, Trainable
from ame.training.live import LiveCurves
from ame.training.lockstep import StackedStudent
from ame.training.optim import epoch_lr
from ame.training.teacher_cache import teacher_logits

if TYPE_CHECKING:  # annotations only: the RSM's code belongs to RSM runs alone (ame.fingerprint)
    from ame.rsm import StackedRSM

log = logging.getLogger(__name__)


class Distillation(Trainable):
    """R students (+ RSM) of one cell and method, one per seed, trained by KD in lockstep from the
    teacher (online, or read from each seed's cache).

    specs, train_sets, plans, caches, live_folders: one per run (caches: None online).
    """

    advice = "Lower optim.lr or rsm.omega, or use runtime.precision: fp32"
    stacked = True

    def __init__(self, specs: list[RunSpec], student: StackedStudent, rsm: StackedRSM | None, text: torch.Tensor,
                 teacher, caches: list | None, plans: list[AugmentationPlan], train_sets: list, select_set,
                 select_classes, device, collapse_percent: float, rows: int,
                 live_folders: list[str | os.PathLike] | None = None, workers: int = 0) -> None:
        self.specs, self.spec = specs, specs[0]
        self.student, self.rsm, self.text, self.teacher, self.caches = student, rsm, text, teacher, caches
        self.plans, self.train_sets, self.select_set, self.select_classes = plans, train_sets, select_set, select_classes
        self.device, self.collapse_percent, self.rows, self.workers = device, collapse_percent, rows, workers
        self.runs = len(specs)
        self.frozen_from_cache = (caches is not None and not student.prompted
                                  and all(c.has_student_features for c in caches))
        spec = self.spec
        self.name = (f"{spec.task}/{spec.dataset}/{spec.setting}/{spec.method}/"
                     f"seed{','.join(str(s.seed) for s in specs)}")
        self.optim = asdict(spec.optim)
        # DVCLive curves (`ame.training.live`), opened at the first epoch's end: a run resumed
        # after epoch 1 appends to them, one that starts afresh starts them afresh.
        self.live_folders = live_folders
        self._live: dict[int, LiveCurves] = {}

    def run_name(self, r: int) -> str:
        spec = self.specs[r]
        return f"{spec.task}/{spec.dataset}/{spec.setting}/{spec.method}/seed{spec.seed}"

    def encode_shared(self, images: torch.Tensor) -> torch.Tensor:
        """Every run's features of the same images: (N, 3, H, W) -> (R, N, d)."""
        with autocast(self.device, self.spec.precision):
            return self.student.forward_shared(images)

    @torch.no_grad()
    def features(self, dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, N, d) features of every run and the (N,) labels of an evaluation set; each forward
        holds the evaluation batch size in images (R runs share it)."""
        chunk = max(1, self.spec.eval_batch_size // self.runs)
        feats, labels = [], []
        for images, y in torch.utils.data.DataLoader(dataset, batch_size=chunk):
            feats.append(self.encode_shared(images.to(self.device)).float().cpu())
            labels.append(torch.as_tensor(y))
        return torch.cat(feats, dim=1), torch.cat(labels)

    def batches(self, epoch: int, first_step: int):
        if self.frozen_from_cache:  # both towers' outputs are cached: no image needs decoding
            return ((None, None) for _ in range(first_step, self.plans[0].steps_per_epoch(self.optim["batch_size"])))
        return lockstep_loader(self.plans, self.train_sets, epoch, self.optim["batch_size"], start_step=first_step,
                               workers=self.workers, pin_memory=self.device.type == "cuda")

    def lr(self, epoch: int, step: int) -> float:
        return epoch_lr(self.optim, epoch)

    def start_epoch(self, epoch: int) -> None:
        self.student.train()

    def training_step(self, batch, epoch: int, step: int) -> dict[str, torch.Tensor]:
        images, _ = batch  # labels are never used: the distillation is unsupervised
        images = images.to(self.device, non_blocking=True) if images is not None else None
        kd_spec, precision = self.spec.kd, self.spec.precision
        if self.caches is None:
            t_logits = teacher_logits(self.teacher, images, self.text, kd_spec.logit_scale, self.device, precision)
            t_logits = t_logits.reshape(self.runs, -1, t_logits.shape[-1])
        else:  # log-probs: the same KD as the logits
            t_logits = torch.stack([c.log_probs(epoch, step) for c in self.caches]).to(self.device)
        with autocast(self.device, precision):
            if self.frozen_from_cache:  # a prompt-free student: its frozen tower's features, cached
                pooled = torch.stack([c.student_features(epoch, step) for c in self.caches]).to(self.device)
                student_features = self.student.forward_frozen(pooled)
            else:
                student_features = self.student(images.reshape(self.runs, -1, *images.shape[1:]))
            student_logits = kd_spec.logit_scale * student_features @ self.text.t()
        kd = kd_loss_per_run(student_logits.float(), t_logits.float(), kd_spec.temperature, kd_spec.weight)
        if self.rsm is None:
            entropy, omega = torch.zeros(self.runs, device=self.device), 0.0
        else:
            entropy, omega = self.rsm(student_features.float(), self.text), self.spec.rsm.omega
        return {"L_KD": kd, "H(M)": entropy, "loss": kd + omega * entropy}

    def evaluate(self, epoch: int) -> list[float]:
        self.student.eval()
        # Model selection scores base-class test images only (all of them for cross-dataset).
        features, labels = self.features(self.select_set)
        return [subset_accuracy(f, labels, self.text.cpu(), self.select_classes) for f in features]

    def run_weights(self, r: int) -> dict:
        return {"student": self.student.run_state(r), "rsm": self.rsm.run_state(r) if self.rsm is not None else None}

    def load_run_weights(self, r: int, state: dict) -> None:
        self.student.load_run_state(r, state["student"])
        if self.rsm is not None:
            self.rsm.load_run_state(r, state["rsm"])

    def run_epoch_end(self, r: int, record: EpochRecord) -> None:
        if self.live_folders is not None:
            if r not in self._live:
                self._live[r] = LiveCurves(self.live_folders[r], resume=record.epoch > 1)
            self._live[r].log(history_row(record, self.rsm is not None))
        if self.rsm is None:
            return
        collapse = entropy_collapse(record.means["H(M)"], self.rows, self.collapse_percent)
        if collapse:
            log.warning(f"[{self.run_name(r)}] epoch {record.epoch}: {collapse}")

    def close(self) -> None:
        """End the live curves (after the last epoch)."""
        for live in self._live.values():
            live.close()


def history_row(record: EpochRecord, rsm: bool) -> dict:
    return {"epoch": record.epoch, "lr": f"{record.lr:.6g}", "kd_loss": f"{record.means['L_KD']:.6g}",
            "rsm_entropy": f"{record.means['H(M)']:.6g}" if rsm else "",
            "total_loss": f"{record.means['loss']:.6g}", "base_acc": f"{record.score:.4f}"}


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
