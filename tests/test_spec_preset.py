"""ame.spec.preset: a preset is rejected before any job with the file, the key and what is
allowed (schema, aliases, cross-field checks, overrides, `extends`); what it accepts is resolved.
"""


import pytest
import yaml

from ame.spec import ConfigError, load_active, load_preset, validate_preset
from ame.spec.preset import typed_overrides
from tests.workspace import ROOT, rejects, shipped_preset, write_preset


@pytest.mark.parametrize("name", ["mini", "paper"])
def test_shipped_presets_are_valid_and_named_after_their_file(name):
    assert load_preset(ROOT / "config" / f"{name}.yaml")["preset"] == name


def test_defaults_are_filled_from_the_schema_and_the_image_size_from_the_architecture():
    cfg = validate_preset({"datasets": ["Digits"], "shots": [16], "seeds": [1], "methods": ["pkd"]}, name="x")
    assert cfg["augment"]["image_size"] == 32  # the tiny default architectures' input size
    assert cfg["rsm"] == {"omega": 50.0, "rank": 64, "trainable": True}
    assert cfg["optim"]["lr"] == 0.005 and cfg["optim"]["batch_size"] == 8
    assert cfg["kd"]["weight"] == {"default": 1000.0} and cfg["optim"]["full_epochs"]["ImageNet"] == 2


@pytest.mark.parametrize("mutate,fragments", [
    (lambda c: c.update(datasets=["Nope"]), ["key 'datasets.0'", "Digits"]),
    (lambda c: c.update(shots=[0]), ["key 'shots.0'", 'a positive integer or "full"']),
    (lambda c: c["rsm"].update(omega=-1), ["key 'rsm.omega'", ">= 0"]),
    (lambda c: c.update(seeds=[]), ["key 'seeds'", "at least one"]),
    (lambda c: c.update(methods=["pkd", "magic"]), ["key 'methods.1'", "pkd, pkd_rsm"]),
    (lambda c: c["rsm"].update(rank=0), ["key 'rsm.rank'", ">= 1"]),
    (lambda c: c["cross_dataset"].update(targets=["Imagenette"]), ["key 'cross_dataset.targets.0'", "MNIST"]),
    # misspelled keys anywhere: named, with the likely intended key
    (lambda c: c["rsm"].update(omgea=3), ["key 'rsm.omgea': unknown key (did you mean 'omega'?)",
                                          "known keys here: omega, rank, trainable"]),
    (lambda c: c.update(seed=[1]), ["key 'seed': unknown key (did you mean 'seeds'?)"]),
    # integers must be integers (64.0 validated, then crashed a job mid-DAG)
    (lambda c: c["rsm"].update(rank=64.0), ["key 'rsm.rank'", "whole number"]),
    (lambda c: c["optim"].update(batch_size=16.0), ["key 'optim.batch_size'", "whole number"]),
    # dataset-keyed settings: misspelled ids are named, with the allowed ids
    (lambda c: c["kd"].update(weight={"default": 1000, "Digitz": 200}),
     ["key 'kd.weight.Digitz': unknown dataset 'Digitz' (did you mean 'Digits'?)", "MNIST"]),
    (lambda c: c["optim"].update(full_epochs={"default": 2, "ImageNett": 1}),
     ["key 'optim.full_epochs.ImageNett'", "ImageNet"]),
    # cross-field checks
    (lambda c: c["augment"].update(image_size=16),
     ["key 'augment.image_size': 16 px", "'ame-tiny-student' takes 32-px images"]),
    (lambda c: c["cross_dataset"].update(targets=["Digits", "MNIST"]),
     ["key 'cross_dataset.targets': lists the source MNIST itself"]),
    (lambda c: c["cross_dataset"].update(methods=[]), ["key 'cross_dataset.methods'", "at least one"]),
    (lambda c: c["ablation"].update(method="pkd"), ["key 'ablation.method'", "allowed values: simple_rsm, pkd_rsm"]),
    (lambda c: c["cross_dataset"].update(targets=[]), ["key 'cross_dataset.targets'", "at least one"]),
    (lambda c: c.update(preset="mini"), ["key 'preset': says 'mini' but this preset is 'preset'"]),
])
def test_bad_values_are_rejected_naming_the_file_the_key_and_the_allowed_values(tmp_path, mutate, fragments):
    cfg = shipped_preset("mini")
    mutate(cfg)
    rejects(tmp_path, cfg, *fragments)


