"""The paper path end to end, offline, at the real architectures: `config/paper-smoke.yaml` (the
paper preset with only its size changed) run by Snakemake from a fresh clone, as `make paper-smoke`
runs it, on the inputs `tests/paper_smoke.py` writes.

What it runs: the paper preset's rules, `ame` steps and models — DTD and ImageNet prepared by the
real converters (CoOp's split file; ImageNet's manual layout) under the AME_TEST_SMALL_SPLITS
switch (4 classes each), ViT-B-16-quickgelu and ViT-L-14-quickgelu backbones from local weights
files (their sha256 in the cards), PromptKD's base-to-new and cross-dataset teachers imported from
checkpoints in the release's layout and key names, text features, teacher checks, the four
base-to-new methods with 9-layer deep prompts and the two cross-dataset ones with 3 (the paper's
optimiser, 224 px, fp32 on the CPU), zero-shot, and the report — and checks every file contract on
the way.

What it leaves out: more than one seed, shots setting, epoch and cross-dataset target; the "full"
setting; the ω × φ ablation target; the teacher cache (off in the paper preset); downloads (the
paper's datasets, weights and teachers come from the network or by hand; their download code has
its own tests against local servers); and anything numerical: the weights are random, so
accuracies are only checked to be finite percentages.
"""

import json
import math
import time
from pathlib import Path

import pytest

from ame import contracts
from ame.io import read_json, sha256_file
from tests.workspace import ROOT, job_counts, run, tool_env

METHODS = ("pkd", "pkd_rsm", "simple", "simple_rsm")


def make_recipe(makefile: Path, target: str) -> list[str]:
    """The shell lines of `target`'s recipe, as written in the Makefile."""
    lines = makefile.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line[1:])
    return recipe


@pytest.fixture(scope="module")
def paper_smoke(tmp_path_factory):
    """A fresh clone after the commands of `make paper-smoke` (its recipe, read from the Makefile;
    the environment is this one): (clone, Snakemake's output, seconds)."""
    work = tmp_path_factory.mktemp("paper-smoke") / "ame"
    run(["git", "clone", "-q", str(ROOT), str(work)], ROOT)
    recipe = make_recipe(work / "Makefile", "paper-smoke")
    assert len(recipe) == 2 and recipe[1].startswith("AME_TEST_SMALL_SPLITS=1 snakemake"), recipe
    run(["bash", "-c", recipe[0]], work)
    started = time.time()
    out = run(["bash", "-c", recipe[1].replace("$(CORES)", "2")], work, timeout=3600)
    return work, out, time.time() - started


def test_the_paper_presets_whole_dag_runs_offline_at_real_shapes(paper_smoke):
    work, out, seconds = paper_smoke
    print(f"paper-smoke DAG: {seconds:.0f} s")
    counts = job_counts(out)
    assert (counts["distill"], counts["teacher"], counts["backbone_card"], counts["prepare_dataset"]) == (6, 2, 2, 2)
    assert "backbone " not in out.replace("backbone_card", "")  # nothing is pre-trained: the weights are files
    # A second run finds everything up to date.
    again = run(["snakemake", "-n", "all", "--config", "preset=paper-smoke"], work,
                env=tool_env(AME_TEST_SMALL_SPLITS="1"))
    assert "Nothing to be done" in again


def test_dtd_and_imagenet_went_through_the_real_converters(paper_smoke):
    work, _, _ = paper_smoke
    split = read_json(work / "smoke" / "data" / "DTD" / "split.json")
    contracts.validate(split, contracts.SPLIT, where="split.json")
    assert split["dataset"] == "DTD" and split["classnames"] == ["banded", "blotchy", "braided", "bubbly"]
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (16, 4, 8)
    imagenet = read_json(work / "smoke" / "data" / "ImageNet" / "split.json")
    contracts.validate(imagenet, contracts.SPLIT, where="split.json")
    assert imagenet["classnames"] == ["tench", "goldfish", "great white shark", "tiger shark"]
    assert (len(imagenet["train"]), len(imagenet["val"]), len(imagenet["test"])) == (16, 0, 8)


def test_backbone_cards_record_the_local_files_and_their_checksums(paper_smoke):
    work, _, _ = paper_smoke
    models = work / "results" / "paper-smoke" / "models"
    for role, arch in (("student", "ViT-B-16-quickgelu"), ("teacher", "ViT-L-14-quickgelu")):
        card = read_json(models / "backbone" / f"{role}.json")
        weights = work / "smoke" / "weights" / f"{arch}.safetensors"
        assert (card["arch"], card["weights"], card["file"]) == (arch, "file", str(weights))
        assert card["sha256"] == sha256_file(weights)
        assert not (models / "backbone" / f"{role}.pt").exists()  # no placeholder weights file


