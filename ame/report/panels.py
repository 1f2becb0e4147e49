"""The papers' table layout: tidy cells, panels, and their Markdown and LaTeX (booktabs) text.

AME Table 1 is twelve panels — the Average, then one per dataset in the paper's order — with rows
per method × setting and columns Base / New / HM; Table 2 has one score (accuracy) per target.
Here every panel is drawn the same way: our mean ± std over seeds, the AME paper's value and the
difference (ours − paper) beside it, and for PromptKD rows that paper's own published value.

The CSV form is tidy: one row per (panel, method, setting, metric) cell (`TIDY_COLUMNS`). The
Markdown and LaTeX forms print the same numbers rounded to two decimals, so each parses back to
the CSV (tests/table_text.py holds the parsers).
"""

from __future__ import annotations

import re

import pandas as pd

from ame.report import reference
from ame.report.order import dataset_key, setting_key
from ame.spec.methods import METHODS, ZEROSHOT, method_order

B2N_METRICS = (("base", "Base"), ("new", "New"), ("hm", "HM"))
XD_METRICS = (("accuracy", "Accuracy"),)

# Per metric cell; the panel column (dataset or target) comes first.
TIDY_COLUMNS = ["method", "setting", "metric", "mean", "std", "n_seeds", "n_datasets", "paper",
                "delta", "promptkd", "selection"]

MISSING_MD = "—"
MISSING_TEX = "--"


def tidy(table: pd.DataFrame, panel: str, metrics) -> pd.DataFrame:
    """One row per (panel, method, setting, metric) of a wide Table 1/2 frame (`tables.table1` /
    `table2`): mean, std, n_seeds, n_datasets, paper (AME paper), delta (mean − paper), promptkd
    (PromptKD paper), selection. Unrounded."""
    rows = []
    for _, r in table.iterrows():
        for key, _label in metrics:
            paper = r[f"paper_{key}"]
            rows.append({panel: r[panel], "method": r["method"], "setting": r["setting"], "metric": key,
                         "mean": r[key], "std": r[f"{key}_std"], "n_seeds": r["n_seeds"],
                         "n_datasets": r["n_datasets"], "paper": paper, "delta": r[key] - paper,
                         "promptkd": r[f"promptkd_{key}"], "selection": r["selection"]})
    out = pd.DataFrame(rows, columns=[panel, *TIDY_COLUMNS])
    for c in ("mean", "std", "paper", "delta", "promptkd"):
        out[c] = out[c].astype(float)
    for c in ("n_seeds", "n_datasets"):
        out[c] = out[c].astype("Int64")
    return out


def panel_order(names) -> list[str]:
    """The Average panel first, then the paper's dataset order, then any other dataset."""
    names = set(names)
    avg = [reference.AVERAGE] if reference.AVERAGE in names else []
    return avg + sorted(names - {reference.AVERAGE}, key=dataset_key)


def setting_label(setting: str) -> str:
    """'16shot' -> '16-shot', 'full' -> 'full', 'zeroshot' -> 'zero-shot'."""
    m = re.fullmatch(r"(\d+)shot", setting)
    if m:
        return f"{m.group(1)}-shot"
    return "zero-shot" if setting == ZEROSHOT else setting


def method_label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def panel_title(name: str, n_datasets, what: str) -> str:
    """'Average over 11 datasets', 'ImageNet (about 1281 training images per class)' for the paper's
    datasets (the paper's panel titles), else the dataset's name."""
    if name == reference.AVERAGE:
        return f"Average over {n_datasets} {what if n_datasets != 1 else what[:-1]}"
    approx = reference.images_per_class(name)
    return f"{name} (about {approx} training images per class)" if approx else name


def _num(x, signed: bool = False) -> str | None:
    if x is None or pd.isna(x):
        return None
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _panel_rows(cells: pd.DataFrame, metrics, missing: str, pm: str, minus: str) -> list[list[str]]:
    """Text cells of one panel: method, setting, seeds, then per metric ours / AME / Δ, then the
    PromptKD paper's values ('B / N / HM')."""
    out = []
    keys = sorted({(m, s) for m, s in zip(cells["method"], cells["setting"])},
                  key=lambda k: (method_order(k[0]), setting_key(k[1])))
    for method, setting in keys:
        by_metric = cells[(cells["method"] == method) & (cells["setting"] == setting)].set_index("metric")
        first = by_metric.iloc[0]
        seeds = missing if method == ZEROSHOT else str(first["n_seeds"])  # zero-shot has no seeds
        row = [method_label(method), setting_label(setting), seeds]
        for key, _label in metrics:
            c = by_metric.loc[key]
            mean = _num(c["mean"])
            row.append(missing if mean is None else f"{mean} {pm} {_num(c['std'])}")
            row.append(_num(c["paper"]) or missing)
            delta = _num(c["delta"], signed=True)
            row.append(missing if delta is None else delta.replace("-", minus))
        published = [_num(by_metric.loc[k, "promptkd"]) for k, _ in metrics]
        row.append(missing if all(p is None for p in published) else
                   " / ".join(p or missing for p in published))
        out.append(row)
    return out