def test_a_copied_preset_cannot_write_into_the_original_presets_folders(tmp_path):
    # cp config/mini.yaml config/mine.yaml: the copy still says `preset: mini`.
    cfg = {**shipped_preset("mini"), "preset": "mini"}
    rejects(tmp_path, cfg, "key 'preset': says 'mini' but this preset is 'mine'", name="mine")
    del cfg["preset"]
    assert load_preset(write_preset(tmp_path, cfg, "mine"))["preset"] == "mine"


def test_openai_weights_need_quickgelu_towers(tmp_path):
    cfg = shipped_preset("paper")
    cfg["models"]["student"]["arch"] = "ViT-B-16"
    rejects(tmp_path, cfg, "key 'models.student.arch': 'ViT-B-16' builds GELU towers", "'ViT-B-16-quickgelu'")


def test_fetched_promptkd_teachers_need_quickgelu_towers(tmp_path):
    cfg = shipped_preset("paper")
    cfg["models"]["teacher"] = {"arch": "ViT-L-14", "weights": "pretrain"}
    rejects(tmp_path, cfg, "key 'models.teacher.arch'", "PromptKD's released teachers", "'ViT-L-14-quickgelu'")


def test_unknown_architectures_are_named(tmp_path):
    cfg = shipped_preset("paper")
    cfg["models"]["student"]["arch"] = "ViT-B-16-quickgelo"
    rejects(tmp_path, cfg, "key 'models.student.arch': unknown architecture", "did you mean 'ViT-B-16-quickgelu'")


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("datasets: [Digits\nshots: [4]\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: YAML syntax error"):
        load_preset(path)


def test_missing_preset_lists_the_available_ones(tmp_path):
    (tmp_path / "mini.yaml").write_text("datasets: [Digits]\n")
    with pytest.raises(ConfigError, match="available presets: mini"):
        load_preset(tmp_path / "paper.yaml")


def test_an_id_given_twice_through_an_alias_is_rejected(tmp_path):
    cfg = shipped_preset("paper")
    cfg["kd"]["weight"] = {"default": 1000, "DTD": 200, "dtd": 100}
    rejects(tmp_path, cfg, "DTD is given twice", name="paper")


def test_dataset_aliases_are_canonicalised():
    cfg = shipped_preset("mini")
    cfg["datasets"] = ["digits", "mnist"]
    assert validate_preset(cfg, name="mini")["datasets"] == ["Digits", "MNIST"]


def test_command_line_overrides_are_validated_and_reach_the_preset(tmp_path):
    (tmp_path / "mini.yaml").write_text((ROOT / "config" / "mini.yaml").read_text())
    active = tmp_path / "config.yaml"
    active.write_text("preset: mini\n")
    # Snakemake hands nested `--config` values over as strings.
    cfg, path = load_active({"rsm": {"omega": "10"}, "seeds": ["1", "2"]}, active)
    assert path == tmp_path / "mini.yaml"
    assert cfg["rsm"] == {"omega": 10, "rank": 64, "trainable": True} and cfg["seeds"] == [1, 2]
    with pytest.raises(ConfigError, match=r"overrides .*key 'rsm.omgea': unknown key \(did you mean 'omega'\?\)"):
        load_active({"rsm": {"omgea": "10"}}, active)
    with pytest.raises(ConfigError, match="key 'rsm.rank'.*whole number"):
        load_active({"rsm": {"rank": "64.0"}}, active)


def test_typed_overrides_keep_strings_where_the_schema_takes_strings():
    assert typed_overrides({"teacher": {"ctx_init": "1 2"}, "shots": ["4", "full"], "datasets": ["2"]}) == \
        {"teacher": {"ctx_init": "1 2"}, "shots": [4, "full"], "datasets": ["2"]}


