"""dvc.yaml's stages depend on exactly the code their Snakemake targets run."""

from pathlib import Path

import yaml

from ame.fingerprint import files_of_steps

ROOT = Path(__file__).resolve().parents[1]
# Stage -> the `ame` steps its Snakemake target runs (README: "Both engines").
STAGE_STEPS = {
    "data": ["prepare", "shots"],
    "models": ["backbone", "teacher", "teacher-features", "teacher-check"],
    "runs": ["distill", "zeroshot", "teacher-cache", "evaluate"],
    "report": ["report"],
    "ablation": ["distill", "ablation-report"],
    "provenance": [],  # shares .snakemake/metadata: runs no ame code
}


def test_every_target_rule_has_a_stage_whose_code_deps_are_its_import_closure():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(STAGE_STEPS)
    for name, steps in STAGE_STEPS.items():
        code = sorted(d for d in stages[name]["deps"] if d.startswith("ame/"))
        assert code == files_of_steps(steps), (
            f"dvc.yaml stage {name}: code deps drifted; regenerate them with `ame code-files {' '.join(steps)}`")


def test_stages_call_their_snakemake_targets():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    targets = {"data": "data", "models": "models", "runs": "runs", "report": "all", "ablation": "ablation"}
    assert stages["provenance"]["cmd"] == "true"
    for name, target in targets.items():
        assert stages[name]["cmd"] == f"snakemake --cores all {target}"
