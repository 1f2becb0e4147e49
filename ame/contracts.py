"""File contracts between pipeline stages (design §4), as JSON Schemas, with one validator.

Stages are built and tested independently; these schemas are what lets them trust each other's
files. Each writer validates before writing and each reader validates after reading.
"""

from __future__ import annotations

import math
from typing import Any

import jsonschema

_ENTRY = {
    "type": "array",
    "prefixItems": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}],
    "minItems": 2,
    "maxItems": 2,
}

SPLIT = {
    "type": "object",
    "required": ["dataset", "classnames", "root", "train", "test"],
    "properties": {
        "dataset": {"type": "string"},
        "classnames": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 2},
        "root": {"type": "string", "description": "folder the relative image paths are relative to"},
        "train": {"type": "array", "items": _ENTRY, "minItems": 1},
        "val": {"type": "array", "items": _ENTRY},
        "test": {"type": "array", "items": _ENTRY, "minItems": 1},
    },
}

SHOTS = {
    "type": "object",
    "required": ["dataset", "shots", "seed", "indices"],
    "additionalProperties": False,
    "properties": {
        "dataset": {"type": "string"},
        "shots": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "full"}]},
        "seed": {"type": "integer"},
        "indices": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
    },
}

_PCT = {"type": ["number", "null"], "minimum": 0, "maximum": 100}
_SCORES = {
    "type": "object",
    "required": ["base", "new", "hm", "accuracy", "epoch"],
    "properties": {"base": _PCT, "new": _PCT, "hm": _PCT, "accuracy": _PCT, "epoch": {"type": ["integer", "null"]}},
}

METRICS = {
    "type": "object",
    "required": ["dataset", "task", "setting", "method", "seed", "selection", "base", "new", "hm",
                 "accuracy", "last", "best_epoch", "provenance"],
    "properties": {
        "dataset": {"type": "string"},
        "task": {"enum": ["base2new", "xd"]},
        "setting": {"type": "string", "pattern": "^([0-9]+shot|full|zeroshot)$"},
        "method": {"type": "string"},
        "seed": {"type": "integer"},
        "selection": {"enum": ["best", "last"]},
        "base": _PCT,
        "new": _PCT,
        "hm": _PCT,
        "accuracy": _PCT,
        "last": _SCORES,
        "best_epoch": {"type": ["integer", "null"]},
        "provenance": {
            "type": "object",
            "required": ["git_sha", "config_sha256", "packages", "teacher_sha256", "device", "precision"],
            "properties": {
                "git_sha": {"type": "string"},
                "config_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "packages": {"type": "object", "additionalProperties": {"type": "string"}},
                "teacher_sha256": {"type": ["string", "null"]},
                "device": {"type": "string"},
                "precision": {"type": "string"},
            },
        },
    },
    # base2new runs report Base/New/HM; cross-dataset runs report one all-class accuracy.
    "if": {"properties": {"task": {"const": "base2new"}}},
    "then": {"properties": {"base": {"type": "number"}, "new": {"type": "number"}, "hm": {"type": "number"}}},
    "else": {"properties": {"accuracy": {"type": "number"}}},
}

# teacher_check/{task}/{dataset}.json: a loaded teacher's test accuracy (ame.steps.teacher_check).
TEACHER_CHECK = {
    "type": "object",
    "required": ["task", "dataset", "source", "base", "new", "hm", "accuracy", "n_test", "teacher_sha256"],
    "properties": {
        "task": {"enum": ["base2new", "xd"]},
        "dataset": {"type": "string"},
        "source": {"enum": ["train", "fetch"]},
        "base": _PCT,
        "new": _PCT,
        "hm": _PCT,
        "accuracy": _PCT,
        "n_test": {"type": "integer", "minimum": 1},
        "teacher_sha256": {"type": "string"},
    },
    "if": {"properties": {"task": {"const": "base2new"}}},
    "then": {"properties": {"base": {"type": "number"}, "new": {"type": "number"}, "hm": {"type": "number"}}},
    "else": {"properties": {"accuracy": {"type": "number"}}},
}

# `ame evaluate`: one model scored on one dataset's test images among some of its classes.
EVALUATION = {
    "type": "object",
    "required": ["model", "dataset", "classes", "n_classes", "n_images", "top1", "top5",
                 "mean_per_class_recall"],
    "properties": {
        "model": {"type": "string"},
        "dataset": {"type": "string"},
        "classes": {"enum": ["base", "new", "all"]},
        "n_classes": {"type": "integer", "minimum": 1},
        "n_images": {"type": "integer", "minimum": 1},
        "top1": {"type": "number", "minimum": 0, "maximum": 100},
        "top5": {"type": "number", "minimum": 0, "maximum": 100},
        "mean_per_class_recall": {"type": "number", "minimum": 0, "maximum": 100},
    },
}

HISTORY_COLUMNS = ["epoch", "lr", "kd_loss", "rsm_entropy", "total_loss", "base_acc"]

# embeddings.npz: final student image features on the evaluation images, for t-SNE and F-scores.
EMBEDDING_KEYS = {"features": "N x d float32", "labels": "N int64", "classnames": "C str"}


def _non_finite(obj: Any, path: tuple = ()) -> tuple[tuple, float] | None:
    """(key path, value) of the first NaN or infinite number in `obj`, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return path, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        found = _non_finite(value, (*path, key))
        if found is not None:
            return found
    return None


def validate(obj: Any, schema: dict, where: str) -> Any:
    """Raise ValueError naming the file (`where`) and the offending key if `obj` breaks `schema`,
    or holds a NaN or infinite number anywhere (a run that went wrong never reaches a table)."""
    bad = _non_finite(obj)
    if bad is not None:
        key = "/".join(str(p) for p in bad[0]) or "(top level)"
        raise ValueError(f"{where}: key '{key}': {bad[1]} is not a finite number; the run went wrong (see its "
                         "log) and is not reported")
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as err:
        key = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ValueError(f"{where}: key '{key}': {err.message}") from None
    return obj