def test_a_broken_active_file_gets_a_clear_message(tmp_path):
    active = tmp_path / "config.yaml"
    active.write_text("presets: mini\n")
    with pytest.raises(ConfigError, match=r"config.yaml: key 'preset' missing \(found 'presets': a typo\?\)"):
        load_active({}, active)
    active.write_text("preset: [mini\n")
    with pytest.raises(ConfigError, match=r"config.yaml: line \d+, column \d+: YAML syntax error"):
        load_active({}, active)


def test_every_schema_entry_uses_only_schema_keywords_so_no_description_was_cut_by_yaml():
    from ame.spec.preset import schema

    keywords = {"type", "default", "description", "minimum", "maximum", "exclusiveMinimum", "enum", "items",
                "properties", "additionalProperties", "required", "oneOf", "const", "minItems", "uniqueItems",
                "pattern", "minLength", "x-dataset-keyed", "title", "$schema"}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                is_data = path.endswith((".properties", ".default")) or path == "properties"
                assert is_data or key in keywords, f"schema {path}: unexpected key {key!r} (a YAML quoting slip?)"
                walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(schema(), "")


@pytest.mark.parametrize("value", [0, 2.5, "10"])
def test_a_bad_checkpoint_interval_is_rejected(tmp_path, value):
    cfg = shipped_preset("mini")
    cfg["runtime"]["checkpoint_minutes"] = value
    rejects(tmp_path, cfg, "key 'runtime.checkpoint_minutes'")


def _leaves(tree: dict, prefix: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def test_the_paper_smoke_preset_is_the_paper_preset_except_what_it_sets():
    from ame.spec.preset import read_preset_file

    smoke_file = yaml.safe_load((ROOT / "config" / "paper-smoke.yaml").read_text())
    merged = read_preset_file(ROOT / "config" / "paper-smoke.yaml")
    set_here = dict(_leaves({k: v for k, v in smoke_file.items() if k != "extends"}))
    for path, value in _leaves(shipped_preset("paper")):
        expected = set_here.get(path, value)
        found = merged
        for key in path:
            found = found[key]
        assert found == expected, path
    # the paper's architectures, prompts, KD, RSM, optimiser and image size are inherited, not copied
    assert {"models", "student", "kd", "rsm", "augment", "eval"} & set(smoke_file) == {"models"}
    assert set(smoke_file["models"]["student"]) == {"weights"} and set(smoke_file["optim"]) == {"epochs"}


def test_an_extending_preset_merges_mappings_and_replaces_lists_and_values(tmp_path):
    from ame.spec.preset import read_preset_file

    (tmp_path / "base.yaml").write_text("preset: base\ndatasets: [Digits, MNIST]\nrsm: {omega: 10, rank: 8}\n")
    (tmp_path / "child.yaml").write_text("extends: base\ndatasets: [Digits]\nrsm: {omega: 5}\n")
    (tmp_path / "grandchild.yaml").write_text("extends: child\nseeds: [4]\n")
    assert read_preset_file(tmp_path / "grandchild.yaml") == {"datasets": ["Digits"], "rsm": {"omega": 5, "rank": 8},
                                                              "seeds": [4]}  # the base's name is not inherited


@pytest.mark.parametrize("files, fragment", [
    ({"a": "extends: b\n", "b": "extends: a\n"}, "presets extend each other in a circle (a -> b -> a)"),
    ({"a": "extends: absent\n"}, "key 'extends': no preset 'absent'"),
    ({"a": "extends: [b]\n"}, "key 'extends': give the name of a preset beside it"),
])
def test_a_broken_extends_is_an_error_naming_the_file(tmp_path, files, fragment):
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_preset(tmp_path / "a.yaml")
    assert fragment in str(err.value) and ".yaml" in str(err.value), str(err.value)


def test_extends_is_a_key_of_preset_files_only_not_an_override(tmp_path):
    (tmp_path / "mini.yaml").write_text((ROOT / "config" / "mini.yaml").read_text())
    (tmp_path / "config.yaml").write_text("preset: mini\n")
    with pytest.raises(ConfigError, match="extends"):
        load_active({"extends": "paper"}, active_file=tmp_path / "config.yaml")
