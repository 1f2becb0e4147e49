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
import math
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
    """What one training run is (or R runs trained in lockstep); subclass and override. Batches come
    from `batches(epoch, first)`, which must be able to start at any step of an epoch for mid-epoch
    resume.

    Lockstep (`ame.training.lockstep`): `runs` = R > 1 runs whose trainable tensors are stacked on a
    leading run axis (`stacked = True`); each loss term is then a tensor of R values, `evaluate` gives
    R scores, and the `run_*` methods read and write one run's weights. The engine keeps each run's
    history, best epoch and resume state apart, and splits the optimiser's state per run.
    """

    name = "run"                 # the run in progress lines and error messages
    advice = ""                  # what to try after a non-finite loss (appended to the error)
    runs = 1                     # runs trained together
    stacked = False              # trainable tensors carry a leading run axis (lockstep)

    def run_name(self, r: int) -> str:
        return self.name

    def batches(self, epoch: int, first_step: int) -> Iterable:
        raise NotImplementedError

    def training_step(self, batch: Any, epoch: int, step: int) -> dict[str, torch.Tensor]:
        """{"loss": what to minimise, <term name>: value, ...} for one batch: scalars, or one value
        per run (shape (R,)) in lockstep, where the sum of the runs' losses is minimised."""
        raise NotImplementedError

    def lr(self, epoch: int, step: int) -> float:
        """Learning rate of step `step` (0-based, within the epoch) of 0-based `epoch`."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called before an epoch's first step (e.g. to set train mode)."""

    def evaluate(self, epoch: int) -> float | list[float] | None:
        """A score after `epoch` for best-epoch selection (higher is better; one per run), or None."""
        return None

    def weights(self) -> dict:
        """The trainable weights (copies): saved in resume state and kept for the best epoch."""
        raise NotImplementedError

    def load_weights(self, state: dict) -> None:
        raise NotImplementedError

    def run_weights(self, r: int) -> dict:
        """Run r's weights (copies); one run: `weights()`."""
        return self.weights()

    def load_run_weights(self, r: int, state: dict) -> None:
        self.load_weights(state)

    def epoch_end(self, record: EpochRecord) -> None:
        """Called after each epoch with its record (e.g. for warnings)."""

    def run_epoch_end(self, r: int, record: EpochRecord) -> None:
        """Called after each epoch with run r's record; one run: `epoch_end(record)`."""
        self.epoch_end(record)


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

    def load(self) -> dict | None:
        """The saved state, or None when there is none or it belongs to another key."""
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        return state if state.get("key") == self.key else None


def resume_position(checkpoint: Checkpointing | None) -> tuple[int, int] | None:
    """(epoch, step) at which a run would resume from its saved state, or None (starts afresh)."""
    state = checkpoint.load() if checkpoint is not None else None
    return None if state is None else (state["epoch"], state["step"])


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


def _where(task: Trainable, runs: list[int], epoch: int, step: int) -> str:
    names = ", ".join(task.run_name(r) for r in runs)
    return f"run {names}, epoch {epoch + 1}, step {step + 1}"


def _values(values: dict[str, list[float]], r: int) -> str:
    """Run r's value of each term, the total last."""
    named = [f"{k} {v[r]:.6g}" for k, v in values.items() if k != "loss"]
    return ", ".join([*named, f"total {values['loss'][r]:.6g}"])


def _progress(task: Trainable, r: int, record: EpochRecord, epochs: int, started: float, steps: int,
              epoch_seconds: float) -> None:
    terms = " ".join(f"{k} {v:.4f}" for k, v in record.means.items())
    score = f" score {record.score:.2f}" if record.score is not None else ""
    rate = f"{steps / epoch_seconds:.2f} steps/s" if steps and epoch_seconds > 0 else "no steps"
    log.info(f"[{task.run_name(r)}] epoch {record.epoch}/{epochs} lr {record.lr:.2e} {terms}{score} ({rate}, "
             f"{time.time() - started:.0f}s in all)")


