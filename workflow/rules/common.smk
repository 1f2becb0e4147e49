# Input functions and the planned runs. Every path comes from `ame.spec.Layout`, every job's
# parameters from `ame.spec` (the run specification for runs); no science and no path patterns here.
import json
import re

from ame.spec import Layout, ablation_specs, grid_specs, zeroshot_specs
from ame.spec import grid as ame_grid
from ame.spec.layout import (
    ABLATION_TABLES,
    REPORT_METRICS,
    REPORT_TABLES,
    RUN_FILES,
    ZEROSHOT_FILES,
)

L = Layout(cfg)
THREADS = cfg["runtime"]["threads"]
SEED_GROUPS = cfg["runtime"]["group_seeds"]
USE_TEACHER_CACHE = cfg["kd"]["teacher_cache"]["enabled"]
GPU = 0 if cfg["runtime"]["device"] == "cpu" else 1


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
