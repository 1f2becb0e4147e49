"""The one-screen summary of a preset's results (`results/<preset>/README.md`): does RSM help,
next to the AME paper's three claims, in plain words with the seeds and the bootstrap CI."""

from __future__ import annotations

import pandas as pd

from ame.report import reference
from ame.report.panels import setting_label
from ame.report.render import fmt
from ame.spec.methods import METHODS, ZEROSHOT

# The AME paper's headline claims: PKD + RSM − PromptKD on the Average row (AME §4, Tables 1/2).
CLAIMS = (
    ("base2new", "16shot", "base-to-new HM with 16 shots per class, averaged over the 11 datasets"),
    ("base2new", "full", "base-to-new HM with the full unlabeled training set, averaged over the 11 datasets"),
    ("xd", "16shot", "cross-dataset accuracy (ImageNet → 10 targets) with 16 shots, averaged over the targets"),
)
PAIR = ("pkd", "pkd_rsm")
SHORT = {("base2new", "16shot"): "Base-to-new HM, 16 shots", ("base2new", "full"): "Base-to-new HM, full set",
         ("xd", "16shot"): "Cross-dataset accuracy, 16 shots"}


def _average_row(effect: pd.DataFrame, task: str, setting: str, pair=PAIR):
    hit = effect[(effect["task"] == task) & (effect["setting"] == setting)
                 & (effect["baseline"] == pair[0]) & (effect["method"] == pair[1])
                 & (effect["dataset"] == reference.AVERAGE)]
    return hit.iloc[0] if len(hit) else None


def _seeds(runs: pd.DataFrame, task: str) -> list[int]:
    trained = runs[(runs["task"] == task) & (runs["method"] != ZEROSHOT)]
    return sorted(int(s) for s in trained["seed"].unique())


def _measured(r, runs: pd.DataFrame, task: str) -> str:
    seeds = _seeds(runs, task)
    n_ds = int(r["n_datasets"])
    what = "target" if task == "xd" else "dataset"
    return (f"{fmt(r['mean_delta'], signed=True)} (95 % bootstrap CI [{fmt(r['ci_low'], True)}, "
            f"{fmt(r['ci_high'], True)}]; {int(r['n'])} run pairs: {len(seeds)} seed"
            f"{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}) × {n_ds} {what}"
            f"{'s' if n_ds != 1 else ''})")


def verdict(r, paper: float) -> str:
    """Plain words for a measured effect next to the paper's: its sign is settled only when the
    bootstrap interval excludes zero."""
    if r["ci_low"] > 0:
        found = "a gain whose interval excludes zero"
    elif r["ci_high"] < 0:
        found = "a loss whose interval excludes zero"
    else:
        return "no clear effect (the interval includes zero), so the paper's gain is not reproduced here"
    agrees = (r["mean_delta"] > 0) == (paper > 0)
    return found + (", the paper's direction" if agrees else ", against the paper's direction")


def headline_markdown(effect: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    """Markdown for results/<preset>/README.md from the paired-effect table (`tables.write_tables`'
    "effect", with paper_delta) and the collected runs."""
    baseline, treated = (METHODS[m].label for m in PAIR)
    lines = [f"# Results of preset `{preset}`", "",
             f"Written by `ame report` (selection: {selection}). Tables: `tables/table1.md`, "
             "`tables/table2.md`, `tables/rsm_effect.md` (each also as .csv and .tex); figures in "
             "`figures/` (PNG and PDF); everything with captions in the HTML report "
             "(`snakemake --report report.html`).", "",
             f"## Does RSM help? {treated} − {baseline}, next to the AME paper's claims", "",
             "| Claim (AME paper) | Paper | This preset |", "|---|---|---|"]
    words = []
    for task, setting, what in CLAIMS:
        short = SHORT[(task, setting)]
        paper = reference.paper_rsm_delta(task, reference.AVERAGE, setting)
        r = _average_row(effect, task, setting)
        ran = sorted({s for t, s in zip(effect["task"], effect["setting"]) if t == task})
        if r is None:
            ours = "not run by this preset"
            done = (f"its {'cross-dataset' if task == 'xd' else 'base-to-new'} settings: "
                    + ", ".join(setting_label(s) for s in ran)) if ran else "no paired runs of this task"
            words.append(f"- {short}: the paper reports {fmt(paper, signed=True)}. This preset did not run "
                         f"that comparison ({done}).")
        else:
            ours = _measured(r, runs, task)
            n_ds, n_paper = int(r["n_datasets"]), (10 if task == "xd" else 11)
            unit = "targets" if task == "xd" else "datasets"
            scope = f"its {n_paper} {unit}" if n_ds == n_paper else f"the paper's {n_paper} {unit}; here {n_ds}"
            words.append(f"- {short}: {fmt(r['mean_delta'], signed=True)} points here "
                         f"(95 % CI {fmt(r['ci_low'], True)} to {fmt(r['ci_high'], True)}), against the "
                         f"paper's {fmt(paper, signed=True)} ({scope}): {verdict(r, paper)}.")
        lines.append(f"| {what} | {fmt(paper, signed=True)} | {ours} |")
    others = []
    for _, r in effect[effect["dataset"] == reference.AVERAGE].iterrows():
        if (r["baseline"], r["method"]) == PAIR and any((r["task"], r["setting"]) == (t, s) for t, s, _ in CLAIMS):
            continue
        task = "cross-dataset accuracy" if r["task"] == "xd" else "base-to-new HM"
        sign = "" if r["ci_low"] <= 0 <= r["ci_high"] else "; the interval excludes zero"
        others.append(f"- {METHODS[r['method']].label} − {METHODS[r['baseline']].label}, {task}, "
                      f"{setting_label(r['setting'])}: {_measured(r, runs, r['task'])}{sign}.")
    lines += ["", "In plain words:", "", *words]
    if others:
        lines += ["", "Other paired comparisons this preset ran (Average rows of `tables/rsm_effect.md`):", "",
                  *others]
    lines += ["", "Each Δ pairs two runs of the same dataset, setting and seed (the same crops); the CI "
              "resamples datasets, then seeds. With three seeds it is descriptive, not a significance "
              "test.", ""]
    return "\n".join(lines)
