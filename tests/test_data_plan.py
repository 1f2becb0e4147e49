"""ame.data.plan: the augmentation plan (each epoch's image order and one seed per position for its
crop and flip) follows from the run seed alone, so every method of a cell sees the same crops
whatever else draws random numbers."""

import dataclasses

import torch

from ame.data import load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set


def test_plan_depends_only_on_size_epochs_and_seed():
    a, b = AugmentationPlan.draw(40, 3, seed=1), AugmentationPlan.draw(40, 3, seed=1)
    assert a.same_as(b) and not a.same_as(AugmentationPlan.draw(40, 3, seed=2))
    longer = AugmentationPlan.draw(40, 5, seed=1)
    assert torch.equal(longer.order[:3], a.order) and torch.equal(longer.seeds[:3], a.seeds)
    assert all(sorted(row.tolist()) == list(range(40)) for row in a.order)  # each epoch is a permutation


def test_planned_crops_ignore_and_preserve_the_global_rng(world):
    spec, inputs = world
    split = load_split(inputs.split)
    images = training_set(split, read_shots(inputs.shots, split),
                          {**dataclasses.asdict(spec.augment), "scale_min": 0.3})
    epoch = AugmentationPlan.draw(len(images), 1, seed=7).epoch(images, 0)
    torch.manual_seed(123)
    first = epoch[3][0]
    state = torch.get_rng_state()
    torch.manual_seed(456)
    again = epoch[3][0]
    assert torch.equal(first, again)
    torch.manual_seed(456)
    torch.rand(1)
    after = torch.get_rng_state()
    torch.manual_seed(456)
    epoch[3]
    torch.rand(1)
    assert torch.equal(torch.get_rng_state(), after) and not torch.equal(state, after)
