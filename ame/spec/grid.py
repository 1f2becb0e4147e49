"""The experiment grid of a resolved preset, and the parameter dicts of the non-distillation steps.

Each step's dict holds exactly what that step reads besides its input files, so a change reruns
exactly the jobs that use it (Snakemake tracks the dict as the job's `params`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ame.spec.methods import method


def setting_name(shots: int | str) -> str:
    """4 -> "4shot", "full" -> "full"."""
    return "full" if shots == "full" else f"{int(shots)}shot"


def setting_shots(setting: str) -> int | str:
    """"4shot" -> 4, "full" -> "full"."""
    return "full" if setting == "full" else int(setting.removesuffix("shot"))


@dataclass(frozen=True, order=True)
class Cell:
    """One (task, dataset, setting, method) grid cell; it runs once per seed."""

    task: str
    dataset: str
    setting: str
    method: str


def cells(cfg: dict) -> list[Cell]:
    """Every distillation cell: base-to-new datasets × shots × methods, then cross-dataset targets."""
    out = [Cell("base2new", d, setting_name(k), m)
           for d in cfg["datasets"] for k in cfg["shots"] for m in cfg["methods"]]
    xd = cfg["cross_dataset"]
    if xd["enabled"]:
        out += [Cell("xd", t, setting_name(k), m) for t in xd["targets"] for k in xd["shots"] for m in xd["methods"]]
    return out


def zeroshot_datasets(cfg: dict) -> list[tuple[str, str]]:
    """(task, dataset) of every zero-shot row: each base-to-new dataset and cross-dataset target."""
    pairs = [("base2new", d) for d in cfg["datasets"]]
    if cfg["cross_dataset"]["enabled"]:
        pairs += [("xd", t) for t in cfg["cross_dataset"]["targets"]]
    return pairs


def teacher_datasets(cfg: dict) -> list[tuple[str, str]]:
    """(task, dataset) pairs that need a teacher: one per base-to-new dataset, one xd source."""
    pairs = [("base2new", d) for d in cfg["datasets"]]
    if cfg["cross_dataset"]["enabled"]:
        pairs.append(("xd", cfg["cross_dataset"]["source"]))
    return pairs


def teacher_source(cfg: dict, task: str, dataset: str) -> str:
    """Base-to-new: each dataset's own teacher; cross-dataset: the source's teacher."""
    return dataset if task == "base2new" else cfg["cross_dataset"]["source"]


def all_datasets(cfg: dict) -> list[str]:
    names = list(cfg["datasets"])
    xd = cfg["cross_dataset"]
    if xd["enabled"]:
        names += [xd["source"], *xd["targets"]]
    return list(dict.fromkeys(names))


def kd_weight(cfg: dict, task: str, dataset: str) -> float:
    """KD_WEIGHT: `kd.xd_weight` for cross-dataset, else `kd.weight[dataset]` or its `default`."""
    if task == "xd":
        return float(cfg["kd"]["xd_weight"])
    weights = cfg["kd"]["weight"]
    return float(weights.get(dataset, weights["default"]))


def epochs_for(cfg: dict, dataset: str, setting: str) -> int:
    """`optim.epochs` for K-shot runs; `optim.full_epochs[dataset]` (or its default) for full."""
    if setting != "full":
        return int(cfg["optim"]["epochs"])
    full = cfg["optim"]["full_epochs"]
    return int(full.get(dataset, full["default"]))


def teacher_cache_params(cfg: dict, task: str, dataset: str, setting: str) -> dict:
    """What a cell's teacher-output cache depends on besides its input files and seed; every method
    of the cell carries this same dict, so they share one cache and rerun when it changes."""
    cache = cfg["kd"]["teacher_cache"]
    methods = cfg["methods"] if task == "base2new" else cfg["cross_dataset"]["methods"]
    # Prompt-free students (Simple, Simple + RSM) read their frozen tower's features from the cache too.
    frozen = any(not method(m).prompts for m in methods)
    return {"task": task, "dataset": dataset, "setting": setting, "teacher_arch": cfg["models"]["teacher"]["arch"],
            "student_arch": cfg["models"]["student"]["arch"] if frozen else None,
            "logit_scale": cfg["kd"]["logit_scale"], "batch_size": cfg["optim"]["batch_size"],
            "epochs": epochs_for(cfg, dataset, setting), "augment": cfg["augment"],
            "precision": cfg["runtime"]["precision"], "device": cfg["runtime"]["device"],
            **{k: cache[k] for k in ("top_k", "full_max_mb", "dtype")}}


# Teacher keys that only one teacher.source reads; left out of the other's job parameters so that
# editing them reruns only the teachers that use them.
FETCH_ONLY_TEACHER_KEYS = ("checkpoint_root", "checkpoint_mirror", "allow_unknown_keys")
TRAIN_ONLY_TEACHER_KEYS = ("shots", "seed", "epochs", "lr", "batch_size", "momentum", "weight_decay", "warmup_epochs",
                           "warmup_lr")


def teacher_params(cfg: dict, task: str, dataset: str) -> dict:
    teacher = cfg["teacher"]
    if teacher["source"] == "fetch":
        return {"task": task, "dataset": dataset, "arch": cfg["models"]["teacher"]["arch"],
                **{k: v for k, v in teacher.items() if k not in TRAIN_ONLY_TEACHER_KEYS}}
    return {"task": task, "dataset": dataset, "arch": cfg["models"]["teacher"]["arch"],
            **{k: v for k, v in teacher.items() if k not in FETCH_ONLY_TEACHER_KEYS},
            "augment": cfg["augment"], "logit_scale": cfg["kd"]["logit_scale"],
            "precision": cfg["runtime"]["precision"], "device": cfg["runtime"]["device"],
            "all_classes": task == "xd"}


def teacher_check_params(cfg: dict, task: str, dataset: str) -> dict:
    """What scoring a teacher on its test split depends on besides its input files."""
    return {"task": task, "dataset": dataset, "source": cfg["teacher"]["source"],
            "image_size": cfg["augment"]["image_size"], "batch_size": cfg["eval"]["batch_size"],
            "precision": cfg["runtime"]["precision"], "device": cfg["runtime"]["device"]}


def backbone_params(cfg: dict, role: str) -> dict:
    model = cfg["models"][role]
    params = {"role": role, **model}
    if model["weights"] == "pretrain":
        params.update(datasets=all_datasets(cfg), image_size=cfg["augment"]["image_size"],
                      epochs=cfg["pretrain"][f"{role}_epochs"],
                      **{k: v for k, v in cfg["pretrain"].items() if not k.endswith("_epochs")})
    return params
