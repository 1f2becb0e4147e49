"""Outputs follow the user's umask, and a write that cannot happen names the file and the cause."""

import errno
import os
import stat
from pathlib import Path

import pytest

from ame.io import OutputError, torch_save, write_json, write_text


@pytest.fixture
def umask():
    def set_umask(value):
        os.umask(value)
    old = os.umask(0o022)
    os.umask(old)
    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_text(tmp_path / "a" / "table.md", "x")
    write_json(tmp_path / "metrics.json", {"hm": 1.0})
    torch_save({"w": 1}, tmp_path / "student.pt")
    for name in ("a/table.md", "metrics.json", "student.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o777 & ~mask


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "table1.csv"
    write_text(target, "old\n")

    def full(self, data, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError) as err:
        write_text(target, "new\n")
    assert str(target) in str(err.value) and "no space left on the device" in str(err.value)
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table1.csv"]  # no temporary file left behind


def test_an_unwritable_folder_names_the_file_and_the_cause(tmp_path, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):  # what mkstemp raises in a folder without write permission
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError) as err:
        write_json(tmp_path / "runs" / "metrics.json", {})
    assert f"{tmp_path / 'runs' / 'metrics.json'}: cannot write it: permission denied" in str(err.value)
