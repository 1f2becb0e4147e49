"""The one training loop: backbone pre-training, teacher prompt tuning and distillation all run here.

What differs between them is a `Trainable` (its batches, its training step, its learning rate per
step, an optional per-epoch score and its weights); what they share is written once in `fit`:

- the epoch/step loop, with the learning rate set before every step;
- the update: zero the gradients, backward (through an optional GradScaler), optimiser step;
- fail-fast numerics: a non-finite loss, or a non-finite gradient outside AMP (whose scaler skips
  such steps by design), raises FloatingPointError naming the run, epoch, step and every loss term;
- per-epoch means of the loss terms, the learning rate and the score, as the history;
- best-epoch tracking (the highest score; its weights kept);
- resume state (`Checkpointing`): weights, optimiser, scaler, RNG, the epoch's running sums,
  history and best, saved atomically at each epoch's end, every N minutes and (optionally) every N
  steps; a rerun resumes mid-epoch and, with batches that a `Trainable` can restart at any step,
  ends with the same bytes as an uninterrupted run;
- progress: a bar on a terminal or a line every minute with an ETA in job logs (`ame.logs.Progress`),
  and one summary line per epoch.

The split follows Lightning's module/trainer and timm's CheckpointSaver: the trainable says what a
step is, the engine decides when it runs and what is saved.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ame.io import torch_save
from ame.logs import Progress
from ame.training.optim import set_lr

log = logging.getLogger(__name__)


class Trainable:
    """What one training run is; subclass and override. Batches come from `batches(epoch, first)`,
    which must be able to start at any step of an epoch for mid-epoch resume."""

    name = "run"                 # the run in progress lines and error messages
    advice = ""                  # what to try after a non-finite loss (appended to the error)

    def batches(self, epoch: int, first_step: int) -> Iterable:
        raise NotImplementedError

    def training_step(self, batch: Any, epoch: int, step: int) -> dict[str, torch.Tensor]:
        """{"loss": the scalar to minimise, <term name>: scalar, ...} for one batch."""
        raise NotImplementedError

    def lr(self, epoch: int, step: int) -> float:
        """Learning rate of step `step` (0-based, within the epoch) of 0-based `epoch`."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called before an epoch's first step (e.g. to set train mode)."""

    def evaluate(self, epoch: int) -> float | None:
        """A score after `epoch` for best-epoch selection (higher is better), or None."""
        return None

    def weights(self) -> dict:
        """The trainable weights (copies): saved in resume state and kept for the best epoch."""
        raise NotImplementedError

    def load_weights(self, state: dict) -> None:
        raise NotImplementedError

    def epoch_end(self, record: EpochRecord) -> None:
        """Called after each epoch with its record (e.g. for warnings)."""


@dataclass
class EpochRecord:
    epoch: int                      # 1-based
    lr: float                       # the last learning rate of the epoch
    means: dict[str, float]         # per-step mean of each loss term, "loss" included
    score: float | None


@dataclass
class Checkpointing:
    """Where and when to save resume state; `key` names what it belongs to (a state saved under
    another key, e.g. by other code or another specification, is ignored)."""

    path: Path
    key: str
    every_minutes: float = 15.0
    every_steps: int | None = None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Fit:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None   # 1-based; None when nothing was scored
    best_score: float = -1.0
    best_weights: dict | None = None


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _where(task: Trainable, epoch: int, step: int) -> str:
    return f"run {task.name}, epoch {epoch + 1}, step {step + 1}"


def _values(terms: dict[str, torch.Tensor]) -> str:
    """Each term's value, the total last."""
    named = [f"{k} {v.item():.6g}" for k, v in terms.items() if k != "loss"]
    return ", ".join([*named, f"total {terms['loss'].item():.6g}"])


