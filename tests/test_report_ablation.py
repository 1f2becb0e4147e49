"""The omega x phi ablation table and the DVC metrics files."""

import json

import pandas as pd
import pytest

from ame.report.ablation import write_ablation
from ame.report.dvc_metrics import curves, runs_json

PROVENANCE = {"git_sha": "x", "config_sha256": "0" * 64, "packages": {}, "teacher_sha256": None,
              "device": "cpu", "precision": "fp32"}


def _run(root, omega, phi, seed, base, new, entropies):
    folder = root / "Digits" / "16shot" / f"omega{omega}_{phi}" / f"seed{seed}"
    folder.mkdir(parents=True)
    hm = 2 * base * new / (base + new)
    scores = {"base": base, "new": new, "hm": hm, "accuracy": None}
    (folder / "metrics.json").write_text(json.dumps({
        "dataset": "Digits", "task": "base2new", "setting": "16shot", "method": "pkd_rsm", "seed": seed,
        "selection": "best", **scores, "last": {**scores, "epoch": len(entropies)}, "best_epoch": 1,
        "provenance": PROVENANCE}))
    pd.DataFrame({"epoch": range(1, len(entropies) + 1), "lr": 0.1, "kd_loss": 1.0, "rsm_entropy": entropies,
                  "total_loss": 1.0, "base_acc": base}).to_csv(folder / "history.csv", index=False)


def test_ablation_rows_aggregate_seeds_and_flag_collapsed_entropy(tmp_path):
    _run(tmp_path, 50, "trained", 1, 80.0, 60.0, [3.2, 0.01])   # collapsed: 0.01 < 1 % of 3.2
    _run(tmp_path, 50, "trained", 2, 84.0, 64.0, [3.2, 2.0])
    _run(tmp_path, 0, "frozen", 1, 70.0, 50.0, [3.2, 3.2])
    table = write_ablation(tmp_path, tmp_path / "a.csv", tmp_path / "a.md")
    row = table[(table["omega"] == 50) & (table["phi"] == "trained")].iloc[0]
    assert row["base"] == pytest.approx(82.0) and row["new"] == pytest.approx(62.0)
    assert row["hm"] == pytest.approx(2 * 82 * 62 / 144)
    assert row["base_std"] == pytest.approx(2.0)
    assert row["collapsed_seeds"] == "1"
    assert row["h_last"] == pytest.approx((0.01 + 2.0) / 2)
    assert "| Digits | 16shot | 50 | trained |" in (tmp_path / "a.md").read_text()


def test_ablation_without_runs_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="snakemake ablation"):
        write_ablation(tmp_path, tmp_path / "a.csv", tmp_path / "a.md")


def test_runs_json_nests_task_dataset_setting_method_seed():
    runs = pd.DataFrame([{"task": "base2new", "dataset": "Digits", "setting": "4shot", "method": "pkd", "seed": 1,
                          "base": 80.123, "new": 60.0, "hm": 68.6, "accuracy": float("nan")}])
    assert runs_json(runs) == {"base2new": {"Digits": {"4shot": {"pkd": {"seed1": {"base": 80.12, "new": 60.0,
                                                                                   "hm": 68.6}}}}}}


def test_curves_average_seeds_per_epoch_with_one_column_per_method(tmp_path):
    rows = []
    for method, seed, acc in [("pkd", 1, 50.0), ("pkd", 2, 70.0), ("pkd_rsm", 1, 65.0)]:
        folder = tmp_path / f"{method}{seed}"
        folder.mkdir()
        pd.DataFrame({"epoch": [1, 2], "lr": 0.1, "kd_loss": 1.0, "rsm_entropy": None, "total_loss": 1.0,
                      "base_acc": [acc, acc + 1]}).to_csv(folder / "history.csv", index=False)
        rows.append({"task": "base2new", "dataset": "Digits", "setting": "4shot", "method": method, "seed": seed,
                     "run_dir": str(folder)})
    table = curves(pd.DataFrame(rows))["base2new_Digits_4shot_base_acc"]
    assert list(table.columns) == ["epoch", "pkd", "pkd_rsm"]
    assert table["pkd"].tolist() == [60.0, 61.0]
