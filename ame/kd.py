"""Unsupervised logit distillation in PromptKD's form (design §1, protocol §3).

    L_KD = KD_WEIGHT * tau^2 * sum_{b,c} KL(softmax(z_t/tau) || softmax(z_s/tau)) / (B * C)

The sum over batch and classes divided by B*C is PromptKD's reduction (a per-element mean, not
PyTorch's `batchmean`); the large KD_WEIGHT (200 or 1000) compensates for the division by C.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float = 1.0, weight: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) with PromptKD's scaling; logits B x C, teacher logits carry no gradient."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (B x C)")
    return kd_loss_per_run(student_logits.unsqueeze(0), teacher_logits.unsqueeze(0), temperature, weight)[0]


def kd_loss_per_run(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
                    weight: float = 1.0) -> torch.Tensor:
    """`kd_loss` of R runs at once (lockstep): logits R x B x C -> R losses, each run's sum / (B*C)."""
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 3:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have one shape R x B x C")
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=(1, 2))
    return weight * temperature**2 * kl / student_logits[0].numel()


class KDLoss(nn.Module):
    """`kd_loss` as a module holding tau and KD_WEIGHT."""

    def __init__(self, temperature: float = 1.0, weight: float = 1.0) -> None:
        super().__init__()
        self.temperature, self.weight = temperature, weight

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return kd_loss(student_logits, teacher_logits, self.temperature, self.weight)
