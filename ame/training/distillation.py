"""Distillation (PromptKD's unsupervised KD, optionally + RSM) as a `Trainable` for
`ame.training.engine.fit`; `ame distill` (`ame.steps.distill`) composes it.

One step: for a batch of unlabeled training images (all classes), the frozen teacher's logits
z_t = s * norm(f_T(x)) W^T (or their log-probabilities from a teacher cache) and the student's
z_s = s * norm(P(f_S(x))) W^T over the teacher's text features W of all C classes;
loss = L_KD(z_s, z_t) [+ omega * H(M)] (AME Eq. 5-6). After each epoch the student is scored on the
selection images (base-class test images; all of them for cross-dataset), which picks the best
epoch as the reference does.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import asdict

import torch

from ame.data.plan import AugmentationPlan
from ame.evaluate import features_and_labels, subset_accuracy
from ame.kd import kd_loss
from ame.models.student import Student
from ame.rsm import RSM
from ame.runtime import autocast
from ame.spec.run import RunSpec
from ame.training.engine import EpochRecord, Trainable
from ame.training.live import LiveCurves
from ame.training.optim import epoch_lr
from ame.training.teacher_cache import teacher_logits

log = logging.getLogger(__name__)


class Distillation(Trainable):
    """One student (+ RSM) trained by KD from the teacher (online, or read from its cache)."""

    advice = "Lower optim.lr or rsm.omega, or use runtime.precision: fp32"

    def __init__(self, spec: RunSpec, student: Student, rsm: RSM | None, text: torch.Tensor, teacher, cache,
                 plan: AugmentationPlan, train_set, select_set, select_classes, device, collapse_percent: float,
                 rows: int, live_folder: str | os.PathLike | None = None) -> None:
        self.spec, self.student, self.rsm, self.text, self.teacher, self.cache = spec, student, rsm, text, teacher, cache
        self.plan, self.train_set, self.select_set, self.select_classes = plan, train_set, select_set, select_classes
        self.device, self.collapse_percent, self.rows = device, collapse_percent, rows
        self.name = f"{spec.task}/{spec.dataset}/{spec.setting}/{spec.method}/seed{spec.seed}"
        self.optim = asdict(spec.optim)
        # DVCLive curves (`ame.training.live`), opened at the first epoch's end: a run resumed
        # after epoch 1 appends to them, one that starts afresh starts them afresh.
        self.live_folder, self._live = live_folder, None

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
        if self.live_folder is not None:
            if self._live is None:
                self._live = LiveCurves(self.live_folder, resume=record.epoch > 1)
            self._live.log(history_row(record, self.rsm is not None))
        if self.rsm is None:
            return
        collapse = entropy_collapse(record.means["H(M)"], self.rows, self.collapse_percent)
        if collapse:
            log.warning(f"[{self.name}] epoch {record.epoch}: {collapse}")


    def close(self) -> None:
        """End the live curves (after the last epoch)."""
        if self._live is not None:
            self._live.close()


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