def _progress(task: Trainable, record: EpochRecord, epochs: int, started: float, steps: int,
              epoch_seconds: float) -> None:
    terms = " ".join(f"{k} {v:.4f}" for k, v in record.means.items())
    score = f" score {record.score:.2f}" if record.score is not None else ""
    rate = f"{steps / epoch_seconds:.2f} steps/s" if steps and epoch_seconds > 0 else "no steps"
    log.info(f"[{task.name}] epoch {record.epoch}/{epochs} lr {record.lr:.2e} {terms}{score} ({rate}, "
             f"{time.time() - started:.0f}s in all)")


def fit(task: Trainable, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
        scaler: torch.amp.GradScaler | None = None, checkpoint: Checkpointing | None = None) -> Fit:
    """Train `task` for `epochs` x `steps_per_epoch` steps (see the module docstring); returns the
    history and the best epoch with its weights. Raises FloatingPointError on non-finite numbers."""
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    amp = scaler is not None and scaler.is_enabled()
    # Without one, a disabled scaler: its scale/step are the plain backward and optimiser step.
    scaler = scaler if scaler is not None else torch.amp.GradScaler("cpu", enabled=False)
    result, start_epoch, start_step, start_sums = Fit(), 0, 0, None
    if checkpoint is not None and checkpoint.path.exists():
        state = torch.load(checkpoint.path, map_location="cpu", weights_only=False)
        if state.get("key") == checkpoint.key:
            task.load_weights(state["weights"])
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"])
            result, start_epoch = state["fit"], state["epoch"]
            start_step, start_sums = state["step"], state["sums"]
            log.info(f"[{task.name}] resuming from epoch {start_epoch + 1}, step {start_step}")

    def save(epoch: int, step: int, sums: dict) -> None:
        """State after `step` steps of 0-based `epoch` (step 0: the epoch has not begun)."""
        torch_save({"key": checkpoint.key, "epoch": epoch, "step": step, "sums": dict(sums),
                    "weights": task.weights(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), "rng": _rng_state(),
                    "fit": result}, checkpoint.path)

    started = last_save = time.time()
    resumed_at = start_epoch * steps_per_epoch + start_step
    with Progress(task.name, epochs * steps_per_epoch, log, done=resumed_at) as progress:
        for epoch in range(start_epoch, epochs):
            task.start_epoch(epoch)
            epoch_started = time.time()
            first = start_step if epoch == start_epoch else 0
            sums: dict[str, float] = dict(start_sums) if first and start_sums else {}
            lr = task.lr(epoch, first)
            for step, batch in enumerate(task.batches(epoch, first), start=first):
                lr = task.lr(epoch, step)
                set_lr(optimizer, lr)
                terms = task.training_step(batch, epoch, step)
                loss = terms["loss"]
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{_where(task, epoch, step)}: non-finite loss ({_values(terms)}); no "
                                             "metrics are written and the last resume state is kept. "
                                             f"{task.advice}".rstrip())
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if not amp and not all(torch.isfinite(p.grad).all() for p in trainable if p.grad is not None):
                    raise FloatingPointError(f"{_where(task, epoch, step)}: non-finite gradient ({_values(terms)}); "
                                             f"no metrics are written. {task.advice}".rstrip())
                scaler.step(optimizer)
                scaler.update()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v.item()
                done = step + 1
                progress.update(1, f"epoch {epoch + 1}/{epochs} loss {loss.item():.4g}")
                if checkpoint is not None and done < steps_per_epoch and (
                        (checkpoint.every_steps and done % checkpoint.every_steps == 0)
                        or time.time() - last_save >= 60 * checkpoint.every_minutes):
                    save(epoch, done, sums)
                    last_save = time.time()
            score = task.evaluate(epoch)
            n = max(steps_per_epoch, 1)
            record = EpochRecord(epoch + 1, lr, {k: v / n for k, v in sums.items()}, score)
            result.history.append(record)
            if score is not None and score > result.best_score:
                result.best_epoch, result.best_score, result.best_weights = epoch + 1, score, task.weights()
            _progress(task, record, epochs, started, steps_per_epoch - first, time.time() - epoch_started)
            task.epoch_end(record)
            if checkpoint is not None and epoch + 1 < epochs:
                save(epoch + 1, 0, {})
                last_save = time.time()
    return result

