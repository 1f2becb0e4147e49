"""Distillation runs: deterministic per seed, resumable after an interruption, contract-conforming."""

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from ame import contracts
from ame.data import prepare_embedded, write_shots
from ame.io import read_json, sha256_file, torch_save, write_json
from ame.models.clip import create_clip
from ame.prompt_tuning import build_teacher, text_features
from ame.spec import RunSpec, load_preset, run_spec
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
    spec = run_spec(cfg, "base2new", "Digits", "4shot", "pkd_rsm", seed=1)
    spec = dataclasses.replace(spec, optim=dataclasses.replace(spec.optim, epochs=2))
    return spec, RunInputs(split, shots, cards["student"], teacher_card, features)


def seeded(spec: RunSpec, seed: int) -> RunSpec:
    """The same run specification with another seed (the seed is part of the specification)."""
    return dataclasses.replace(spec, seed=seed)


def test_a_run_writes_every_contracted_file(world, tmp_path):
    spec, inputs = world
    metrics = distill(spec, inputs, tmp_path / "run", tmp_path / "scratch")
    contracts.validate(metrics, contracts.METRICS, "metrics.json")
    assert metrics["hm"] == pytest.approx(2 * metrics["base"] * metrics["new"] / (metrics["base"] + metrics["new"]),
                                          abs=1e-3)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history.columns) == contracts.HISTORY_COLUMNS and len(history) == 2
    assert (history["rsm_entropy"] > 0).all()
    assert not (tmp_path / "scratch" / "state.pt").exists()  # resume state is cleared on success
    # params.json: the run's whole specification beside its metrics, read back to the same record
    params = read_json(tmp_path / "run" / "params.json")
    assert params == spec.to_dict()
    assert RunSpec.from_dict(params, where="params.json") == spec
    assert params["seed"] == metrics["seed"] == 1 and params["optim"]["epochs"] == 2
    assert (params["method"], params["setting"]) == (metrics["method"], metrics["setting"]) == ("pkd_rsm", "4shot")
    assert params["rsm"] == {"omega": 50.0, "rank": 64, "trainable": True}


def test_same_seed_gives_byte_identical_metrics(world, tmp_path):
    spec, inputs = world
    distill(seeded(spec, 2), inputs, tmp_path / "a", tmp_path / "sa")
    distill(seeded(spec, 2), inputs, tmp_path / "b", tmp_path / "sb")
    for name in ("metrics.json", "params.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(world, tmp_path, monkeypatch):
    spec, inputs = world
    spec = seeded(spec, 3)
    distill(spec, inputs, tmp_path / "clean", tmp_path / "s_clean")

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
        distill(spec, inputs, tmp_path / "resumed", tmp_path / "s_resumed")
    assert (tmp_path / "s_resumed" / "state.pt").exists()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(train, "subset_accuracy", real)
    distill(spec, inputs, tmp_path / "resumed", tmp_path / "s_resumed")
    assert (tmp_path / "resumed" / "metrics.json").read_bytes() == (tmp_path / "clean" / "metrics.json").read_bytes()
    assert (tmp_path / "resumed" / "history.csv").read_text() == (tmp_path / "clean" / "history.csv").read_text()
    assert (tmp_path / "resumed" / "params.json").read_bytes() == (tmp_path / "clean" / "params.json").read_bytes()


def test_cli_distill_takes_the_specification_without_its_seed_and_adds_each_seed(world, tmp_path, capsys):
    from ame.cli import main

    spec, inputs = world
    job = spec.job_params()
    assert "seed" not in job
    common = ["distill", "--split", str(inputs.split), "--student-backbone", str(inputs.student_backbone),
              "--teacher", str(inputs.teacher), "--text-features", str(inputs.text_features),
              "--seeds", "5", "--shots", str(inputs.shots), "--out-dirs", str(tmp_path / "run"),
              "--scratch-dirs", str(tmp_path / "scratch")]
    main([*common, "--spec", json.dumps(job)])
    assert read_json(tmp_path / "run" / "params.json") == seeded(spec, 5).to_dict()
    assert read_json(tmp_path / "run" / "metrics.json")["seed"] == 5
    # A specification the job cannot rebuild is refused before anything runs, naming the key.
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*common[:-4], "--out-dirs", str(tmp_path / "bad"), "--scratch-dirs", str(tmp_path / "s_bad"),
              "--spec", json.dumps({**job, "omega": 1.0})])
    assert "--spec: RunSpec: unknown key(s) omega" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_diverging_run_stops_naming_the_run_step_and_loss_terms_and_writes_no_metrics(world, tmp_path, capsys):
    spec, inputs = world
    diverging = dataclasses.replace(spec, optim=dataclasses.replace(spec.optim, lr=1e30))
    with pytest.raises(FloatingPointError) as err:
        distill(diverging, inputs, tmp_path / "run", tmp_path / "scratch")
    message = str(err.value)
    assert message.startswith("run base2new/Digits/4shot/pkd_rsm/seed1, epoch ")
    assert "non-finite" in message and "L_KD" in message and "H(M)" in message
    assert not (tmp_path / "run" / "metrics.json").exists()
