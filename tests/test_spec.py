"""The run specification: strict presets, overrides, the method registry, typed runs, paths.

A preset is rejected before any job with the file, the key and what is allowed; whatever it
accepts reaches exactly the runs it affects, and each run's record round-trips.
"""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ame.spec import ConfigError, Layout, RunSpec, grid_specs, load_active, load_preset, run_spec, validate_preset
from ame.spec.grid import cells
from ame.spec.methods import METHODS, rsm_pairs
from ame.spec.preset import typed_overrides
from ame.spec.run import ablation_specs, zeroshot_specs

ROOT = Path(__file__).resolve().parents[1]


def _mini() -> dict:
    return yaml.safe_load((ROOT / "config" / "mini.yaml").read_text())


def _paper() -> dict:
    return yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())


def _write(tmp_path, cfg, name="preset") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rejects(tmp_path, cfg, *fragments, name="preset"):
    with pytest.raises(ConfigError) as err:
        load_preset(_write(tmp_path, cfg, name))
    message = str(err.value)
    assert f"{name}.yaml" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------------------ shipped presets

@pytest.mark.parametrize("name", ["mini", "paper"])
def test_shipped_presets_are_valid_and_named_after_their_file(name):
    assert load_preset(ROOT / "config" / f"{name}.yaml")["preset"] == name


def test_defaults_are_filled_from_the_schema_and_the_image_size_from_the_architecture():
    cfg = validate_preset({"datasets": ["Digits"], "shots": [16], "seeds": [1], "methods": ["pkd"]}, name="x")
    assert cfg["augment"]["image_size"] == 32  # the tiny default architectures' input size
    assert cfg["rsm"] == {"omega": 50.0, "rank": 64, "trainable": True}
    assert cfg["optim"]["lr"] == 0.005 and cfg["optim"]["batch_size"] == 8
    assert cfg["kd"]["weight"] == {"default": 1000.0} and cfg["optim"]["full_epochs"]["ImageNet"] == 2


def test_paper_grid_has_every_dataset_setting_and_method():
    grid = cells(load_preset(ROOT / "config" / "paper.yaml"))
    assert len([c for c in grid if c.task == "base2new"]) == 11 * 3 * 4
    assert len([c for c in grid if c.task == "xd"]) == 10 * 2 * 2


# ------------------------------------------------------------------------------ bad values

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
    cfg = _mini()
    mutate(cfg)
    _rejects(tmp_path, cfg, *fragments)


def test_a_copied_preset_cannot_write_into_the_original_presets_folders(tmp_path):
    # cp config/mini.yaml config/mine.yaml: the copy still says `preset: mini`.
    cfg = {**_mini(), "preset": "mini"}
    _rejects(tmp_path, cfg, "key 'preset': says 'mini' but this preset is 'mine'", name="mine")
    del cfg["preset"]
    assert load_preset(_write(tmp_path, cfg, "mine"))["preset"] == "mine"


def test_openai_weights_need_quickgelu_towers(tmp_path):
    cfg = _paper()
    cfg["models"]["student"]["arch"] = "ViT-B-16"
    _rejects(tmp_path, cfg, "key 'models.student.arch': 'ViT-B-16' builds GELU towers", "'ViT-B-16-quickgelu'")


def test_fetched_promptkd_teachers_need_quickgelu_towers(tmp_path):
    cfg = _paper()
    cfg["models"]["teacher"] = {"arch": "ViT-L-14", "weights": "pretrain"}
    _rejects(tmp_path, cfg, "key 'models.teacher.arch'", "PromptKD's released teachers", "'ViT-L-14-quickgelu'")


def test_unknown_architectures_are_named(tmp_path):
    cfg = _paper()
    cfg["models"]["student"]["arch"] = "ViT-B-16-quickgelo"
    _rejects(tmp_path, cfg, "key 'models.student.arch': unknown architecture", "did you mean 'ViT-B-16-quickgelu'")


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("datasets: [Digits\nshots: [4]\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: YAML syntax error"):
        load_preset(path)


def test_missing_preset_lists_the_available_ones(tmp_path):
    (tmp_path / "mini.yaml").write_text("datasets: [Digits]\n")
    with pytest.raises(ConfigError, match="available presets: mini"):
        load_preset(tmp_path / "paper.yaml")


# ------------------------------------------------------------------------------ aliases reach the runs

