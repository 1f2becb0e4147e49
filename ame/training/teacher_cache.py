"""Teacher-output cache (FKD-style): the teacher's logits on a grid cell's pre-drawn augmentations.

The reference runs the frozen teacher's image tower on every training batch. Its output depends
only on the augmented images, so for one grid cell (task, dataset, setting, seed) it is the same for
every method (pkd, pkd_rsm, simple, simple_rsm and the omega x phi ablation). Here the augmentations
are drawn in advance (`ame.data.plan.AugmentationPlan`), the teacher runs once over all epochs of
that plan, and each method's distillation reads its logits back instead of running the teacher,
while its student sees exactly the crops the teacher saw.

What is stored is the teacher's log-probabilities log softmax(z_t): softmax is shift-invariant, so
as logits they give the same KD loss at any temperature, and near the classes that matter (log p
close to 0) float16 keeps them to ~1e-3 absolute, where raw logits of size ~100 would keep 0.06.

Size. Full logits take epochs x images x C x 2 bytes: at ImageNet scale 1,281,167 x 1000 x 20 x 2
= 51 GB (5.1 GB for the paper's 2 full-shot epochs). When the full table would exceed
`full_max_mb`, only the top-k log-probabilities and their class indices are kept (4 bytes a class
with k = 20: 1,281,167 x 20 x 20 x 4 = 2.0 GB for 20 epochs, 0.2 GB for 2). The dropped classes
share the teacher's remaining probability mass m = 1 - sum(top-k p) uniformly (FKD's marginal
smoothing): the top-k probabilities and m are exact, only the tail's shape is lost, so the
per-image KL(teacher || student q) changes by
    sum_tail (p_c - m / (C - k)) * log q_c  -  m * (log(C - k) - H(tail / m)),
which vanishes with m. Measured (tests/test_training_teacher_cache.py; tiny random teacher, 10 classes,
random student): top-5 changes the KD loss by 1.4 % (2.8 % had the tail been dropped and the
top-k renormalised), a full float16 table by 0.008 %.

`ame teacher-cache` (`ame.steps.teacher_cache`) builds a cache; `TeacherCache` reads it back.

Limits: the builder holds the table in memory before writing it in one file (read back
memory-mapped), so a cache must fit in RAM: ImageNet full-shot keeps top-k (0.2 GB for 2 epochs)
and, with Simple in its cell, the frozen student features (2 x 1,281,167 x 512 x 2 bytes = 2.6 GB),
well within the teacher_cache job's default 32 GB.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ame.data.plan import AugmentationPlan
from ame.runtime import autocast

FORMAT = 2
DTYPES = {"float16": torch.float16, "float32": torch.float32}
# Floor for log-probabilities of classes with no mass left, where log(0) would make the KL NaN.
_LOG_FLOOR = -1e4


def teacher_logits(teacher, images: torch.Tensor, text: torch.Tensor, scale: float, device: torch.device,
                   precision: str) -> torch.Tensor:
    """z_t = scale * norm(f_T(x)) W^T (B x C), as the online distillation step computes it."""
    with torch.no_grad(), autocast(device, precision):
        return scale * teacher.encode_image(images) @ text.t()


def table_bytes(epochs: int, positions: int, classes: int, top_k: int | None, dtype: str = "float16") -> int:
    """Bytes of the cache's logit table: full (top_k None) or top-k values plus class indices."""
    value = torch.finfo(DTYPES[dtype]).bits // 8
    if top_k is None:
        return epochs * positions * classes * value
    return epochs * positions * top_k * (value + _index_dtype(classes).itemsize)


def storage_k(epochs: int, positions: int, classes: int, options: dict) -> int | None:
    """None (full logits) when they fit in `full_max_mb`, else `top_k` (at most C)."""
    if table_bytes(epochs, positions, classes, None, options["dtype"]) <= options["full_max_mb"] * 2**20:
        return None
    return min(int(options["top_k"]), classes)


def _index_dtype(classes: int) -> torch.dtype:
    return torch.int16 if classes <= torch.iinfo(torch.int16).max else torch.int32


def compress(log_probs: torch.Tensor, k: int | None, dtype: str) -> dict[str, torch.Tensor]:
    """Full table, or the k largest log-probabilities per row and their class indices."""
    if k is None:
        return {"log_probs": log_probs.to(DTYPES[dtype])}
    values, indices = log_probs.topk(k, dim=-1)
    return {"values": values.to(DTYPES[dtype]), "indices": indices.to(_index_dtype(log_probs.shape[-1]))}


def expand(values: torch.Tensor, indices: torch.Tensor, classes: int) -> torch.Tensor:
    """Dense B x C teacher log-probabilities from top-k ones; the rest share the leftover mass."""
    values = values.float()
    k = values.shape[-1]
    if k == classes:
        return torch.empty(values.shape[0], classes).scatter_(1, indices.long(), values)
    tail = (1 - values.exp().sum(dim=-1, keepdim=True)).clamp_min(0)
    log_tail = (tail / (classes - k)).log().clamp_min(_LOG_FLOOR)
    return log_tail.expand(-1, classes).clone().scatter_(1, indices.long(), values)


class TeacherCache:
    """A built cache, checked against the run that reads it; `log_probs(epoch, step)` is B x C."""

    def __init__(self, path: Path, data: dict) -> None:
        self.path, self._data = path, data
        self.classes, self.batch_size = int(data["classes"]), int(data["batch_size"])

    @classmethod
    def open(cls, path: Path, params: dict | None, seed: int, plan: AugmentationPlan, classes: int,
             teacher_sha256: str) -> TeacherCache:
        """Memory-mapped, so a large cache is paged in as the epochs read it."""
        path = Path(path)
        if params is None:
            raise ValueError(f"{path}: a teacher cache was given but the run's parameters have no "
                             f"'teacher_cache' entry; enable kd.teacher_cache in the preset or drop the file")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: teacher cache not found; run the teacher_cache step") from None
        stale = [what for what, same in (
            ("format", data.get("format") == FORMAT), ("parameters", data.get("params") == params),
            ("seed", data.get("seed") == seed), ("teacher", data.get("teacher_sha256") == teacher_sha256),
            ("classes", data.get("classes") == classes),
            ("augmentation plan", "order" in data and plan.same_as(AugmentationPlan(data["order"], data["seeds"]))),
        ) if not same]
        if stale:
            raise ValueError(f"{path}: teacher cache does not match this run ({', '.join(stale)} differ); "
                             f"delete it and rerun the teacher_cache step")
        return cls(path, data)

    @property
    def has_student_features(self) -> bool:
        return "student_features" in self._data

    def student_features(self, epoch: int, step: int) -> torch.Tensor:
        """The frozen student tower's features (B x d_s) of the crops of `step` of `epoch`."""
        if not self.has_student_features:
            raise ValueError(f"{self.path}: this cache holds no student features (its cell has no prompt-free "
                             "method); rerun the teacher_cache step")
        rows = slice(step * self.batch_size, (step + 1) * self.batch_size)
        return self._data["student_features"][epoch, rows].float()

    def log_probs(self, epoch: int, step: int) -> torch.Tensor:
        rows = slice(step * self.batch_size, (step + 1) * self.batch_size)
        if "log_probs" in self._data:
            return self._data["log_probs"][epoch, rows].float()
        return expand(self._data["values"][epoch, rows], self._data["indices"][epoch, rows], self.classes)
