"""The preset is validated before any job: bad values name the key and the allowed values."""

from pathlib import Path

import pytest
import yaml

from ame.config import ConfigError, cells, distill_params, load_preset, validate_preset

ROOT = Path(__file__).resolve().parents[1]


def _mini() -> dict:
    return yaml.safe_load((ROOT / "config" / "mini.yaml").read_text())


def _write(tmp_path, cfg) -> Path:
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("name", ["mini", "paper"])
def test_shipped_presets_are_valid(name):
    cfg = load_preset(ROOT / "config" / f"{name}.yaml")
    assert cfg["preset"] == name


def test_defaults_are_filled_from_the_schema():
    cfg = validate_preset({"preset": "x", "datasets": ["Digits"], "shots": [16], "seeds": [1], "methods": ["pkd"]})
    assert cfg["rsm"] == {"omega": 50.0, "rank": 64, "trainable": True}
    assert cfg["optim"]["lr"] == 0.005 and cfg["optim"]["batch_size"] == 8
    assert cfg["kd"]["temperature"] == 1.0


@pytest.mark.parametrize("mutate,key,allowed", [
    (lambda c: c.update(datasets=["Nope"]), "datasets.0", "Digits"),
    (lambda c: c.update(shots=[0]), "shots.0", 'a positive integer or "full"'),
    (lambda c: c.update(shots=[-4]), "shots.0", 'a positive integer or "full"'),
    (lambda c: c["rsm"].update(omega=-1), "rsm.omega", ">= 0"),
    (lambda c: c.update(seeds=[]), "seeds", "at least one"),
    (lambda c: c.update(methods=["pkd", "magic"]), "methods.1", "pkd, pkd_rsm, simple, simple_rsm"),
    (lambda c: c["rsm"].update(rank=0), "rsm.rank", ">= 1"),
    (lambda c: c["cross_dataset"].update(targets=["Imagenette"]), "cross_dataset.targets.0", "MNIST"),
    (lambda c: c["rsm"].update(omgea=3), "rsm", "known keys: omega, rank, trainable"),
])
def test_bad_values_name_the_key_and_the_allowed_values(tmp_path, mutate, key, allowed):
    cfg = _mini()
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        load_preset(_write(tmp_path, cfg))
    message = str(err.value)
    assert f"key '{key}'" in message and allowed in message and "preset.yaml" in message


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("preset: mini\ndatasets: [Digits\nshots: [4]\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: YAML syntax error"):
        load_preset(path)


def test_missing_preset_lists_the_available_ones(tmp_path):
    (tmp_path / "mini.yaml").write_text("preset: mini\n")
    with pytest.raises(ConfigError, match="available presets: mini"):
        load_preset(tmp_path / "paper.yaml")


def test_dataset_aliases_are_canonicalised():
    cfg = _mini()
    cfg["datasets"] = ["digits", "mnist"]
    assert validate_preset(cfg)["datasets"] == ["Digits", "MNIST"]


def test_omega_reaches_only_the_rsm_runs():
    cfg = validate_preset(_mini())
    changed = validate_preset({**_mini(), "rsm": {**_mini()["rsm"], "omega": 10.0}})
    for method in ("pkd", "simple"):
        assert distill_params(cfg, "base2new", "Digits", "16shot", method) == \
            distill_params(changed, "base2new", "Digits", "16shot", method)
    for method in ("pkd_rsm", "simple_rsm"):
        assert distill_params(cfg, "base2new", "Digits", "16shot", method) != \
            distill_params(changed, "base2new", "Digits", "16shot", method)


def test_paper_grid_has_every_dataset_setting_and_method():
    cfg = load_preset(ROOT / "config" / "paper.yaml")
    grid = cells(cfg)
    assert len([c for c in grid if c.task == "base2new"]) == 11 * 3 * 4
    assert len([c for c in grid if c.task == "xd"]) == 10 * 2 * 2


def test_kd_weight_and_epochs_follow_the_reference_per_dataset():
    cfg = load_preset(ROOT / "config" / "paper.yaml")
    assert distill_params(cfg, "base2new", "DTD", "16shot", "pkd")["kd"]["weight"] == 200.0
    assert distill_params(cfg, "base2new", "EuroSAT", "16shot", "pkd")["kd"]["weight"] == 1000.0
    assert distill_params(cfg, "xd", "DTD", "16shot", "pkd")["kd"]["weight"] == 1000.0
    assert distill_params(cfg, "base2new", "ImageNet", "full", "pkd")["optim"]["epochs"] == 2
    assert distill_params(cfg, "base2new", "ImageNet", "16shot", "pkd")["optim"]["epochs"] == 20
    assert distill_params(cfg, "xd", "DTD", "16shot", "pkd")["prompts"]["depth"] == 3
    assert "prompts" not in distill_params(cfg, "base2new", "DTD", "16shot", "simple")
