"""Distillation runs: deterministic per seed, resumable after an interruption, contract-conforming."""

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from ame import contracts
from ame.io import read_json
from ame.spec import RunSpec
from ame.steps.distill import distill



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

    import ame.training.distillation as train

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


@pytest.mark.parametrize("kill_at_step", [2, 3, 4])  # with 2 steps per epoch: mid-epoch 1, start and mid 2
def test_a_run_killed_mid_epoch_resumes_from_its_last_step_and_writes_the_same_bytes(world, tmp_path, monkeypatch,
                                                                                    kill_at_step):
    import ame.training.distillation as train

    spec, inputs = world
    spec = dataclasses.replace(seeded(spec, 4), optim=dataclasses.replace(spec.optim, batch_size=16))
    clean = distill(spec, inputs, tmp_path / "clean", tmp_path / "s_clean")
    assert clean["best_epoch"] is not None

    real, calls = train.kd_loss_per_run, {"n": 0}

    def killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at_step:
            raise KeyboardInterrupt  # stands in for kill -9: nothing after this point runs
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "kd_loss_per_run", killed)
    with pytest.raises(KeyboardInterrupt):
        distill(spec, inputs, tmp_path / "run", tmp_path / "s_run", save_steps=1)
    state = torch.load(tmp_path / "s_run" / "state.pt", weights_only=False)
    assert (state["epoch"], state["step"]) == divmod(kill_at_step - 1, 2)
    monkeypatch.setattr(train, "kd_loss_per_run", real)
    calls["n"] = 0
    distill(spec, inputs, tmp_path / "run", tmp_path / "s_run", save_steps=1)
    for name in ("metrics.json", "history.csv", "embeddings.npz", "student.safetensors", "student.json", "params.json"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    assert not (tmp_path / "s_run" / "state.pt").exists()


def test_a_grouped_job_rerun_after_a_kill_never_retrains_a_finished_seed(world, tmp_path, monkeypatch):
    import shutil

    import ame.steps.distill as train
    from ame.cli import main

    spec, inputs = world
    args = ["distill", "--spec", json.dumps(spec.job_params()), "--seeds", "1", "2",
            "--split", str(inputs.split), "--shots", str(inputs.shots), str(inputs.shots),
            "--student-backbone", str(inputs.student_backbone), "--teacher", str(inputs.teacher),
            "--text-features", str(inputs.text_features)]
    out = [tmp_path / "seed1", tmp_path / "seed2"]
    scratch = [tmp_path / "s1", tmp_path / "s2"]
    real_train, real_write, trained, writes = train.distill_lockstep, train.write_params, [], []

    def records_seeds(specs, *a, **kw):
        trained.append([s.seed for s in specs])
        return real_train(specs, *a, **kw)

    def dies_writing_seed_2(out_dir, spec):
        writes.append(spec.seed)
        if spec.seed == 2 and writes.count(2) == 1:
            raise KeyboardInterrupt  # killed after seed 1's files, while writing seed 2's
        return real_write(out_dir, spec)

    monkeypatch.setattr(train, "distill_lockstep", records_seeds)
    monkeypatch.setattr(train, "write_params", dies_writing_seed_2)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out-dirs", *map(str, out), "--scratch-dirs", *map(str, scratch)])
    first = (out[0] / "metrics.json").read_bytes()
    for folder in out:  # what the engine does before rerunning an incomplete job
        shutil.rmtree(folder, ignore_errors=True)
    main([*args, "--out-dirs", *map(str, out), "--scratch-dirs", *map(str, scratch)])
    assert trained == [[1, 2], [2]]  # in lockstep first; then seed 1 was restored, not trained again
    assert (out[0] / "metrics.json").read_bytes() == first and (out[1] / "metrics.json").is_file()
    assert not (scratch[0] / "finished").exists()  # the kept copies go once the job has finished


def test_a_collapsed_manifold_is_reported_as_a_warning_only():
    from ame.training.distillation import entropy_collapse

    # H(M) <= log(C + B): 26 rows (10 classes + a batch of 16) allow at most log(26) = 3.258 nats.
    assert entropy_collapse(0.1, 26, 5) is not None and "log(26)" in entropy_collapse(0.1, 26, 5)
    assert entropy_collapse(0.2, 26, 5) is None  # 0.2 > 5 % of 3.258 = 0.163
    assert entropy_collapse(0.0, 26, 0) is None  # 0: off


def test_the_collapse_warning_reaches_the_runs_log_and_changes_no_result(world, tmp_path, caplog):
    spec, inputs = world
    quiet = distill(spec, inputs, tmp_path / "quiet", tmp_path / "s_quiet", collapse_percent=0)
    assert "H(M) collapsed" not in caplog.text
    # every H(M) is below 100 % of its maximum: the threshold that always fires
    warned = distill(spec, inputs, tmp_path / "warned", tmp_path / "s_warned", collapse_percent=100)
    collapsed = [r for r in caplog.records if r.levelname == "WARNING" and "H(M) collapsed" in r.getMessage()]
    assert len(collapsed) == spec.optim.epochs
    assert warned == quiet


def test_kill_9_at_any_moment_then_a_rerun_writes_the_same_bytes(world, tmp_path):
    """Real SIGKILLs of `ame distill` at several moments of training, with resume state saved at
    every step (so kills land inside saves too); each rerun must write what an uninterrupted run did."""
    import os
    import signal
    import subprocess
    import sys
    import time

    spec, inputs = world
    spec = dataclasses.replace(spec, optim=dataclasses.replace(spec.optim, epochs=4, batch_size=4))
    ame = [str(Path(sys.executable).parent / "ame"), "distill", "--spec", json.dumps(spec.job_params()),
           "--seeds", "1", "--split", str(inputs.split), "--shots", str(inputs.shots),
           "--student-backbone", str(inputs.student_backbone), "--teacher", str(inputs.teacher),
           "--text-features", str(inputs.text_features), "--save-minutes", "0.00001"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def start(name):
        return subprocess.Popen([*ame, "--out-dirs", str(tmp_path / name), "--scratch-dirs",
                                 str(tmp_path / f"s_{name}")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def training_started(name, proc):
        """Seconds at which the run's first resume state appeared (training has begun)."""
        while not (tmp_path / f"s_{name}" / "state.pt").exists():
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.005)
        return time.monotonic()

    clean = start("clean")
    began = training_started("clean", clean)
    assert clean.wait(timeout=600) == 0, clean.stderr.read()
    window = time.monotonic() - began  # training, evaluation and the final writes

    interrupted = 0
    for i, fraction in enumerate((0.15, 0.45, 0.75)):
        name = f"killed{i}"
        proc = start(name)
        time.sleep(max(0.0, training_started(name, proc) + fraction * window - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        interrupted += not (tmp_path / name / "metrics.json").exists()
        rerun = start(name)
        assert rerun.wait(timeout=600) == 0, rerun.stderr.read()
        for file in ("metrics.json", "history.csv", "embeddings.npz", "student.safetensors", "student.json", "params.json"):
            assert (tmp_path / name / file).read_bytes() == (tmp_path / "clean" / file).read_bytes(), \
                (fraction, file)
    assert interrupted >= 2  # the kills did land before the run had finished
