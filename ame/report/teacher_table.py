"""Teacher check table: our loaded teachers beside PromptKD's published teacher accuracy.

One row per teacher_check/{task}/{dataset}.json. Base-to-new rows set Base/New/HM beside PromptKD's
appendix Table 10; cross-dataset rows set all-class accuracy beside Table 11 (the ImageNet source,
or a target when one was checked). With released teachers a gap of more than about a point points at
the conversion, the preprocessing or the split; prompt-tuned miniature teachers have no published row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ame import contracts
from ame.io import read_json, write_text
from ame.report.reference import canonical_dataset, promptkd_table1, promptkd_table2
from ame.report.order import dataset_key
from ame.report.captions import write_caption
from ame.report.render import fmt, html_page, md_table, to_csv_text

COLUMNS = ["task", "dataset", "source", "base", "new", "hm", "accuracy",
           "promptkd_base", "promptkd_new", "promptkd_hm", "promptkd_accuracy",
           "delta_hm", "delta_accuracy", "n_test"]
SOURCE_LABEL = {"fetch": "released (PromptKD)", "train": "prompt-tuned here"}


def collect_checks(paths) -> pd.DataFrame:
    """One row per teacher_check JSON file (validated against contracts.TEACHER_CHECK)."""
    return pd.DataFrame([contracts.validate(read_json(p), contracts.TEACHER_CHECK, where=str(p)) for p in paths])


def _published(task: str, dataset: str) -> dict[str, float]:
    nan = float("nan")
    out = {"promptkd_base": nan, "promptkd_new": nan, "promptkd_hm": nan, "promptkd_accuracy": nan}
    dataset = canonical_dataset(dataset)
    if task == "base2new":
        t = promptkd_table1()
        hit = t[(t["dataset"] == dataset) & (t["role"] == "teacher")]
        if len(hit) == 1:
            out.update(promptkd_base=hit["base"].iloc[0], promptkd_new=hit["new"].iloc[0],
                       promptkd_hm=hit["hm"].iloc[0])
    else:
        t = promptkd_table2()
        hit = t[(t["dataset"] == dataset) & (t["role"] == "teacher")]
        if len(hit) == 1:
            out["promptkd_accuracy"] = hit["accuracy"].iloc[0]
    return {k: float(v) for k, v in out.items()}


def teacher_check_table(checks: pd.DataFrame) -> pd.DataFrame:
    """Our teacher numbers, PromptKD's published ones and the differences (ours − published)."""
    if checks.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for r in checks.to_dict("records"):
        row = {**r, **_published(r["task"], r["dataset"])}
        row["delta_hm"] = (r["hm"] if r["hm"] is not None else float("nan")) - row["promptkd_hm"]
        row["delta_accuracy"] = (r["accuracy"] if r["accuracy"] is not None else float("nan")) - row["promptkd_accuracy"]
        rows.append(row)
    df = pd.DataFrame(rows)[COLUMNS]
    for c in COLUMNS[3:-1]:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    order = sorted(range(len(df)), key=lambda i: (df["task"].iloc[i] != "base2new", dataset_key(df["dataset"].iloc[i])))
    return df.iloc[order].reset_index(drop=True)


def teacher_check_markdown(table: pd.DataFrame, preset: str) -> str:
    lines = [f"# Teacher check — preset `{preset}`", "",
             "Each teacher scored on its dataset's test split after loading, with the stored text features "
             "the students use. PromptKD: the published teacher accuracy (appendix Tables 10/11); Δ = ours − "
             "PromptKD. A released teacher more than about a point off suggests a conversion or "
             "preprocessing problem; prompt-tuned miniature teachers have no published value (—).", ""]
    b2n = table[table["task"] == "base2new"]
    if not b2n.empty:
        lines += ["## Base-to-new (Base / New / HM)", "",
                  md_table(["Dataset", "Teacher", "Base", "New", "HM", "PromptKD Base", "PromptKD New",
                             "PromptKD HM", "Δ HM"],
                            [[r.dataset, SOURCE_LABEL.get(r.source, r.source), fmt(r.base), fmt(r.new), fmt(r.hm),
                              fmt(r.promptkd_base), fmt(r.promptkd_new), fmt(r.promptkd_hm), fmt(r.delta_hm, True)]
                             for r in b2n.itertuples()]), ""]
    xd = table[table["task"] == "xd"]
    if not xd.empty:
        lines += ["## Cross-dataset teacher (all-class accuracy)", "",
                  md_table(["Dataset", "Teacher", "Accuracy", "PromptKD", "Δ"],
                            [[r.dataset, SOURCE_LABEL.get(r.source, r.source), fmt(r.accuracy),
                              fmt(r.promptkd_accuracy), fmt(r.delta_accuracy, True)] for r in xd.itertuples()]), ""]
    if table.empty:
        lines += ["No teacher checks found.", ""]
    return "\n".join(lines)


def write_teacher_check(check_paths, out_csv: str | Path, out_md: str | Path, preset: str) -> pd.DataFrame:
    """The teacher-check table as CSV, Markdown, and an HTML page with its caption file beside
    the Markdown (for the HTML report); the table."""
    table = teacher_check_table(collect_checks(check_paths))
    write_text(out_csv, to_csv_text(table))
    markdown = teacher_check_markdown(table, preset)
    write_text(out_md, markdown)
    out_html = Path(out_md).with_suffix(".html")
    write_text(out_html, html_page(f"Teacher check, preset {preset}", markdown))
    write_caption(out_html, "The teachers as loaded, scored on each dataset's test split before any "
                            "distillation, beside PromptKD's published teacher accuracy (appendix "
                            "Tables 10/11); one row per teacher the preset uses.")
    return table
