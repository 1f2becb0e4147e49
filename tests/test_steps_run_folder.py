"""ame.steps.run_folder: a run folder's history follows its contract, and a finished run kept in
scratch is restored byte for byte under its own key only."""

import pytest

from ame import contracts
from ame.spec.layout import RUN_FILES
from ame.steps.run_folder import drop_finished, keep_finished, restore_finished, write_history


def _finished_run(folder):
    for i, name in enumerate(sorted(RUN_FILES)):
        (folder / name).write_bytes(f"{name} {i}".encode())


def test_history_has_the_contract_columns_in_order(tmp_path):
    write_history(tmp_path / "history.csv", [{"epoch": 1, "lr": "0.005", "kd_loss": "1.5", "rsm_entropy": "",
                                               "total_loss": "1.5", "base_acc": "80.0000"}])
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines == [",".join(contracts.HISTORY_COLUMNS), "1,0.005,1.5,,1.5,80.0000"]


def test_a_kept_run_is_restored_byte_for_byte_under_its_key_only(tmp_path):
    out, scratch, again = tmp_path / "out", tmp_path / "scratch", tmp_path / "again"
    out.mkdir()
    again.mkdir()
    _finished_run(out)
    keep_finished(out, scratch, key="k1")
    assert not restore_finished(again, scratch, key="k2")  # another specification, code or input
    assert list(again.iterdir()) == []
    assert restore_finished(again, scratch, key="k1")
    assert {p.name: p.read_bytes() for p in again.iterdir()} == {p.name: p.read_bytes() for p in out.iterdir()}
    drop_finished(scratch)
    assert not restore_finished(again, scratch, key="k1")


@pytest.mark.parametrize("missing", ["key.json", "metrics.json"])
def test_an_incomplete_kept_copy_is_never_restored_and_the_run_is_trained_again(tmp_path, missing):
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    out.mkdir()
    _finished_run(out)
    keep_finished(out, scratch, key="k")
    (scratch / "finished" / missing).unlink()
    restored = tmp_path / "restored"
    restored.mkdir()
    assert not restore_finished(restored, scratch, key="k")
    assert list(restored.iterdir()) == []
