"""Presets: read, merge command-line overrides, validate strictly, before any job runs.

A preset (config/<name>.yaml) holds the grid and every hyper-parameter; its name is its file name.
Defaults live only in the schema (`ame/schemas/config.schema.yaml`). Validation rejects, naming the
file, the key and what is allowed:
- unknown or misspelled keys anywhere ("did you mean"), non-integers for integer fields;
- unknown dataset ids in `datasets`, `cross_dataset`, `ablation` and every dataset-keyed setting
  (schema keyword `x-dataset-keyed`, e.g. `kd.weight`, `optim.full_epochs`), whose keys are
  canonicalised through the one alias table (`ame.data.registry`);
- cross-field contradictions: image size vs architecture, GELU towers for QuickGELU weights, a
  cross-dataset source among its targets, empty cross-dataset lists, a `preset:` key that disagrees
  with the file name, duplicate class names of a custom dataset.
An RSM method without its baseline is allowed (Fig. 5 plots Simple + RSM alone); the report then
leaves its paired effect out and says so.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import sys
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ame.spec.methods import DISTILL_METHODS, METHODS

ACTIVE_FILE = "config/config.yaml"


class ConfigError(ValueError):
    """A preset that cannot run; the message names the file, the key and the allowed values."""


def schema() -> dict:
    """The preset schema, with the method registry filled in as the allowed `methods` values."""
    data = yaml.safe_load((resources.files("ame") / "schemas" / "config.schema.yaml").read_text())
    props = data["properties"]
    for items in (props["methods"]["items"], props["cross_dataset"]["properties"]["methods"]["items"]):
        items["enum"] = list(DISTILL_METHODS)
    props["ablation"]["properties"]["method"]["enum"] = [m for m in DISTILL_METHODS if METHODS[m].rsm]
    return data


def _fill_defaults(validator_cls):
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, sub_schema):
        if isinstance(instance, dict):
            for key, prop in properties.items():
                if "default" in prop and key not in instance:
                    instance[key] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, properties, instance, sub_schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


# JSON Schema counts 64.0 as an integer; a preset must not (a float batch size crashes mid-DAG).
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
_Validator = _fill_defaults(jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES))


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    sub = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        known = sorted(sub.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        return "; ".join(f"key '{key + '.' if key != '(top level)' else ''}{k}': unknown key"
                         f"{_did_you_mean(k, known)}; known keys here: {', '.join(known)}" for k in extra)
    allowed = ""
    if "enum" in sub:
        allowed = f"; allowed values: {', '.join(map(str, sub['enum']))}"
    elif error.validator == "oneOf" and "shots" in key:
        allowed = '; allowed values: a positive integer or "full"'
    elif error.validator == "minItems":
        allowed = "; give at least one value"
    elif error.validator in ("minimum", "exclusiveMinimum"):
        allowed = f"; must be {'>' if error.validator == 'exclusiveMinimum' else '>='} {error.validator_value}"
    elif error.validator == "type" and error.validator_value == "integer":
        allowed = "; write a whole number without a decimal point"
    hint = f" ({sub['description']})" if "description" in sub else ""
    return f"key '{key}': {error.message}{allowed}{hint}"


def deep_merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_preset(raw: Any, name: str, where: str = "<preset>") -> dict:
    """Validate `raw` as preset `name` and fill defaults; raise ConfigError naming `where` and keys.

    Returns the resolved preset: every key present, dataset ids canonical, `preset` = `name`.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a preset must be a YAML mapping of keys to values")
    cfg = copy.deepcopy(raw)
    if "preset" in cfg and cfg["preset"] != name:
        raise ConfigError(f"{where}: key 'preset': says '{cfg['preset']}' but this preset is '{name}' (its "
                          f"file name); remove the key or make it '{name}', so that its runs do not "
                          f"land in preset '{cfg['preset']}''s folders")
    cfg["preset"] = name
    sch = schema()
    errors = sorted(_Validator(sch).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError(f"{where}: " + "\n  ".join(_describe(e) for e in errors[:5]))
    try:
        _check_datasets(cfg, sch)
        _check_models(cfg)
        _check_memory(cfg)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return cfg


# ------------------------------------------------------------------------------------- datasets

def _dataset_keyed(sch: dict, path: tuple = ()) -> list[tuple[tuple, dict]]:
    """(key path, sub-schema) of every dataset-keyed mapping in the schema."""
    out = []
    for key, sub in sch.get("properties", {}).items():
        if sub.get("x-dataset-keyed"):
            out.append(((*path, key), sub))
        out += _dataset_keyed(sub, (*path, key))
    return out


def _check_datasets(cfg: dict, sch: dict) -> None:
    from ame.data.custom import check_custom_datasets
    from ame.data.registry import DATASET_NAMES, canonical_name

    try:
        custom = check_custom_datasets(cfg.get("custom_datasets"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    cfg["custom_datasets"] = custom
    allowed = DATASET_NAMES + sorted(custom)

    def canon(value: str, key: str) -> str:
        if value in custom:
            return value
        try:
            return canonical_name(value)
        except ValueError:
            raise ConfigError(f"key '{key}': unknown dataset '{value}'{_did_you_mean(value, allowed)}; allowed "
                              f"values: {', '.join(allowed)} (or an alias, see `ame datasets`)") from None

    cfg["datasets"] = [canon(d, f"datasets.{i}") for i, d in enumerate(cfg["datasets"])]
    if len(set(cfg["datasets"])) != len(cfg["datasets"]):
        raise ConfigError("key 'datasets': two entries name the same dataset (an id and its alias)")
    xd = cfg["cross_dataset"]
    if xd["enabled"]:
        if "source" not in xd:
            raise ConfigError("key 'cross_dataset.source': required when cross_dataset.enabled is true")
        xd["source"] = canon(xd["source"], "cross_dataset.source")
        xd["targets"] = [canon(d, f"cross_dataset.targets.{i}") for i, d in enumerate(xd["targets"])]
        for key in ("targets", "shots", "methods"):
            if not xd[key]:
                raise ConfigError(f"key 'cross_dataset.{key}': give at least one value when "
                                  "cross_dataset.enabled is true (or set enabled: false)")
        if xd["source"] in xd["targets"]:
            raise ConfigError(f"key 'cross_dataset.targets': lists the source {xd['source']} itself; a "
                              "cross-dataset target must differ from cross_dataset.source")
    ablation = cfg["ablation"]
    ablation["dataset"] = canon(ablation.get("dataset", cfg["datasets"][0]), "ablation.dataset")
    for path, sub in _dataset_keyed(sch):
        parent = cfg
        for key in path[:-1]:
            parent = parent[key]
        dotted = ".".join(path)
        out = {}
        for key, value in parent[path[-1]].items():
            cid = "default" if key == "default" else canon(key, f"{dotted}.{key}")
            if cid in out:
                raise ConfigError(f"key '{dotted}.{key}': {cid} is given twice (an id and its alias)")
            out[cid] = value
        out.setdefault("default", sub["default"]["default"])
        parent[path[-1]] = out


# ------------------------------------------------------------------------------------- models

def _model_config_dirs() -> list[Path]:
    dirs = [Path(str(resources.files("ame") / "model_configs"))]
    spec = find_spec("open_clip")  # located, not imported: importing it loads torch
    if spec is not None and spec.submodule_search_locations:
        dirs.append(Path(list(spec.submodule_search_locations)[0]) / "model_configs")
    return dirs


def architecture(arch: str) -> dict | None:
    """The open_clip model config of `arch` (ours, open_clip's shipped ones, or one registered with
    `open_clip.add_model_config` in this process), or None when unknown."""
    for folder in _model_config_dirs():
        path = folder / f"{arch}.json"
        if path.is_file():
            return json.loads(path.read_text())
    open_clip = sys.modules.get("open_clip")
    if open_clip is not None:
        return open_clip.get_model_config(arch)
    return None


def _check_memory(cfg: dict) -> None:
    """The decoded-image cache lives inside a distillation job's memory, so it must be smaller."""
    cache, memory = cfg["runtime"]["decoded_cache_mb"], cfg["runtime"]["resources"]["distill"]["mem_mb"]
    if cache >= memory:
        raise ConfigError(f"key 'runtime.decoded_cache_mb': {cache} MB of decoded images would not fit in a "
                          f"distillation job's {memory} MB (runtime.resources.distill.mem_mb); lower it or raise "
                          "the job's memory")


def _architectures() -> list[str]:
    return sorted({p.stem for d in _model_config_dirs() if d.is_dir() for p in d.glob("*.json")})


def _check_models(cfg: dict) -> None:
    image_size = cfg["augment"].get("image_size")
    for role in ("student", "teacher"):
        model = cfg["models"][role]
        key = f"models.{role}.arch"
        arch = architecture(model["arch"])
        if arch is None:
            raise ConfigError(f"key '{key}': unknown architecture '{model['arch']}'"
                              f"{_did_you_mean(model['arch'], _architectures())}; use an open_clip "
                              "architecture name (open_clip.list_models()) or one in ame/model_configs/")
        if model["weights"] not in ("pretrain", "openai") and not Path(model["weights"]).is_file():
            raise ConfigError(f"key 'models.{role}.weights': no file {model['weights']} (a local weights file is "
                              "read relative to the project folder; or use pretrain / openai)")
        quick = f"{model['arch']}-quickgelu"
        needs_quick = model["weights"] == "openai" or (role == "teacher" and cfg["teacher"]["source"] == "fetch")
        if needs_quick and not arch.get("quick_gelu", False):
            why = ("OpenAI's weights" if model["weights"] == "openai" else "PromptKD's released teachers")
            fix = f"use '{quick}'" if architecture(quick) else "use a -quickgelu architecture"
            raise ConfigError(f"key '{key}': '{model['arch']}' builds GELU towers, but {why} were trained "
                              f"with QuickGELU, so every activation would be wrong; {fix}")
        size = arch["vision_cfg"]["image_size"]
        size = size if isinstance(size, int) else max(size)
        if image_size is None:  # not given: the first architecture's size, checked against the other's
            image_size = cfg["augment"]["image_size"] = size
        if image_size != size:
            raise ConfigError(f"key 'augment.image_size': {image_size} px, but {key} '{model['arch']}' takes "
                              f"{size}-px images; set augment.image_size: {size}")


# ------------------------------------------------------------------------------------- files

def _available_presets(folder: Path) -> list[str]:
    """Names of the preset files in `folder` (config.yaml, the active-preset file, is none)."""
    return sorted(p.stem for p in folder.glob("*.yaml") if p.name != "config.yaml") if folder.is_dir() else []


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: preset file not found; available presets: "
                          f"{', '.join(_available_presets(path.parent)) or 'none'}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        place = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{place}: YAML syntax error: {getattr(err, 'problem', err)}") from None


EXTENDS = "extends"


def read_preset_file(path: Path, _chain: tuple[Path, ...] = ()) -> Any:
    """The preset in file `path` as written, with `extends: NAME` resolved: the preset NAME.yaml
    beside it (itself possibly extending another) with this file's keys merged on top (mappings
    key by key, lists and values replaced). ConfigError for a missing base or a cycle."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or EXTENDS not in raw:
        return raw
    name = raw.pop(EXTENDS)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"{path}: key '{EXTENDS}': give the name of a preset beside it, e.g. `extends: paper`")
    base_path = path.parent / f"{name}.yaml"
    chain = (*_chain, path.resolve())
    if base_path.resolve() in chain:
        raise ConfigError(f"{path}: key '{EXTENDS}': presets extend each other in a circle "
                          f"({' -> '.join(p.stem for p in chain)} -> {name})")
    if not base_path.is_file():
        raise ConfigError(f"{path}: key '{EXTENDS}': no preset '{name}' ({base_path} not found); available "
                          f"presets: {', '.join(_available_presets(path.parent))}")
    base = read_preset_file(base_path, chain)
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: a preset must be a YAML mapping of keys to values (extended by {path})")
    base.pop("preset", None)  # the base's own name; this preset is named by its file
    return deep_merge(base, raw)


def load_preset(path: str | Path, overrides: dict | None = None) -> dict:
    """Read preset file `path` (its name is the file's stem; `extends: NAME` starts from preset
    NAME, see `read_preset_file`), apply `overrides`, validate.

    YAML syntax errors are reported with their line and column; see `validate_preset` for the rest.
    """
    path = Path(path)
    raw = read_preset_file(path)
    where = str(path)
    if overrides:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: a preset must be a YAML mapping of keys to values")
        raw = deep_merge(raw, overrides)
        where = f"{path} with overrides {json.dumps(overrides, sort_keys=True)}"
    return validate_preset(raw, name=path.stem, where=where)


def _accepts_string(sub: dict) -> bool:
    kind = sub.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _sub_schema(sub: dict, key) -> dict:
    if isinstance(key, int):
        return sub.get("items", {})
    if key in sub.get("properties", {}):
        return sub["properties"][key]
    extra = sub.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def typed_overrides(value: Any, sub: dict | None = None) -> Any:
    """Snakemake reads `--config KEY=VALUE` values in YAML's base schema, so every scalar inside a
    mapping or list arrives as a string ("10", "true"). Read such strings as YAML where the
    schema does not take a string there, so `--config "rsm={'omega': 10}"` means ω = 10."""
    sub = schema() if sub is None else sub
    if isinstance(value, dict):
        return {k: typed_overrides(v, _sub_schema(sub, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [typed_overrides(v, _sub_schema(sub, i)) for i, v in enumerate(value)]
    if isinstance(value, str) and not _accepts_string(sub):
        try:
            return yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            return value
    return value


def load_active(command_line: dict | None = None, active_file: str | Path = ACTIVE_FILE) -> tuple[dict, Path]:
    """The active preset: `active_file` (config/config.yaml) names it (`preset: NAME` ->
    config/NAME.yaml beside it); `command_line` (Snakemake's `config`, i.e. what `--config` and
    `--configfile` gave) is merged on top, and every key besides `preset` overrides that preset's
    key, validated like the file. Returns (resolved preset, preset file)."""
    active_file = Path(active_file)
    base = _read_yaml(active_file) if active_file.is_file() else {}
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise ConfigError(f"{active_file}: must be a YAML mapping such as `preset: mini`")
    config = deep_merge(base, typed_overrides(command_line or {}))
    if "preset" not in config:
        close = difflib.get_close_matches("preset", [str(k) for k in config], n=1, cutoff=0.6)
        found = f" (found '{close[0]}': a typo?)" if close else ""
        raise ConfigError(f"{active_file}: key 'preset' missing{found}; it names the active preset, e.g. "
                          "`preset: mini` (or pass --config preset=mini)")
    name = config.pop("preset")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{active_file}: key 'preset': give a preset name such as mini or paper")
    path = active_file.parent / f"{name}.yaml"
    return load_preset(path, overrides=config or None), path
