"""Job resources of each Snakemake rule, from the preset's `runtime` section.

`runtime.resources.<rule>` holds `mem_mb` (MB) and `runtime` (minutes) of one job; the rules that
compute on `runtime.device` also take `threads` (default `runtime.threads`) and ask for one GPU
unless the device is `cpu`. Which rules compute on the device is read from the schema (those whose
entry has a `threads` key), so the schema stays the one place that says it. The same numbers reach
local runs (`snakemake --resources gpu=1 mem_mb=...` caps them) and the SLURM executor
(`--mem`, `-t`, `--cpus-per-task`, `--gpus`).
"""

from __future__ import annotations

from functools import lru_cache

from ame.spec.preset import schema


@lru_cache(maxsize=1)
def _rule_schemas() -> dict:
    return schema()["properties"]["runtime"]["properties"]["resources"]["properties"]


def resource_rules() -> list[str]:
    """The rules that have a `runtime.resources` entry: every rule that runs a job."""
    return list(_rule_schemas())


def device_rules() -> list[str]:
    """The rules whose jobs compute on `runtime.device` (and take threads)."""
    return [name for name, sub in _rule_schemas().items() if "threads" in sub["properties"]]


def job_threads(cfg: dict, rule: str) -> int:
    """Threads of one job of `rule`: its own `threads`, else `runtime.threads` (device rules), else 1."""
    if rule not in device_rules():
        return 1
    return cfg["runtime"]["resources"][rule].get("threads", cfg["runtime"]["threads"])


def job_resources(cfg: dict, rule: str) -> dict[str, int]:
    """Snakemake resources of one job of `rule`: mem_mb, runtime (minutes) and, for device rules, gpu.

    Raises KeyError for a rule without a `runtime.resources` entry (a rule added to the workflow
    needs one in the schema).
    """
    entry = cfg["runtime"]["resources"][rule]
    out = {"mem_mb": entry["mem_mb"], "runtime": entry["runtime"]}
    if rule in device_rules():
        out["gpu"] = 0 if cfg["runtime"]["device"] == "cpu" else 1
    return out