def test_promptkd_dataset_spellings_in_dataset_keyed_settings_reach_the_runs(tmp_path):
    cfg = _paper()
    cfg["kd"]["weight"] = {"default": 1000, "fgvc_aircraft": 200, "oxford_flowers": 200, "dtd": 200}
    cfg["optim"]["full_epochs"] = {"default": 20, "imagenet": 2}
    paper = load_preset(_write(tmp_path, cfg, "paper"))
    assert paper["kd"]["weight"] == {"default": 1000, "FGVCAircraft": 200, "Flowers102": 200, "DTD": 200}
    for dataset in ("FGVCAircraft", "Flowers102", "DTD"):
        assert run_spec(paper, "base2new", dataset, "16shot", "pkd", 1).kd.weight == 200.0
    assert run_spec(paper, "base2new", "EuroSAT", "16shot", "pkd", 1).kd.weight == 1000.0
    assert run_spec(paper, "xd", "DTD", "16shot", "pkd", 1).kd.weight == 1000.0
    assert run_spec(paper, "base2new", "ImageNet", "full", "pkd", 1).optim.epochs == 2
    assert run_spec(paper, "base2new", "ImageNet", "16shot", "pkd", 1).optim.epochs == 20
    assert run_spec(paper, "base2new", "DTD", "full", "pkd", 1).optim.epochs == 20


def test_an_id_given_twice_through_an_alias_is_rejected(tmp_path):
    cfg = _paper()
    cfg["kd"]["weight"] = {"default": 1000, "DTD": 200, "dtd": 100}
    _rejects(tmp_path, cfg, "DTD is given twice", name="paper")


def test_dataset_aliases_are_canonicalised():
    cfg = _mini()
    cfg["datasets"] = ["digits", "mnist"]
    assert validate_preset(cfg, name="mini")["datasets"] == ["Digits", "MNIST"]


# ------------------------------------------------------------------------------ overrides

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


# ------------------------------------------------------------------------------ the run specification

def test_omega_reaches_only_the_rsm_runs():
    cfg = validate_preset(_mini(), name="mini")
    changed = validate_preset({**_mini(), "rsm": {**_mini()["rsm"], "omega": 10.0}}, name="mini")
    for method in ("pkd", "simple", "zeroshot"):
        setting = "zeroshot" if method == "zeroshot" else "16shot"
        assert run_spec(cfg, "base2new", "Digits", setting, method, 1) == \
            run_spec(changed, "base2new", "Digits", setting, method, 1)
    for method in ("pkd_rsm", "simple_rsm"):
        assert run_spec(changed, "base2new", "Digits", "16shot", method, 1).rsm.omega == 10.0
        assert run_spec(cfg, "base2new", "Digits", "16shot", method, 1).rsm.omega == 50.0


def test_the_zero_shot_row_depends_on_no_training_setting():
    cfg = validate_preset(_mini(), name="mini")
    other = validate_preset({**_mini(), "optim": {**_mini()["optim"], "lr": 0.1}, "kd": {"weight": {"default": 5}}},
                            name="mini")
    assert zeroshot_specs(cfg) == zeroshot_specs(other)
    assert all(s.optim is None and s.kd is None for s in zeroshot_specs(cfg))


def test_a_run_specification_round_trips_through_params_json(tmp_path):
    cfg = load_preset(ROOT / "config" / "mini.yaml")
    spec = run_spec(cfg, "base2new", "Digits", "16shot", "pkd_rsm", 3)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(spec.to_dict()))
    data = json.loads(path.read_text())
    assert data["rsm"] == {"omega": 50.0, "rank": 64, "trainable": True}
    assert data["kd"]["weight"] == 1000.0 and data["optim"]["epochs"] == 10 and data["prompts"]["depth"] == 4
    assert RunSpec.from_dict(data) == spec
    assert RunSpec.from_dict({**spec.job_params(), "seed": 3}) == spec


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["optim"].update(batch_size=16.0), "key 'optim.batch_size': expected int"),
    (lambda d: d.update(omega=3), "unknown key(s) omega"),
    (lambda d: d["rsm"].pop("rank"), "key 'rsm.rank' missing"),
    (lambda d: d.update(task=None), "key 'task' must not be null"),
])
def test_a_run_specification_is_rebuilt_strictly(mutate, message):
    data = run_spec(load_preset(ROOT / "config" / "mini.yaml"), "base2new", "Digits", "16shot", "pkd_rsm", 1).to_dict()
    mutate(data)
    with pytest.raises(ValueError) as err:
        RunSpec.from_dict(data, where="params.json")
    assert str(err.value).startswith("params.json: ") and message in str(err.value)


