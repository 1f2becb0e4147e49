"""Aggregation rules of Tables 1/2 (design §2), the paired RSM effect, the published columns."""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from ame.report import reference
from ame.report.collect import COLUMNS
from ame.spec.methods import METHODS
from ame.report.order import setting_key
from ame.report.render import table1_markdown
from ame.metrics import harmonic_mean
from ame.report.stats import bootstrap_ci, rsm_effect, select_scores
from ame.report.headline import headline_markdown
from ame.report.panels import tex_escape
from ame.report.render import effect_markdown
from ame.report.stats import aggregate
from ame.report.tables import table1, table2, with_paper_delta, write_tables
from tests import table_text


def hm(b, n):
    return 2 * b * n / (b + n)


def runs_frame(records) -> pd.DataFrame:
    """A frame shaped like `collect_runs` output from short records; last-epoch scores are the
    selected ones minus 1 unless given, and HM is the run's own 2BN/(B+N)."""
    rows = []
    for r in records:
        task = r.get("task", "base2new")
        zeroshot = r["method"] == "zeroshot"
        row = {"dataset": r["dataset"], "task": task, "setting": r.get("setting", "16shot"),
               "method": r["method"], "seed": r.get("seed", 1), "selection": r.get("selection", "best"),
               "best_epoch": None if zeroshot else 10, "last_epoch": None if zeroshot else 20,
               "run_dir": f"/runs/{r['dataset']}/{r['method']}/seed{r.get('seed', 1)}"}
        if task == "base2new":
            b, n = r["base"], r["new"]
            lb, ln = r.get("last_base", b - 1), r.get("last_new", n - 1)
            row |= {"base": b, "new": n, "hm": hm(b, n), "accuracy": math.nan,
                    "last_base": lb, "last_new": ln, "last_hm": hm(lb, ln), "last_accuracy": math.nan}
            if zeroshot:
                row |= {"last_base": math.nan, "last_new": math.nan, "last_hm": math.nan}
        else:
            a = r["accuracy"]
            row |= {"base": math.nan, "new": math.nan, "hm": math.nan, "accuracy": a,
                    "last_base": math.nan, "last_new": math.nan, "last_hm": math.nan,
                    "last_accuracy": r.get("last_accuracy", a - 1)}
        # The settings params.json would give: the paper's, unless a record says otherwise.
        rsm = METHODS[r["method"]].rsm
        row |= {"variant": "", "omega": r.get("omega", 50.0) if rsm else math.nan,
                "rsm_trainable": r.get("rsm_trainable", True) if rsm else None, "rsm_rank": 64 if rsm else None}
        if not zeroshot:
            row |= {"kd_weight": r.get("kd_weight", 1000.0), "epochs": r.get("epochs", 20),
                    "lr": r.get("lr", 0.005), "optimizer": r.get("optimizer", "sgd"),
                    "batch_size": r.get("batch_size", 8), "prompt_depth": 9 if METHODS[r["method"]].prompts else None}
        rows.append(row)
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for col in ("best_epoch", "last_epoch", "seed"):
        df[col] = df[col].astype("Int64")
    return df


def three_seeds(dataset="Digits", method="pkd", setting="16shot", base=(80, 82, 84), new=(70, 70, 76)):
    return [{"dataset": dataset, "method": method, "setting": setting, "seed": s, "base": b, "new": n}
            for s, b, n in zip((1, 2, 3), base, new)]


