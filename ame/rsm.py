"""RSM: entropy of the reconfigured shared manifold (AME, arXiv 2508.08644, Eqs. 4-6).

Given B student image features V (B x d) and C class text features W (C x d):

    M   = [phi_w(W); phi_v(V)]            (C + B) x R, text rows first
    s_t = (1/R) sum_r M_tr                 Eq. 4, one score per row
    p   = softmax(s) over the C + B rows
    H   = -sum_t p_t log p_t               Eq. 5

and the student minimises L_total = L_KD + omega * H (Eq. 6). The paper leaves the widths and layers
of phi_v and phi_w open; the defaults here (design §1) are a 1x1 convolution d -> R for phi_v and an
MLP d -> R -> R with ReLU for phi_w, R = 64, trained jointly with the student.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ame.models.stacked import StackedLinear


def manifold_entropy(manifold: torch.Tensor) -> torch.Tensor:
    """H(M) of Eqs. 4-5: softmax over the rows of their mean, then Shannon entropy (nats).

    manifold: rows x R, or runs x rows x R (lockstep) -> a scalar, or one entropy per run."""
    scores = manifold.mean(dim=-1)
    log_p = F.log_softmax(scores, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


class RSM(nn.Module):
    """Reconfigured shared manifold; `forward(image_features, text_features)` returns H(M).

    Args:
        dim: width d of the image and text features (they share the classifier space).
        rank: R, the manifold width.
        trainable: False freezes phi_v and phi_w at their random initialisation (an ablation the
            paper does not report, offered because the trained projections can make H collapse).
    """

    def __init__(self, dim: int, rank: int = 64, trainable: bool = True) -> None:
        super().__init__()
        if dim <= 0 or rank <= 0:
            raise ValueError(f"RSM needs positive dim and rank, got dim={dim}, rank={rank}")
        self.dim, self.rank = dim, rank
        self.phi_v = nn.Conv1d(dim, rank, kernel_size=1)
        self.phi_w = nn.Sequential(nn.Linear(dim, rank), nn.ReLU(), nn.Linear(rank, rank))
        self.requires_grad_(trainable)

    def manifold(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """M = [phi_w(W); phi_v(V)], shape (C + B) x R."""
        if image_features.ndim != 2 or text_features.ndim != 2:
            raise ValueError("RSM expects image features B x d and text features C x d")
        # A 1x1 convolution over the batch treats each image as one position of a length-B signal.
        image_rows = self.phi_v(image_features.t().unsqueeze(0)).squeeze(0).t()
        text_rows = self.phi_w(text_features.to(image_rows.dtype))
        return torch.cat([text_rows, image_rows], dim=0)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return manifold_entropy(self.manifold(image_features, text_features))


class StackedRSM(nn.Module):
    """R `RSM` modules trained in lockstep (`ame.training.lockstep`); `forward(image_features (R, B, d), text (C, d))` is H(M) per run (R,)."""

    def __init__(self, modules: list[RSM]) -> None:
        super().__init__()
        self.phi_v = StackedLinear([m.phi_v for m in modules])
        self.phi_w1 = StackedLinear([m.phi_w[0] for m in modules])
        self.phi_w2 = StackedLinear([m.phi_w[2] for m in modules])
        self.conv_shape = tuple(modules[0].phi_v.weight.shape)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        runs = image_features.shape[0]
        image_rows = self.phi_v(image_features)
        text = text_features.to(image_rows.dtype).unsqueeze(0).expand(runs, -1, -1)
        text_rows = self.phi_w2(F.relu(self.phi_w1(text)))
        return manifold_entropy(torch.cat([text_rows, image_rows], dim=1))  # (R, C + B, rank), text rows first

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        """Run r's tensors under `RSM.state_dict()`'s keys."""
        return {"phi_v.weight": self.phi_v.weight[r].reshape(self.conv_shape).detach().clone(),
                "phi_v.bias": self.phi_v.bias[r].detach().clone(),
                "phi_w.0.weight": self.phi_w1.weight[r].detach().clone(),
                "phi_w.0.bias": self.phi_w1.bias[r].detach().clone(),
                "phi_w.2.weight": self.phi_w2.weight[r].detach().clone(),
                "phi_w.2.bias": self.phi_w2.bias[r].detach().clone()}

    @torch.no_grad()
    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        targets = {"phi_v.weight": self.phi_v.weight, "phi_v.bias": self.phi_v.bias,
                   "phi_w.0.weight": self.phi_w1.weight, "phi_w.0.bias": self.phi_w1.bias,
                   "phi_w.2.weight": self.phi_w2.weight, "phi_w.2.bias": self.phi_w2.bias}
        if set(state) != set(targets):
            raise KeyError(f"RSM state of run {r}: keys {sorted(set(state) ^ set(targets))[:5]} differ")
        for key, value in state.items():
            targets[key][r].copy_(value.reshape(targets[key][r].shape))
