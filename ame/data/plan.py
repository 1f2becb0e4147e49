"""Pre-drawn training augmentations: which image, and which random crop and flip, each step sees.

An `AugmentationPlan` fixes, for every epoch, the order of the training images and one RNG seed per
position; the random transform of that position runs under its seed. So the stream of augmented
batches depends only on (number of images, epochs, run seed), not on how much randomness model
construction consumed. That lets a teacher-output cache be built once from the plan and replayed
by every method of a grid cell, with the student seeing exactly the crops the teacher saw, and it
makes paired comparisons (PKD vs PKD+RSM) use the same augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ame.data.images import ImageSet, build_transform

_SEED_HIGH = 2**62


@dataclass(frozen=True)
class AugmentationPlan:
    order: torch.Tensor  # (epochs, N) int64: dataset index at each position of each epoch
    seeds: torch.Tensor  # (epochs, N) int64: seed of the random transform at each position

    @classmethod
    def draw(cls, n_items: int, epochs: int, seed: int) -> AugmentationPlan:
        """Epoch e's draws come after epoch e-1's, so a longer plan extends a shorter one."""
        generator = torch.Generator().manual_seed(seed)
        order, seeds = [], []
        for _ in range(epochs):
            order.append(torch.randperm(n_items, generator=generator))
            seeds.append(torch.randint(0, _SEED_HIGH, (n_items,), generator=generator))
        if not order:
            return cls(torch.empty(0, n_items, dtype=torch.long), torch.empty(0, n_items, dtype=torch.long))
        return cls(torch.stack(order), torch.stack(seeds))

    @property
    def epochs(self) -> int:
        return int(self.order.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.order.shape[1])

    def same_as(self, other: AugmentationPlan) -> bool:
        return torch.equal(self.order, other.order) and torch.equal(self.seeds, other.seeds)

    def epoch(self, dataset: Dataset, epoch: int) -> PlannedEpoch:
        if len(dataset) != self.n_items:
            raise ValueError(f"the augmentation plan covers {self.n_items} images but the training set has "
                             f"{len(dataset)}; draw the plan from the same shots file")
        return PlannedEpoch(dataset, self.order[epoch], self.seeds[epoch])

    def loader(self, dataset: Dataset, epoch: int, batch_size: int, start_step: int = 0) -> DataLoader:
        """Batches of epoch `epoch` in plan order; the last partial batch is dropped when there is a
        full one (the reference's drop_last), so every method takes the same steps. `start_step`
        skips that many batches without loading them (resuming mid-epoch)."""
        planned = self.epoch(dataset, epoch)
        drop_last = len(dataset) >= batch_size
        if start_step:
            planned = Subset(planned, range(start_step * batch_size, len(planned)))
        return DataLoader(planned, batch_size=batch_size, shuffle=False, drop_last=drop_last)

    def steps_per_epoch(self, batch_size: int) -> int:
        n = self.n_items
        return n // batch_size if n >= batch_size else (1 if n else 0)

    def used_positions(self, batch_size: int) -> int:
        """Positions per epoch that reach a training step (N minus the dropped remainder)."""
        return min(self.n_items, self.steps_per_epoch(batch_size) * batch_size)


class LockstepEpoch(Dataset):
    """One epoch of R runs' plans interleaved so that each DataLoader batch of R*b items holds step
    s of every run, run r's b images in rows r*b .. r*b+b-1 (b: each run's batch, as `loader`)."""

    def __init__(self, epochs: list[PlannedEpoch], batch_size: int, start_step: int, steps: int) -> None:
        self.epochs, self.batch_size, self.start_step, self.steps = epochs, batch_size, start_step, steps

    def __len__(self) -> int:
        return (self.steps - self.start_step) * len(self.epochs) * self.batch_size

    def __getitem__(self, index: int):
        step, within = divmod(index, len(self.epochs) * self.batch_size)
        run, row = divmod(within, self.batch_size)
        return self.epochs[run][(self.start_step + step) * self.batch_size + row]


def lockstep_loader(plans: list[AugmentationPlan], datasets: list[Dataset], epoch: int, batch_size: int,
                    start_step: int = 0, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Batches of epoch `epoch` of R runs at once (each run's images and crops exactly as its own
    `AugmentationPlan.loader` gives them): step s is one batch of R*b images, run r's in rows
    r*b .. r*b+b-1. `workers` decode and augment in parallel processes (each item's crop depends on
    its plan seed only, so the batches do not depend on the worker count); `pin_memory` speeds the
    copy to a GPU."""
    sizes = {len(d) for d in datasets}
    if len(sizes) != 1 or len(plans) != len(datasets):
        raise ValueError(f"lockstep runs need training sets of one size, one plan each; got sizes {sorted(sizes)}")
    steps = plans[0].steps_per_epoch(batch_size)
    per_run = min(batch_size, sizes.pop())
    epochs = [plan.epoch(dataset, epoch) for plan, dataset in zip(plans, datasets)]
    combined = LockstepEpoch(epochs, per_run, start_step, steps)
    return DataLoader(combined, batch_size=per_run * len(plans), shuffle=False, num_workers=workers,
                      pin_memory=pin_memory)


class PlannedEpoch(Dataset):
    """`dataset` in one epoch's plan order, each item transformed under its own seed."""

    def __init__(self, dataset: Dataset, order: torch.Tensor, seeds: torch.Tensor) -> None:
        self.dataset, self.order, self.seeds = dataset, order, seeds

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int):
        # torchvision's random transforms draw from torch's global CPU generator; fork it so the
        # seed alone decides this item's crop and flip (whatever the worker count) and the
        # caller's RNG stream is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(self.seeds[position]))
            return self.dataset[int(self.order[position])]


def training_set(split, shots: dict, augment: dict, store: dict | None = None) -> ImageSet:
    """The unlabeled training images of a run (the shots' indices into the train split), augmented;
    `store`: a decoded-image cache shared with other runs' sets (`ImageSet`)."""
    items = [(split.root / split.train[i][0], split.train[i][1]) for i in shots["indices"]]
    transform = build_transform(True, augment["image_size"], (augment["scale_min"], 1.0), augment["hflip"])
    return ImageSet(items, transform, store=store)
