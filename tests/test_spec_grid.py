"""ame.spec.grid: a preset's grid of cells.
"""


from ame.spec import load_preset
from ame.spec.grid import cells
from tests.workspace import ROOT


def test_paper_grid_has_every_dataset_setting_and_method():
    grid = cells(load_preset(ROOT / "config" / "paper.yaml"))
    b2n = [c for c in grid if c.task == "base2new"]
    # 11 datasets x 4 settings (4, 16 and 30 shots and full: the paper's Figs. 4-5) x 4 methods
    assert len(b2n) == 11 * 4 * 4
    assert {c.setting for c in b2n} == {"4shot", "16shot", "30shot", "full"}
    # 10 targets x 2 settings (16 shots, full: Table 2) x 2 methods (PKD, PKD + RSM)
    assert len([c for c in grid if c.task == "xd"]) == 10 * 2 * 2
