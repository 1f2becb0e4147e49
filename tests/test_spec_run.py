"""ame.spec.run: typed run specifications built from a preset; each setting reaches exactly the
runs it affects, and each run's record (params.json) round-trips strictly.
"""

import json
from pathlib import Path

import pytest

from ame.spec import Layout, RunSpec, grid_specs, load_preset, run_spec, validate_preset
from ame.spec.run import ablation_specs, zeroshot_specs
from tests.workspace import ROOT, shipped_preset, write_preset


def test_promptkd_dataset_spellings_in_dataset_keyed_settings_reach_the_runs(tmp_path):
    cfg = shipped_preset("paper")
    cfg["kd"]["weight"] = {"default": 1000, "fgvc_aircraft": 200, "oxford_flowers": 200, "dtd": 200}
    cfg["optim"]["full_epochs"] = {"default": 20, "imagenet": 2}
    paper = load_preset(write_preset(tmp_path, cfg, "paper"))
    assert paper["kd"]["weight"] == {"default": 1000, "FGVCAircraft": 200, "Flowers102": 200, "DTD": 200}
    for dataset in ("FGVCAircraft", "Flowers102", "DTD"):
        assert run_spec(paper, "base2new", dataset, "16shot", "pkd", 1).kd.weight == 200.0
    assert run_spec(paper, "base2new", "EuroSAT", "16shot", "pkd", 1).kd.weight == 1000.0
    assert run_spec(paper, "xd", "DTD", "16shot", "pkd", 1).kd.weight == 1000.0
    assert run_spec(paper, "base2new", "ImageNet", "full", "pkd", 1).optim.epochs == 2
    assert run_spec(paper, "base2new", "ImageNet", "16shot", "pkd", 1).optim.epochs == 20
    assert run_spec(paper, "base2new", "DTD", "full", "pkd", 1).optim.epochs == 20


def test_omega_reaches_only_the_rsm_runs():
    cfg = validate_preset(shipped_preset("mini"), name="mini")
    changed = validate_preset({**shipped_preset("mini"), "rsm": {**shipped_preset("mini")["rsm"], "omega": 10.0}}, name="mini")
    for method in ("pkd", "simple", "zeroshot"):
        setting = "zeroshot" if method == "zeroshot" else "16shot"
        assert run_spec(cfg, "base2new", "Digits", setting, method, 1) == \
            run_spec(changed, "base2new", "Digits", setting, method, 1)
    for method in ("pkd_rsm", "simple_rsm"):
        assert run_spec(changed, "base2new", "Digits", "16shot", method, 1).rsm.omega == 10.0
        assert run_spec(cfg, "base2new", "Digits", "16shot", method, 1).rsm.omega == 50.0


def test_the_zero_shot_row_depends_on_no_training_setting():
    cfg = validate_preset(shipped_preset("mini"), name="mini")
    other = validate_preset({**shipped_preset("mini"), "optim": {**shipped_preset("mini")["optim"], "lr": 0.1}, "kd": {"weight": {"default": 5}}},
                            name="mini")
    assert zeroshot_specs(cfg) == zeroshot_specs(other)
    assert all(s.optim is None and s.kd is None for s in zeroshot_specs(cfg))


def test_a_run_specification_round_trips_through_params_json(tmp_path):
    cfg = load_preset(ROOT / "config" / "mini.yaml")
    spec = run_spec(cfg, "base2new", "Digits", "16shot", "pkd_rsm", 3)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(spec.to_dict()))
    data = json.loads(path.read_text())
    assert data["rsm"] == {"omega": 50.0, "rank": 64, "trainable": True}
    assert data["kd"]["weight"] == 1000.0 and data["optim"]["epochs"] == 10 and data["prompts"]["depth"] == 4
    assert RunSpec.from_dict(data) == spec
    assert RunSpec.from_dict({**spec.job_params(), "seed": 3}) == spec


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["optim"].update(batch_size=16.0), "key 'optim.batch_size': expected int"),
    (lambda d: d.update(omega=3), "unknown key(s) omega"),
    (lambda d: d["rsm"].pop("rank"), "key 'rsm.rank' missing"),
    (lambda d: d.update(task=None), "key 'task' must not be null"),
])
def test_a_run_specification_is_rebuilt_strictly(mutate, message):
    data = run_spec(load_preset(ROOT / "config" / "mini.yaml"), "base2new", "Digits", "16shot", "pkd_rsm", 1).to_dict()
    mutate(data)
    with pytest.raises(ValueError) as err:
        RunSpec.from_dict(data, where="params.json")
    assert str(err.value).startswith("params.json: ") and message in str(err.value)


def test_ablation_variants_are_run_specifications_with_their_own_folders():
    cfg = load_preset(ROOT / "config" / "mini.yaml")
    specs = ablation_specs(cfg)
    assert len(specs) == 4 * 2 * 3
    frozen = [s for s in specs if s.rsm.omega == 10.0 and not s.rsm.trainable]
    assert len(frozen) == 3 and {s.seed for s in frozen} == {1, 2, 3}
    layout = Layout(cfg)
    grid_dirs = {layout.run_dir(s) for s in grid_specs(cfg)}
    assert not grid_dirs & {layout.run_dir(s) for s in specs}
    assert len({layout.run_dir(s) for s in specs}) == len(specs)


def test_the_checkpoint_interval_reaches_the_distill_jobs_without_being_part_of_their_identity():
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["snakemake", "-n", "-p", "all", "--config", "runtime={'checkpoint_minutes': 3}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    commands = [line for line in out.stdout.splitlines() if "ame distill" in line]
    assert commands and all("--save-minutes 3 " in line for line in commands)
    assert all('"checkpoint' not in line for line in commands)  # not in the run specification


def test_the_ablation_method_reaches_its_runs():
    cfg = validate_preset({**shipped_preset("mini"), "ablation": {**shipped_preset("mini")["ablation"], "method": "simple_rsm"}}, name="mini")
    specs = ablation_specs(cfg)
    assert {s.method for s in specs} == {"simple_rsm"} and all(s.prompts is None for s in specs)
