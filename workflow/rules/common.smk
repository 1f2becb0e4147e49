# Input functions and the planned runs. Every path comes from `ame.spec.Layout`, every job's
# parameters from `ame.spec` (the run specification for runs); no science and no path patterns here.
import json
import os
import re

from ame.data.custom import folder_state
from ame.fingerprint import fingerprint
from ame.report import plan as report_plan
from ame.report.captions import caption_path
from ame.report.ablation import ABLATION_FIGURES
from ame.spec import Layout, ablation_specs, grid_specs, zeroshot_specs
from ame.spec import grid as ame_grid
from ame.spec.methods import run_code
from ame.spec.resources import job_resources, job_threads
from ame.spec.layout import (
    ABLATION_TABLES,
    REPORT_METRICS,
    REPORT_TABLES,
    RUN_FILES,
    ZEROSHOT_FILES,
)

L = Layout(cfg)
SEED_GROUPS = cfg["runtime"]["group_seeds"]
USE_TEACHER_CACHE = cfg["kd"]["teacher_cache"]["enabled"]


def by_cell(specs):
    """{cell folder: [run specification per seed]}."""
    out = {}
    for spec in specs:
        out.setdefault(L.cell(spec), []).append(spec)
    return out


GRID = by_cell(grid_specs(cfg))
ABLATION = by_cell(ablation_specs(cfg))
DISTILL = {**GRID, **ABLATION}
ZEROSHOT = by_cell(zeroshot_specs(cfg))


def one_of(keys):
    """A wildcard constraint matching exactly these values."""
    return "|".join(re.escape(k) for k in sorted(keys)) or "(?!)"


wildcard_constraints:
    dataset="[A-Za-z0-9]+",
    task="base2new|xd",
    setting="[0-9]+shot|full",
    seed="[0-9]+",
    shots="[0-9]+|full",
    role="student|teacher",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def run_paths(specs, files):
    return [L.run_file(s, name) for s in specs for name in files]


def all_run_outputs():
    return [
        L.run_file(s, "metrics.json")
        for c in (GRID, ZEROSHOT)
        for ss in c.values()
        for s in ss
    ]


# Trained cross-dataset runs: each is scored again by `ame evaluate` from its saved student alone
# (rule evaluate), and Table 2 reads that evaluation.
XD_TRAINED = {cell: specs for cell, specs in GRID.items() if specs[0].task == "xd"}


def evaluation_outputs():
    return [L.run_file(s, "evaluation.json") for ss in XD_TRAINED.values() for s in ss]


def report_run_dirs():
    """The runs the report reads: exactly those the current preset plans."""
    return [L.run_dir(s) for c in (GRID, ZEROSHOT) for ss in c.values() for s in ss]


def ablation_run_dirs():
    return [L.run_dir(s) for ss in ABLATION.values() for s in ss]


def teacher_check_outputs():
    return [
        L.teacher_check.format(task=t, dataset=d)
        for t, d in ame_grid.teacher_datasets(cfg)
    ]


def all_model_outputs():
    out = [L.backbone.format(role=r) for r in ("student", "teacher")]
    out += [
        L.teacher.format(task=t, dataset=d) for t, d in ame_grid.teacher_datasets(cfg)
    ]
    out += [
        L.features.format(task=c.task, dataset=c.dataset) for c in ame_grid.cells(cfg)
    ]
    out += teacher_check_outputs()
    return sorted(set(out))


def all_data_outputs():
    out = [L.split.format(dataset=d) for d in ame_grid.all_datasets(cfg)]
    for c in ame_grid.cells(cfg):
        out += [
            L.shots.format(
                dataset=c.dataset, shots=ame_grid.setting_shots(c.setting), seed=s
            )
            for s in cfg["seeds"]
        ]
    out += [
        L.shots.format(
            dataset=d, shots=cfg["teacher"]["shots"], seed=cfg["teacher"]["seed"]
        )
        for _, d in ame_grid.teacher_datasets(cfg)
    ]
    return sorted(set(out))


