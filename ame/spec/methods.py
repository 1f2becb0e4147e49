"""The method registry: every distillation method the pipeline knows, and what it is made of.

Code, schema, report, figures and `dvc.yaml` ask this registry instead of listing method names or
testing name suffixes. Adding a method is one entry here (plus whatever its training needs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One method of the grid.

    name:      the id used in presets, run folders and tables.
    label:     the paper's name for it (AME Table 1 / Fig. 5 legend).
    trains:    False for the student's zero-shot row (no distillation).
    prompts:   deep vision prompts in the student (PromptKD's PKD); False = projector only (Simple).
    rsm:       adds ω·H(M), the paper's regulariser (Eq. 6).
    baseline:  the method this one is paired with for the paired RSM effect (Δ = this − baseline).
    paper_row: its row name in the AME paper's tables (ame/reference/), None where the paper has none.
    modules:   `ame` modules only this kind of method runs (e.g. ame.rsm): left out of the code
               fingerprint of the other methods' runs, so editing them reruns only these runs.
    colour, marker, linestyle: figure style (Okabe–Ito colour-blind-safe palette).
    """

    name: str
    label: str
    trains: bool = True
    prompts: bool = False
    rsm: bool = False
    baseline: str | None = None
    paper_row: str | None = None
    modules: tuple[str, ...] = ()
    colour: str = "#000000"
    marker: str = "o"
    linestyle: str = "-"


# Order = the tables' row order within a dataset (the paper's: CLIP, Simple, PromptKD, +RSM).
_METHODS = (
    Method("zeroshot", "CLIP (student zero-shot)", trains=False, paper_row="CLIP",
           colour="#999999", marker="x", linestyle=":"),
    Method("simple", "Simple", colour="#E69F00", marker="v", linestyle="--"),
    Method("simple_rsm", "Simple + RSM", rsm=True, baseline="simple", modules=("ame.rsm",),
           colour="#D55E00", marker="^"),
    Method("pkd", "PromptKD", prompts=True, paper_row="PromptKD", colour="#0072B2", marker="s", linestyle="--"),
    Method("pkd_rsm", "PKD + RSM", prompts=True, rsm=True, baseline="pkd", paper_row="PKD + RSM",
           modules=("ame.rsm",), colour="#009E73", marker="o"),
)

METHODS: dict[str, Method] = {m.name: m for m in _METHODS}
# What a preset may list under `methods:` (the zero-shot row is always added).
DISTILL_METHODS: tuple[str, ...] = tuple(m.name for m in _METHODS if m.trains)
ZEROSHOT = "zeroshot"


def method(name: str) -> Method:
    """The registry entry for `name`; ValueError listing the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


def rsm_pairs(names=None) -> list[tuple[str, str]]:
    """(baseline, treated) for every RSM method (of `names`, if given) whose baseline is known."""
    chosen = [m for m in _METHODS if names is None or m.name in names]
    return [(m.baseline, m.name) for m in chosen if m.rsm and m.baseline is not None]


def method_order(name: str) -> tuple[int, str]:
    """Sort key: registry order, unknown names last."""
    names = list(METHODS)
    return (names.index(name), name) if name in METHODS else (len(names), name)


def run_code(step: str, name: str) -> str:
    """Fingerprint of the code `ame <step>` runs for a run of method `name` (`ame.fingerprint`):
    modules that only other methods use are left out."""
    from ame.fingerprint import fingerprint

    unused = {mod for m in _METHODS for mod in m.modules} - set(method(name).modules)
    return fingerprint(step, tuple(sorted(unused)))
