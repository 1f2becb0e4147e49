"""Shared test setup: offline environment and the fixtures several test modules use."""

import dataclasses
import os
from pathlib import Path

import pytest

# Tests never reach the network: offline hubs fail at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]

# The one rule for the `slow` marker: a test is slow when it trains models or runs Snakemake jobs,
# that is, when it uses one of these fixtures (`pytest -m "not slow"` skips them while developing).
SLOW_FIXTURES = {"world", "project", "cluster", "clone", "paper_smoke"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clone(tmp_path):
    """make(preset, name="clone"): a real `git clone` of the repository under tmp_path with `preset`
    active (`tests.workspace.clone_project`)."""
    from tests.workspace import clone_project

    return lambda preset, name="clone": clone_project(tmp_path / name, preset)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(pkd_rsm run specification with 2 epochs, RunInputs): Digits + randomly initialised tiny
    backbones and teacher, enough to exercise a distillation run. Shared by the training tests."""
    import torch

    from ame.data import prepare_embedded, write_shots
    from ame.io import sha256_file, torch_save, write_json
    from ame.models.clip import create_clip
    from ame.models.load import build_teacher
    from ame.steps.teacher_features import text_features
    from ame.spec import load_preset, run_spec
    from ame.steps.distill import RunInputs

    root = tmp_path_factory.mktemp("world")
    split = prepare_embedded("Digits", root / "Digits")
    shots = write_shots(split, 4, 1, root / "shots.json")
    torch.manual_seed(0)
    cards = {}
    for role in ("student", "teacher"):
        weights = root / f"{role}.pt"
        torch_save(create_clip(f"ame-tiny-{role}").state_dict(), weights)
        cards[role] = root / f"{role}.json"
        write_json(cards[role], {"arch": f"ame-tiny-{role}", "weights": "pretrain", "file": weights.name,
                                 "sha256": sha256_file(weights)})
    cfg = load_preset(ROOT / "config" / "mini.yaml")
    tparams = {"prompt_tokens": 4, "prompt_depth": 2, "ctx_init": "a photo of a"}
    teacher = build_teacher(tparams, cards["teacher"])
    teacher_weights = root / "teacher_prompts.pt"
    torch_save({"prompts": teacher.prompt_state(), "classes": list(range(5))}, teacher_weights)
    teacher_card = root / "teacher_card.json"
    write_json(teacher_card, {"arch": "ame-tiny-teacher", "backbone_card": str(cards["teacher"]),
                              "file": teacher_weights.name, "sha256": sha256_file(teacher_weights),
                              "params": tparams})
    features = root / "features.pt"
    text_features(teacher_card, split, features, torch.device("cpu"))
    spec = run_spec(cfg, "base2new", "Digits", "4shot", "pkd_rsm", seed=1)
    spec = dataclasses.replace(spec, optim=dataclasses.replace(spec.optim, epochs=2))
    return spec, RunInputs(split, shots, cards["student"], teacher_card, features)


@pytest.fixture(scope="module")
def student_clip():
    """The miniature's student backbone, random weights (seed 0)."""
    import torch

    from ame.models.clip import create_clip

    torch.manual_seed(0)
    return create_clip("ame-tiny-student")


@pytest.fixture(scope="module")
def teacher_clip():
    """The miniature's teacher backbone, random weights (seed 0)."""
    import torch

    from ame.models.clip import create_clip

    torch.manual_seed(0)
    return create_clip("ame-tiny-teacher")


@pytest.fixture(scope="module")
def distilled_run(world, tmp_path_factory):
    """(run folder, metrics, RunInputs) of one finished pkd_rsm run of `world` (its scratch folder
    beside it, named scratch)."""
    from ame.steps.distill import distill

    spec, inputs = world
    out = tmp_path_factory.mktemp("run") / "run"
    metrics = distill(spec, inputs, out, out.parent / "scratch")
    return out, metrics, inputs
