"""Presets: load, validate (before any job runs), and expand into the experiment grid.

A preset YAML (config/mini.yaml, config/paper.yaml) holds the grid and every hyper-parameter. This
module is the only reader: the Snakefile, DVC's commands and the CLI all call `load_preset`, and the
per-job parameter dicts below are what Snakemake tracks, so a change reruns exactly the jobs whose
dict changed (e.g. omega reaches only the RSM runs).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ame.io import sha256_json

METHODS = ("pkd", "pkd_rsm", "simple", "simple_rsm")
TASKS = ("base2new", "xd")


class ConfigError(ValueError):
    """A preset that cannot run; the message names the file, the key and the allowed values."""


def schema() -> dict:
    return yaml.safe_load((resources.files("ame") / "schemas" / "config.schema.yaml").read_text())


def _fill_defaults(validator_cls):
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, sub_schema):
        if isinstance(instance, dict):
            for key, prop in properties.items():
                if "default" in prop and key not in instance:
                    instance[key] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, properties, instance, sub_schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    sub = error.schema if isinstance(error.schema, dict) else {}
    allowed = ""
    if "enum" in sub:
        allowed = f"; allowed values: {', '.join(map(str, sub['enum']))}"
    elif error.validator == "oneOf" and "shots" in key:
        allowed = '; allowed values: a positive integer or "full"'
    elif error.validator == "additionalProperties":
        allowed = f"; known keys: {', '.join(sorted(sub.get('properties', {})))}"
    elif error.validator == "minItems":
        allowed = "; give at least one value"
    elif error.validator in ("minimum", "exclusiveMinimum"):
        allowed = f"; must be {'>' if error.validator == 'exclusiveMinimum' else '>='} {error.validator_value}"
    hint = f" ({sub['description']})" if "description" in sub else ""
    return f"key '{key}': {error.message}{allowed}{hint}"


def validate_preset(raw: Any, where: str = "<preset>") -> dict:
    """Validate and fill defaults; raise ConfigError naming `where` and the first offending key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a preset must be a YAML mapping of keys to values")
    cfg = copy.deepcopy(raw)
    errors = sorted(_Validator(schema()).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError(f"{where}: " + "\n  ".join(_describe(e) for e in errors[:5]))
    _check_datasets(cfg, where)
    return cfg


def _check_datasets(cfg: dict, where: str) -> None:
    from ame.data.custom import check_custom_datasets
    from ame.data.registry import DATASET_NAMES, canonical_name

    try:
        custom = check_custom_datasets(cfg.get("custom_datasets"))
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    if custom:
        cfg["custom_datasets"] = custom

    def canon(value: str, key: str) -> str:
        if value in custom:
            return value
        try:
            return canonical_name(value)
        except ValueError:
            raise ConfigError(f"{where}: key '{key}': unknown dataset '{value}'; allowed values: "
                              f"{', '.join(DATASET_NAMES + sorted(custom))}") from None

    cfg["datasets"] = [canon(d, f"datasets.{i}") for i, d in enumerate(cfg["datasets"])]
    xd = cfg["cross_dataset"]
    if xd.get("enabled", False):
        if "source" not in xd:
            raise ConfigError(f"{where}: key 'cross_dataset.source': required when cross_dataset.enabled is true")
        xd["source"] = canon(xd["source"], "cross_dataset.source")
        xd["targets"] = [canon(d, f"cross_dataset.targets.{i}") for i, d in enumerate(xd["targets"])]
        if not xd["targets"]:
            raise ConfigError(f"{where}: key 'cross_dataset.targets': give at least one target dataset")
    ablation = cfg["ablation"]
    ablation["dataset"] = canon(ablation.get("dataset", cfg["datasets"][0]), "ablation.dataset")


def load_preset(path: str | Path) -> dict:
    """Read a preset file; YAML syntax errors are reported with their line and column."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        presets = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ConfigError(f"{path}: preset file not found; available presets: {', '.join(presets) or 'none'}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        place = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{place}: YAML syntax error: {getattr(err, 'problem', err)}") from None
    return validate_preset(raw, where=str(path))


# ---------------------------------------------------------------------------------------------
# The grid

def setting_name(shots: int | str) -> str:
    return "full" if shots == "full" else f"{int(shots)}shot"


def setting_shots(setting: str) -> int | str:
    return "full" if setting == "full" else int(setting.removesuffix("shot"))


def uses_rsm(method: str) -> bool:
    return method.endswith("_rsm")


def uses_prompts(method: str) -> bool:
    return method.startswith("pkd")


@dataclass(frozen=True, order=True)
class Cell:
    """One (task, dataset, setting, method) grid cell; it runs once per seed."""

    task: str
    dataset: str
    setting: str
    method: str


def cells(cfg: dict) -> list[Cell]:
    out = [Cell("base2new", d, setting_name(k), m)
           for d in cfg["datasets"] for k in cfg["shots"] for m in cfg["methods"]]
    xd = cfg["cross_dataset"]
    if xd.get("enabled", False):
        out += [Cell("xd", t, setting_name(k), m) for t in xd["targets"] for k in xd["shots"] for m in xd["methods"]]
    return out


def teacher_datasets(cfg: dict) -> list[tuple[str, str]]:
    """(task, dataset) pairs that need a teacher: one per base-to-new dataset, one xd source."""
    pairs = [("base2new", d) for d in cfg["datasets"]]
    if cfg["cross_dataset"].get("enabled", False):
        pairs.append(("xd", cfg["cross_dataset"]["source"]))
    return pairs


def all_datasets(cfg: dict) -> list[str]:
    names = list(cfg["datasets"])
    xd = cfg["cross_dataset"]
    if xd.get("enabled", False):
        names += [xd["source"], *xd["targets"]]
    return list(dict.fromkeys(names))


def kd_weight(cfg: dict, task: str, dataset: str) -> float:
    if task == "xd":
        return float(cfg["kd"]["xd_weight"])
    weights = cfg["kd"]["weight"]
    return float(weights.get(dataset, weights.get("default", 1000.0)))


def epochs_for(cfg: dict, dataset: str, setting: str) -> int:
    if setting != "full":
        return int(cfg["optim"]["epochs"])
    full = cfg["optim"]["full_epochs"]
    return int(full.get(dataset, full.get("default", cfg["optim"]["epochs"])))


def distill_params(cfg: dict, task: str, dataset: str, setting: str, method: str,
                   omega: float | None = None, rsm_trainable: bool | None = None) -> dict:
    """Everything a distillation run depends on besides its input files (and its seeds)."""
    params: dict[str, Any] = {
        "task": task, "dataset": dataset, "setting": setting, "method": method,
        "student_arch": cfg["models"]["student"]["arch"],
        "teacher_arch": cfg["models"]["teacher"]["arch"],
        "kd": {"temperature": cfg["kd"]["temperature"], "logit_scale": cfg["kd"]["logit_scale"],
               "weight": kd_weight(cfg, task, dataset)},
        "optim": {**{k: v for k, v in cfg["optim"].items() if k not in ("epochs", "full_epochs")},
                  "epochs": epochs_for(cfg, dataset, setting)},
        "augment": cfg["augment"],
        "eval": cfg["eval"],
        "precision": cfg["runtime"]["precision"],
        "device": cfg["runtime"]["device"],
        "checkpoint_every": cfg["runtime"]["checkpoint_every"],
    }
    if cfg["kd"]["teacher_cache"]["enabled"]:  # only then: with the cache off, runs' parameters are unchanged
        params["teacher_cache"] = teacher_cache_params(cfg, task, dataset, setting)
    if uses_prompts(method):
        depth = cfg["student"]["xd_prompt_depth" if task == "xd" else "prompt_depth"]
        params["prompts"] = {"tokens": cfg["student"]["prompt_tokens"], "depth": depth}
    if uses_rsm(method):
        params["rsm"] = dict(cfg["rsm"])
        if omega is not None:
            params["rsm"]["omega"] = omega
        if rsm_trainable is not None:
            params["rsm"]["trainable"] = rsm_trainable
    return params


def teacher_cache_params(cfg: dict, task: str, dataset: str, setting: str) -> dict:
    """What a cell's teacher-output cache depends on besides its input files and seed; every method
    of the cell carries this same dict, so they share one cache and rerun when it changes."""
    cache = cfg["kd"]["teacher_cache"]
    return {"task": task, "dataset": dataset, "setting": setting, "teacher_arch": cfg["models"]["teacher"]["arch"],
            "logit_scale": cfg["kd"]["logit_scale"], "batch_size": cfg["optim"]["batch_size"],
            "epochs": epochs_for(cfg, dataset, setting), "augment": cfg["augment"],
            "precision": cfg["runtime"]["precision"], "device": cfg["runtime"]["device"],
            **{k: cache[k] for k in ("top_k", "full_max_mb", "dtype")}}


# Teacher keys that only one teacher.source reads; left out of the other's job parameters so that
# editing them reruns only the teachers that use them.
FETCH_ONLY_TEACHER_KEYS = ("checkpoint_root", "checkpoint_mirror", "allow_unknown_keys")
TRAIN_ONLY_TEACHER_KEYS = ("shots", "seed", "epochs", "lr", "batch_size")


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


def params_sha256(params: dict) -> str:
    return sha256_json(params)
