"""The one training loop: learning rate per step, per-epoch means, best epoch, fail-fast numerics,
and resume from any step to the same result."""

import pytest
import torch

from ame.training.engine import Checkpointing, Trainable, fit

STEPS, EPOCHS = 4, 3


class Regression(Trainable):
    """y = 3x fitted by one weight; batches depend on (epoch, step) only, so any step can restart."""

    name = "toy/regression"
    advice = "Lower the learning rate."

    def __init__(self, scores=None, fail_at=None, interrupt_at=None):
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.scores, self.fail_at, self.interrupt_at = scores, fail_at, interrupt_at
        self.lrs, self.calls = [], 0

    def batches(self, epoch, first_step):
        for step in range(first_step, STEPS):
            x = torch.randn(8, generator=torch.Generator().manual_seed(100 * epoch + step))
            yield x, 3 * x

    def lr(self, epoch, step):
        return 0.1 / (1 + epoch * STEPS + step)

    def training_step(self, batch, epoch, step):
        self.calls += 1
        if self.interrupt_at == self.calls:
            raise KeyboardInterrupt  # stands in for a kill
        x, y = batch
        err = ((self.w * x - y) ** 2).mean()
        if (epoch, step) == self.fail_at:
            err = err * float("inf")
        self.lrs.append(self.optimizer.param_groups[0]["lr"])
        return {"loss": err, "mse": err.detach()}

    def evaluate(self, epoch):
        return None if self.scores is None else self.scores[epoch]

    def weights(self):
        return {"w": self.w.detach().clone()}

    def load_weights(self, state):
        with torch.no_grad():
            self.w.copy_(state["w"])


def _run(task, checkpoint=None):
    task.optimizer = torch.optim.SGD([task.w], lr=1.0)
    return fit(task, task.optimizer, epochs=EPOCHS, steps_per_epoch=STEPS, checkpoint=checkpoint)


def test_every_step_runs_at_its_learning_rate_and_epochs_record_mean_terms():
    task = Regression()
    result = _run(task)
    assert task.lrs == [pytest.approx(0.1 / (1 + s)) for s in range(EPOCHS * STEPS)]
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert result.history[0].means["loss"] == pytest.approx(result.history[0].means["mse"])
    assert result.history[-1].means["loss"] < result.history[0].means["loss"]  # it learns
    assert result.history[-1].lr == pytest.approx(0.1 / (EPOCHS * STEPS))
    assert result.best_epoch is None  # nothing scored


def test_the_best_epoch_keeps_its_own_weights():
    task = Regression(scores=[1.0, 5.0, 2.0])
    result = _run(task)
    assert result.best_epoch == 2 and result.best_score == 5.0
    assert not torch.equal(result.best_weights["w"], task.w.detach())  # epoch 3 moved on


def test_a_non_finite_loss_stops_naming_the_run_epoch_step_and_terms(tmp_path):
    checkpoint = Checkpointing(tmp_path / "state.pt", "k", every_steps=1)
    with pytest.raises(FloatingPointError) as err:
        _run(Regression(fail_at=(1, 2)), checkpoint)
    message = str(err.value)
    assert message.startswith("run toy/regression, epoch 2, step 3: non-finite loss (mse ")
    assert "total inf" in message and message.endswith("Lower the learning rate.")
    state = torch.load(checkpoint.path, weights_only=False)
    assert (state["epoch"], state["step"]) == (1, 2)  # the last good state is kept


@pytest.mark.parametrize("interrupt_at", [2, 5, 8, 11])
def test_a_run_resumed_from_any_step_ends_exactly_as_an_uninterrupted_one(tmp_path, interrupt_at):
    clean = _run(Regression(scores=[1.0, 3.0, 2.0]))
    checkpoint = Checkpointing(tmp_path / "state.pt", "k", every_steps=1)
    with pytest.raises(KeyboardInterrupt):
        _run(Regression(scores=[1.0, 3.0, 2.0], interrupt_at=interrupt_at), checkpoint)
    resumed_task = Regression(scores=[1.0, 3.0, 2.0])
    resumed = _run(resumed_task, checkpoint)
    assert resumed_task.calls == EPOCHS * STEPS - (interrupt_at - 1)  # only the remaining steps ran
    assert [(r.epoch, r.lr, r.means) for r in resumed.history] == [(r.epoch, r.lr, r.means) for r in clean.history]
    assert resumed.best_epoch == clean.best_epoch and torch.equal(resumed.best_weights["w"], clean.best_weights["w"])


def test_a_state_saved_under_another_key_is_ignored(tmp_path):
    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        _run(Regression(interrupt_at=6), Checkpointing(path, "old code", every_steps=1))
    task = Regression()
    _run(task, Checkpointing(path, "new code", every_steps=1))
    assert task.calls == EPOCHS * STEPS  # trained from the start


def test_progress_lines_name_the_run_epoch_terms_and_throughput(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="ame")
    _run(Regression(scores=[1.0, 2.0, 3.0]))
    lines = [r.getMessage() for r in caplog.records if r.name == "ame.training.engine"]
    assert len(lines) == EPOCHS
    assert lines[0].startswith("[toy/regression] epoch 1/3 lr ") and " mse " in lines[0] and " loss " in lines[0]
    assert "score 1.00" in lines[0] and "steps/s" in lines[0]


def test_the_command_line_sets_the_log_level(capsys):
    import logging

    from ame.cli import main

    main(["validate", "--quiet"])
    assert logging.getLogger("ame").getEffectiveLevel() == logging.WARNING
    main(["validate", "--verbose"])
    assert logging.getLogger("ame").getEffectiveLevel() == logging.DEBUG
    main(["validate"])
    assert logging.getLogger("ame").getEffectiveLevel() == logging.INFO
