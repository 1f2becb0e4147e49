"""The omega x phi ablation table and the DVC metrics files."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ame.io import write_json
from ame.report.ablation import ABLATION_FIGURES, ablation_plot, ablation_table, collect_ablation, write_ablation
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


def _four_runs(tmp_path):
    """ω ∈ {0, 50} × φ ∈ {trained, frozen}; at ω = 0 both φ give the same scores (RSM is off)."""
    return [_run(tmp_path, 0, "trained", 1, 70.0, 50.0, [3.2, 3.2]),
            _run(tmp_path, 0, "frozen", 1, 70.0, 50.0, [3.2, 3.2]),
            _run(tmp_path, 50, "trained", 1, 80.0, 60.0, [3.2, 0.01]),
            _run(tmp_path, 50, "trained", 2, 84.0, 64.0, [3.2, 2.0]),
            _run(tmp_path, 50, "frozen", 1, 78.0, 58.0, [3.2, 1.0])]


def test_the_ablation_figure_is_written_beside_the_table_as_png_and_pdf_with_stable_bytes(tmp_path):
    runs = _four_runs(tmp_path)
    write_ablation(runs, tmp_path / "a" / "ablation.csv", tmp_path / "a" / "ablation.md")
    first = {name: (tmp_path / "a" / name).read_bytes() for name in ABLATION_FIGURES}
    assert ABLATION_FIGURES == ("ablation.png", "ablation.pdf")
    assert first["ablation.png"].startswith(b"\x89PNG") and first["ablation.pdf"].startswith(b"%PDF")
    assert b"CreationDate" not in first["ablation.pdf"]
    assert "](ablation.png)" in (tmp_path / "a" / "ablation.md").read_text()
    write_ablation(runs, tmp_path / "b" / "ablation.csv", tmp_path / "b" / "ablation.md")
    assert {name: (tmp_path / "b" / name).read_bytes() for name in ABLATION_FIGURES} == first


def test_the_ablation_figure_plots_hm_and_final_entropy_against_omega_one_line_per_phi(tmp_path):
    table = ablation_table(collect_ablation(_four_runs(tmp_path)))
    fig = ablation_plot(table, "PKD + RSM")
    hm, entropy = fig.axes
    assert "HM" in hm.get_title() and "H(M)" in entropy.get_title()
    assert hm.get_ylabel() == "HM (%)" and entropy.get_ylabel() == "H(M) (nats)"
    for ax in (hm, entropy):
        assert ax.get_xlabel().startswith("ω") and [t.get_text() for t in ax.get_xticklabels()] == ["0", "50"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["φ trained", "φ frozen"]
    lines = {c.get_label(): c.lines[0] for c in entropy.containers}
    trained, frozen = lines["φ trained"], lines["φ frozen"]
    assert list(trained.get_ydata()) == pytest.approx([3.2, (0.01 + 2.0) / 2])
    # equal at ω = 0, yet drawn apart: another marker, line style and a slight horizontal offset
    assert trained.get_ydata()[0] == frozen.get_ydata()[0]
    assert trained.get_marker() != frozen.get_marker() and trained.get_linestyle() != frozen.get_linestyle()
    assert 0 < frozen.get_xdata()[0] - trained.get_xdata()[0] < 0.5
    assert "PKD + RSM" in fig.get_suptitle()


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
