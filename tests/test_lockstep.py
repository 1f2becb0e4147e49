"""Lockstep training: R runs trained as one batched computation follow, step by step, the very
optimisation each would follow alone, and resume from their own states after a kill."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ame.data import write_shots
from ame.io import read_json
from ame.spec import RunSpec, load_preset
from ame.steps.distill import distill, distill_cell, distill_lockstep
from ame.training.engine import RunScalers

SEEDS = (1, 2, 3)


def _runs(spec, inputs, tmp_path, method: str):
    """(specs, inputs) of SEEDS: one shots file per seed, as the pipeline samples them."""
    specs, run_inputs = [], []
    for seed in SEEDS:
        shots = write_shots(inputs.split, 4, seed, tmp_path / f"shots_{seed}.json")
        base = _method_spec(spec, method)
        specs.append(dataclasses.replace(base, seed=seed))
        run_inputs.append(dataclasses.replace(inputs, shots=shots))
    return specs, run_inputs


def _method_spec(spec: RunSpec, method: str) -> RunSpec:
    """`method`'s specification, with the paper's optimiser (SGD): AdamW, the miniature's, divides
    each gradient by its own running size, so the projector's first bias -- whose gradient is zero
    but for rounding, BatchNorm removing it -- takes full steps of rounding noise either way."""
    data = spec.to_dict()
    data["optim"] = {**data["optim"], "name": "sgd", "lr": 0.002}
    if method == "simple":
        data.update(method="simple", prompts=None, rsm=None)
    return RunSpec.from_dict(data, where="test")


def _recording(monkeypatch):
    """Every training step's loss terms, as (R, 3) rows [L_KD, H(M), loss]."""
    import ame.training.distillation as train

    steps, real = [], train.Distillation.training_step

    def record(self, batch, epoch, step):
        terms = real(self, batch, epoch, step)
        steps.append(torch.stack([terms["L_KD"], terms["H(M)"], terms["loss"]], dim=1).detach().clone())
        return terms

    monkeypatch.setattr(train.Distillation, "training_step", record)
    return steps


@pytest.mark.parametrize("method", ["pkd_rsm", "simple"])
def test_three_runs_in_lockstep_match_three_runs_trained_alone(world, tmp_path, monkeypatch, method):
    spec, inputs = world
    specs, run_inputs = _runs(spec, inputs, tmp_path, method)
    steps = _recording(monkeypatch)
    together = distill_lockstep(specs, run_inputs, [tmp_path / f"lock{s}" for s in SEEDS],
                                [tmp_path / f"slock{s}" for s in SEEDS])
    lockstep_losses = torch.stack(steps)                      # (steps, R, 3)
    steps.clear()
    alone = [distill(s, i, tmp_path / f"alone{s.seed}", tmp_path / f"salone{s.seed}") for s, i in zip(specs, run_inputs)]
    alone_losses = torch.stack(steps).reshape(len(SEEDS), -1, 3).transpose(0, 1)  # run by run -> (steps, R, 3)

    assert lockstep_losses.shape == alone_losses.shape and lockstep_losses.shape[0] > 2
    # Different crops and shots per seed: the runs really differ from each other.
    assert not torch.allclose(lockstep_losses[:, 0], lockstep_losses[:, 1])
    torch.testing.assert_close(lockstep_losses, alone_losses, rtol=1e-5, atol=1e-6)
    for lock, solo in zip(together, alone):
        assert lock["seed"] == solo["seed"] and lock["best_epoch"] == solo["best_epoch"]
        for key in ("base", "new", "hm"):  # the tables show two decimals
            assert round(lock[key], 2) == round(solo[key], 2), (key, lock, solo)
    for seed in SEEDS:  # the same files, and a saved student loads as one trained alone
        assert read_json(tmp_path / f"lock{seed}" / "params.json") == read_json(tmp_path / f"alone{seed}" / "params.json")
        assert read_json(tmp_path / f"lock{seed}" / "student.json")["params"]["seed"] == seed


