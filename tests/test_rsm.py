import math

import pytest
import torch

from ame import RSM, manifold_entropy


def test_rsm_is_importable_from_the_package_root():
    import ame

    assert ame.RSM is RSM


def test_entropy_is_log_of_row_count_for_equal_row_scores():
    manifold = torch.full((10 + 8, 64), 0.3)
    assert manifold_entropy(manifold).item() == pytest.approx(math.log(18), abs=1e-6)


def test_entropy_is_near_zero_when_one_row_dominates():
    manifold = torch.zeros(18, 64)
    manifold[5] = 50.0
    assert manifold_entropy(manifold).item() == pytest.approx(0.0, abs=1e-12)


def test_entropy_matches_hand_computation_for_two_rows():
    # rows with means 0 and log 3 -> p = (1/4, 3/4)
    manifold = torch.tensor([[0.0, 0.0], [math.log(3), math.log(3)]])
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert manifold_entropy(manifold).item() == pytest.approx(expected, abs=1e-6)


def test_manifold_stacks_text_rows_before_image_rows():
    torch.manual_seed(0)
    rsm = RSM(dim=16, rank=4)
    images, texts = torch.randn(3, 16), torch.randn(5, 16)
    m = rsm.manifold(images, texts)
    assert m.shape == (5 + 3, 4)
    torch.testing.assert_close(m[:5], rsm.phi_w(texts))
    conv = images @ rsm.phi_v.weight.squeeze(-1).t() + rsm.phi_v.bias
    torch.testing.assert_close(m[5:], conv)


def test_phi_v_is_a_one_by_one_convolution_and_phi_w_an_mlp():
    rsm = RSM(dim=768, rank=64)
    assert isinstance(rsm.phi_v, torch.nn.Conv1d) and rsm.phi_v.kernel_size == (1,)
    assert [type(m).__name__ for m in rsm.phi_w] == ["Linear", "ReLU", "Linear"]
    assert rsm.phi_w[-1].out_features == 64


def test_gradient_reaches_student_image_features_through_phi_v():
    torch.manual_seed(0)
    rsm = RSM(dim=8, rank=4)
    images = torch.randn(4, 8, requires_grad=True)
    texts = torch.randn(6, 8)
    rsm(images, texts).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert rsm.phi_v.weight.grad.abs().sum() > 0
    assert rsm.phi_w[0].weight.grad.abs().sum() > 0


def test_frozen_rsm_has_no_trainable_parameters_but_still_passes_gradients():
    rsm = RSM(dim=8, rank=4, trainable=False)
    assert not any(p.requires_grad for p in rsm.parameters())
    images = torch.randn(4, 8, requires_grad=True)
    rsm(images, torch.randn(3, 8)).backward()
    assert images.grad.abs().sum() > 0


@pytest.mark.parametrize("dim,rank", [(0, 4), (8, 0), (8, -1)])
def test_non_positive_widths_are_rejected(dim, rank):
    with pytest.raises(ValueError, match="positive"):
        RSM(dim=dim, rank=rank)
