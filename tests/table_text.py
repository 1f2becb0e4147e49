"""Parsers that read the report's Markdown and LaTeX tables back into numbers.

Written independently of `ame.report.panels` (they know only the documented layout: panels of
rows Method | Setting | Seeds | per metric Ours (mean ± std) | AME paper | Δ | ... | PromptKD
paper), so a table that prints a number other than the CSV's is caught.
"""

from __future__ import annotations

import math
import re

from ame.spec.methods import METHODS

LABEL_TO_METHOD = {m.label: m.name for m in METHODS.values()}
MISSING = {"—", "--", ""}


def setting_id(label: str) -> str:
    m = re.fullmatch(r"(\d+)-shot", label)
    return f"{m.group(1)}shot" if m else ("zeroshot" if label == "zero-shot" else label)


def number(text: str) -> float:
    text = text.strip()
    return math.nan if text in MISSING else float(text)


def _cells(panel: str, row: list[str], metrics: list[str]) -> dict:
    method, setting = LABEL_TO_METHOD[row[0]], setting_id(row[1])
    out = {}
    published = [number(p) for p in row[3 + 3 * len(metrics)].split(" / ")]
    if len(published) == 1:
        published = published * len(metrics)
    for i, metric in enumerate(metrics):
        ours, paper, delta = row[3 + 3 * i: 6 + 3 * i]
        mean, std = (math.nan, math.nan) if ours in MISSING else map(float, ours.split("±"))
        out[(panel, method, setting, metric)] = {"mean": mean, "std": std, "paper": number(paper),
                                                 "delta": number(delta), "promptkd": published[i]}
    return out


def _panel_name(title: str) -> str:
    return "Average" if title.startswith("Average over") else title.split(" (about ")[0]


def parse_markdown(text: str, metrics: list[str]) -> dict:
    """{(panel, method id, setting id, metric): {mean, std, paper, delta, promptkd}}."""
    out: dict = {}
    panel = None
    for line in text.splitlines():
        if line.startswith("### "):
            panel = _panel_name(line[4:])
        elif panel and line.startswith("| ") and not line.startswith("| Method"):
            out |= _cells(panel, [c.strip() for c in line.strip("| ").split(" | ")], metrics)
    return out


def _untex(cell: str) -> str:
    return (cell.replace("$\\pm$", "±").replace("$-$", "-").replace("\\&", "&").replace("\\_", "_")
            .strip())


def parse_latex(text: str, metrics: list[str]) -> dict:
    """The same mapping from the LaTeX document: panels are \\subsection*{...}, rows lie between
    \\midrule and \\bottomrule."""
    out: dict = {}
    panel, body = None, False
    for line in text.splitlines():
        if line.startswith("\\subsection*{"):
            panel = _panel_name(line[len("\\subsection*{"):-1])
        elif line == "\\midrule":
            body = True
        elif line == "\\bottomrule":
            body = False
        elif body and panel:
            row = [_untex(c) for c in line.removesuffix("\\\\").split(" & ")]
            out |= _cells(panel, row, metrics)
    return out


def from_csv(frame, panel_col: str) -> dict:
    """The same mapping from a tidy table CSV read with pandas."""
    return {(r[panel_col], r["method"], r["setting"], r["metric"]):
            {k: float(r[k]) for k in ("mean", "std", "paper", "delta", "promptkd")}
            for _, r in frame.iterrows()}


def same_numbers(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        for k, x in a[key].items():
            y = b[key][k]
            if not ((math.isnan(x) and math.isnan(y)) or abs(x - y) < 1e-9):
                return False
    return True
