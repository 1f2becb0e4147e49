"""Code fingerprints: a job's identity changes exactly when the code its step runs changes."""

import shutil
from pathlib import Path

import pytest

from ame import fingerprint as fp
from ame.spec.methods import DISTILL_METHODS, METHODS, run_code

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A copy of the `ame` package that fingerprints are computed over (edited by the tests)."""
    copy = tmp_path / "ame"
    shutil.copytree(ROOT / "ame", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fp, "ROOT", copy)
    for cached in (fp.modules, fp.data_folders, fp._tree, fp._direct, fp.normalised, fp.step_entries,
                   fp.fingerprint):
        cached.cache_clear()
    yield copy
    for cached in (fp.modules, fp.data_folders, fp._tree, fp._direct, fp.normalised, fp.step_entries,
                   fp.fingerprint):
        cached.cache_clear()


def _codes():
    return {m: run_code("distill", m) for m in (*DISTILL_METHODS, "zeroshot")}, fp.fingerprint("report")


def _edit(package, rel, old, new):
    path = package / rel
    text = path.read_text()
    assert old in text, f"{rel} no longer holds {old!r}; update this test"
    path.write_text(text.replace(old, new, 1))
    for cached in (fp._tree, fp._direct, fp.normalised, fp.step_entries, fp.fingerprint):
        cached.cache_clear()


def test_a_statement_in_the_rsm_module_changes_only_the_rsm_runs_code(package):
    runs, report = _codes()
    _edit(package, "rsm.py", "import torch\n", "import torch\n\n_UNUSED = 1\n")
    after, report_after = _codes()
    changed = {m for m in runs if runs[m] != after[m]}
    assert changed == {m for m in DISTILL_METHODS if METHODS[m].rsm}
    assert report_after == report


def test_comments_docstrings_and_formatting_change_no_fingerprint(package):
    runs, report = _codes()
    _edit(package, "rsm.py", "import torch\n", "import torch  # a comment\n\n\n")
    _edit(package, "steps/distill.py", '"""', '"""An edited docstring. ', )
    _edit(package, "report/stats.py", "N_BOOT = 10_000", "N_BOOT = (\n    10_000\n)  # resamples")
    assert _codes() == (runs, report)


def test_report_code_changes_only_the_reports_fingerprint(package):
    runs, report = _codes()
    _edit(package, "report/stats.py", "N_BOOT = 10_000", "N_BOOT = 20_000")
    after, report_after = _codes()
    assert after == runs and report_after != report


def test_training_code_used_by_every_run_changes_every_run(package):
    runs, _ = _codes()
    _edit(package, "kd.py", "import torch\n", "import torch\n\n_UNUSED = 1\n")
    after, _ = _codes()
    assert all(after[m] != runs[m] for m in DISTILL_METHODS)


def test_imports_inside_functions_and_relative_imports_are_followed():
    names, data = fp.closure(fp.step_entries("prepare"))
    assert "ame.data.custom" in names  # imported inside ame.data.prepare_dataset, relatively
    assert "ame.data.images" in names  # imported on first use by ame.data's __getattr__
    names, data = fp.closure(fp.step_entries("distill"))
    assert {"ame.steps.distill", "ame.training.distillation", "ame.rsm", "ame.kd", "ame.models.student"} <= set(names)
    assert "model_configs" in data  # the tiny architectures are package data the step reads


def test_steps_are_read_from_the_command_line_module():
    assert "ame.steps.distill" in fp.step_entries("distill") and "ame.report" in fp.step_entries("report")
    with pytest.raises(ValueError, match="unknown step 'distil'; steps: .*distill"):
        fp.step_entries("distil")