def test_methods_carry_prompts_and_rsm_from_the_registry():
    cfg = load_preset(ROOT / "config" / "paper.yaml")
    assert run_spec(cfg, "base2new", "DTD", "16shot", "pkd", 1).prompts.depth == 9
    assert run_spec(cfg, "xd", "DTD", "16shot", "pkd_rsm", 1).prompts.depth == 3
    assert run_spec(cfg, "base2new", "DTD", "16shot", "simple", 1).prompts is None
    assert run_spec(cfg, "base2new", "DTD", "16shot", "simple", 1).rsm is None
    assert run_spec(cfg, "base2new", "DTD", "16shot", "simple_rsm", 1).rsm is not None
    assert rsm_pairs() == [("simple", "simple_rsm"), ("pkd", "pkd_rsm")]
    assert all(METHODS[t].rsm and not METHODS[b].rsm for b, t in rsm_pairs())


def test_ablation_variants_are_run_specifications_with_their_own_folders():
    cfg = load_preset(ROOT / "config" / "mini.yaml")
    specs = ablation_specs(cfg)
    assert len(specs) == 4 * 2 * 3
    frozen = [s for s in specs if s.rsm.omega == 10.0 and not s.rsm.trainable]
    assert len(frozen) == 3 and {s.seed for s in frozen} == {1, 2, 3}
    layout = Layout(cfg)
    grid_dirs = {layout.run_dir(s) for s in grid_specs(cfg)}
    assert not grid_dirs & {layout.run_dir(s) for s in specs}
    assert len({layout.run_dir(s) for s in specs}) == len(specs)


def test_every_output_of_a_preset_lives_under_its_own_folder():
    mini = load_preset(ROOT / "config" / "mini.yaml")
    other = validate_preset({**_mini(), "preset": "mine"}, name="mine")
    a, b = Layout(mini), Layout(other)
    for attr in ("tables", "figures", "metrics", "logs", "scratch"):
        assert getattr(a, attr).startswith("results/mini/") and getattr(b, attr).startswith("results/mine/")
    spec = run_spec(mini, "base2new", "Digits", "16shot", "pkd", 1)
    assert a.run_dir(spec) == "results/mini/runs/base2new/Digits/16shot/pkd/seed1"
    assert b.run_dir(replace(spec, preset="mine")) != a.run_dir(spec)


def test_ame_validate_checks_a_preset_before_any_job(tmp_path, capsys):
    from ame.cli import main

    main(["validate", str(ROOT / "config" / "mini.yaml")])
    assert "valid preset 'mini' (66 distillation runs)" in capsys.readouterr().out
    bad = _write(tmp_path, {**_mini(), "rsm": {"omega": 50, "rank": 64.0}}, "mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(bad)])
    assert exit_info.value.code == 1
    assert "mine.yaml: key 'rsm.rank'" in capsys.readouterr().err


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


def test_config_docs_keep_every_description_in_its_table_cell(capsys):
    from ame.cli import main

    main(["config-docs"])
    lines = capsys.readouterr().out.splitlines()
    assert all(line.replace("\\|", "").count("|") == 4 for line in lines)
    assert any("KL(teacher \\|\\| student)" in line for line in lines)


def test_the_command_line_reports_its_version_and_describes_each_step(capsys):
    from ame import __version__
    from ame.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"ame {__version__}"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["validate", "--help"])
    assert "Validate a preset file" in capsys.readouterr().out


@pytest.mark.parametrize("value", [0, 2.5, "10"])
def test_a_bad_checkpoint_interval_is_rejected(tmp_path, value):
    cfg = _mini()
    cfg["runtime"]["checkpoint_minutes"] = value
    _rejects(tmp_path, cfg, "key 'runtime.checkpoint_minutes'")


def test_the_checkpoint_interval_reaches_the_distill_jobs_without_being_part_of_their_identity():
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["snakemake", "-n", "-p", "all", "--config", "runtime={'checkpoint_minutes': 3}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    commands = [line for line in out.stdout.splitlines() if "ame distill" in line]
    assert commands and all("--save-minutes 3 " in line for line in commands)
    assert all('"checkpoint' not in line for line in commands)  # not in the run specification


def test_the_ablation_method_reaches_its_runs():
    cfg = validate_preset({**_mini(), "ablation": {**_mini()["ablation"], "method": "simple_rsm"}}, name="mini")
    specs = ablation_specs(cfg)
    assert {s.method for s in specs} == {"simple_rsm"} and all(s.prompts is None for s in specs)


# ------------------------------------------------------------------------------ extends: NAME

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
    for path, value in _leaves(_paper()):
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
