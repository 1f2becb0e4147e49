"""ame.spec.layout: every path of a preset lives under its own folders.
"""

from dataclasses import replace


from ame.spec import Layout, load_preset, run_spec, validate_preset
from tests.workspace import ROOT, shipped_preset


def test_every_output_of_a_preset_lives_under_its_own_folder():
    mini = load_preset(ROOT / "config" / "mini.yaml")
    other = validate_preset({**shipped_preset("mini"), "preset": "mine"}, name="mine")
    a, b = Layout(mini), Layout(other)
    for attr in ("tables", "figures", "metrics", "logs", "scratch"):
        assert getattr(a, attr).startswith("results/mini/") and getattr(b, attr).startswith("results/mine/")
    spec = run_spec(mini, "base2new", "Digits", "16shot", "pkd", 1)
    assert a.run_dir(spec) == "results/mini/runs/base2new/Digits/16shot/pkd/seed1"
    assert b.run_dir(replace(spec, preset="mine")) != a.run_dir(spec)
