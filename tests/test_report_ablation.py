"""The omega x phi ablation table and the DVC metrics files."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ame.io import write_json
from ame.report.ablation import write_ablation
from ame.report.dvc_metrics import curves, runs_json
from ame.spec import Layout, load_preset, run_spec
from ame.spec.run import RSMSettings, ablation_variant

ROOT = Path(__file__).resolve().parents[1]
MINI = load_preset(ROOT / "config" / "mini.yaml")

PROVENANCE = {"git_sha": "x", "config_sha256": "0" * 64, "packages": {}, "teacher_sha256": None,
              "device": "cpu", "precision": "fp32"}


def _spec(omega, phi, seed):
    """The mini preset's ablation run at (omega, phi), as `ame.spec.run.ablation_specs` plans it."""
    trained = phi == "trained"
    rsm = RSMSettings(omega=float(omega), rank=MINI["rsm"]["rank"], trainable=trained)
    return run_spec(MINI, "base2new", "Digits", "16shot", "pkd_rsm", seed, variant=ablation_variant(omega, trained),
                    rsm=rsm)


def _run(root, omega, phi, seed, base, new, entropies, folder=None):
    """A finished ablation run (params.json, metrics.json, history.csv) in `folder` (default: where
    the layout puts it under `root`); returns the folder."""
    spec = _spec(omega, phi, seed)
    folder = folder or Path(Layout({**MINI, "results_root": str(root)}).run_dir(spec))
    folder.mkdir(parents=True)
    write_json(folder / "params.json", spec.to_dict())
    hm = 2 * base * new / (base + new)
    scores = {"base": base, "new": new, "hm": hm, "accuracy": None}
    (folder / "metrics.json").write_text(json.dumps({
        "dataset": "Digits", "task": "base2new", "setting": "16shot", "method": "pkd_rsm", "seed": seed,
        "selection": "best", **scores, "last": {**scores, "epoch": len(entropies)}, "best_epoch": 1,
        "provenance": PROVENANCE}))
    pd.DataFrame({"epoch": range(1, len(entropies) + 1), "lr": 0.1, "kd_loss": 1.0, "rsm_entropy": entropies,
                  "total_loss": 1.0, "base_acc": base}).to_csv(folder / "history.csv", index=False)
    return folder


def _check_table(table, md):
    assert len(table) == 2 and table["n_seeds"].tolist() == [1, 2]
    row = table[(table["omega"] == 50) & (table["phi"] == "trained")].iloc[0]
    assert row["base"] == pytest.approx(82.0) and row["new"] == pytest.approx(62.0)
    assert row["hm"] == pytest.approx(2 * 82 * 62 / 144)
    assert row["base_std"] == pytest.approx(2.0)
    assert row["collapsed_seeds"] == "1"
    assert row["h_last"] == pytest.approx((0.01 + 2.0) / 2)
    frozen = table[(table["omega"] == 0) & (table["phi"] == "frozen")].iloc[0]
    assert (frozen["base"], frozen["new"], frozen["collapsed_seeds"]) == (70.0, 50.0, "")
    assert "| Digits | 16shot | 50 | trained |" in md and "| Digits | 16shot | 0 | frozen |" in md


def test_ablation_rows_aggregate_seeds_and_flag_collapsed_entropy(tmp_path):
    runs = [_run(tmp_path, 50, "trained", 1, 80.0, 60.0, [3.2, 0.01]),   # collapsed: 0.01 < 1 % of 3.2
            _run(tmp_path, 50, "trained", 2, 84.0, 64.0, [3.2, 2.0]),
            _run(tmp_path, 0, "frozen", 1, 70.0, 50.0, [3.2, 3.2])]
    table = write_ablation(runs, tmp_path / "a.csv", tmp_path / "a.md")
    _check_table(table, (tmp_path / "a.md").read_text())


def test_omega_and_phi_come_from_each_runs_params_json_not_its_folder_name(tmp_path):
    # Folder names that say nothing about ω or φ (and one that says the opposite) give the same table.
    runs = [_run(tmp_path, 50, "trained", 1, 80.0, 60.0, [3.2, 0.01], folder=tmp_path / "run_a"),
            _run(tmp_path, 50, "trained", 2, 84.0, 64.0, [3.2, 2.0], folder=tmp_path / "omega0_frozen" / "seed2"),
            _run(tmp_path, 0, "frozen", 1, 70.0, 50.0, [3.2, 3.2], folder=tmp_path / "x" / "omega50_trained")]
    table = write_ablation(runs, tmp_path / "a.csv", tmp_path / "a.md")
    _check_table(table, (tmp_path / "a.md").read_text())
    assert pd.read_csv(tmp_path / "a.csv")[["omega", "phi", "n_seeds"]].values.tolist() == [[0.0, "frozen", 1],
                                                                                            [50.0, "trained", 2]]


def test_ablation_reads_only_the_given_runs(tmp_path):
    runs = [_run(tmp_path, 50, "trained", 1, 80.0, 60.0, [3.2, 0.01]),
            _run(tmp_path, 50, "trained", 2, 84.0, 64.0, [3.2, 2.0]),
            _run(tmp_path, 0, "frozen", 1, 70.0, 50.0, [3.2, 3.2])]
    _run(tmp_path, 10, "trained", 1, 10.0, 10.0, [3.2, 3.0])  # on disk, not planned
    table = write_ablation(runs, tmp_path / "a.csv", tmp_path / "a.md")
    assert 10.0 not in table["omega"].tolist()
    _check_table(table, (tmp_path / "a.md").read_text())


def test_ablation_without_runs_or_with_a_missing_run_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="no runs to report"):
        write_ablation([], tmp_path / "a.csv", tmp_path / "a.md")
    missing = Path(Layout({**MINI, "results_root": str(tmp_path)}).run_dir(_spec(50, "trained", 1)))
    with pytest.raises(FileNotFoundError, match=rf"{missing / 'params.json'}: file not found; run the pipeline"):
        write_ablation([missing], tmp_path / "a.csv", tmp_path / "a.md")
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "a.md").exists()


def test_ablation_refuses_a_run_without_rsm_settings(tmp_path):
    run = _run(tmp_path, 50, "trained", 1, 80.0, 60.0, [3.2, 0.01])
    spec = run_spec(MINI, "base2new", "Digits", "16shot", "pkd", 1)
    other = tmp_path / "pkd" / "seed1"
    other.mkdir(parents=True)
    write_json(other / "params.json", spec.to_dict())
    (other / "metrics.json").write_text((run / "metrics.json").read_text().replace('"pkd_rsm"', '"pkd"'))
    with pytest.raises(ValueError, match=rf"{other}: not an RSM run"):
        write_ablation([run, other], tmp_path / "a.csv", tmp_path / "a.md")


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
