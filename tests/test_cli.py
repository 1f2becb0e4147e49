"""ame.cli: the command line validates presets, documents every key and describes each step.
"""


import pytest

from tests.workspace import ROOT, shipped_preset, write_preset


def test_ame_validate_checks_a_preset_before_any_job(tmp_path, capsys):
    from ame.cli import main

    main(["validate", str(ROOT / "config" / "mini.yaml")])
    assert "valid preset 'mini' (66 distillation runs)" in capsys.readouterr().out
    bad = write_preset(tmp_path, {**shipped_preset("mini"), "rsm": {"omega": 50, "rank": 64.0}}, "mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(bad)])
    assert exit_info.value.code == 1
    assert "mine.yaml: key 'rsm.rank'" in capsys.readouterr().err


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


def test_ame_help_lists_every_subcommand_with_a_description_and_every_argument_has_help(capsys):
    import argparse

    from ame.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    listing = capsys.readouterr().out
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    described = {choice.dest: choice.help for choice in sub._choices_actions}
    assert set(described) == set(sub.choices) and {"evaluate", "predict", "report"} <= set(described)
    for name, text in described.items():
        assert text and text.split()[0] in listing, name
    undocumented = [(name, a.dest) for name, p in sub.choices.items() for a in p._actions
                    if not isinstance(a, argparse._HelpAction) and not a.help]
    assert undocumented == []
