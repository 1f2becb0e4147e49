"""Helpers for tests that drive the workflow as a user does: a real `git clone` of this repository
with a reduced miniature preset made active, and commands run with the installed tools."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def reduced_preset() -> dict:
    """The miniature cut to a few minutes: Digits 4-shot, seeds 1-2, PKD and PKD+RSM, one xd cell."""
    cfg = yaml.safe_load((ROOT / "config" / "mini.yaml").read_text())
    cfg.update(datasets=["Digits"], shots=[4], seeds=[1, 2], methods=["pkd", "pkd_rsm"])
    cfg["cross_dataset"].update(source="MNIST", targets=["Digits"], shots=[4], methods=["pkd"])
    cfg["pretrain"].update(student_epochs=1, teacher_epochs=1)
    cfg["teacher"].update(epochs=1)
    cfg["optim"].update(epochs=2, full_epochs={"default": 1})
    cfg["ablation"].update(dataset="Digits", shots=4, omegas=[0, 50])
    return cfg


def tool_env(**extra: str) -> dict:
    """The environment jobs see: this interpreter's tools first, offline, no analytics."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
            "DVC_NO_ANALYTICS": "1", "MPLBACKEND": "Agg", **extra}


def run(cmd, cwd, timeout: int = 1200, env: dict | None = None, **kw) -> str:
    """Run a command; fail the test with its output unless it exits 0. Returns stdout + stderr."""
    proc = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), capture_output=True, text=True,
                          timeout=timeout, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def job_counts(out: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's "Job stats" table."""
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}


def clone_project(work: Path, preset: dict) -> Path:
    """A real `git clone` of this repository (its committed files and .gitignore, as users get
    them) with `preset` saved as `config/ci.yaml` and made active. Jobs run the installed `ame`."""
    run(["git", "clone", "-q", str(ROOT), str(work)], ROOT)
    (work / "config" / "ci.yaml").write_text(yaml.safe_dump(preset))
    (work / "config" / "config.yaml").write_text("preset: ci\n")
    return work


def shipped_preset(name: str) -> dict:
    """A preset file of config/ as written (not validated)."""
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


def write_preset(folder: Path, cfg: dict, name: str = "preset") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def rejects(folder: Path, cfg: dict, *fragments: str, name: str = "preset") -> str:
    """Assert that loading `cfg` as preset `name` fails naming its file and every fragment."""
    import pytest

    from ame.spec import ConfigError, load_preset

    with pytest.raises(ConfigError) as err:
        load_preset(write_preset(folder, cfg, name))
    message = str(err.value)
    assert f"{name}.yaml" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message
