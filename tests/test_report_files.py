"""collect_runs over the given run folders (params.json + metrics.json each), and build_report end to
end on synthetic runs: the report is a function of the runs it is given, never of what else is on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ame.io import write_json
from ame.report import build_report, collect_runs
from ame.report import plan
from ame.spec import load_preset, run_spec

ROOT = Path(__file__).resolve().parents[1]
MINI = load_preset(ROOT / "config" / "mini.yaml")

PNG = b"\x89PNG\r\n\x1a\n"
SIGNATURES = {".png": PNG, ".pdf": b"%PDF"}
PROVENANCE = {"git_sha": "0" * 40, "config_sha256": "a" * 64, "packages": {"torch": "2"},
              "teacher_sha256": None, "device": "cpu", "precision": "fp32"}


def write_run(root, dataset, method, setting, seed, base=None, new=None, accuracy=None,
              task="base2new", embeddings=True, n=40, params=True):
    """A valid run folder (params.json of the mini preset's run, metrics.json, history.csv,
    embeddings.npz) under root/task/…/seed<seed>."""
    d = root / task / dataset / setting / method / f"seed{seed}"
    d.mkdir(parents=True)
    if params:
        write_json(d / "params.json", run_spec(MINI, task, dataset, setting, method, seed).to_dict())
    trained = method != "zeroshot"
    if task == "base2new":
        scores = {"base": base, "new": new, "hm": 2 * base * new / (base + new), "accuracy": None}
        last = {"base": base - 1, "new": new - 1, "hm": 2 * (base - 1) * (new - 1) / (base + new - 2),
                "accuracy": None}
    else:
        scores = {"base": None, "new": None, "hm": None, "accuracy": accuracy}
        last = {"base": None, "new": None, "hm": None, "accuracy": accuracy - 1}
    metrics = {"dataset": dataset, "task": task, "setting": setting, "method": method, "seed": seed,
               "selection": "best", **scores, "last": {**last, "epoch": 5 if trained else None},
               "best_epoch": 4 if trained else None, "provenance": PROVENANCE}
    (d / "metrics.json").write_text(json.dumps(metrics))
    if trained:
        pd.DataFrame({"epoch": range(1, 6), "lr": 0.005, "kd_loss": np.linspace(2, 1, 5),
                      "rsm_entropy": np.linspace(3, 0.1, 5), "total_loss": 1.0,
                      "base_acc": np.linspace(50, base, 5)}).to_csv(d / "history.csv", index=False)
    if trained and embeddings:
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % 4
        feats = rng.normal(size=(n, 8)).astype("float32")
        feats[:, :4] += 3 * np.eye(4)[labels]
        feats[:, 7] = 1.0                                   # a constant feature: F is NaN there
        np.savez(d / "embeddings.npz", features=feats, labels=labels,
                 classnames=np.array(["cat", "dog", "cow", "hen"]))
    return d


DATASETS = ("OxfordPets", "Digits")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """results/mini/runs with OxfordPets and Digits × pkd/pkd_rsm (4shot, 16shot, full) and
    zeroshot, seeds 1–3; no cross-dataset runs."""
    root = tmp_path_factory.mktemp("results") / "mini" / "runs"
    for ds in DATASETS:
        for seed in (1, 2, 3):
            write_run(root, ds, "zeroshot", "zeroshot", seed, 60, 62, embeddings=False)
            for setting, k in (("4shot", 0), ("16shot", 2), ("full", 4)):
                write_run(root, ds, "pkd", setting, seed, 78 + k + seed, 70 + seed)
                write_run(root, ds, "pkd_rsm", setting, seed, 79 + k + seed, 71 + seed)
    return root


def run_dirs_of(root, datasets=DATASETS) -> list[Path]:
    """The run folders of `datasets` under `root` (what a preset planning those datasets passes)."""
    return sorted(p.parent for p in root.glob("*/*/*/*/seed*/metrics.json") if p.parts[-5] in datasets)


@pytest.fixture(scope="module")
def run_dirs(runs_root):
    dirs = run_dirs_of(runs_root)
    assert len(dirs) == 2 * 3 * (1 + 2 * 3)
    return dirs


# ---------------------------------------------------------------------------------- collect

def test_collect_runs_returns_one_validated_row_per_run_folder(run_dirs):
    runs = collect_runs(run_dirs)
    assert len(runs) == 2 * 3 * (1 + 2 * 3)
    for col in ("dataset", "task", "setting", "method", "seed", "base", "new", "hm", "accuracy",
                "best_epoch", "last_base", "last_new", "last_hm", "last_accuracy", "selection", "run_dir"):
        assert col in runs.columns
    assert sorted(runs["run_dir"]) == sorted(map(str, run_dirs))
    pets = runs[(runs["dataset"] == "OxfordPets") & (runs["method"] == "pkd")
                & (runs["setting"] == "16shot") & (runs["seed"] == 1)].iloc[0]
    assert (pets["base"], pets["last_base"], pets["best_epoch"]) == (81, 80, 4)
    assert runs["accuracy"].isna().all()


def test_collect_runs_reads_each_runs_settings_from_its_params_json(run_dirs):
    runs = collect_runs(run_dirs)
    rsm = runs[(runs["method"] == "pkd_rsm") & (runs["setting"] == "16shot")]
    assert (rsm["omega"] == MINI["rsm"]["omega"]).all() and rsm["rsm_trainable"].eq(True).all()
    assert (rsm["rsm_rank"] == MINI["rsm"]["rank"]).all() and (rsm["prompt_depth"] == 4).all()
    assert (rsm["epochs"] == MINI["optim"]["epochs"]).all() and (rsm["variant"] == "").all()
    pkd = runs[runs["method"] == "pkd"]
    assert pkd["omega"].isna().all() and pkd["rsm_trainable"].isna().all()
    assert (pkd.loc[pkd["setting"] == "full", "epochs"] == MINI["optim"]["full_epochs"]["default"]).all()
    assert (pkd["kd_weight"] == 1000.0).all() and (pkd["optimizer"] == "adamw").all()
    zeroshot = runs[runs["method"] == "zeroshot"]
    assert zeroshot["kd_weight"].isna().all() and zeroshot["epochs"].isna().all()


def test_collect_runs_reads_only_the_given_folders(runs_root, run_dirs):
    digits = run_dirs_of(runs_root, ("Digits",))
    runs = collect_runs(digits)
    assert len(runs) == len(digits) == 3 * (1 + 2 * 3) and set(runs["dataset"]) == {"Digits"}
    one = collect_runs(digits[:1])
    assert len(one) == 1 and one["run_dir"].iloc[0] == str(digits[0])


def test_malformed_metrics_error_names_the_file(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70)
    m = json.loads((d / "metrics.json").read_text())
    m["base"] = "high"
    (d / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=rf"{d / 'metrics.json'}.*base"):
        collect_runs([d])


def test_unparsable_metrics_error_names_the_file(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70)
    (d / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=str(d / "metrics.json")):
        collect_runs([d])


def test_no_runs_or_a_run_folder_without_its_files_says_which_file_and_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="no runs to report"):
        collect_runs([])
    bare = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70, params=False)
    with pytest.raises(FileNotFoundError, match=rf"{bare / 'params.json'}: file not found; run the pipeline"):
        collect_runs([bare])
    unfinished = write_run(tmp_path, "Digits", "pkd", "16shot", 2, 80, 70)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{unfinished / 'metrics.json'}: file not found; run the pipeline"):
        collect_runs([unfinished])
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'nope' / 'params.json'}: file not found"):
        collect_runs([tmp_path / "nope"])


def test_params_json_that_disagrees_with_metrics_json_is_an_error_naming_the_file(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70)
    write_json(d / "params.json", run_spec(MINI, "base2new", "Digits", "16shot", "pkd_rsm", 1).to_dict())
    with pytest.raises(ValueError, match=rf"{d / 'metrics.json'}: method 'pkd' disagrees with params\.json's "
                                         r"'pkd_rsm'.*delete it and rerun"):
        collect_runs([d])
    write_json(d / "params.json", run_spec(MINI, "base2new", "Digits", "16shot", "pkd", 2).to_dict())
    with pytest.raises(ValueError, match=rf"{d / 'metrics.json'}: seed 1 disagrees with params\.json's 2"):
        collect_runs([d])


def test_malformed_params_json_error_names_the_file_and_the_key(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70)
    params = json.loads((d / "params.json").read_text())
    del params["optim"]["lr"]
    (d / "params.json").write_text(json.dumps(params))
    with pytest.raises(ValueError, match=rf"{d / 'params.json'}: key 'optim\.lr' missing"):
        collect_runs([d])


def test_two_runs_claiming_the_same_cell_and_seed_are_an_error(tmp_path):
    a = write_run(tmp_path / "a", "Digits", "pkd", "16shot", 1, 80, 70)
    b = write_run(tmp_path / "b", "Digits", "pkd", "16shot", 1, 81, 70)
    with pytest.raises(ValueError, match="same") as err:
        collect_runs([a, b])
    assert str(a) in str(err.value) and str(b) in str(err.value)


# ---------------------------------------------------------------------------------- build_report

def _evaluation(top1, classes="all"):
    return {"model": "run", "dataset": "Digits", "classes": classes, "n_classes": 10, "n_images": 300,
            "top1": top1, "top5": 99.0, "mean_per_class_recall": top1 - 1}


def test_a_cross_dataset_runs_accuracy_is_read_from_its_evaluation_and_a_stale_one_is_refused(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, base=60, accuracy=61.2345, task="xd")
    write_json(d / "evaluation.json", _evaluation(61.23449))
    assert collect_runs([d])["accuracy"].item() == 61.23449  # `ame evaluate`'s number, the rule's file
    write_json(d / "evaluation.json", _evaluation(70.0))
    with pytest.raises(ValueError, match=r"evaluation.json: top-1 70.0000 on all classes, but the run scored "
                                         r"61.2345 on all: a stale evaluation"):
        collect_runs([d])


@pytest.fixture(scope="module")
def report(runs_root, run_dirs):
    out = runs_root.parent
    return out, build_report(run_dirs, out / "tables", out / "figures", preset="mini")


def test_build_report_writes_tables_summary_and_figures(report):
    out, result = report
    names = {p.name for p in result["written"]}
    assert {"table1.csv", "table1.md", "table2.csv", "table2.md", "metrics_summary.json",
            "accuracy_vs_shots.png", "tsne_OxfordPets.png", "fscore_OxfordPets.png",
            "fscore_Digits.png", "tsne_Digits.png", "training_curves_Digits.png"} <= names
    for p in result["written"]:
        assert p.is_file() and p.stat().st_size > 0
    for p in result["figures"]:
        assert p.read_bytes().startswith(SIGNATURES[p.suffix]), p


def test_the_report_draws_exactly_the_figures_the_plan_declares_each_as_png_and_pdf(runs_root, report):
    """The report rule declares plan.figure_names(plan.figure_datasets(grid cells)) as its outputs."""
    cells = {tuple(p.parts[-5:-1]) for p in runs_root.glob("*/*/*/*/seed*") if p.parts[-2] != "zeroshot"}
    declared = plan.figure_names(plan.figure_datasets(cells))
    out, result = report
    assert sorted(p.name for p in result["figures"]) == sorted(declared)
    captions = plan.figure_caption_names(plan.figure_datasets(cells))
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(declared + captions)
    stems = {p.stem for p in result["figures"]}
    assert stems == {"accuracy_vs_shots"} | {f"{kind}_{ds}" for ds in DATASETS
                                             for kind in ("tsne", "fscore", "training_curves")}
    assert all({p.name for p in result["figures"] if p.stem == stem} == {f"{stem}.png", f"{stem}.pdf"}
               for stem in stems)


def test_every_figure_has_one_caption_shared_by_its_png_and_pdf(report):
    _, result = report
    captions = result["captions"]
    assert list(captions) == [str(p) for p in result["figures"]]
    json.dumps(result, default=str)                                   # `ame report` prints it
    for p, caption in captions.items():
        assert caption.endswith(".") and caption == captions[str(Path(p).with_suffix(".pdf"))]
    by_stem = {Path(p).stem: c for p, c in captions.items()}
    assert by_stem["accuracy_vs_shots"].startswith("Fig. 5:") and "PromptKD, PKD + RSM" in by_stem["accuracy_vs_shots"]
    assert "4 shots, 16 shots, full" in by_stem["tsne_OxfordPets"] and "50 principal components" in \
        by_stem["tsne_OxfordPets"] and "at most 2000 images" in by_stem["tsne_OxfordPets"]
    assert by_stem["fscore_Digits"].startswith("Fig. 3:") and "at 16 shots, seed 1" in by_stem["fscore_Digits"]


def test_every_page_and_figure_of_the_html_report_gets_its_caption_file(report):
    out, result = report
    for page in ("table1", "table2", "rsm_effect", "summary"):
        text = (out / "tables" / f"{page}.caption.rst").read_text()
        assert text.startswith("{% raw %}") and len(text) > 80, page
    assert "Preset `mini`".replace("`", "\\`") in (out / "tables" / "table1.caption.rst").read_text()
    for png in (p for p in result["figures"] if p.suffix == ".png"):
        caption = png.with_name(png.stem + ".caption.rst").read_text()
        assert result["captions"][str(png)].split(":")[0] in caption, png


def test_the_report_writes_the_headline_beside_the_tables(report):
    out, result = report
    readme = out / "README.md"
    assert readme in result["written"]
    assert readme.read_text().startswith("# Results of preset `mini`") and "+2.79" in readme.read_text()


def test_fig3_and_the_training_curves_show_16_shots_else_the_largest_k_shot_setting():
    assert plan.headline_setting(["4shot", "16shot", "30shot", "full"]) == "16shot"
    assert plan.headline_setting(["full", "4shot", "30shot"]) == "30shot"
    assert plan.headline_setting(["full"]) == "full"


def test_named_figure_datasets_restrict_those_figures(run_dirs, tmp_path):
    result = build_report(run_dirs, tmp_path / "t", tmp_path / "f", "mini", tsne_dataset="Digits",
                          heatmap_datasets=["OxfordPets"])
    stems = {p.stem for p in result["figures"]}
    assert stems == {"accuracy_vs_shots", "tsne_Digits", "training_curves_Digits", "fscore_OxfordPets"}


def test_build_report_tables_hold_the_aggregated_runs(report):
    out, _ = report
    t1 = pd.read_csv(out / "tables" / "table1.csv").set_index(["dataset", "method", "setting", "metric"]).sort_index()
    pkd16 = t1.loc[("OxfordPets", "pkd", "16shot")]
    assert (pkd16.loc["base", "mean"], pkd16.loc["new", "mean"], pkd16.loc["hm", "paper"]) == (82.0, 72.0, 91.32)
    assert t1.loc["Digits", "paper"].isna().all()
    assert "No cross-dataset (xd) runs were found" in (out / "tables" / "table2.md").read_text()


def test_metrics_summary_nests_task_dataset_method_setting(report):
    out, result = report
    summary = json.loads(result["summary"].read_text())
    assert summary["base2new"]["OxfordPets"]["pkd"]["16shot"] == {
        "base": 82.0, "new": 72.0, "hm": round(2 * 82 * 72 / 154, 2)}
    assert "Average" in summary["base2new"] and summary["xd"] == {}


def test_build_report_rejects_a_tsne_dataset_without_paired_embeddings_before_writing(run_dirs, tmp_path):
    with pytest.raises(ValueError, match="MNIST"):
        build_report(run_dirs, tmp_path / "t", tmp_path / "f", "mini", tsne_dataset="MNIST")
    assert not (tmp_path / "t").exists() and not (tmp_path / "f").exists()


def test_the_report_is_a_function_of_the_given_runs_only(runs_root, tmp_path):
    """Runs of OxfordPets and Digits are on disk; given Digits' run folders only, no table, figure or
    summary mentions OxfordPets."""
    digits = run_dirs_of(runs_root, ("Digits",))
    result = build_report(digits, tmp_path / "tables", tmp_path / "figures", preset="mini")
    t1 = pd.read_csv(tmp_path / "tables" / "table1.csv")
    datasets = set(t1["dataset"])
    assert "Digits" in datasets and "OxfordPets" not in datasets
    pkd16 = t1[(t1["dataset"] == "Digits") & (t1["method"] == "pkd") & (t1["setting"] == "16shot")]
    assert dict(zip(pkd16["metric"], pkd16["mean"]))["base"] == 82.0
    assert dict(zip(pkd16["metric"], pkd16["mean"]))["new"] == 72.0
    for name in ("table1.md", "table1.csv", "table1.tex", "table2.md", "table2.csv", "rsm_effect.csv",
                 "rsm_effect.md", "summary.html"):
        assert "OxfordPets" not in (tmp_path / "tables" / name).read_text(), name
    assert {p.name for p in result["figures"]} >= {"accuracy_vs_shots.png", "tsne_Digits.png", "fscore_Digits.png"}
    assert not any("OxfordPets" in p.name for p in result["written"])
    summary = json.loads(result["summary"].read_text())
    assert "OxfordPets" not in summary["base2new"] and "Digits" in summary["base2new"]
    assert summary["base2new"]["Digits"]["pkd"]["16shot"] == {"base": 82.0, "new": 72.0,
                                                              "hm": round(2 * 82 * 72 / 154, 2)}
