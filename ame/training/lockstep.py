"""R students trained as one batched computation (lockstep): one frozen backbone, R sets of weights.

The runs of a grid cell's job (its seeds) differ only in their trainable tensors and their batches.
Here each trainable tensor of the R runs is one stacked parameter with a leading run axis, so one
forward of the frozen backbone serves every run and one optimiser step updates every run:

- vision prompts: (R, depth, n, width); the backbone runs on the R batches stacked (R*B images),
  each image with its own run's prompts (`encode_image` with per-image tokens);
- PromptKD's projector: Linear -> BatchNorm -> ReLU -> Linear as batched matrix products on
  (R, B, d), the BatchNorm over each run's own batch with each run's own running statistics (one
  `F.batch_norm` over R*d channels: the very kernel and momentum of `nn.BatchNorm1d`);
- RSM's phi_v (1x1 convolution) and phi_w (MLP) likewise (`ame.rsm.StackedRSM`), and H(M) per run.

The loss minimised is the sum of the runs' losses; as no tensor is shared between runs, the
gradient of run r's slice is exactly run r's own gradient, and SGD and AdamW act elementwise, so
every run follows the optimisation it would follow alone (tests/test_lockstep.py compares losses
per step and final metrics with runs trained one by one). `run_state(r)` / `load_run_state(r, ...)`
read and write one run's tensors under the keys of `ame.models.student.Student` (and of `ame.rsm.RSM`),
so a run's saved student and resume state are those of a run trained alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ame.models.prompts import encode_image
from ame.models.stacked import StackedBatchNorm, StackedLinear, stack
from ame.models.student import Student


class StackedStudent(nn.Module):
    """R students (`ame.models.student.Student`) sharing one frozen image tower.

    `forward(images)` takes (R, B, 3, H, W), run r's batch in row r, and returns the L2-normalised
    features (R, B, d_t); `forward_shared(images)` runs the same (N, 3, H, W) images through every
    run (evaluation) and returns (R, N, d_t). `forward_frozen(pooled)` starts from the frozen
    tower's output (R, B, d_s), for prompt-free students whose tower output is cached.
    """

    def __init__(self, students: list[Student]) -> None:
        super().__init__()
        first = students[0]
        self.visual = first.visual  # frozen and shared: the runs' towers hold the same weights
        self.runs = len(students)
        if first.prompts is not None:
            self.tokens = nn.Parameter(stack([s.prompts.tokens for s in students]))
        else:
            self.tokens = None
        net = [s.projector.net for s in students]
        self.linear1 = StackedLinear([n[0] for n in net])
        self.norm = StackedBatchNorm([n[1] for n in net])
        self.linear2 = StackedLinear([n[3] for n in net])

    @property
    def prompted(self) -> bool:
        return self.tokens is not None

    def train(self, mode: bool = True):
        super().train(mode)
        self.visual.eval()  # frozen: keep any dropout off
        return self

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """PromptKD's projector per run and L2 normalisation: (R, B, d_s) -> (R, B, d_t)."""
        hidden = F.relu(self.norm(self.linear1(pooled)))
        return F.normalize(self.linear2(hidden), dim=-1)

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """The prompt-free tower's output (N, d_s) for images (N, 3, H, W): what a cache stores."""
        return encode_image(self.visual, images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        runs, batch = images.shape[:2]
        flat = images.reshape(runs * batch, *images.shape[2:])
        tokens = self.tokens.repeat_interleave(batch, dim=0) if self.prompted else None
        pooled = encode_image(self.visual, flat, tokens=tokens)
        return self.project(pooled.reshape(runs, batch, -1))

    def forward_frozen(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.prompted:
            raise ValueError("a prompted student cannot start from cached tower features")
        return self.project(pooled)

    def forward_shared(self, images: torch.Tensor) -> torch.Tensor:
        if not self.prompted:
            pooled = encode_image(self.visual, images)
            return self.project(pooled.unsqueeze(0).expand(self.runs, -1, -1))
        n = images.shape[0]
        stacked = images.unsqueeze(0).expand(self.runs, *images.shape)
        return self(stacked.reshape(self.runs, n, *images.shape[1:]))

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        """Run r's tensors under `Student.trainable_state()`'s keys."""
        state = {"projector.net.0.weight": self.linear1.weight[r], "projector.net.0.bias": self.linear1.bias[r],
                 "projector.net.1.weight": self.norm.weight[r], "projector.net.1.bias": self.norm.bias[r],
                 "projector.net.1.running_mean": self.norm.running_mean[r],
                 "projector.net.1.running_var": self.norm.running_var[r],
                 "projector.net.1.num_batches_tracked": self.norm.num_batches_tracked[r],
                 "projector.net.3.weight": self.linear2.weight[r], "projector.net.3.bias": self.linear2.bias[r]}
        if self.prompted:
            state["prompts.tokens"] = self.tokens[r]
        return {k: v.detach().clone() for k, v in state.items()}

    @torch.no_grad()
    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.run_state(r))
        if set(state) != expected:
            raise KeyError(f"student state of run {r}: keys {sorted(set(state) ^ expected)[:5]} differ")
        targets = {"projector.net.0.weight": self.linear1.weight, "projector.net.0.bias": self.linear1.bias,
                   "projector.net.1.weight": self.norm.weight, "projector.net.1.bias": self.norm.bias,
                   "projector.net.1.running_mean": self.norm.running_mean,
                   "projector.net.1.running_var": self.norm.running_var,
                   "projector.net.1.num_batches_tracked": self.norm.num_batches_tracked,
                   "projector.net.3.weight": self.linear2.weight, "projector.net.3.bias": self.linear2.bias,
                   "prompts.tokens": self.tokens}
        for key, value in state.items():
            targets[key][r].copy_(value)

    def student(self, r: int, template: Student) -> Student:
        """Run r as a plain `Student` (for saving and loading): `template` with run r's tensors."""
        template.load_trainable_state(self.run_state(r))
        return template