# ---------------------------------------------------------------------------------- code
# Each job's parameters include a fingerprint of the code its step runs (ame.fingerprint), so an
# edit reruns exactly the jobs whose code changed; comments and formatting change nothing.
def code(step):
    return fingerprint(step)


def custom_state(dataset):
    """A custom dataset's files, as one hash (so adding or changing an image re-prepares it)."""
    spec = cfg["custom_datasets"].get(dataset)
    return folder_state(spec) if spec else ""


# ---------------------------------------------------------------------------------- models


def source_teacher(wc):
    """Base-to-new: the dataset's own teacher; cross-dataset: the source's."""
    return L.teacher.format(
        task=wc.task, dataset=ame_grid.teacher_source(cfg, wc.task, wc.dataset)
    )


# ---------------------------------------------------------------------------------- runs


def job_specs(wc):
    """Grouped seeds: the whole cell in one job; otherwise the job's {seed}."""
    specs = DISTILL[wc.cell]
    return specs if SEED_GROUPS else [s for s in specs if s.seed == int(wc.seed)]


def distill_outputs():
    if SEED_GROUPS:
        return [
            f"{L.run.format(cell='{cell}', seed=s)}/{name}"
            for s in cfg["seeds"]
            for name in RUN_FILES
        ]
    return [f"{L.run}/{name}" for name in RUN_FILES]


def distill_inputs(wc):
    spec = DISTILL[wc.cell][0]
    shots = ame_grid.setting_shots(spec.setting)
    inputs = {
        "split": L.split.format(dataset=spec.dataset),
        "shots": [
            L.shots.format(dataset=spec.dataset, shots=shots, seed=s.seed)
            for s in job_specs(wc)
        ],
        "student_backbone": L.backbone.format(role="student"),
        "teacher": L.teacher.format(
            task=spec.task,
            dataset=ame_grid.teacher_source(cfg, spec.task, spec.dataset),
        ),
        "text_features": L.features.format(task=spec.task, dataset=spec.dataset),
    }
    if USE_TEACHER_CACHE:
        inputs["teacher_cache"] = [
            L.teacher_cache.format(
                task=spec.task, dataset=spec.dataset, setting=spec.setting, seed=s.seed
            )
            for s in job_specs(wc)
        ]
    return inputs


# ---------------------------------------------------------------------------------- report
GRID_CELLS = sorted(
    {(s.task, s.dataset, s.setting, s.method) for ss in GRID.values() for s in ss}
)
FIGURE_DATASETS = report_plan.figure_datasets(GRID_CELLS)


def for_html_report(path, category, subcategory=None, labels=None):
    """`path` marked for `snakemake --report`, captioned by the `<stem>.caption.rst` the report
    writes beside it (an absolute path: Snakemake reads captions relative to this file).
    """
    caption = str(caption_path(os.path.abspath(path)))
    return report(
        path, caption=caption, category=category, subcategory=subcategory, labels=labels
    )


def report_tables():
    """Every table file of the report; the HTML pages are marked for the HTML report."""
    html = report_plan.HTML_TABLES
    return [
        for_html_report(L.table(n), html[n]) if n in html else L.table(n)
        for n in REPORT_TABLES
    ]


def report_figures():
    """Every figure of the report, PNG and PDF (Figs. 3-5 and training curves), and their
    caption files; the PNGs are marked for the HTML report."""
    marked = {
        name: for_html_report(L.figure(name), category, sub, labels)
        for name, category, sub, labels in report_plan.html_report_figures(
            FIGURE_DATASETS
        )
    }
    names = report_plan.figure_names(FIGURE_DATASETS)
    names += report_plan.figure_caption_names(FIGURE_DATASETS)
    return [marked.get(name, L.figure(name)) for name in names]


def ablation_figures():
    png, pdf = ABLATION_FIGURES
    return [
        for_html_report(L.ablation_table(png), "Ablation (ω × φ)"),
        L.ablation_table(pdf),
    ]


def report_curves():
    return [
        L.metric(f"curves/{stem}.csv") for stem in report_plan.curve_stems(GRID_CELLS)
    ]