@pytest.mark.parametrize("task, dataset, release_file", [
    ("base2new", "DTD", "DescribableTextures/VLPromptLearner/model-best.pth.tar"),
    ("xd", "ImageNet", "ImageNet-xd/VLPromptLearner_large/model.pth.tar-20"),
])
def test_the_teachers_were_imported_from_the_release_layout_and_checked(paper_smoke, task, dataset, release_file):
    work, _, _ = paper_smoke
    models = work / "results" / "paper-smoke" / "models"
    card = read_json(models / "teacher" / task / f"{dataset}.json")
    checkpoint = work / "smoke" / "teacher_model" / release_file
    assert card["format"] == "promptkd" and card["arch"] == "ViT-L-14-quickgelu"
    assert work / card["source"]["path"] == checkpoint and card["source"]["sha256"] == sha256_file(checkpoint)
    assert card["conversion"]["unknown_skipped"] == []
    check = read_json(models / "teacher_check" / task / f"{dataset}.json")
    contracts.validate(check, contracts.TEACHER_CHECK, where="teacher_check")
    assert check["n_test"] == 8 and check["n_classes"] == 4


def test_every_run_has_the_paper_settings_and_its_file_contracts(paper_smoke):
    work, _, _ = paper_smoke
    runs = work / "results" / "paper-smoke" / "runs" / "base2new" / "DTD"
    for method in METHODS:
        folder = runs / "4shot" / method / "seed1"
        params = read_json(folder / "params.json")
        metrics = read_json(folder / "metrics.json")
        contracts.validate(metrics, contracts.METRICS, where=str(folder))
        assert (params["student_arch"], params["teacher_arch"]) == ("ViT-B-16-quickgelu", "ViT-L-14-quickgelu")
        assert params["augment"]["image_size"] == 224 and params["precision"] == "fp32"
        assert params["optim"].get("name", "sgd") == "sgd" and params["optim"]["epochs"] == 1
        assert params["optim"]["lr"] == 0.005 and params["optim"]["batch_size"] == 8 and params["kd"]["weight"] == 200.0
        if method.startswith("pkd"):
            assert (params["prompts"]["depth"], params["prompts"]["tokens"]) == (9, 4)
        assert (params["rsm"] is not None) == method.endswith("_rsm")
        assert all(math.isfinite(metrics[k]) and 0 <= metrics[k] <= 100 for k in ("base", "new", "hm"))
        history = (folder / "history.csv").read_text().splitlines()
        assert history[0].split(",") == contracts.HISTORY_COLUMNS and len(history) == 2  # one epoch
        assert {p.name for p in folder.iterdir()} >= {"params.json", "metrics.json", "history.csv", "embeddings.npz",
                                                      "student.safetensors", "student.json"}
        if method == "pkd_rsm" and folder.parts[-5] == "base2new":
            # The real-size student loads from its folder alone, as PromptKD's at depth 9 with 4 tokens.
            config = read_json(folder / "student.json")
            assert (config["prompts"], config["projector"]) == ({"tokens": 4, "depth": 9},
                                                                {"in_dim": 512, "out_dim": 768})
    zero = read_json(runs / "zeroshot" / "zeroshot" / "seed0" / "metrics.json")
    contracts.validate(zero, contracts.METRICS, where="zeroshot")


def test_cross_dataset_runs_use_the_imagenet_teacher_on_the_target(paper_smoke):
    work, _, _ = paper_smoke
    for method in ("pkd", "pkd_rsm"):
        folder = work / "results" / "paper-smoke" / "runs" / "xd" / "DTD" / "4shot" / method / "seed1"
        params = read_json(folder / "params.json")
        metrics = contracts.validate(read_json(folder / "metrics.json"), contracts.METRICS, where=str(folder))
        assert (params["task"], params["dataset"], params["prompts"]["depth"], params["kd"]["weight"]) == \
            ("xd", "DTD", 3, 1000.0)
        assert metrics["provenance"]["teacher_sha256"] == read_json(
            work / "results" / "paper-smoke" / "models" / "teacher" / "xd" / "ImageNet.json")["sha256"]
        assert math.isfinite(metrics["accuracy"]) and 0 <= metrics["accuracy"] <= 100


def test_the_report_has_dtd_rows_in_both_tables(paper_smoke):
    work, _, _ = paper_smoke
    tables = work / "results" / "paper-smoke" / "tables"
    assert "DTD" in (tables / "table1.csv").read_text() and "DTD" in (tables / "table2.csv").read_text()
    summary = json.loads((work / "results" / "paper-smoke" / "metrics" / "summary.json").read_text())
    assert summary
    assert (work / "results" / "paper-smoke" / "figures" / "tsne_DTD.png").stat().st_size > 0
