"""The run specification: one typed, frozen record of everything a distillation run uses.

Built from a resolved preset in one place (`run_spec`), passed by the rules to the CLI as JSON
(without the seed, which the job adds per run), rebuilt there (`RunSpec.from_dict`, strict: unknown
or missing keys and wrong types are errors), and written by every run as `params.json` beside its
`metrics.json`. The report reads runs through it, never through folder names.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from ame.spec.grid import cells, epochs_for, kd_weight, setting_name, teacher_cache_params, zeroshot_datasets
from ame.spec.methods import ZEROSHOT, method


@dataclass(frozen=True)
class KD:
    """L_KD = weight · τ² · Σ KL(σ(z_t/τ) ‖ σ(z_s/τ)) / (B·C) on logits z = logit_scale · cos."""

    temperature: float
    logit_scale: float
    weight: float


@dataclass(frozen=True)
class Optim:
    """PromptKD's optimisation: constant warm-up, then per-epoch cosine (ame.training.optim)."""

    name: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    warmup_epochs: int
    warmup_lr: float


@dataclass(frozen=True)
class Augment:
    """Training crops (Dassl's RandomResizedCrop + optional flip); image_size is the run's too."""

    image_size: int
    scale_min: float
    hflip: bool


@dataclass(frozen=True)
class Prompts:
    """Deep vision prompts of the PKD student: tokens per layer, prompted layers."""

    tokens: int
    depth: int


@dataclass(frozen=True)
class RSMSettings:
    """The paper's regulariser: L = L_KD + omega · H(M); M's width R = rank; φ trained or frozen."""

    omega: float
    rank: int
    trainable: bool


@dataclass(frozen=True)
class RunSpec:
    """One run. `variant` is "" for the preset's grid and names an ablation variant otherwise.

    Sub-records are None where the method does not use them: no `prompts` for Simple, no `rsm`
    without RSM, no `kd`/`optim`/`teacher_cache` for the zero-shot row (which never trains).
    """

    preset: str
    task: str
    dataset: str
    setting: str
    method: str
    seed: int
    variant: str
    student_arch: str
    teacher_arch: str
    augment: Augment
    eval_batch_size: int
    selection: str
    precision: str
    device: str
    kd: KD | None = None
    optim: Optim | None = None
    prompts: Prompts | None = None
    rsm: RSMSettings | None = None
    teacher_cache: dict | None = field(default=None)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """Plain JSON-able dict (the content of params.json)."""
        return dataclasses.asdict(self)

    def job_params(self) -> dict:
        """What one job of this run's cell tracks: the specification without the seed."""
        out = self.to_dict()
        del out["seed"]
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "run specification") -> RunSpec:
        """Rebuild from `to_dict()` output; ValueError naming `where` and the key on any mismatch."""
        return _build(cls, data, where)

    @property
    def cell(self) -> tuple[str, str, str, str, str]:
        return (self.task, self.dataset, self.setting, self.method, self.variant)


def _build(cls, data, where: str, path: str = ""):
    what = f"key '{path}'" if path else cls.__name__
    if not isinstance(data, dict):
        raise ValueError(f"{where}: {what}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where}: {what}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        if f.name not in data:
            if f.default is not dataclasses.MISSING:
                continue
            raise ValueError(f"{where}: key '{key}' missing")
        kwargs[f.name] = _convert(hints[f.name], data[f.name], where, key)
    return cls(**kwargs)


def _convert(tp, value, where: str, key: str):
    union = isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union
    options = typing.get_args(tp) if union else (tp,)
    if value is None:
        if type(None) in options:
            return None
        raise ValueError(f"{where}: key '{key}' must not be null")
    for option in options:
        if dataclasses.is_dataclass(option):
            return _build(option, value, where, key)
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option in (str, dict) and isinstance(value, option):
            return value
    names = " or ".join(o.__name__ for o in options if o is not type(None))
    raise ValueError(f"{where}: key '{key}': expected {names}, got {value!r}")


# ---------------------------------------------------------------------- building from a preset

def run_spec(cfg: dict, task: str, dataset: str, setting: str, method_name: str, seed: int,
             variant: str = "", rsm: RSMSettings | None = None) -> RunSpec:
    """The specification of one run of resolved preset `cfg` (`rsm` overrides the preset's RSM
    settings, for ablation variants)."""
    m = method(method_name)
    common = dict(preset=cfg["preset"], task=task, dataset=dataset, setting=setting, method=m.name, seed=seed,
                  variant=variant, student_arch=cfg["models"]["student"]["arch"],
                  teacher_arch=cfg["models"]["teacher"]["arch"], augment=Augment(**cfg["augment"]),
                  eval_batch_size=cfg["eval"]["batch_size"], selection=cfg["eval"]["selection"],
                  precision=cfg["runtime"]["precision"], device=cfg["runtime"]["device"])
    if not m.trains:
        return RunSpec(**common)
    optim = {k: v for k, v in cfg["optim"].items() if k != "full_epochs"}
    optim["epochs"] = epochs_for(cfg, dataset, setting)
    prompts = None
    if m.prompts:
        depth = cfg["student"]["xd_prompt_depth" if task == "xd" else "prompt_depth"]
        prompts = Prompts(tokens=cfg["student"]["prompt_tokens"], depth=depth)
    if m.rsm and rsm is None:
        rsm = RSMSettings(**cfg["rsm"])
    cache = teacher_cache_params(cfg, task, dataset, setting) if cfg["kd"]["teacher_cache"]["enabled"] else None
    return RunSpec(**common,
                   kd=KD(cfg["kd"]["temperature"], cfg["kd"]["logit_scale"], kd_weight(cfg, task, dataset)),
                   optim=Optim(**optim), prompts=prompts, rsm=rsm if m.rsm else None,
                   teacher_cache=cache)


def grid_specs(cfg: dict) -> list[RunSpec]:
    """Every distillation run of the preset's grid, one per cell and seed."""
    return [run_spec(cfg, c.task, c.dataset, c.setting, c.method, s) for c in cells(cfg) for s in cfg["seeds"]]


ZEROSHOT_SEED = 0  # a placeholder: the zero-shot row is deterministic and has no seeds


def zeroshot_specs(cfg: dict) -> list[RunSpec]:
    """The student's zero-shot row per base-to-new dataset and cross-dataset target."""
    return [run_spec(cfg, task, d, ZEROSHOT, ZEROSHOT, ZEROSHOT_SEED) for task, d in zeroshot_datasets(cfg)]


def ablation_variant(omega: float, trainable: bool) -> str:
    """The variant name of one ablation point (a folder name; the report reads params.json)."""
    return f"omega{omega:g}_{'trained' if trainable else 'frozen'}"


def ablation_specs(cfg: dict) -> list[RunSpec]:
    """ω × φ (trained | frozen) for `ablation.method` (PKD + RSM by default) on the preset's
    ablation cell, every seed."""
    a = cfg["ablation"]
    out = []
    for omega in a["omegas"]:
        for trainable in (True, False):
            rsm = RSMSettings(omega=float(omega), rank=cfg["rsm"]["rank"], trainable=trainable)
            out += [run_spec(cfg, "base2new", a["dataset"], setting_name(a["shots"]), a["method"], s,
                             variant=ablation_variant(omega, trainable), rsm=rsm) for s in cfg["seeds"]]
    return out
