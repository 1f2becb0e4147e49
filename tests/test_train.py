"""Distillation runs: deterministic per seed, resumable after an interruption, contract-conforming."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from ame import contracts
from ame.config import distill_params, load_preset
from ame.data import prepare_embedded, write_shots
from ame.io import sha256_file, torch_save, write_json
from ame.models.clip import create_clip
from ame.prompt_tuning import build_teacher, text_features
from ame.train import RunInputs, distill

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Digits + randomly initialised tiny backbones and teacher: enough to exercise the loop."""
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
    params = distill_params(cfg, "base2new", "Digits", "4shot", "pkd_rsm")
    params["optim"]["epochs"] = 2
    return params, RunInputs(split, shots, cards["student"], teacher_card, features)


def test_a_run_writes_every_contracted_file(world, tmp_path):
    params, inputs = world
    metrics = distill(params, 1, inputs, tmp_path / "run", tmp_path / "scratch")
    contracts.validate(metrics, contracts.METRICS, "metrics.json")
    assert metrics["hm"] == pytest.approx(2 * metrics["base"] * metrics["new"] / (metrics["base"] + metrics["new"]),
                                          abs=1e-3)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history.columns) == contracts.HISTORY_COLUMNS and len(history) == 2
    assert (history["rsm_entropy"] > 0).all()
    assert not (tmp_path / "scratch" / "state.pt").exists()  # resume state is cleared on success


def test_same_seed_gives_byte_identical_metrics(world, tmp_path):
    params, inputs = world
    distill(params, 2, inputs, tmp_path / "a", tmp_path / "sa")
    distill(params, 2, inputs, tmp_path / "b", tmp_path / "sb")
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(world, tmp_path, monkeypatch):
    params, inputs = world
    distill(params, 3, inputs, tmp_path / "clean", tmp_path / "s_clean")

    import ame.train as train

    calls = {"n": 0}
    real = train.subset_accuracy

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "subset_accuracy", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        distill(params, 3, inputs, tmp_path / "resumed", tmp_path / "s_resumed")
    assert (tmp_path / "s_resumed" / "state.pt").exists()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(train, "subset_accuracy", real)
    distill(params, 3, inputs, tmp_path / "resumed", tmp_path / "s_resumed")
    assert (tmp_path / "resumed" / "metrics.json").read_bytes() == (tmp_path / "clean" / "metrics.json").read_bytes()
    assert (tmp_path / "resumed" / "history.csv").read_text() == (tmp_path / "clean" / "history.csv").read_text()
