"""Job resources come from the preset (runtime.resources, runtime.device) for every rule that runs a
job, reach the planned jobs exactly, and are rejected when misspelt or meaningless."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ame.spec import ConfigError, load_preset, validate_preset
from ame.spec.resources import device_rules, job_resources, job_threads, resource_rules
from tests.workspace import ROOT, tool_env

TARGET_RULES = {"all", "data", "models", "runs"}  # aggregate targets: no job of their own


def _mini() -> dict:
    return yaml.safe_load((ROOT / "config" / "mini.yaml").read_text())


def _plan(*config: str) -> list[dict]:
    """Each planned job of the miniature's `all` and `ablation` targets: rule, resources, threads and
    shell command."""
    cmd = ["snakemake", "-n", "-p", "--cores", "8", "--forceall", "all", "ablation"] + (["--config", *config] if config else [])
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        head = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"resources: (.+)", block)
        threads = re.search(r"threads: (\d+)", block)
        if head and head.group(1) not in TARGET_RULES:
            values = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
            shell = re.search(r"^(?:Shell command: )?\s*(ame .+)$", block, re.MULTILINE)
            jobs.append({"rule": head.group(1), "threads": int(threads.group(1)) if threads else 1,
                         "shell": shell.group(1) if shell else "", **values})
    return jobs


def test_every_rule_that_runs_a_job_has_a_resources_entry_and_no_entry_is_stray():
    proc = subprocess.run(["snakemake", "--list-rules"], cwd=ROOT, env=tool_env(), capture_output=True,
                          text=True, timeout=300)
    rules = set(proc.stdout.split()) - TARGET_RULES
    # teacher_cache exists only when kd.teacher_cache is enabled; its entry is needed then.
    # backbone_card (a backbone whose weights come from elsewhere) runs with the backbone entry.
    assert "backbone_card" in rules
    assert (rules - {"backbone_card"}) | {"teacher_cache"} == set(resource_rules())


def test_a_backbone_recorded_from_a_local_file_runs_with_the_backbone_entry(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"only its path matters in a dry run")
    jobs = _plan(f"models={{'student': {{'arch': 'ame-tiny-student', 'weights': '{weights}'}}}}",
                 "runtime={'resources': {'backbone': {'mem_mb': 4321, 'runtime': 9}}}")
    cards = [j for j in jobs if j["rule"] == "backbone_card"]
    trained = [j for j in jobs if j["rule"] == "backbone"]
    assert len(cards) == 1 and len(trained) == 1  # the student's card; the teacher is still pre-trained
    assert all((j["mem_mb"], j["runtime"]) == ("4321", "9") for j in cards + trained)


def test_every_planned_job_carries_the_presets_memory_and_wall_time():
    cfg = load_preset(ROOT / "config" / "mini.yaml")
    jobs = _plan()
    assert {j["rule"] for j in jobs} == set(resource_rules()) - {"teacher_cache"}
    for job in jobs:
        entry = cfg["runtime"]["resources"][job["rule"]]
        assert int(job["mem_mb"]) == entry["mem_mb"] and int(job["runtime"]) == entry["runtime"], job
        assert job.get("gpu") == ("0" if job["rule"] in device_rules() else None), job


def test_an_override_reaches_exactly_the_jobs_of_its_rule():
    jobs = _plan("runtime={'resources': {'distill': {'mem_mb': 1234, 'runtime': 7, 'threads': 2}}}")
    distill = [j for j in jobs if j["rule"] == "distill"]
    others = [j for j in jobs if j["rule"] != "distill"]
    assert distill and all((j["mem_mb"], j["runtime"], j["threads"]) == ("1234", "7", 2) for j in distill)
    assert all(j["mem_mb"] != "1234" and j["threads"] == 1 for j in others)


def test_device_rules_ask_for_a_gpu_unless_the_device_is_the_cpu():
    for device, gpu in (("cpu", 0), ("cuda", 1), ("auto", 1)):
        cfg = validate_preset({**_mini(), "runtime": {**_mini()["runtime"], "device": device}}, name="mini")
        for rule in resource_rules():
            assert job_resources(cfg, rule).get("gpu") == (gpu if rule in device_rules() else None)
    assert "distill" in device_rules() and "report" not in device_rules()


def test_threads_default_to_runtime_threads_and_can_be_set_per_rule():
    mini = _mini()
    mini["runtime"].update(threads=3)
    mini["runtime"]["resources"]["teacher_check"] = {"threads": 2}
    cfg = validate_preset(mini, name="mini")
    assert job_threads(cfg, "distill") == 3 and job_threads(cfg, "teacher_check") == 2
    assert job_threads(cfg, "report") == 1
    # the schema's defaults fill what the preset leaves out
    assert cfg["runtime"]["resources"]["teacher_check"]["mem_mb"] == 16000


@pytest.mark.parametrize("entry, fragment", [
    ({"distil": {"mem_mb": 1}}, "did you mean 'distill'"),
    ({"report": {"threads": 4}}, "runtime.resources.report"),
    ({"distill": {"mem_mb": 0}}, "runtime.resources.distill.mem_mb"),
    ({"evaluate": {"mem_mb": 0}}, "runtime.resources.evaluate.mem_mb"),
    ({"distill": {"runtime": 1.5}}, "runtime.resources.distill.runtime"),
])
def test_misspelt_or_meaningless_resources_are_rejected(tmp_path, entry, fragment):
    mini = _mini()
    mini["runtime"]["resources"] = entry
    path = Path(tmp_path / "mine.yaml")
    path.write_text(yaml.safe_dump(mini))
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert "mine.yaml" in str(err.value) and fragment in str(err.value), str(err.value)


def test_execution_settings_reach_the_distill_jobs_as_resources():
    jobs = _plan("runtime={'collapse_warning_percent': 0, 'checkpoint_minutes': 3}")
    distill = [j for j in jobs if j["rule"] == "distill"]
    assert distill and all((j["collapse_warning_percent"], j["checkpoint_minutes"]) == ("0", "3") for j in distill)


@pytest.mark.parametrize("section, key, value", [
    ("runtime", "collapse_warning_percent", 101), ("runtime", "collapse_warning_percent", 2.5),
    ("pretrain", "warmup_fraction", 0), ("pretrain", "warmup_fraction", 1.5), ("pretrain", "scale_min", 0),
    ("pretrain", "token_init_std", 0), ("teacher", "momentum", 1.5), ("teacher", "weight_decay", -1),
    ("teacher", "warmup_epochs", 1.5), ("teacher", "warmup_lr", 0),
])
def test_a_bad_trainer_or_warning_setting_is_rejected(tmp_path, section, key, value):
    mini = _mini()
    mini.setdefault(section, {})[key] = value
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mini))
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert "mine.yaml" in str(err.value) and f"{section}.{key}" in str(err.value), str(err.value)


def test_trainer_settings_reach_the_backbone_and_teacher_jobs():
    cmd = ["snakemake", "-n", "-p", "--forceall", "models", "--config",
           "pretrain={'warmup_fraction': 0.1, 'scale_min': 0.7, 'token_init_std': 0.3}",
           "teacher={'momentum': 0.8, 'weight_decay': 0.001, 'warmup_epochs': 2, 'warmup_lr': 0.0001}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    backbones = [line for line in proc.stdout.splitlines() if "ame backbone" in line]
    teachers = [line for line in proc.stdout.splitlines() if "ame teacher " in line]
    assert len(backbones) == 2 and all('"warmup_fraction": 0.1' in c and '"scale_min": 0.7' in c
                                       and '"token_init_std": 0.3' in c for c in backbones)
    assert teachers and all('"momentum": 0.8' in c and '"weight_decay": 0.001' in c and '"warmup_epochs": 2' in c
                            and '"warmup_lr": 0.0001' in c for c in teachers)


@pytest.mark.parametrize("key, value, fragment", [
    ("loader_workers", -1, "runtime.loader_workers"), ("loader_workers", 1.5, "runtime.loader_workers"),
    ("decoded_cache_mb", -1, "runtime.decoded_cache_mb"), ("decoded_cache_mb", 2.5, "runtime.decoded_cache_mb"),
    ("decoded_cache_mb", 2000, "runtime.resources.distill.mem_mb"),  # mini's distill jobs have 2000 MB
])
def test_a_bad_loader_setting_is_rejected(tmp_path, key, value, fragment):
    mini = _mini()
    mini["runtime"][key] = value
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mini))
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert "mine.yaml" in str(err.value) and f"runtime.{key}" in str(err.value) and fragment in str(err.value)


def test_loader_settings_reach_the_distill_and_teacher_cache_jobs_and_their_cores():
    jobs = _plan("runtime={'loader_workers': 3, 'decoded_cache_mb': 100}", "kd={'teacher_cache': {'enabled': True}}")
    distill = [j for j in jobs if j["rule"] == "distill"]
    caches = [j for j in jobs if j["rule"] == "teacher_cache"]
    assert distill and caches
    # A job's cores are its training threads (mini: 1) plus its loader processes.
    assert all((j["loader_workers"], j["decoded_cache_mb"], j["threads"]) == ("3", "100", 4) for j in distill)
    assert all((j["loader_workers"], j["threads"]) == ("3", 4) for j in caches)
    assert all("--workers 3 " in j["shell"] and "--decoded-cache-mb 100 " in j["shell"] for j in distill)
    assert all("--workers 3" in j["shell"] for j in caches)
