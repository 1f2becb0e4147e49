"""A custom dataset in a preset goes through Snakemake: prepared from its definition, sampled, planned."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import yaml

from ame.data import load_split
from tests.remote_fixtures import jpeg
from tests.workspace import ROOT, job_counts, reduced_preset, run



@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("custom_project")
    shutil.copy(ROOT / "Snakefile", work / "Snakefile")
    shutil.copytree(ROOT / "workflow", work / "workflow")
    (work / "config").mkdir()
    for i, name in enumerate(["cat", "dog", "fox", "owl"]):
        (work / "pets" / name).mkdir(parents=True)
        for j in range(10):
            (work / "pets" / name / f"{j}.jpg").write_bytes(jpeg(i * 10 + j, size=16))
    cfg = reduced_preset()
    cfg.update(datasets=["MyPets"], custom_datasets={"MyPets": {"root": "pets"}})
    cfg["cross_dataset"].update(enabled=True, source="MNIST", targets=["MyPets"])
    cfg["ablation"].update(dataset="MyPets")
    (work / "config" / "ci.yaml").write_text(yaml.safe_dump(cfg))
    (work / "config" / "config.yaml").write_text("preset: ci\n")
    run(["snakemake", "--cores", "1", "data"], work)
    return work


def test_custom_dataset_is_prepared_in_place_and_sampled(project):
    split = load_split(project / "data" / "MyPets" / "split.json")
    assert split.classnames == ["cat", "dog", "fox", "owl"] and split.root.resolve() == project / "pets"
    assert sorted(p.name for p in (project / "data" / "MyPets" / "shots").iterdir()) == \
        ["16_seed1.json", "4_seed1.json", "4_seed2.json"]


def test_whole_grid_plans_with_the_custom_dataset_and_data_is_up_to_date(project):
    out = run(["snakemake", "-n", "--quiet", "rules", "all"], project)
    counts = job_counts(out)
    assert "prepare_dataset" not in counts and "sample_shots" not in counts
    assert counts["distill"] >= 3  # base2new pkd, pkd_rsm and the cross-dataset target MyPets


def test_editing_the_custom_entry_reprepares_only_that_dataset(project):
    preset = project / "config" / "ci.yaml"
    original = preset.read_text()
    cfg = yaml.safe_load(original)
    cfg["custom_datasets"]["MyPets"]["split"] = {"train": 0.6, "val": 0.1, "test": 0.3}
    preset.write_text(yaml.safe_dump(cfg))
    try:
        out = run(["snakemake", "-n", "-p", "data"], project)
    finally:
        preset.write_text(original)
    assert job_counts(out).get("prepare_dataset") == 1
    command = next(line for line in out.splitlines() if "ame prepare --dataset MyPets" in line)
    args = shlex.split(command[command.index("ame prepare"):])
    custom = json.loads(args[args.index("--custom") + 1])
    assert custom["split"] == {"train": 0.6, "val": 0.1, "test": 0.3} and custom["root"] == "pets"


def test_adding_removing_or_changing_an_image_reprepares_the_custom_dataset(project):
    assert "Nothing to be done" in run(["snakemake", "-n", "data"], project)
    added = project / "pets" / "cat" / "99.jpg"
    added.write_bytes(jpeg(99, size=16))
    try:
        out = run(["snakemake", "data", "-n", "--quiet", "rules"], project)
    finally:
        added.unlink()
    assert job_counts(out).get("prepare_dataset") == 1
    assert "Nothing to be done" in run(["snakemake", "-n", "data"], project)
    (project / "pets" / "owl" / "0.jpg").write_bytes(jpeg(77, size=16))  # same name, new content
    assert job_counts(run(["snakemake", "data", "-n", "--quiet", "rules"], project)).get("prepare_dataset") == 1