def test_a_lockstep_job_killed_mid_epoch_resumes_every_run_from_its_own_state(world, tmp_path, monkeypatch):
    import ame.training.distillation as train

    spec, inputs = world
    specs, run_inputs = _runs(spec, inputs, tmp_path, "pkd_rsm")
    cell = specs[0].job_params()
    out = [tmp_path / f"clean{s}" for s in SEEDS]
    distill_cell(cell, list(SEEDS), run_inputs, out, [tmp_path / f"sclean{s}" for s in SEEDS])

    real, calls = train.kd_loss_per_run, {"n": 0}

    def killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # a kill in step 2 of epoch 2 (2 steps per epoch)
        return real(*args, **kwargs)

    runs, scratch = [tmp_path / f"run{s}" for s in SEEDS], [tmp_path / f"s{s}" for s in SEEDS]
    monkeypatch.setattr(train, "kd_loss_per_run", killed)
    import ame.steps.distill as step

    saving_every_step = step.distill_lockstep

    def with_step_saves(*args, **kwargs):
        return saving_every_step(*args, **{**kwargs, "save_steps": 1})

    monkeypatch.setattr(step, "distill_lockstep", with_step_saves)
    with pytest.raises(KeyboardInterrupt):
        distill_cell(cell, list(SEEDS), run_inputs, runs, scratch)
    states = [torch.load(d / "state.pt", weights_only=False) for d in scratch]  # one per run, its own key
    assert len({s["key"] for s in states}) == 3 and {(s["epoch"], s["step"]) for s in states} == {(1, 1)}
    assert all(s["optimizer"]["state"] for s in states)
    monkeypatch.setattr(train, "kd_loss_per_run", real)
    distill_cell(cell, list(SEEDS), run_inputs, runs, scratch)
    for clean, resumed in zip(out, runs):
        for name in ("metrics.json", "history.csv", "embeddings.npz", "student.safetensors"):
            if name == "metrics.json":  # provenance aside, the same run
                a, b = read_json(clean / name), read_json(resumed / name)
                assert {k: v for k, v in a.items() if k != "provenance"} == \
                       {k: v for k, v in b.items() if k != "provenance"}
            else:
                assert (clean / name).read_bytes() == (resumed / name).read_bytes(), name
    assert not any((d / "state.pt").exists() for d in scratch)


def test_per_run_loss_scaling_skips_only_the_run_that_overflowed_as_a_grad_scaler_alone_would():
    """AMP in lockstep: run 1's step 2 overflows; runs 0 and 2 still update, run 1 keeps its weights
    and momentum and halves its scale -- each run exactly as with its own torch GradScaler."""
    torch.manual_seed(0)
    runs, steps, dim = 3, 4, 5
    start = torch.randn(runs, dim)
    targets = torch.randn(steps, runs, dim)

    def loss_of(w, step, r):
        loss = ((w - targets[step, r]) ** 2).sum()
        return loss * float("inf") if (r == 1 and step == 2) else loss

    stacked = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.SGD([stacked], lr=0.1, momentum=0.9, weight_decay=5e-4)
    scalers = RunScalers(runs, enabled=True, init_scale=2.0**10)
    skipped = []
    for step in range(steps):
        optimizer.zero_grad()
        scalers.backward(torch.stack([loss_of(stacked[r], step, r) for r in range(runs)]))
        skipped.append(scalers.step(optimizer, [stacked]).tolist())
    assert skipped[2] == [False, True, False] and sum(map(sum, skipped)) == 1

    for r in range(runs):
        w = torch.nn.Parameter(start[r].clone())
        alone = torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=5e-4)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        for step in range(steps):
            alone.zero_grad()
            scaler.scale(loss_of(w, step, r)).backward()
            scaler.step(alone)
            scaler.update()
        torch.testing.assert_close(stacked.detach()[r], w.detach())
        assert float(scalers.scale[r]) == scaler.get_scale()


def test_a_three_seed_lockstep_job_stays_within_the_miniatures_declared_memory(world, tmp_path):
    """`ame distill` of 3 seeds in one process, as the mini preset's grouped jobs run: its peak
    resident memory stays below runtime.resources.distill.mem_mb of config/mini.yaml."""
    spec, inputs = world
    specs, run_inputs = _runs(spec, inputs, tmp_path, "pkd_rsm")
    declared = load_preset(Path(__file__).resolve().parents[1] / "config" / "mini.yaml")["runtime"]["resources"][
        "distill"]["mem_mb"]
    # The job's own peak (RUSAGE_SELF in the child), printed last.
    measure = ("import resource, sys\nfrom ame.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
               "    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    args = [sys.executable, "-c", measure, "distill", "--spec", json.dumps(specs[0].job_params()),
            "--seeds", *map(str, SEEDS), "--split", str(inputs.split), "--shots", *[str(i.shots) for i in run_inputs],
            "--student-backbone", str(inputs.student_backbone), "--teacher", str(inputs.teacher),
            "--text-features", str(inputs.text_features), "--out-dirs", *[str(tmp_path / f"o{s}") for s in SEEDS],
            "--scratch-dirs", *[str(tmp_path / f"s{s}") for s in SEEDS]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert all((tmp_path / f"o{s}" / "metrics.json").is_file() for s in SEEDS)
    peak_mb = int(done.stdout.split("PEAK_KB")[-1]) / 1024  # Linux reports kilobytes
    assert peak_mb < declared, f"peak {peak_mb:.0f} MB of {declared} MB declared"
