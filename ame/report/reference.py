"""Published numbers (AME paper Tables 1/2, PromptKD paper Tables 1/2 and appendix Tables 10/11).

The CSVs live in `ame/reference/` and are read through `importlib.resources`, so an installed
wheel finds them too. Every loader returns canonical dataset ids (`FGVCAircraft`, not
"FGVC Aircraft" or "Aircraft"); the averages are the dataset `Average`.
"""

from __future__ import annotations

import functools
import importlib.resources

import pandas as pd

from ame.data.registry import canonical_name
from ame.spec.methods import METHODS

AVERAGE = "Average"

# Paper order, used to sort table rows.
CANONICAL_DATASETS = (
    "ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "Flowers102", "Food101",
    "FGVCAircraft", "SUN397", "DTD", "EuroSAT", "UCF101",
)
PAPER_B2N_DATASETS = CANONICAL_DATASETS
PAPER_XD_TARGETS = CANONICAL_DATASETS[1:]

# How the published tables spell their Average row; dataset names resolve through the registry's
# one alias table (`ame.data.registry`), which knows the papers' short names.
_AVERAGE_SPELLINGS = {"average", "avg.", "avg"}

_METHOD_SPELLING = {"MaPLE": "MaPLe"}

# Our method ids -> the row names the AME paper uses.
PAPER_METHOD = {m.name: m.paper_row for m in METHODS.values() if m.paper_row}

NAN = float("nan")


def canonical_dataset(name: str) -> str:
    """Canonical dataset id for any name the published tables use (the Average row as AVERAGE);
    unknown names pass through."""
    text = str(name).strip()
    if text.lower() in _AVERAGE_SPELLINGS:
        return AVERAGE
    try:
        return canonical_name(text)
    except ValueError:
        return text


def paper_setting(setting: str) -> str | None:
    """The paper's setting label for one of ours: 16shot -> '16-shot', full -> 'full',
    zeroshot -> '' (CLIP rows have no setting); None where the paper has no such setting."""
    if setting == "zeroshot":
        return ""
    if setting == "full":
        return "full"
    if setting == "16shot":
        return "16-shot"
    return None


def _read(name: str) -> pd.DataFrame:
    resource = importlib.resources.files("ame").joinpath("reference").joinpath(name)
    with resource.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


@functools.cache
def _paper_table1() -> pd.DataFrame:
    df = _read("paper_table1_base_to_new.csv")
    df["dataset"] = df["dataset"].map(canonical_dataset)
    df["method"] = df["method"].replace(_METHOD_SPELLING)
    df["setting"] = df["setting"].fillna("").astype(str)
    return df


@functools.cache
def _paper_table2() -> pd.DataFrame:
    df = _read("paper_table2_cross_dataset.csv").rename(columns={"target": "dataset"})
    df["dataset"] = df["dataset"].map(canonical_dataset)
    df["method"] = df["method"].replace(_METHOD_SPELLING)
    df["setting"] = df["setting"].fillna("").astype(str)
    return df


def _role(model: str) -> str:
    return "teacher" if "teacher" in model.lower() else "student"


@functools.cache
def _promptkd_table1() -> pd.DataFrame:
    df = _read("promptkd_paper_base_to_new.csv")
    df["dataset"] = df["dataset"].map(canonical_dataset)
    df.insert(1, "role", df["model"].map(_role))
    return df


@functools.cache
def _promptkd_table2() -> pd.DataFrame:
    df = _read("promptkd_paper_cross_dataset.csv").rename(columns={"target": "dataset"})
    df["dataset"] = df["dataset"].map(canonical_dataset)
    df.insert(1, "role", df["model"].map(_role))
    return df


def paper_table1() -> pd.DataFrame:
    """AME Table 1: dataset, method, setting ('16-shot', 'full' or ''), base, new, hm,
    approx_shots_full."""
    return _paper_table1().copy()


def paper_table2() -> pd.DataFrame:
    """AME Table 2 (cross-dataset): dataset (canonical target id), method, setting, accuracy."""
    return _paper_table2().copy()