def row(table, dataset, method, setting="16shot", col="dataset"):
    hit = table[(table[col] == dataset) & (table["method"] == method) & (table["setting"] == setting)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


# ---------------------------------------------------------------------------------- cells

def test_cell_is_mean_base_and_new_over_seeds_with_hm_of_the_means_and_population_stds():
    t = table1(runs_frame(three_seeds()))
    r = row(t, "Digits", "pkd")
    assert r["base"] == pytest.approx(82.0)
    assert r["new"] == pytest.approx(72.0)
    assert r["hm"] == pytest.approx(2 * 82 * 72 / 154)
    assert r["base_std"] == pytest.approx(math.sqrt(8 / 3))          # 1.633, ddof=0
    assert r["new_std"] == pytest.approx(math.sqrt(8))               # 2.828
    assert r["hm_std"] == pytest.approx(np.std([hm(80, 70), hm(82, 70), hm(84, 76)]))
    assert r["n_seeds"] == 3 and r["selection"] == "best"


def test_harmonic_mean_of_zero_and_zero_is_zero_not_nan():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(82.0, 72.0) == pytest.approx(2 * 82 * 72 / 154)


# ---------------------------------------------------------------------------------- Average

def test_average_row_is_hm_of_mean_base_and_mean_new_not_mean_of_per_dataset_hms():
    recs = (three_seeds("Digits", base=(90, 92, 91), new=(10, 10, 10))
            + three_seeds("MNIST", base=(10, 10, 10), new=(90, 94, 92)))
    t = table1(runs_frame(recs))
    avg = row(t, "Average", "pkd")
    assert avg["base"] == pytest.approx((91 + 10) / 2)
    assert avg["new"] == pytest.approx((10 + 92) / 2)
    assert avg["hm"] == pytest.approx(hm(50.5, 51.0))                 # ≈ 50.75
    mean_of_hms = (row(t, "Digits", "pkd")["hm"] + row(t, "MNIST", "pkd")["hm"]) / 2
    assert mean_of_hms == pytest.approx(hm(91, 10), rel=1e-2)         # ≈ 18, far from 50.75
    assert avg["n_datasets"] == 2


def test_average_std_is_over_seeds_of_per_seed_averages():
    recs = (three_seeds("Digits", base=(90, 92, 91), new=(10, 10, 10))
            + three_seeds("MNIST", base=(10, 10, 10), new=(90, 94, 92)))
    avg = row(table1(runs_frame(recs)), "Average", "pkd")
    base_s = np.array([50.0, 51.0, 50.5])      # per seed: mean over the two datasets
    new_s = np.array([50.0, 52.0, 51.0])
    assert avg["base_std"] == pytest.approx(np.std(base_s))
    assert avg["new_std"] == pytest.approx(np.std(new_s))
    assert avg["hm_std"] == pytest.approx(np.std(hm(base_s, new_s)))


def test_average_std_uses_only_seeds_every_dataset_has():
    recs = three_seeds("Digits") + three_seeds("MNIST")[:2]
    avg = row(table1(runs_frame(recs)), "Average", "pkd")
    assert avg["n_seeds"] == 2
    assert avg["base"] == pytest.approx((82 + 81) / 2)                # means still use all seeds


# ---------------------------------------------------------------------------------- RSM effect

def test_rsm_delta_is_paired_per_seed_and_its_bootstrap_ci_contains_the_mean():
    base = three_seeds(method="pkd", base=(80, 80, 80), new=(70, 70, 70))
    rsm = three_seeds(method="pkd_rsm", base=(81, 83, 85), new=(71, 72, 75))
    scores = select_scores(runs_frame(base + rsm))
    e = rsm_effect(scores, "base2new")
    r = e[(e["dataset"] == "Digits")].iloc[0]
    deltas = [hm(81, 71) - hm(80, 70), hm(83, 72) - hm(80, 70), hm(85, 75) - hm(80, 70)]
    assert (r["baseline"], r["method"], r["n"]) == ("pkd", "pkd_rsm", 3)
    assert r["mean_delta"] == pytest.approx(np.mean(deltas))
    assert min(deltas) <= r["ci_low"] <= r["mean_delta"] <= r["ci_high"] <= max(deltas)


def test_average_rsm_effect_pools_dataset_seed_pairs():
    recs = (three_seeds("Digits", "pkd") + three_seeds("Digits", "pkd_rsm", base=(81, 84, 85))
            + three_seeds("MNIST", "pkd") + three_seeds("MNIST", "pkd_rsm", new=(69, 73, 78)))
    e = rsm_effect(select_scores(runs_frame(recs)), "base2new")
    per = e[e["dataset"] != "Average"]
    avg = e[e["dataset"] == "Average"].iloc[0]
    assert (avg["n"], avg["n_datasets"]) == (6, 2)
    assert avg["mean_delta"] == pytest.approx(per["mean_delta"].mean())  # equal seeds per dataset
    assert avg["ci_low"] <= avg["mean_delta"] <= avg["ci_high"]


def test_rsm_effect_ignores_seeds_that_only_one_method_has():
    recs = three_seeds(method="pkd") + three_seeds(method="pkd_rsm")[:2]
    e = rsm_effect(select_scores(runs_frame(recs)), "base2new")
    assert e.loc[e["dataset"] == "Digits", "n"].item() == 2


def test_bootstrap_ci_is_deterministic_and_degenerate_for_one_value():
    groups = [np.array([1.0, 2.0, 4.0]), np.array([0.5, 3.0])]
    assert bootstrap_ci(groups) == bootstrap_ci(groups)
    assert bootstrap_ci([np.array([1.5])]) == (1.5, 1.5)


# ---------------------------------------------------------------------------------- paper columns

def test_pkd_16shot_row_of_a_paper_dataset_gets_the_ame_papers_promptkd_numbers():
    t = table1(runs_frame(three_seeds("OxfordPets", "pkd", "16shot")))
    r = row(t, "OxfordPets", "pkd")
    assert (r["paper_base"], r["paper_new"], r["paper_hm"]) == (90.13, 92.54, 91.32)
    assert r["delta_hm"] == pytest.approx(r["hm"] - 91.32)
    assert math.isnan(r["promptkd_hm"])       # PromptKD's own numbers are for the full set only


def test_pkd_full_row_also_gets_the_promptkd_papers_own_student_numbers():
    t = table1(runs_frame(three_seeds("OxfordPets", "pkd", "full")))
    r = row(t, "OxfordPets", "pkd", "full")
    assert r["paper_hm"] == 94.57
    assert (r["promptkd_base"], r["promptkd_new"], r["promptkd_hm"]) == (96.3, 98.01, 97.15)


def test_rsm_and_zeroshot_rows_map_to_pkd_plus_rsm_and_clip():
    recs = three_seeds("FGVCAircraft", "pkd_rsm") + [
        {"dataset": "FGVCAircraft", "method": "zeroshot", "setting": "zeroshot", "seed": 1,
         "base": 27, "new": 36}]
    t = table1(runs_frame(recs))
    assert row(t, "FGVCAircraft", "pkd_rsm")["paper_hm"] == 42.07
    assert row(t, "FGVCAircraft", "zeroshot", "zeroshot")["paper_hm"] == 31.09


def test_paper_columns_are_nan_for_datasets_and_settings_the_paper_lacks():
    recs = three_seeds("Digits", "pkd") + three_seeds("OxfordPets", "pkd", "4shot") + three_seeds("OxfordPets", "simple")
    t = table1(runs_frame(recs))
    for ds, m, s in [("Digits", "pkd", "16shot"), ("OxfordPets", "pkd", "4shot"), ("OxfordPets", "simple", "16shot")]:
        r = row(t, ds, m, s)
        assert math.isnan(r["paper_hm"]) and math.isnan(r["delta_hm"]) and math.isnan(r["promptkd_hm"])


def test_paper_average_is_compared_only_when_all_eleven_paper_datasets_are_present():
    all_ds = [rec for ds in reference.PAPER_B2N_DATASETS for rec in three_seeds(ds, "pkd")]
    assert row(table1(runs_frame(all_ds)), "Average", "pkd")["paper_hm"] == 77.40
    two = three_seeds("OxfordPets", "pkd") + three_seeds("DTD", "pkd")
    assert math.isnan(row(table1(runs_frame(two)), "Average", "pkd")["paper_hm"])


# ---------------------------------------------------------------------------------- selection

def test_last_selection_uses_last_epoch_scores_and_says_so():
    recs = [{**r, "last_base": r["base"] - 10, "last_new": r["new"] - 20} for r in three_seeds()]
    t = table1(runs_frame(recs), selection="last")
    r = row(t, "Digits", "pkd")
    assert (r["base"], r["new"], r["selection"]) == (pytest.approx(72.0), pytest.approx(52.0), "last")


def test_last_selection_keeps_zeroshot_scores_which_have_no_epochs():
    recs = [{"dataset": "Digits", "method": "zeroshot", "setting": "zeroshot", "seed": 1, "base": 60, "new": 50}]
    r = row(table1(runs_frame(recs), selection="last"), "Digits", "zeroshot", "zeroshot")
    assert (r["base"], r["new"]) == (60, 50)


def test_best_selection_refuses_runs_that_recorded_only_last_epoch_scores():
    recs = [{**r, "selection": "last"} for r in three_seeds()]
    with pytest.raises(ValueError, match="selection='last'"):
        table1(runs_frame(recs))


# ---------------------------------------------------------------------------------- output

def test_rows_are_ordered_by_paper_dataset_order_method_and_shots_with_average_last():
    recs = (three_seeds("Digits", "pkd", "full") + three_seeds("OxfordPets", "pkd_rsm", "4shot")
            + three_seeds("OxfordPets", "pkd", "16shot") + three_seeds("OxfordPets", "pkd", "4shot"))
    t = table1(runs_frame(recs))
    got = list(zip(t["dataset"], t["method"], t["setting"]))
    assert got[:4] == [("OxfordPets", "pkd", "4shot"), ("OxfordPets", "pkd", "16shot"),
                       ("OxfordPets", "pkd_rsm", "4shot"), ("Digits", "pkd", "full")]
    assert set(t["dataset"][4:]) == {"Average"}


def test_setting_order_puts_zeroshot_first_shots_numerically_then_full():
    assert sorted(["full", "30shot", "4shot", "zeroshot", "16shot"], key=setting_key) == [
        "zeroshot", "4shot", "16shot", "30shot", "full"]


def test_markdown_cells_read_mean_plus_minus_std_under_a_caption_with_selection_seeds_preset():
    runs = runs_frame(three_seeds() + three_seeds(method="pkd_rsm", base=(81, 83, 85)))
    md = table1_markdown(table1(runs), runs, "mini", "best")
    assert "| PromptKD | 16-shot | 3 | 82.00 ± 1.63 | — | — | 72.00 ± 2.83 | — | — |" in md
    assert "Preset `mini`" in md and "selection: best" in md and "seeds 1, 2, 3" in md
    assert "The paired effect of RSM is in rsm_effect.md." in md


def test_table1_panels_are_the_average_then_datasets_in_the_papers_order_with_its_panel_titles():
    recs = [r for ds in ("Digits", "OxfordPets", "ImageNet") for r in three_seeds(dataset=ds)]
    md = table1_markdown(table1(runs_frame(recs)), runs_frame(recs), "mini", "best")
    titles = [line[4:] for line in md.splitlines() if line.startswith("### ")]
    assert titles == ["Average over 3 datasets", "ImageNet (about 1281 training images per class)",
                      "OxfordPets (about 79 training images per class)", "Digits"]


def test_each_value_has_the_ame_papers_value_and_the_difference_beside_it():
    runs = runs_frame(three_seeds(dataset="OxfordPets"))
    md = table1_markdown(table1(runs), runs, "mini", "best")
    panel = md[md.index("### OxfordPets"):]
    line = next(ln for ln in panel.splitlines() if ln.startswith("| PromptKD | 16-shot"))
    # AME Table 1, OxfordPets PromptKD 16-shot: 90.13 / 92.54 / 91.32.
    assert line == ("| PromptKD | 16-shot | 3 | 82.00 ± 1.63 | 90.13 | -8.13 | 72.00 ± 2.83 | 92.54 | -20.54 "
                    "| 76.68 ± 2.24 | 91.32 | -14.64 | — |")


def test_promptkd_full_rows_also_carry_promptkds_own_published_values():
    runs = runs_frame(three_seeds(dataset="OxfordPets", setting="full"))
    md = table1_markdown(table1(runs), runs, "mini", "best")
    line = next(ln for ln in md[md.index("### OxfordPets"):].splitlines() if ln.startswith("| PromptKD | full"))
    assert line.endswith("| 96.30 / 98.01 / 97.15 |")  # PromptKD paper, OxfordPets student


def test_tidy_csv_has_one_row_per_cell_rounded_with_missing_paper_cells_empty(tmp_path):
    write_tables(runs_frame(three_seeds()), tmp_path, "mini")
    lines = (tmp_path / "table1.csv").read_text().splitlines()
    assert lines[0] == "dataset,method,setting,metric,mean,std,n_seeds,n_datasets,paper,delta,promptkd,selection"
    assert "Digits,pkd,16shot,base,82.00,1.63,3,1,,,,best" in lines
    assert "Digits,pkd,16shot,hm,76.68,2.24,3,1,,,,best" in lines
    assert len(lines) == 1 + 2 * 3  # Digits and Average rows, three metrics each


def test_table2_averages_targets_and_carries_paper_and_promptkd_accuracy():
    recs = [{"task": "xd", "dataset": ds, "method": "pkd", "setting": "full", "seed": s, "accuracy": a + s}
            for ds, a in [("OxfordPets", 90), ("Caltech101", 92)] for s in (1, 2, 3)]
    t = table2(runs_frame(recs))
    pets = row(t, "OxfordPets", "pkd", "full", col="target")
    assert pets["accuracy"] == pytest.approx(92.0)
    assert pets["accuracy_std"] == pytest.approx(math.sqrt(2 / 3))
    assert (pets["paper_accuracy"], pets["promptkd_accuracy"]) == (91.96, 91.59)
    assert pets["delta_accuracy"] == pytest.approx(92.0 - 91.96)
    avg = row(t, "Average", "pkd", "full", col="target")
    assert avg["accuracy"] == pytest.approx(93.0) and math.isnan(avg["paper_accuracy"])


def test_without_xd_runs_table2_is_written_with_zero_rows_and_a_note(tmp_path):
    runs = runs_frame(three_seeds())
    out = write_tables(runs, tmp_path, "mini")
    assert out["table2"].empty
    assert (tmp_path / "table2.csv").read_text().splitlines()[0].startswith("target,method,setting,metric")
    assert len((tmp_path / "table2.csv").read_text().splitlines()) == 1
    assert "No cross-dataset (xd) runs were found" in (tmp_path / "table2.md").read_text()


# ---------------------------------------------------------------------------------- reference

def test_reference_names_map_to_canonical_dataset_ids():
    assert reference.canonical_dataset("Pets") == "OxfordPets"
    assert reference.canonical_dataset("FGVC Aircraft") == "FGVCAircraft"
    assert reference.canonical_dataset("Avg.") == reference.AVERAGE
    assert reference.canonical_dataset("OxfordFlowers") == "Flowers102"
    assert reference.canonical_dataset("Digits") == "Digits"
    assert set(reference.paper_table2()["dataset"]) == set(reference.PAPER_XD_TARGETS) | {"Average"}
    assert set(reference.paper_table1()["dataset"]) == set(reference.PAPER_B2N_DATASETS) | {"Average"}


def test_shipped_paper_table1_hms_agree_with_their_base_and_new():
    t = reference.paper_table1()
    assert np.allclose(t["hm"], hm(t["base"], t["new"]), atol=0.015)
    assert set(reference.promptkd_table1()["role"]) == {"student", "teacher"}


def _markdown(records):
    runs = runs_frame(records)
    return table1_markdown(table1(runs), runs, "mini", "best")


def _effect_markdown(records):
    runs = runs_frame(records)
    effect = with_paper_delta(rsm_effect(select_scores(runs), "base2new"))
    return effect_markdown(effect, runs, "mini", "best")


def test_the_caption_states_the_settings_that_differ_from_the_paper():
    paper_like = _markdown(three_seeds(method="pkd") + three_seeds(method="pkd_rsm"))
    assert "ω = 50" in paper_like and "φ trained" in paper_like and "All as in the paper." in paper_like
    changed = _markdown(three_seeds(method="pkd") + [{**r, "omega": 10.0, "rsm_trainable": False, "lr": 0.002}
                                                     for r in three_seeds(method="pkd_rsm", setting="4shot")])
    differ = changed[changed.index("Differs from the paper:"):]
    assert "ω 10 (paper 50)" in differ and "φ frozen (paper: trained)" in differ
    assert "shots 4shot" in differ and "lr 0.002/0.005 (paper 0.005)" in differ


def test_the_zero_shot_rows_placeholder_seed_is_never_shown_as_a_seed():
    zeroshot = {"dataset": "Digits", "method": "zeroshot", "setting": "zeroshot", "seed": 0, "base": 50, "new": 40}
    text = _markdown(three_seeds(method="pkd") + [zeroshot])
    assert "seeds 1, 2, 3." in text and "0, 1" not in text
    zeroshot_line = next(line for line in text.splitlines() if line.startswith("| CLIP (student zero-shot)"))
    assert zeroshot_line.split(" | ")[2] == "—"


def test_an_rsm_method_without_its_baseline_is_reported_without_a_paired_effect():
    text = _effect_markdown(three_seeds(method="pkd") + three_seeds(method="simple_rsm"))
    assert "Not paired (the preset runs them without their baseline): simple_rsm (baseline simple)." in text
    alone = runs_frame(three_seeds(method="pkd_rsm"))
    assert rsm_effect(select_scores(alone), "base2new").empty
    assert "pkd_rsm (baseline pkd)" in _effect_markdown(three_seeds(method="pkd_rsm"))


def test_the_effect_table_lists_pairs_per_dataset_and_average_with_the_papers_delta():
    text = _effect_markdown(three_seeds(dataset="OxfordPets") + three_seeds(dataset="OxfordPets", method="pkd_rsm",
                                                                            base=(81, 83, 85)))
    assert "## Base-to-new (HM)" in text
    # AME Table 1, OxfordPets 16-shot HM: PKD + RSM 96.14 − PromptKD 91.32 = +4.82.
    assert "| PromptKD → PKD + RSM | OxfordPets | 16-shot | 3 | +0.43 | [+0.42, +0.45] | +4.82 |" in text
    assert "| PromptKD → PKD + RSM | Average | 16-shot | 3 |" in text


# ---------------------------------------------------------------------------------- the papers' own rows

def _paper_rows_as_runs(published: pd.DataFrame, task: str) -> pd.DataFrame:
    """The per-dataset rows of a published table as one-seed 'runs' (Average rows left out)."""
    s = published[published["dataset"] != reference.AVERAGE].copy()
    s["task"], s["seed"] = task, 1
    return s


def _published_average(published, ours, columns):
    merged = ours[ours["dataset"] == reference.AVERAGE].merge(
        published[published["dataset"] == reference.AVERAGE], on=["method", "setting"], suffixes=("", "_paper"))
    return merged, [(merged[c] - merged[f"{c}_paper"]).abs().max() for c in columns]


def test_fed_ame_table1s_dataset_rows_the_aggregation_reproduces_all_eight_published_averages():
    t = reference.paper_table1()
    merged, errors = _published_average(t, aggregate(_paper_rows_as_runs(t, "base2new"), "base2new"),
                                        ["base", "new", "hm"])
    assert len(merged) == 8 and max(errors) <= 0.01, merged


def test_fed_ame_table2s_target_rows_the_aggregation_reproduces_its_averages_except_clips():
    t = reference.paper_table2()
    ours = aggregate(_paper_rows_as_runs(t, "xd"), "xd")
    merged, _ = _published_average(t, ours, ["accuracy"])
    err = (merged["accuracy"] - merged["accuracy_paper"]).abs()
    assert len(merged) == 8 and set(merged["n_datasets"]) == {10}
    assert err[merged["method"] != "CLIP"].max() <= 0.01, merged
    assert err[merged["method"] == "CLIP"].item() > 1  # as published, CLIP's Avg. is not its targets' mean


def test_fed_promptkds_student_rows_the_aggregation_reproduces_its_published_averages():
    for published, task, cols in ((reference.promptkd_table1(), "base2new", ["base", "new", "hm"]),
                                  (reference.promptkd_table2(), "xd", ["accuracy"])):
        student = published[published["role"] == "student"].assign(method="PromptKD", setting="full")
        _merged, errors = _published_average(student, aggregate(_paper_rows_as_runs(student, task), task), cols)
        assert len(_merged) == 1 and max(errors) <= 0.01, (task, _merged)


# ---------------------------------------------------------------------------------- the three formats

def _grid_runs():
    recs = []
    for ds in ("OxfordPets", "Digits", "ImageNet"):
        for setting in ("4shot", "16shot", "full"):
            recs += three_seeds(dataset=ds, setting=setting, base=(80.123, 82.456, 84.789))
            recs += three_seeds(dataset=ds, method="pkd_rsm", setting=setting, new=(71.3, 70.05, 75.55))
        recs.append({"dataset": ds, "method": "zeroshot", "setting": "zeroshot", "seed": 0, "base": 60.5, "new": 66.25})
    recs += [{"task": "xd", "dataset": ds, "method": m, "setting": st, "seed": s, "accuracy": a + s / 3}
             for m in ("pkd", "pkd_rsm") for st in ("16shot", "full") for ds, a in [("DTD", 50), ("Caltech101", 92)]
             for s in (1, 2, 3)]
    return runs_frame(recs)


@pytest.fixture(scope="module")
def grid_tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    write_tables(_grid_runs(), out, "mini")
    return out


@pytest.mark.parametrize("name,panel,metrics", [("table1", "dataset", ["base", "new", "hm"]),
                                                ("table2", "target", ["accuracy"])])
def test_markdown_and_latex_parse_back_to_the_csvs_numbers(grid_tables, name, panel, metrics):
    csv = table_text.from_csv(pd.read_csv(grid_tables / f"{name}.csv"), panel)
    md = table_text.parse_markdown((grid_tables / f"{name}.md").read_text(), metrics)
    tex = table_text.parse_latex((grid_tables / f"{name}.tex").read_text(), metrics)
    assert len(csv) == len(md) == len(tex) > 10
    assert table_text.same_numbers(md, csv) and table_text.same_numbers(tex, csv)
    assert any(not math.isnan(v["paper"]) for v in csv.values())
    assert any(not math.isnan(v["promptkd"]) for v in csv.values())


def test_every_latex_table_compiles_standalone_with_pdflatex(grid_tables, tmp_path):
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        reason = "pdflatex not installed (make system-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the LaTeX tables must be compiled in CI: {reason}")
        pytest.skip(reason)
    for name in ("table1", "table2", "rsm_effect"):
        shutil.copy(grid_tables / f"{name}.tex", tmp_path)
        done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
        assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert "Overfull \\hbox" not in (tmp_path / f"{name}.log").read_text(errors="replace"), name


