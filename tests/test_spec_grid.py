"""ame.spec.grid: a preset's grid of cells.
"""


from ame.spec import load_preset
from ame.spec.grid import cells
from tests.workspace import ROOT


def test_paper_grid_has_every_dataset_setting_and_method():
    grid = cells(load_preset(ROOT / "config" / "paper.yaml"))
    assert len([c for c in grid if c.task == "base2new"]) == 11 * 3 * 4
    assert len([c for c in grid if c.task == "xd"]) == 10 * 2 * 2
