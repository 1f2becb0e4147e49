"""collect_runs over run folders, and build_report end to end on synthetic runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ame.report import build_report, collect_runs

PNG = b"\x89PNG\r\n\x1a\n"
PROVENANCE = {"git_sha": "0" * 40, "config_sha256": "a" * 64, "packages": {"torch": "2"},
              "teacher_sha256": None, "device": "cpu", "precision": "fp32"}


def write_run(root, dataset, method, setting, seed, base=None, new=None, accuracy=None,
              task="base2new", embeddings=True, n=40):
    """A valid run folder (metrics.json, history.csv, embeddings.npz) under root/task/…/seed<seed>."""
    d = root / task / dataset / setting / method / f"seed{seed}"
    d.mkdir(parents=True)
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


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """results/runs/mini with OxfordPets and Digits × pkd/pkd_rsm (4shot, 16shot, full) and
    zeroshot, seeds 1–3; no cross-dataset runs."""
    root = tmp_path_factory.mktemp("results") / "runs" / "mini"
    for ds in ("OxfordPets", "Digits"):
        for seed in (1, 2, 3):
            write_run(root, ds, "zeroshot", "zeroshot", seed, 60, 62, embeddings=False)
            for setting, k in (("4shot", 0), ("16shot", 2), ("full", 4)):
                write_run(root, ds, "pkd", setting, seed, 78 + k + seed, 70 + seed)
                write_run(root, ds, "pkd_rsm", setting, seed, 79 + k + seed, 71 + seed)
    return root


# ---------------------------------------------------------------------------------- collect

def test_collect_runs_returns_one_validated_row_per_metrics_file(runs_root):
    runs = collect_runs(runs_root)
    assert len(runs) == 2 * 3 * (1 + 2 * 3)
    for col in ("dataset", "task", "setting", "method", "seed", "base", "new", "hm", "accuracy",
                "best_epoch", "last_base", "last_new", "last_hm", "last_accuracy", "selection"):
        assert col in runs.columns
    pets = runs[(runs["dataset"] == "OxfordPets") & (runs["method"] == "pkd")
                & (runs["setting"] == "16shot") & (runs["seed"] == 1)].iloc[0]
    assert (pets["base"], pets["last_base"], pets["best_epoch"]) == (81, 80, 4)
    assert runs["accuracy"].isna().all()


def test_malformed_metrics_error_names_the_file(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70)
    m = json.loads((d / "metrics.json").read_text())
    m["base"] = "high"
    (d / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=rf"{d / 'metrics.json'}.*base"):
        collect_runs(tmp_path)


def test_unparsable_metrics_error_names_the_file(tmp_path):
    d = write_run(tmp_path, "Digits", "pkd", "16shot", 1, 80, 70)
    (d / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=str(d / "metrics.json")):
        collect_runs(tmp_path)


def test_empty_or_missing_run_folder_says_which_and_to_run_the_pipeline(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}.*run the pipeline first"):
        collect_runs(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'nope'}.*run the pipeline first"):
        collect_runs(tmp_path / "nope")


def test_two_runs_claiming_the_same_cell_and_seed_are_an_error(tmp_path):
    write_run(tmp_path / "a", "Digits", "pkd", "16shot", 1, 80, 70)
    write_run(tmp_path / "b", "Digits", "pkd", "16shot", 1, 81, 70)
    with pytest.raises(ValueError, match="same"):
        collect_runs(tmp_path)


# ---------------------------------------------------------------------------------- build_report

@pytest.fixture(scope="module")
def report(runs_root):
    out = runs_root.parent.parent
    return out, build_report(runs_root.parent, out / "tables", out / "figures", preset="mini")


def test_build_report_writes_tables_summary_and_figures(report):
    out, result = report
    names = {p.name for p in result["written"]}
    assert {"table1.csv", "table1.md", "table2.csv", "table2.md", "metrics_summary.json",
            "accuracy_vs_shots.png", "tsne_OxfordPets.png", "fscore_OxfordPets.png",
            "fscore_Digits.png"} <= names
    for p in result["written"]:
        assert p.is_file() and p.stat().st_size > 0
    for p in result["figures"]:
        assert p.read_bytes().startswith(PNG)


def test_build_report_tables_hold_the_aggregated_runs(report):
    out, _ = report
    t1 = pd.read_csv(out / "tables" / "table1.csv")
    pkd16 = t1[(t1["dataset"] == "OxfordPets") & (t1["method"] == "pkd") & (t1["setting"] == "16shot")].iloc[0]
    assert (pkd16["base"], pkd16["new"], pkd16["paper_hm"]) == (82.0, 72.0, 91.32)
    assert pd.isna(t1.loc[t1["dataset"] == "Digits", "paper_hm"]).all()
    assert "No cross-dataset (xd) runs were found" in (out / "tables" / "table2.md").read_text()


def test_metrics_summary_nests_task_dataset_method_setting(report):
    out, result = report
    summary = json.loads(result["summary"].read_text())
    assert summary["base2new"]["OxfordPets"]["pkd"]["16shot"] == {
        "base": 82.0, "new": 72.0, "hm": round(2 * 82 * 72 / 154, 2)}
    assert "Average" in summary["base2new"] and summary["xd"] == {}


def test_build_report_rejects_a_tsne_dataset_without_paired_embeddings_before_writing(runs_root, tmp_path):
    with pytest.raises(ValueError, match="MNIST"):
        build_report(runs_root, tmp_path / "t", tmp_path / "f", "mini", tsne_dataset="MNIST")
    assert not (tmp_path / "t").exists() and not (tmp_path / "f").exists()
