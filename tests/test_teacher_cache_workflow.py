"""Snakemake wiring of kd.teacher_cache: off (the default), the DAG has no cache jobs and the same
distillation jobs; on, one cache job per (task, dataset, setting, seed) feeds every method."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.workspace import job_counts, reduced_preset

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(tmp_path: Path, cache: bool) -> dict[str, int]:
    work = tmp_path / ("on" if cache else "off")
    work.mkdir()
    shutil.copy(ROOT / "Snakefile", work / "Snakefile")
    shutil.copytree(ROOT / "workflow", work / "workflow")
    (work / "config").mkdir()
    cfg = reduced_preset()
    cfg["kd"]["teacher_cache"] = {"enabled": cache}
    (work / "config" / "ci.yaml").write_text(yaml.safe_dump(cfg))
    (work / "config" / "config.yaml").write_text("preset: ci\n")
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "runs", "--quiet", "rules"],
                          cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return job_counts(proc.stdout + proc.stderr)


def test_cache_jobs_appear_only_when_enabled_and_distill_jobs_stay_the_same(tmp_path):
    off, on = _dry_run(tmp_path, cache=False), _dry_run(tmp_path, cache=True)
    assert "teacher_cache" not in off
    # reduced preset: base2new Digits 4-shot and xd Digits 4-shot, seeds 1 and 2 -> 2 cells x 2 seeds,
    # each cache read by both methods of its cell (pkd and pkd_rsm for base2new)
    assert on["teacher_cache"] == 2 * 2
    assert on["distill"] == off["distill"]
    assert {k: v for k, v in on.items() if k not in ("teacher_cache", "total")} == \
        {k: v for k, v in off.items() if k != "total"}
