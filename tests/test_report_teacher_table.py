"""The teacher-check table sets each loaded teacher beside PromptKD's published teacher accuracy."""

import math

import pandas as pd
import pytest

from ame.io import write_json
from ame.report.teacher_table import teacher_check_table, write_teacher_check


def _check(folder, task, dataset, source="fetch", **scores):
    path = folder / f"{task}_{dataset}.json"
    write_json(path, {"task": task, "dataset": dataset, "source": source, "base": None, "new": None, "hm": None,
                      "accuracy": None, "n_test": 10, "teacher_sha256": "0" * 64, **scores})
    return path


def test_released_teachers_sit_beside_tables_10_and_11_and_miniature_ones_have_no_reference(tmp_path):
    paths = [_check(tmp_path, "xd", "ImageNet", accuracy=77.62),
             _check(tmp_path, "base2new", "Digits", source="train", base=90.0, new=40.0, hm=55.38),
             _check(tmp_path, "base2new", "EuroSAT", base=94.0, new=83.0, hm=88.16),
             _check(tmp_path, "base2new", "ImageNet", base=83.0, new=77.0, hm=79.89)]
    table = write_teacher_check(paths, tmp_path / "t.csv", tmp_path / "t.md", "paper")
    assert list(table[["task", "dataset"]].itertuples(index=False, name=None)) == [
        ("base2new", "ImageNet"), ("base2new", "EuroSAT"), ("base2new", "Digits"), ("xd", "ImageNet")]
    imagenet = table.iloc[0]
    assert (imagenet.promptkd_base, imagenet.promptkd_new, imagenet.promptkd_hm) == (83.24, 76.83, 79.91)
    assert imagenet.delta_hm == pytest.approx(79.89 - 79.91)
    assert math.isnan(table.iloc[2].promptkd_hm)
    xd = table.iloc[3]
    assert xd.promptkd_accuracy == 78.12 and xd.delta_accuracy == pytest.approx(77.62 - 78.12)

    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns) == list(table.columns)
    md = (tmp_path / "t.md").read_text()
    assert "| ImageNet | released (PromptKD) | 83.00 | 77.00 | 79.89 | 83.24 | 76.83 | 79.91 | -0.02 |" in md
    assert "| Digits | prompt-tuned here | 90.00 | 40.00 | 55.38 | — | — | — | — |" in md
    assert "| ImageNet | released (PromptKD) | 77.62 | 78.12 | -0.50 |" in md


def test_no_checks_give_an_empty_table_with_the_columns():
    assert teacher_check_table(pd.DataFrame()).empty