def test_the_tex_escape_refuses_characters_it_cannot_typeset():
    assert tex_escape("ω = 50 & 5 % ± 1_2") == r"$\omega$ = 50 \& 5 \% $\pm$ 1\_2"
    with pytest.raises(ValueError, match="no LaTeX spelling for '☃'"):
        tex_escape("snow ☃")


# ---------------------------------------------------------------------------------- results/README.md

def test_the_headline_states_each_paper_claim_beside_the_measured_effect_with_seeds_and_ci():
    runs = _grid_runs()
    effect = with_paper_delta(pd.concat([rsm_effect(select_scores(runs), t) for t in ("base2new", "xd")],
                                        ignore_index=True))
    text = headline_markdown(effect, runs, "mini", "best")
    rows = [ln for ln in text.splitlines() if ln.startswith("| base-to-new") or ln.startswith("| cross-dataset")]
    assert [r.split(" | ")[1] for r in rows] == ["+2.79", "+0.90", "+1.92"]
    avg16 = effect[(effect["dataset"] == "Average") & (effect["setting"] == "16shot") & (effect["task"] == "base2new")].iloc[0]
    assert f"{avg16['mean_delta']:+.2f} (95 % bootstrap CI [{avg16['ci_low']:+.2f}, {avg16['ci_high']:+.2f}]; " \
           "9 run pairs: 3 seeds (1, 2, 3) × 3 datasets" in rows[0]
    assert "- Base-to-new HM, 16 shots: " in text and "(the paper's 11 datasets; here 3)" in text
    verdicts = [line.rsplit(": ", 1)[1] for line in text.splitlines() if line.startswith("- Base-to-new HM")]
    assert all(v.startswith(("no clear effect", "a gain whose", "a loss whose")) for v in verdicts), verdicts
    assert "PKD + RSM − PromptKD, base-to-new HM, 4-shot:" in text  # a setting the claims do not cover


def test_the_headline_says_when_the_preset_did_not_run_a_claimed_comparison():
    runs = runs_frame(three_seeds(setting="4shot") + three_seeds(method="pkd_rsm", setting="4shot"))
    effect = with_paper_delta(rsm_effect(select_scores(runs), "base2new"))
    text = headline_markdown(effect, runs, "mini", "best")
    assert "This preset did not run that comparison (its base-to-new settings: 4-shot)." in text
    assert "no paired runs of this task" in text


def test_the_headline_verdict_settles_a_sign_only_when_the_interval_excludes_zero():
    from ame.report.headline import verdict

    assert verdict({"mean_delta": 1.0, "ci_low": 0.2, "ci_high": 1.8}, 2.79) == \
        "a gain whose interval excludes zero, the paper's direction"
    assert verdict({"mean_delta": -1.0, "ci_low": -1.8, "ci_high": -0.2}, 2.79) == \
        "a loss whose interval excludes zero, against the paper's direction"
    assert verdict({"mean_delta": 0.1, "ci_low": -0.1, "ci_high": 0.3}, 2.79).startswith("no clear effect")
