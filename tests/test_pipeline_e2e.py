"""End to end: a reduced miniature driven through Snakemake (and DVC), checked against the contracts."""

import contextlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ame import contracts
from tests.browser import open_report
from tests.workspace import clone_project, job_counts, reduced_preset, run, tool_env



@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A clone of the repository with a reduced preset, run once by `snakemake all`."""
    work = clone_project(tmp_path_factory.mktemp("project") / "clone", reduced_preset())
    run(["snakemake", "--cores", "2", "all"], work)
    return work


def test_jobs_run_where_data_and_results_roots_hold_spaces_and_shell_characters(clone):
    preset = {**reduced_preset(), "data_root": "my data/a&b", "results_root": "my results;x"}
    work = clone(preset, "work")
    run(["snakemake", "--cores", "1", "data"], work)
    assert (work / "my data" / "a&b" / "Digits" / "split.json").is_file()
    assert (work / "my results;x" / "ci" / "logs" / "prepare" / "Digits.log").is_file()
    status = run(["git", "status", "--porcelain", "--untracked-files=normal"], work).splitlines()
    assert sorted(status) == sorted([" M config/config.yaml", "?? config/ci.yaml", '?? "my data/"',
                                     '?? "my results;x/"']), status  # no stray files such as ./my
    # Every planned command keeps such paths whole (one argument each).
    out = run(["snakemake", "-n", "-p", "all"], work)
    distill = next(line for line in out.splitlines() if "ame distill" in line)
    args = shlex.split(distill[distill.index("ame distill"):])
    out_dirs = args[args.index("--out-dirs") + 1: args.index("--scratch-dirs")]
    assert out_dirs[0].startswith("my results;x/ci/runs/") and args[args.index("--split") + 1] == \
        "my data/a&b/Digits/split.json"


def _preset_dir(project):
    return project / "results" / "ci"


def test_every_run_writes_contract_conforming_files(project):
    runs = sorted((_preset_dir(project) / "runs").glob("**/metrics.json"))
    # base2new: 2 methods x 2 seeds + zero-shot; xd: 1 method x 2 seeds + zero-shot
    assert len(runs) == 4 + 1 + 2 + 1
    for path in runs:
        metrics = contracts.validate(json.loads(path.read_text()), contracts.METRICS, str(path))
        if metrics["method"] != "zeroshot":
            history = pd.read_csv(path.parent / "history.csv")
            assert list(history.columns) == contracts.HISTORY_COLUMNS
            assert len(history) == 2
            assert (path.parent / "embeddings.npz").is_file() and (path.parent / "student.safetensors").is_file()


def test_every_run_records_its_specification_beside_its_metrics(project):
    from ame.spec import RunSpec

    for path in sorted((_preset_dir(project) / "runs").glob("**/metrics.json")):
        metrics = json.loads(path.read_text())
        spec = RunSpec.from_dict(json.loads((path.parent / "params.json").read_text()))
        assert (spec.task, spec.dataset, spec.setting, spec.method, spec.seed) == \
            tuple(metrics[k] for k in ("task", "dataset", "setting", "method", "seed"))
        if spec.method == "pkd_rsm":
            assert spec.rsm.omega == 50.0 and spec.rsm.trainable and spec.kd.weight == 1000.0
            assert spec.optim.epochs == 2 and spec.prompts.depth == 4


def test_tables_follow_the_aggregation_contract(project):
    table1 = pd.read_csv(_preset_dir(project) / "tables" / "table1.csv")  # tidy: one row per cell
    rows = table1[(table1["dataset"] == "Digits") & (table1["method"] == "pkd")].set_index("metric")
    assert list(rows.index) == ["base", "new", "hm"]
    runs = [json.loads((_preset_dir(project) / f"runs/base2new/Digits/4shot/pkd/seed{s}/metrics.json").read_text())
            for s in (1, 2)]
    base = sum(r["base"] for r in runs) / 2
    new = sum(r["new"] for r in runs) / 2
    assert rows.loc["base", "mean"] == pytest.approx(base, abs=0.01)
    assert rows.loc["hm", "mean"] == pytest.approx(2 * base * new / (base + new), abs=0.01)
    assert {"zeroshot", "pkd", "pkd_rsm"} <= set(table1["method"])
    assert "Average" in set(table1["dataset"])
    table2 = pd.read_csv(_preset_dir(project) / "tables" / "table2.csv")
    assert "Digits" in set(table2.iloc[:, 0])
    for md in ("table1.md", "table2.md"):
        assert "±" in (_preset_dir(project) / "tables" / md).read_text()
    for tex in ("table1.tex", "table2.tex", "rsm_effect.tex"):
        assert "\\toprule" in (_preset_dir(project) / "tables" / tex).read_text()
    caption = (_preset_dir(project) / "tables" / "table1.md").read_text()
    assert "ω = 50" in caption and "seeds 1, 2." in caption
    assert "Differs from the paper:" in caption and "optimizer adamw (paper sgd)" in caption


def test_figures_are_written(project):
    figures = _preset_dir(project) / "figures"
    for name in ("accuracy_vs_shots.png", "tsne_Digits.png", "fscore_Digits.png"):
        assert (figures / name).stat().st_size > 1000


def test_the_html_report_holds_every_table_and_figure_captioned_and_chromium_renders_each(project):
    run(["snakemake", "--report", "report.html"], project)  # the README's command, as written
    results, views = open_report(project / "report.html",
                                 categories=("Fig. 3 (F-score heatmaps)", "Table 1 (base-to-new)"))
    found = {Path(path).name: entry for path, entry in results.items()}
    figures = sorted(p.name for p in (_preset_dir(project) / "figures").glob("*.png"))
    assert figures and set(figures) <= set(found), sorted(found)
    for name in figures:
        entry = found[name]
        assert entry["width"] > 0 and entry["height"] > 0, name  # Chromium decoded the image
        assert entry["caption"].startswith("<p>") and len(entry["caption"]) > 100, name
    assert "Digits" in found["fscore_Digits.png"]["caption"] and "seed 1" in found["fscore_Digits.png"]["caption"]
    assert found["fscore_Digits.png"]["labels"] == {"figure": "Fig. 3", "dataset": "Digits"}
    for name, title in (("table1.html", "Table 1"), ("table2.html", "Table 2"),
                        ("rsm_effect.html", "paired effect of RSM"), ("summary.html", "+2.79"),
                        ("teacher_check.html", "Teacher check")):
        assert title in found[name]["text"], name
        assert "Preset `ci`" in found[name]["caption"] or name == "teacher_check.html", name
    assert "seeds 1, 2" in found["table1.html"]["caption"]
    # Clicked through the report's own menu: the figure shows, the table page shows its panels.
    (width, height), = [size for size in views["Fig. 3 (F-score heatmaps)"]["img"] if size[0] > 100]
    assert width > 0 and height > 0
    assert "Average over 1 dataset" in views["Table 1 (base-to-new)"]["text"]
    assert (_preset_dir(project) / "README.md").read_text().startswith("# Results of preset `ci`")
    assert "report.html" not in run(["git", "status", "--porcelain"], project)  # ignored


def test_use_a_trained_student_as_the_readme_says(project, tmp_path):
    """README "Use a trained student", on this preset's runs: `ame evaluate` gives the tables'
    numbers (base-to-new Base/New, the cross-dataset accuracy), `ame predict` a CSV, and
    `ame.load_student` a model in a fresh process."""
    b2n = _preset_dir(project) / "runs/base2new/Digits/4shot/pkd_rsm/seed1"
    xd = _preset_dir(project) / "runs/xd/Digits/4shot/pkd/seed1"
    metrics = json.loads((b2n / "metrics.json").read_text())
    for classes in ("base", "new"):
        out = json.loads(run(["ame", "evaluate", "--student", str(b2n), "--split", "data/Digits/split.json",
                              "--classes", classes], project))
        assert round(out["top1"], 4) == metrics[classes] and out["top5"] >= out["top1"]
    run(["ame", "evaluate", "--student", str(xd), "--split", "data/Digits/split.json",
         "--out", "digits_eval.json"], project)
    evaluation = json.loads((project / "digits_eval.json").read_text())
    assert round(evaluation["top1"], 4) == json.loads((xd / "metrics.json").read_text())["accuracy"]
    table2 = pd.read_csv(_preset_dir(project) / "tables" / "table2.csv")
    (xd_hm,) = table2[(table2["target"] == "Digits") & (table2["method"] == "pkd")]["mean"]
    assert xd_hm == pytest.approx(sum(json.loads((xd.parent / f"seed{s}" / "metrics.json").read_text())["accuracy"]
                                      for s in (1, 2)) / 2, abs=0.006)
    csv = run(["ame", "predict", "--student", str(b2n), "--images", "data/Digits/images/test", "--top-k", "3"],
              project).splitlines()
    assert csv[0] == "path,class_1,prob_1,class_2,prob_2,class_3,prob_3" and len(csv) > 10
    code = ("from pathlib import Path; import ame, torch; "
            "paths = sorted(Path('data/Digits/images/test').rglob('*.png'))[:8]; "
            "s = ame.load_student('" + str(b2n) + "'); "
            "print(s(torch.stack([s.preprocess(p) for p in paths])).shape, len(s.classnames))")
    assert run([sys.executable, "-c", code], project).strip() == "torch.Size([8, 10]) 10"
    (project / "digits_eval.json").unlink()


def test_watch_training_as_the_readme_says(project):
    """README "Watch training", on this preset's runs: the job log's epoch lines, and DVCLive's
    curves drawn by `dvc plots show`."""
    log = (_preset_dir(project) / "logs/distill/runs/base2new/Digits/4shot/pkd_rsm.log").read_text()
    assert "[base2new/Digits/4shot/pkd_rsm/seed1] epoch 2/2 lr" in log and "H(M)" in log
    live = _preset_dir(project) / "scratch/runs/base2new/Digits/4shot/pkd_rsm/seed1/dvclive"
    assert json.loads((live / "metrics.json").read_text())["step"] == 2
    run(["dvc", "plots", "show", str(live.relative_to(project) / "plots" / "metrics"), "-o", "live_plots"], project)
    page = (project / "live_plots" / "index.html").read_text()
    assert all(name in page for name in ("kd_loss", "rsm_entropy", "total_loss", "lr", "base_acc"))
    shutil.rmtree(project / "live_plots")


def test_second_run_does_no_work_and_uses_the_local_profile(project):
    out = run(["snakemake", "--cores", "2", "-n", "all"], project)
    assert "Nothing to be done" in out
    assert "Using workflow specific profile profiles/default" in out


def test_changing_job_resources_or_execution_settings_reruns_nothing(project):
    override = ("runtime={'threads': 2, 'checkpoint_minutes': 1, 'collapse_warning_percent': 0, "
                "'resources': {'distill': {'mem_mb': 999, 'runtime': 5}, 'report': {'mem_mb': 10}}}")
    assert "Nothing to be done" in run(["snakemake", "--cores", "2", "-n", "all", "--config", override], project)


def test_deleting_any_report_file_plans_the_report_again(project):
    for rel in ("figures/tsne_Digits.png", "tables/rsm_effect.csv", "metrics/curves/base2new_Digits_4shot_kd_loss.csv"):
        path = _preset_dir(project) / rel
        kept = path.with_name(path.name + ".kept")
        shutil.copy2(path, kept)
        path.unlink()
        try:
            out = run(["snakemake", "-n", "--quiet", "rules", "all"], project)
        finally:
            shutil.copy2(kept, path)
            kept.unlink()
        assert job_counts(out) == {"report": 1, "all": 1, "total": 2}, rel


@contextlib.contextmanager
def _preset_edited(project, section, key, value):
    """config/ci.yaml with one value changed, restored afterwards."""
    preset = project / "config" / "ci.yaml"
    original = preset.read_text()
    cfg = yaml.safe_load(original)
    cfg[section][key] = value
    preset.write_text(yaml.safe_dump(cfg))
    try:
        yield
    finally:
        preset.write_text(original)


def _plan_with_edit(project, rel, old, new):
    path = project / rel
    original = path.read_text()
    assert old in original, f"{rel} no longer holds {old!r}; update this test"
    path.write_text(original.replace(old, new, 1))
    try:
        return run(["snakemake", "-n", "--quiet", "rules", "all"], project)
    finally:
        path.write_text(original)


def test_editing_a_statement_of_the_rsm_module_plans_exactly_the_rsm_runs_and_the_report(project):
    out = _plan_with_edit(project, "ame/rsm.py", "import torch\n", "import torch\n\n_EDITED = 1\n")
    assert job_counts(out) == {"distill": 1, "report": 1, "all": 1, "total": 3}  # the one pkd_rsm cell


def test_editing_the_report_code_plans_only_the_report(project):
    out = _plan_with_edit(project, "ame/report/stats.py", "N_BOOT = 10_000", "N_BOOT = 20_000")
    assert job_counts(out) == {"report": 1, "all": 1, "total": 2}


def test_editing_only_a_comment_plans_nothing(project):
    out = _plan_with_edit(project, "ame/rsm.py", "import torch\n", "import torch  # an edited comment\n")
    assert "Nothing to be done" in out


def test_an_omega_override_on_the_command_line_reaches_exactly_the_rsm_runs(project):
    out = run(["snakemake", "--cores", "2", "-n", "-p", "all", "--config", "rsm={'omega': 10}"], project)
    counts = job_counts(out)
    assert counts.get("distill") == 1 and counts.get("report") == 1
    assert "prepare_dataset" not in counts and "zeroshot" not in counts
    commands = [line[line.index("ame distill"):] for line in out.splitlines() if "ame distill" in line]
    assert len(commands) == 1 and '"rsm": {"omega": 10' in commands[0] and '"method": "pkd_rsm"' in commands[0]


def test_a_bad_override_stops_before_any_job(project):
    proc = subprocess.run(["snakemake", "-n", "all", "--config", "rsm={'rank': 64.0}"], cwd=project, env=tool_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config/ci.yaml with overrides" in out and "key 'rsm.rank'" in out and "whole number" in out


def test_changing_omega_reruns_only_the_rsm_runs_and_the_report(project):
    with _preset_edited(project, "rsm", "omega", 10.0):
        out = run(["snakemake", "--cores", "2", "-n", "--quiet", "rules", "all"], project)
    counts = job_counts(out)
    assert counts.get("distill") == 1  # the one pkd_rsm cell (both seeds in one job)
    assert "prepare_dataset" not in counts and "backbone" not in counts and "teacher" not in counts


def test_ablation_target_tables_omega_and_phi(project):
    run(["snakemake", "--cores", "2", "ablation"], project)
    table = pd.read_csv(_preset_dir(project) / "ablation" / "ablation.csv")
    assert sorted(zip(table["omega"], table["phi"])) == [(0.0, "frozen"), (0.0, "trained"),
                                                         (50.0, "frozen"), (50.0, "trained")]
    assert (_preset_dir(project) / "ablation" / "ablation.png").stat().st_size > 1000
    # The README's command for a report with the ablation's figure too.
    run(["snakemake", "--report", "report_ablation.html", "all", "ablation"], project)
    results, _ = open_report(project / "report_ablation.html")
    ablation = {Path(p).name: r for p, r in results.items()}["ablation.png"]
    assert ablation["width"] > 0 and "ω × φ ablation" in ablation["caption"]
    (project / "report_ablation.html").unlink()


def test_dvc_repro_in_the_clone_trains_nothing_and_shows_metrics_plots_and_params(project):
    # After `snakemake all` and `snakemake ablation`, every stage's Snakemake call finds nothing to do.
    before = {p: p.stat().st_mtime_ns for p in _preset_dir(project).glob("*/**/metrics.json")}
    out = run(["dvc", "repro"], project)
    assert out.count("Nothing to be done") == 5, out[-3000:]  # one per snakemake stage
    assert {p: p.stat().st_mtime_ns for p in _preset_dir(project).glob("*/**/metrics.json")} == before
    assert (project / "dvc.lock").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "dvc.lock"], cwd=project)
    assert ignored.returncode == 1  # dvc.lock is versioned, not ignored
    assert "pkd_rsm" in run(["dvc", "metrics", "show"], project)
    run(["dvc", "plots", "show", "-o", "plots_html"], project)
    assert (project / "plots_html" / "index.html").stat().st_size > 1000
    with _preset_edited(project, "rsm", "omega", 10.0):
        status = run(["dvc", "status"], project)
        assert "config/ci.yaml" in status and "modified:           rsm" in status, status
        assert "rsm.omega" in run(["dvc", "params", "diff"], project)


def test_rerunning_a_job_writes_byte_identical_files(project):
    cell = _preset_dir(project) / "runs" / "base2new" / "Digits" / "4shot" / "pkd_rsm"
    files = sorted(p for p in cell.glob("seed*/*") if p.is_file())
    assert {p.name for p in files} == {"metrics.json", "params.json", "history.csv", "embeddings.npz", "student.safetensors", "student.json"}
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    run(["snakemake", "--cores", "2", "--force", str((cell / "seed1" / "metrics.json").relative_to(project))],
         project)
    for path, (data, mtime) in before.items():
        assert path.stat().st_mtime_ns != mtime, f"{path} was not rewritten"
        assert path.read_bytes() == data, f"{path} differs after an identical rerun"


def test_the_report_shows_only_what_the_current_preset_plans(project):
    tables = _preset_dir(project) / "tables"
    assert "pkd_rsm" in set(pd.read_csv(tables / "table1.csv")["method"])
    try:
        out = run(["snakemake", "--cores", "2", "all", "--config", "methods=['pkd']"], project)
        assert "rule report" in out and "rule distill" not in out
        methods = set(pd.read_csv(tables / "table1.csv")["method"])
        assert methods == {"pkd", "zeroshot"}  # the pkd_rsm runs are still on disk
        assert (_preset_dir(project) / "runs" / "base2new" / "Digits" / "4shot" / "pkd_rsm").is_dir()
    finally:
        run(["snakemake", "--cores", "2", "all"], project)
    assert "pkd_rsm" in set(pd.read_csv(tables / "table1.csv")["method"])


def test_results_pushed_to_a_dvc_remote_are_current_in_a_fresh_clone_that_pulls_them(project, tmp_path):
    # Share: a directory remote, and the repository state that describes the results (dvc.lock).
    out = run(["dvc", "repro"], project)  # caches what later runs wrote; trains nothing
    assert "rule distill" not in out and "rule teacher" not in out
    run(["dvc", "remote", "add", "-d", "lab", str(tmp_path / "remote")], project)
    run(["dvc", "push"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=ame", "-c", "user.email=ame@localhost", "commit", "-q", "-m", "results"], project)
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", str(project), str(fresh)], tmp_path)
    run(["dvc", "pull"], fresh)
    assert (fresh / "results" / "ci" / "tables" / "table1.csv").read_bytes() == \
        (_preset_dir(project) / "tables" / "table1.csv").read_bytes()
    assert (fresh / "data" / "Digits" / "split.json").is_file()
    assert not any((fresh / "data").rglob("*.png"))  # images never travel through DVC
    assert "Nothing to be done" in run(["snakemake", "-n", "all"], fresh)
    # Snakemake's records came along: a change still reruns exactly what it affects.
    out = run(["snakemake", "-n", "--quiet", "rules", "all", "--config", "rsm={'omega': 10}"], fresh)
    assert job_counts(out) == {"distill": 1, "report": 1, "all": 1, "total": 3}


def test_dvc_exp_run_with_a_new_omega_reruns_only_the_rsm_runs_and_the_report(project):
    runs = _preset_dir(project) / "runs"
    before = {p: p.stat().st_mtime_ns for p in runs.glob("**/metrics.json")}
    run(["dvc", "exp", "run", "-S", "config/ci.yaml:rsm.omega=10"], project)
    changed = {p.relative_to(runs).parts[3] for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == {"pkd_rsm"}
    spec = json.loads((runs / "base2new" / "Digits" / "4shot" / "pkd_rsm" / "seed1" / "params.json").read_text())
    assert spec["rsm"]["omega"] == 10.0
    assert "ω = 10" in (_preset_dir(project) / "tables" / "table1.md").read_text()


def test_paper_preset_plans_the_whole_grid_offline(project):
    out = run(["snakemake", "-n", "--quiet", "rules", "all", "--config", "preset=paper"], project)
    counts = job_counts(out)
    # base-to-new: 11 datasets × 4 settings (4, 16, 30 shots, full) × 4 methods; xd: 10 × 2 × 2;
    # the paper preset groups seeds, so one job trains a (cell, method)'s 3 seeds in lockstep
    assert counts["distill"] == 11 * 4 * 4 + 10 * 2 * 2
    assert counts["prepare_dataset"] == 11
    assert not (project / "data" / "ImageNet").exists()