PROMPTKD_PAPER = "PromptKD paper"


def _published_parts(metrics) -> str:
    """What the PromptKD-paper cell holds: 'B / N / HM' for Table 1, nothing to say for one metric."""
    return " / ".join(label if label == "HM" else label[0] for _k, label in metrics) if len(metrics) > 1 else ""


def _promptkd_header(metrics) -> str:
    parts = _published_parts(metrics)
    return f"{PROMPTKD_PAPER} ({parts})" if parts else PROMPTKD_PAPER


def markdown_panels(cells: pd.DataFrame, panel: str, metrics, what: str) -> str:
    """Markdown: one '### <panel title>' section and table per panel (see `panel_order`)."""
    header = ["Method", "Setting", "Seeds"]
    for _key, label in metrics:
        header += [label, "AME paper", "Δ"]
    header.append(_promptkd_header(metrics))
    parts = []
    for name in panel_order(cells[panel]):
        sub = cells[cells[panel] == name]
        title = panel_title(name, sub["n_datasets"].max(), what)
        rows = _panel_rows(sub, metrics, MISSING_MD, "±", "-")
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        parts += [f"### {title}", "", *lines, ""]
    return "\n".join(parts)


# Characters of our captions that pdflatex does not take as text, and their LaTeX.
_TEX_CHARS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "ω": r"$\omega$", "φ": r"$\varphi$", "Δ": r"$\Delta$", "→": r"$\to$",
    "−": r"$-$", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$", "≈": r"$\approx$",
    "—": "---", "–": "--", "`": "", "·": r"$\cdot$", "…": r"\ldots{}", "’": "'", "‘": "`",
    "“": "``", "”": "''",
}


def tex_escape(text: str) -> str:
    """`text` as LaTeX that pdflatex typesets; ValueError naming any character it cannot map."""
    out = []
    for ch in str(text):
        if ch in _TEX_CHARS:
            out.append(_TEX_CHARS[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            raise ValueError(f"no LaTeX spelling for {ch!r} in {text!r}; add it to panels._TEX_CHARS")
    return "".join(out)


def latex_document(cells: pd.DataFrame, panel: str, metrics, what: str, title: str,
                   caption: str) -> str:
    """A complete LaTeX document (article class, booktabs; compiles with pdflatex on its own): the
    title, the caption, then one booktabs tabular per panel. Copy a tabular into a paper as is."""
    n = len(metrics)
    spec = "llr" + " rrr" * n + " l"
    top = " & & " + "".join(f" & \\multicolumn{{3}}{{c}}{{{label}}}" for _k, label in metrics)
    top += f" & {PROMPTKD_PAPER} \\\\"
    rules = "".join(f"\\cmidrule(lr){{{4 + 3 * i}-{6 + 3 * i}}}" for i in range(n))
    sub = "Method & Setting & Seeds" + " & Ours & AME & $\\Delta$" * n
    sub += f" & {tex_escape(_published_parts(metrics))} \\\\"
    lines = tex_head(title, caption)
    for name in panel_order(cells[panel]):
        part = cells[cells[panel] == name]
        rows = _panel_rows(part, metrics, MISSING_TEX, "$\\pm$", "$-$")
        lines += [f"\\subsection*{{{tex_escape(panel_title(name, part['n_datasets'].max(), what))}}}",
                  "{\\small", f"\\begin{{tabular}}{{{spec}}}", "\\toprule", top, rules, sub, "\\midrule"]
        lines += [" & ".join(tex_escape(c) if i < 2 else c for i, c in enumerate(r)) + " \\\\" for r in rows]
        lines += ["\\bottomrule", "\\end{tabular}", "}", ""]
    return tex_finish(lines)


def tex_head(title: str, caption: str) -> list[str]:
    """The opening lines of a standalone document (article, booktabs, landscape A4)."""
    return [
        "% " + tex_escape(title),
        "% Written by `ame report`; compile with: pdflatex <this file>.",
        "\\documentclass{article}",
        "\\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
        "\\usepackage{booktabs}",
        "\\begin{document}",
        f"\\section*{{{tex_escape(title)}}}",
        tex_escape(caption),
        "",
    ]


def tex_finish(lines: list[str]) -> str:
    return "\n".join([*lines, "\\end{document}"]) + "\n"


def latex_simple_document(title: str, caption: str, header: list[str], rows: list[list[str]]) -> str:
    """A standalone document holding one booktabs tabular; cells are plain text (escaped here)."""
    spec = "l" * 3 + "r" * (len(header) - 3)
    body = [" & ".join(tex_escape(c) for c in r) + " \\\\" for r in rows]
    return tex_finish([*tex_head(title, caption), "{\\small", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
                       " & ".join(tex_escape(h) for h in header) + " \\\\", "\\midrule", *body,
                       "\\bottomrule", "\\end{tabular}", "}", ""])
