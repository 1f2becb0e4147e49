import math

import pytest
import torch

from ame import KDLoss, kd_loss


def _kl_by_hand(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_kd_loss_is_weighted_sum_of_kl_over_batch_times_classes():
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    student = torch.tensor([[0.5, 0.5, 0.0], [1.0, -1.0, 2.0]])
    total = 0.0
    for t_row, s_row in zip(teacher, student):
        total += _kl_by_hand(t_row.softmax(0).tolist(), s_row.softmax(0).tolist())
    expected = 1000.0 * total / (2 * 3)
    assert kd_loss(student, teacher, temperature=1.0, weight=1000.0).item() == pytest.approx(expected, rel=1e-5)


def test_temperature_scales_logits_and_multiplies_by_tau_squared():
    teacher = torch.tensor([[4.0, 0.0]])
    student = torch.tensor([[0.0, 2.0]])
    tau = 2.0
    kl = _kl_by_hand((teacher / tau).softmax(1)[0].tolist(), (student / tau).softmax(1)[0].tolist())
    assert kd_loss(student, teacher, temperature=tau).item() == pytest.approx(tau**2 * kl / 2, rel=1e-5)


def test_kd_loss_is_zero_for_identical_logits_and_positive_otherwise():
    logits = torch.randn(4, 7)
    assert kd_loss(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(logits, logits.flip(1)).item() > 0


def test_no_gradient_flows_into_teacher_logits():
    teacher = torch.randn(2, 5, requires_grad=True)
    student = torch.randn(2, 5, requires_grad=True)
    KDLoss(weight=10.0)(student, teacher).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4))