def promptkd_table1() -> pd.DataFrame:
    """PromptKD paper base-to-new numbers: dataset, role ('student'|'teacher'), model, base, new, hm."""
    return _promptkd_table1().copy()


def promptkd_table2() -> pd.DataFrame:
    """PromptKD paper cross-dataset numbers: dataset, role, model, accuracy."""
    return _promptkd_table2().copy()


def _one(df: pd.DataFrame, mask, columns: list[str]) -> list[float]:
    hit = df.loc[mask, columns]
    if len(hit) != 1:
        return [NAN] * len(columns)
    return [float(v) for v in hit.iloc[0]]


def paper_columns(task: str, dataset: str, method: str, setting: str) -> dict[str, float]:
    """Published values matching one of our table rows, NaN where the papers have no such cell.

    base2new -> paper_base, paper_new, paper_hm (AME Table 1) and promptkd_base, promptkd_new,
    promptkd_hm; xd -> paper_accuracy (AME Table 2) and promptkd_accuracy. The PromptKD paper's
    student was distilled on the full unlabeled train set, so its values are given only for
    `pkd` rows of the `full` setting (a 16-shot row compared against them would mix settings).
    """
    dataset = canonical_dataset(dataset)
    label = PAPER_METHOD.get(method)
    psetting = paper_setting(setting)
    pkd_full = method == "pkd" and setting == "full"
    if task == "base2new":
        out = dict.fromkeys(["paper_base", "paper_new", "paper_hm",
                             "promptkd_base", "promptkd_new", "promptkd_hm"], NAN)
        if label is not None and psetting is not None:
            t = _paper_table1()
            mask = (t["dataset"] == dataset) & (t["method"] == label) & (t["setting"] == psetting)
            out["paper_base"], out["paper_new"], out["paper_hm"] = _one(t, mask, ["base", "new", "hm"])
        if pkd_full:
            t = _promptkd_table1()
            mask = (t["dataset"] == dataset) & (t["role"] == "student")
            out["promptkd_base"], out["promptkd_new"], out["promptkd_hm"] = _one(t, mask, ["base", "new", "hm"])
        return out
    if task == "xd":
        out = {"paper_accuracy": NAN, "promptkd_accuracy": NAN}
        if label is not None and psetting is not None:
            t = _paper_table2()
            mask = (t["dataset"] == dataset) & (t["method"] == label) & (t["setting"] == psetting)
            (out["paper_accuracy"],) = _one(t, mask, ["accuracy"])
        if pkd_full:
            t = _promptkd_table2()
            mask = (t["dataset"] == dataset) & (t["role"] == "student")
            (out["promptkd_accuracy"],) = _one(t, mask, ["accuracy"])
        return out
    raise ValueError(f"unknown task {task!r}; expected 'base2new' or 'xd'")



def images_per_class(dataset: str) -> int | None:
    """The approximate training images per class AME Table 1 prints in a dataset's panel title
    (e.g. ImageNet 1281); None for datasets outside the paper."""
    t = _paper_table1()
    hit = t.loc[(t["dataset"] == canonical_dataset(dataset)) & t["approx_shots_full"].notna(),
                "approx_shots_full"]
    return int(hit.iloc[0]) if len(hit) else None


def paper_rsm_delta(task: str, dataset: str, setting: str) -> float:
    """The AME paper's PKD + RSM − PromptKD difference for one cell (HM for base2new, accuracy for
    xd; its headline claims are the Average rows: +2.79 HM at 16 shots, +0.90 full, +1.92
    cross-dataset at 16 shots); NaN where either value is missing."""
    psetting = paper_setting(setting)
    if psetting is None or psetting == "":
        return NAN
    t, col = (_paper_table1(), "hm") if task == "base2new" else (_paper_table2(), "accuracy")
    cell = t[(t["dataset"] == canonical_dataset(dataset)) & (t["setting"] == psetting)]
    (treated,) = _one(cell, cell["method"] == PAPER_METHOD["pkd_rsm"], [col])
    (baseline,) = _one(cell, cell["method"] == PAPER_METHOD["pkd"], [col])
    return treated - baseline
