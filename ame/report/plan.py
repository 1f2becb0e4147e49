"""Which figures and curve files a report makes, decided from the grid's cells alone.

The report rule declares exactly these files as its outputs (from the run specifications, before
anything runs) and `build_report` draws exactly these (from the runs it reads), so deleting any
one regenerates it. A cell is (task, dataset, setting, method) of a trained run.
"""

from __future__ import annotations

from collections.abc import Iterable

from ame.report.dvc_metrics import CURVE_METRICS
from ame.report.reference import CANONICAL_DATASETS
from ame.spec.methods import METHODS, rsm_pairs

PREFERRED_TSNE = ("OxfordPets",)          # the paper's Figure 4
PREFERRED_HEATMAPS = ("Food101", "EuroSAT")  # the paper's Figure 3


def _dataset_order(name: str):
    return (0, CANONICAL_DATASETS.index(name), name) if name in CANONICAL_DATASETS else (1, 0, name)


def preferred_pairs() -> list[tuple[str, str]]:
    """RSM pairs, PKD's first (the paper's figures compare PromptKD with PKD + RSM)."""
    return sorted(rsm_pairs(), key=lambda pair: not METHODS[pair[1]].prompts)


def paired_datasets(cells: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """Base-to-new datasets where both methods of an RSM pair ran at a common setting."""
    have = {(d, s, m) for t, d, s, m in cells if t == "base2new"}
    out = {d for d, s, m in have for b, t in rsm_pairs() if m == t and (d, s, b) in have}
    return sorted(out, key=_dataset_order)


def choose(requested, preferred, available: list[str], k: int, what: str) -> list[str]:
    """`requested` datasets (all must be available), else the preferred ones, then the others, k at most."""
    if requested:
        requested = [requested] if isinstance(requested, str) else list(requested)
        absent = [d for d in requested if d not in available]
        if absent:
            raise ValueError(f"{what}: no paired baseline/+RSM runs with embeddings.npz for "
                             f"{absent}; available: {available or 'none'}")
        return requested
    chosen = [d for d in preferred if d in available]
    chosen += [d for d in available if d not in chosen]
    return chosen[:k]


def figure_datasets(cells, tsne=None, heatmaps=None) -> tuple[list[str], list[str]]:
    """(t-SNE datasets, F-score heatmap datasets): one and up to two paired datasets."""
    available = paired_datasets(list(cells))
    return (choose(tsne, PREFERRED_TSNE, available, 1, "tsne_dataset"),
            choose(heatmaps, PREFERRED_HEATMAPS, available, 2, "heatmap_datasets"))


def curve_stems(cells) -> list[str]:
    """Stems of the DVC curve files: per (task, dataset, setting), each metric a method logs."""
    groups: dict[tuple[str, str, str], set[str]] = {}
    for task, dataset, setting, method in cells:
        if METHODS[method].trains:
            groups.setdefault((task, dataset, setting), set()).add(method)
    out = []
    for (task, dataset, setting), methods in sorted(groups.items()):
        for metric in CURVE_METRICS:
            if metric != "rsm_entropy" or any(METHODS[m].rsm for m in methods):
                out.append(f"{task}_{dataset}_{setting}_{metric}")
    return out


def figure_names(tsne: list[str], heatmaps: list[str]) -> list[str]:
    return (["accuracy_vs_shots.png"] + [f"tsne_{d}.png" for d in tsne]
            + [f"training_curves_{d}.png" for d in tsne] + [f"fscore_{d}.png" for d in heatmaps])
