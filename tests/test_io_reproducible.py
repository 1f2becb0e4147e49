"""Identical inputs give identical bytes, whatever the temporary file names or the clock."""

import time

import numpy as np
import torch

from ame.io import sha256_file, torch_save, write_npz


def test_torch_save_bytes_do_not_depend_on_file_names(tmp_path):
    torch.manual_seed(0)
    state = {"weights": torch.nn.Linear(8, 4).state_dict(), "classes": ["a", "b"]}
    # Two writes land under different random temporary names and different final names.
    torch_save(state, tmp_path / "teacher.pt")
    torch_save(state, tmp_path / "other" / "copy_of_teacher.pt")
    assert sha256_file(tmp_path / "teacher.pt") == sha256_file(tmp_path / "other" / "copy_of_teacher.pt")
    loaded = torch.load(tmp_path / "teacher.pt", weights_only=True)
    assert torch.equal(loaded["weights"]["weight"], state["weights"]["weight"])


def test_npz_bytes_do_not_depend_on_the_time_of_writing(tmp_path, monkeypatch):
    arrays = {"features": np.arange(12, dtype=np.float32).reshape(3, 4), "labels": np.array([0, 1, 1]),
              "classnames": np.array(["zero", "one"])}
    write_npz(tmp_path / "a.npz", **arrays)
    later = time.time() + 3 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    write_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "b.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["classnames", "features", "labels"]
        np.testing.assert_array_equal(npz["features"], arrays["features"])
        assert npz["classnames"].tolist() == ["zero", "one"]
