"""The README's examples are what the code does."""

import json
import re
from pathlib import Path

from ame.spec import RunSpec, load_preset, run_spec

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_params_json_example_is_what_a_miniature_run_records():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## What a run records"):]
    example = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))
    path = re.search(r"\(`(results/mini/runs/[^`]+/params\.json)`\)", section).group(1)
    task, dataset, setting, method, seed = path.split("/")[3:8]
    spec = run_spec(load_preset(ROOT / "config" / "mini.yaml"), task, dataset, setting, method,
                    int(seed.removeprefix("seed")))
    assert example == spec.to_dict()
    assert RunSpec.from_dict(example) == spec