def _run_optimizer_state(state: dict, r: int) -> dict:
    """Run r's slice of a lockstep optimiser's state (tensors with the run axis; scalars as they are)."""
    sliced = {idx: {name: (value[r].clone() if torch.is_tensor(value) and value.ndim > 0 else value)
                    for name, value in entry.items()} for idx, entry in state["state"].items()}
    return {"state": sliced, "param_groups": state["param_groups"]}


def _stack_optimizer_states(states: list[dict]) -> dict:
    """The lockstep optimiser's state from the runs' own states (`_run_optimizer_state`)."""
    first = states[0]
    merged = {idx: {name: (torch.stack([s["state"][idx][name] for s in states])
                           if torch.is_tensor(value) and value.ndim > 0 else value)
                    for name, value in entry.items()} for idx, entry in first["state"].items()}
    return {"state": merged, "param_groups": first["param_groups"]}


class RunScalers:
    """GradScaler's dynamic loss scaling (AMP) kept per run of a lockstep group, so that an overflow
    in one run skips that run's step alone, as it would when the run is trained by itself; disabled,
    it is the plain backward and step. Same defaults and update rule as `torch.amp.GradScaler`
    (initial scale 2**16, x0.5 after an overflow, x2 after 2000 clean steps). An optimiser's scalar
    state is shared by the group: AdamW's step count still advances for a run whose step was
    skipped (SGD, the paper's optimiser, has none)."""

    def __init__(self, runs: int, enabled: bool, init_scale: float = 2.0**16, growth_interval: int = 2000) -> None:
        self.runs, self.enabled, self.growth_interval = runs, enabled, growth_interval
        self.scale = torch.full((runs,), init_scale, dtype=torch.float64)
        self.growth = torch.zeros(runs, dtype=torch.int64)

    def backward(self, losses: torch.Tensor) -> None:
        if self.enabled:
            losses = losses * self.scale.to(losses.device, losses.dtype)
        losses.sum().backward()

    def step(self, optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> torch.Tensor:
        """Unscale, find the runs with non-finite gradients, step the others; returns that mask (R,)."""
        bad = torch.zeros(self.runs, dtype=torch.bool)
        if not self.enabled:
            optimizer.step()
            return bad
        inverse = (1.0 / self.scale).float()
        for p in params:
            if p.grad is None:
                continue
            shape = (self.runs,) + (1,) * (p.grad.ndim - 1)
            p.grad.mul_(inverse.to(p.grad.device).view(shape))
            bad |= ~torch.isfinite(p.grad.reshape(self.runs, -1)).all(dim=1).cpu()
        # An overflowed run keeps its weights and optimiser state, exactly as a skipped step alone.
        kept = [(p.detach()[bad].clone(), {k: v[bad].clone() for k, v in optimizer.state[p].items()
                                           if torch.is_tensor(v) and v.ndim > 0}) for p in params] if bad.any() else None
        optimizer.step()
        if kept is not None:
            with torch.no_grad():
                for p, (weights, state) in zip(params, kept):
                    p[bad] = weights
                    for k, v in state.items():
                        optimizer.state[p][k][bad] = v
        self.scale = torch.where(bad, self.scale * 0.5, self.scale)
        self.growth = torch.where(bad, torch.zeros_like(self.growth), self.growth + 1)
        grow = self.growth >= self.growth_interval
        self.scale = torch.where(grow, self.scale * 2.0, self.scale)
        self.growth = torch.where(grow, torch.zeros_like(self.growth), self.growth)
        return bad

    def run_state(self, r: int) -> dict:
        return {"scale": float(self.scale[r]), "growth": int(self.growth[r])}

    def load_run_state(self, r: int, state: dict) -> None:
        self.scale[r], self.growth[r] = state["scale"], state["growth"]


def fit(task: Trainable, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
        scaler: torch.amp.GradScaler | None = None, checkpoint: Checkpointing | None = None) -> Fit:
    """Train one run (see the module docstring); returns its history and best epoch with its weights."""
    return fit_runs(task, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, scaler=scaler,
                    checkpoints=[checkpoint])[0]


def fit_runs(task: Trainable, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
             scaler: torch.amp.GradScaler | None = None, checkpoints: list[Checkpointing | None] | None = None,
             amp: bool = False) -> list[Fit]:
    """Train `task`'s runs together for `epochs` x `steps_per_epoch` steps; one `Fit` per run.

    `checkpoints` (one per run, or None) hold each run's own resume state: a run's state file is
    what it would be had it been trained alone, so a run can resume inside any lockstep group. The
    runs with a state must all be at the same position (`resume_position`), and then every run must
    have one: callers group runs by position. Lockstep tasks (`task.stacked`) take AMP's loss
    scaling per run (`amp`, `RunScalers`); one-run tasks take a `torch.amp.GradScaler`. Raises
    FloatingPointError on a non-finite loss or gradient, naming the run(s).
    """
    runs = task.runs
    checkpoints = list(checkpoints) if checkpoints is not None else [None] * runs
    if len(checkpoints) != runs:
        raise ValueError(f"give one checkpoint (or None) per run: {runs} runs, {len(checkpoints)} checkpoints")
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    if task.stacked:
        if scaler is not None:
            raise ValueError("a lockstep task scales its losses per run: pass amp=True, not a GradScaler")
        scalers = RunScalers(runs, amp)
        amp = scalers.enabled
    else:
        amp = scaler is not None and scaler.is_enabled()
        # Without one, a disabled scaler: its scale/step are the plain backward and optimiser step.
        scaler = scaler if scaler is not None else torch.amp.GradScaler("cpu", enabled=False)
    results = [Fit() for _ in range(runs)]
    start_epoch, start_step, start_sums = 0, 0, [None] * runs
    states = [c.load() if c is not None else None for c in checkpoints]
    if any(s is not None for s in states):
        positions = {(s["epoch"], s["step"]) if s is not None else None for s in states}
        if len(positions) != 1:
            raise ValueError("the runs' resume states are at different positions (or some runs have none); "
                             "train runs at one position together (ame.training.engine.resume_position)")
        for r, state in enumerate(states):
            task.load_run_weights(r, state["weights"])
        if task.stacked:
            optimizer.load_state_dict(_stack_optimizer_states([s["optimizer"] for s in states]))
            for r, state in enumerate(states):
                scalers.load_run_state(r, state["scaler"])
        else:
            optimizer.load_state_dict(states[0]["optimizer"])
            if states[0].get("scaler"):
                scaler.load_state_dict(states[0]["scaler"])
        _set_rng_state(states[0]["rng"])
        results = [s["fit"] for s in states]
        start_epoch, start_step = states[0]["epoch"], states[0]["step"]
        start_sums = [s["sums"] for s in states]
        log.info(f"[{task.name}] resuming from epoch {start_epoch + 1}, step {start_step}")

    def save(epoch: int, step: int, sums: list[dict]) -> None:
        """Each run's state after `step` steps of 0-based `epoch` (step 0: the epoch has not begun)."""
        whole, rng = optimizer.state_dict(), _rng_state()
        for r, checkpoint in enumerate(checkpoints):
            if checkpoint is None:
                continue
            torch_save({"key": checkpoint.key, "epoch": epoch, "step": step, "sums": dict(sums[r]),
                        "weights": task.run_weights(r),
                        "optimizer": _run_optimizer_state(whole, r) if task.stacked else whole,
                        "scaler": scalers.run_state(r) if task.stacked else scaler.state_dict(), "rng": rng,
                        "fit": results[r]}, checkpoint.path)

    saving = [c for c in checkpoints if c is not None]
    every_steps = saving[0].every_steps if saving else None
    every_minutes = saving[0].every_minutes if saving else None
    started = last_save = time.time()
    resumed_at = start_epoch * steps_per_epoch + start_step
    with Progress(task.name, epochs * steps_per_epoch, log, done=resumed_at) as progress:
        for epoch in range(start_epoch, epochs):
            task.start_epoch(epoch)
            epoch_started = time.time()
            first = start_step if epoch == start_epoch else 0
            sums: list[dict[str, float]] = [dict(s) if first and s else {} for s in start_sums] \
                if epoch == start_epoch else [{} for _ in range(runs)]
            lr = task.lr(epoch, first)
            for step, batch in enumerate(task.batches(epoch, first), start=first):
                lr = task.lr(epoch, step)
                set_lr(optimizer, lr)
                terms = task.training_step(batch, epoch, step)
                values = dict(zip(terms, torch.stack([v.detach().float().reshape(-1).expand(runs)
                                                      for v in terms.values()]).cpu().tolist()))
                broken = [r for r in range(runs) if not math.isfinite(values["loss"][r])]
                if broken:
                    raise FloatingPointError(
                        f"{_where(task, broken, epoch, step)}: non-finite loss ({_values(values, broken[0])}); no "
                        f"metrics are written and the last resume state is kept. {task.advice}".rstrip())
                optimizer.zero_grad(set_to_none=True)
                if task.stacked:
                    scalers.backward(terms["loss"].reshape(runs))
                else:
                    scaler.scale(terms["loss"]).backward()
                if not amp:
                    bad = _nonfinite_gradient_runs(trainable, runs, task.stacked)
                    if bad:
                        raise FloatingPointError(
                            f"{_where(task, bad, epoch, step)}: non-finite gradient ({_values(values, bad[0])}); "
                            f"no metrics are written. {task.advice}".rstrip())
                if task.stacked:
                    scalers.step(optimizer, trainable)
                else:
                    scaler.step(optimizer)
                    scaler.update()
                for r in range(runs):
                    for k, v in values.items():
                        sums[r][k] = sums[r].get(k, 0.0) + v[r]
                done = step + 1
                progress.update(1, f"epoch {epoch + 1}/{epochs} loss {sum(values['loss']) / runs:.4g}")
                if saving and done < steps_per_epoch and (
                        (every_steps and done % every_steps == 0)
                        or time.time() - last_save >= 60 * every_minutes):
                    save(epoch, done, sums)
                    last_save = time.time()
            scores = task.evaluate(epoch)
            if not isinstance(scores, (list, tuple)):
                scores = [scores] * runs
            n = max(steps_per_epoch, 1)
            for r, (result, score) in enumerate(zip(results, scores)):
                record = EpochRecord(epoch + 1, lr, {k: v / n for k, v in sums[r].items()}, score)
                result.history.append(record)
                if score is not None and score > result.best_score:
                    result.best_epoch, result.best_score = epoch + 1, score
                    result.best_weights = task.run_weights(r)
                _progress(task, r, record, epochs, started, steps_per_epoch - first, time.time() - epoch_started)
                task.run_epoch_end(r, record)
            if saving and epoch + 1 < epochs:
                save(epoch + 1, 0, [{} for _ in range(runs)])
                last_save = time.time()
    return results


def _nonfinite_gradient_runs(params: list[torch.Tensor], runs: int, stacked: bool) -> list[int]:
    """The runs whose gradient holds a non-finite value (stacked: per slice of the run axis)."""
    bad = torch.zeros(runs if stacked else 1, dtype=torch.bool)
    for p in params:
        if p.grad is not None:
            grad = p.grad.reshape(runs, -1) if stacked else p.grad.reshape(1, -1)
            bad |= ~torch.isfinite(grad).all(dim=1).cpu()
    return [r for r in range(len(bad)) if bad[r]]
