"""Backbone weights from a local file (models.<role>.weights: a path): every usual format loads, the
card records the file's sha256, a file made for another architecture is refused by key and shapes,
and the file is an input of its backbone job."""

import json
import re
import subprocess

import pytest
import torch
from safetensors.torch import save_file

from ame.cli import main
from ame.io import read_json, sha256_file
from ame.models.clip import create_clip
from ame.models.load import load_backbone
from ame.spec import ConfigError, validate_preset
from ame.spec.grid import backbone_params
from tests.workspace import ROOT, tool_env

ARCH = "ame-tiny-student"


def _mini(weights) -> dict:
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "mini.yaml").read_text())
    cfg["models"]["student"]["weights"] = str(weights)
    return validate_preset(cfg, name="mini")


def _write(path, fmt, model):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        save_file(state, str(path))
    elif fmt == "nested":
        torch.save({"state_dict": state, "epoch": 3}, path)
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.script(model), str(path))
    else:
        torch.save(state, path)


def _backbone(tmp_path, cfg, *extra):
    card = tmp_path / "out" / "student.json"
    main(["backbone", "--params", json.dumps(backbone_params(cfg, "student")), "--splits", "--out-card", str(card),
          *extra])
    return card


@pytest.mark.parametrize("fmt, suffix", [("plain", ".pt"), ("nested", ".pth"), ("safetensors", ".safetensors"),
                                         ("torchscript", ".pt")])
def test_a_local_weights_file_becomes_a_backbone_with_its_checksum(tmp_path, fmt, suffix):
    torch.manual_seed(3)
    model = create_clip(ARCH)
    weights = tmp_path / f"weights{suffix}"
    _write(weights, fmt, model)
    card = read_json(_backbone(tmp_path, _mini(weights)))
    assert card["weights"] == "file" and card["file"] == str(weights.resolve())
    assert card["sha256"] == sha256_file(weights)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["student.json"]  # no placeholder file
    loaded, _ = load_backbone(tmp_path / "out" / "student.json")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_weights_of_another_architecture_are_refused_naming_the_key_and_both_shapes(tmp_path, capsys):
    weights = tmp_path / "teacher.pt"
    torch.save(create_clip("ame-tiny-teacher").state_dict(), weights)
    with pytest.raises(SystemExit):
        _backbone(tmp_path, _mini(weights))
    err = capsys.readouterr().err
    assert re.search(r"teacher\.pt: tensor '[\w.]+' has shape \(\d+(, \d+)*\) in the file but \(\d+(, \d+)*\) in "
                     r"ame-tiny-student", err), err
    assert not (tmp_path / "out" / "student.json").exists()


def test_a_missing_file_is_rejected_by_the_preset_and_a_changed_one_at_loading(tmp_path):
    with pytest.raises(ConfigError, match="key 'models.student.weights': no file"):
        _mini(tmp_path / "absent.safetensors")
    weights = tmp_path / "w.pt"
    torch.save(create_clip(ARCH).state_dict(), weights)
    card = _backbone(tmp_path, _mini(weights))
    weights.write_bytes(weights.read_bytes() + b"\0")  # replaced by other bytes
    with pytest.raises(ValueError, match="changed since"):
        load_backbone(card)


def test_the_weights_file_is_an_input_of_its_backbone_job(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file(create_clip(ARCH).state_dict(), str(weights))
    override = f"models={{'student': {{'arch': '{ARCH}', 'weights': '{weights}'}}}}"
    proc = subprocess.run(["snakemake", "-n", "-p", "--forceall", "models", "--config", override], cwd=ROOT,
                          env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    job = next(b for b in re.split(r"\n(?=rule )", proc.stdout) if "wildcards: role=student" in b)
    assert str(weights) in re.search(r"input: (.*)", job).group(1)


def test_a_weights_file_is_written_only_for_weights_trained_here(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    torch.save(create_clip(ARCH).state_dict(), weights)
    with pytest.raises(SystemExit):
        _backbone(tmp_path, _mini(weights), "--out-weights", str(tmp_path / "out" / "student.pt"))
    assert "not trained here" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_open_clip_weights_absent_offline_stop_with_how_to_fill_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    params = {"arch": "ViT-B-16-quickgelu", "weights": "openai", "image_size": 224}
    with pytest.raises(SystemExit):
        main(["backbone", "--params", json.dumps(params), "--splits", "--out-card", str(tmp_path / "card.json")])
    err = capsys.readouterr().err
    assert "ViT-B-16-quickgelu 'openai' weights are not in open_clip's cache" in err, err
    assert "Backbone weights, also offline" in err
    assert not (tmp_path / "card.json").exists()
