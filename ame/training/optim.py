"""PromptKD's optimisation: SGD with a constant warm-up epoch, then a per-epoch cosine (protocol §4)."""

from __future__ import annotations

import math

import torch


def lr_at_epoch(epoch: int, lr: float, epochs: int, warmup_epochs: int = 1, warmup_lr: float = 1e-5) -> float:
    """Learning rate of 0-based `epoch`: `warmup_lr` while warming up, then cosine with T_max = epochs.

    As in Dassl, the cosine counts from the end of warm-up and never reaches zero: the last of 20
    epochs (0-based epoch 19, 18 epochs after warm-up) uses 0.005 * (1 + cos(pi * 18/20)) / 2 = 0.000122.
    """
    if epoch < warmup_epochs:
        return warmup_lr
    return lr * (1 + math.cos(math.pi * (epoch - warmup_epochs) / epochs)) / 2


def build_optimizer(params, optim: dict) -> torch.optim.Optimizer:
    """SGD as the reference; AdamW for the miniature, whose few hundred steps SGD does not converge in."""
    if optim.get("name", "sgd") == "adamw":
        return torch.optim.AdamW(params, lr=optim["lr"], weight_decay=optim["weight_decay"])
    return torch.optim.SGD(params, lr=optim["lr"], momentum=optim["momentum"], weight_decay=optim["weight_decay"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def epoch_lr(optim: dict, epoch: int) -> float:
    return lr_at_epoch(epoch, optim["lr"], optim["epochs"], optim.get("warmup_epochs", 1),
                       optim.get("warmup_lr", 1e-5))
