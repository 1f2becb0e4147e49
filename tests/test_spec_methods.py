"""ame.spec.methods: the method registry says what each method trains and pairs with.
"""


from ame.spec import load_preset, run_spec
from ame.spec.methods import METHODS, rsm_pairs
from tests.workspace import ROOT


def test_methods_carry_prompts_and_rsm_from_the_registry():
    cfg = load_preset(ROOT / "config" / "paper.yaml")
    assert run_spec(cfg, "base2new", "DTD", "16shot", "pkd", 1).prompts.depth == 9
    assert run_spec(cfg, "xd", "DTD", "16shot", "pkd_rsm", 1).prompts.depth == 3
    assert run_spec(cfg, "base2new", "DTD", "16shot", "simple", 1).prompts is None
    assert run_spec(cfg, "base2new", "DTD", "16shot", "simple", 1).rsm is None
    assert run_spec(cfg, "base2new", "DTD", "16shot", "simple_rsm", 1).rsm is not None
    assert rsm_pairs() == [("simple", "simple_rsm"), ("pkd", "pkd_rsm")]
    assert all(METHODS[t].rsm and not METHODS[b].rsm for b, t in rsm_pairs())
