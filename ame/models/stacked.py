"""Layers of R runs stacked on a leading run axis, for lockstep training (`ame.training.lockstep`):
each holds the R runs' own tensors and computes every run's output in one batched operation, with
the numerics of the layer it stacks (batched matrix products for `nn.Linear` and 1x1 `nn.Conv1d`;
`F.batch_norm` over R*d channels for `nn.BatchNorm1d`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.detach() for t in tensors]).clone()


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-run nn.Linear: x (R, N, in), weight (R, out, in), bias (R, out) -> (R, N, out)."""
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class StackedLinear(nn.Module):
    """R `nn.Linear` layers (or 1x1 `nn.Conv1d`, whose weight has a trailing 1) stacked."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.weight = nn.Parameter(stack([layer.weight.reshape(layer.weight.shape[0], -1) for layer in layers]))
        self.bias = nn.Parameter(stack([layer.bias for layer in layers]))
        self.requires_grad_(layers[0].weight.requires_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class StackedBatchNorm(nn.Module):
    """R `nn.BatchNorm1d(d)` (affine, running statistics, momentum 0.1) as one over R*d channels."""

    def __init__(self, norms: list[nn.BatchNorm1d]) -> None:
        super().__init__()
        first = norms[0]
        self.eps, self.momentum = first.eps, first.momentum
        self.weight = nn.Parameter(stack([n.weight for n in norms]))
        self.bias = nn.Parameter(stack([n.bias for n in norms]))
        self.register_buffer("running_mean", stack([n.running_mean for n in norms]))
        self.register_buffer("running_var", stack([n.running_var for n in norms]))
        self.register_buffer("num_batches_tracked", stack([n.num_batches_tracked for n in norms]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        runs, batch, width = x.shape
        flat = x.transpose(0, 1).reshape(batch, runs * width)
        if self.training:
            self.num_batches_tracked.add_(1)
        # Views of the (R, d) buffers: F.batch_norm updates them in place, run by run.
        out = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1),
                           self.weight.reshape(-1), self.bias.reshape(-1), self.training, self.momentum, self.eps)
        return out.reshape(batch, runs, width).transpose(0, 1)
