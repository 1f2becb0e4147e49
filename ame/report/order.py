"""Row order of every table and figure: the paper's dataset order (then others, then Average),
methods in registry order, settings zero-shot < K-shot by K < full."""

from __future__ import annotations

import re

import pandas as pd

from ame.report import reference
from ame.spec.methods import method_order


def dataset_key(name: str):
    """Sort key: the paper's datasets in its order, then any other, then the Average row."""
    if name == reference.AVERAGE:
        return (2, 0, name)
    if name in reference.CANONICAL_DATASETS:
        return (0, reference.CANONICAL_DATASETS.index(name), name)
    return (1, 0, name)



def setting_key(setting: str):
    """Sort key: zeroshot, then K-shot by ascending K, then full, then anything else."""
    if setting == "zeroshot":
        return (0, 0, setting)
    m = re.fullmatch(r"(\d+)shot", setting)
    if m:
        return (1, int(m.group(1)), setting)
    if setting == "full":
        return (2, 0, setting)
    return (3, 0, setting)



def sort_rows(df: pd.DataFrame, dataset_col: str) -> pd.DataFrame:
    """`df` ordered by dataset (column `dataset_col`), method, setting."""
    if df.empty:
        return df.reset_index(drop=True)
    keys = df.apply(lambda r: (dataset_key(r[dataset_col]), method_order(r["method"]),
                               setting_key(r["setting"])), axis=1)
    return df.loc[sorted(df.index, key=lambda i: keys[i])].reset_index(drop=True)

