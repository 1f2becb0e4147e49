"""A run's student, saved self-describing (student.safetensors + student.json), loads in one call
and classifies exactly as it did when the run scored it; `ame evaluate` and `ame predict` use it."""

import json
import shutil
import subprocess
import sys

import pytest

from ame.io import read_json
from ame.models.student_file import load_student
from ame.steps.distill import distill
from ame.steps.evaluation import evaluate_student, predict_folder


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    spec, inputs = world
    out = tmp_path_factory.mktemp("run") / "run"
    metrics = distill(spec, inputs, out, out.parent / "scratch")
    return out, metrics, inputs


def test_the_config_describes_the_student_without_the_preset(run):
    out, _, inputs = run
    config = read_json(out / "student.json")
    assert config["format"] == "ame-student/1"
    assert config["prompts"] == {"tokens": 4, "depth": 4} and config["projector"]["out_dim"] > 0
    assert config["backbone"]["arch"] == "ame-tiny-student" and len(config["backbone"]["sha256"]) == 64
    assert config["classnames"][:2] == ["zero", "one"] and len(config["classnames"]) == 10
    assert config["params"] == read_json(out / "params.json")
    assert (out / config["text_features"]["source"]).resolve() == inputs.text_features.resolve()


def test_a_fresh_process_loads_the_student_and_reproduces_the_runs_base_and_new_accuracy(run):
    out, metrics, inputs = run
    code = ("import json, sys; from ame.steps.evaluation import evaluate_student; "
            "print(json.dumps([evaluate_student(sys.argv[1], sys.argv[2], c)['top1'] for c in ('base', 'new')]))")
    done = subprocess.run([sys.executable, "-c", code, str(out), str(inputs.split)], capture_output=True,
                          text=True, check=True)
    base, new = json.loads(done.stdout)
    assert (round(base, 4), round(new, 4)) == (metrics["base"], metrics["new"])


def test_evaluate_reports_top5_and_mean_per_class_recall_and_writes_its_contract(run, tmp_path):
    out, _, inputs = run
    result = evaluate_student(out, inputs.split, "all", out=tmp_path / "eval.json")
    assert result["n_classes"] == 10 and result["top1"] <= result["top5"] <= 100
    assert 0 <= result["mean_per_class_recall"] <= 100
    assert read_json(tmp_path / "eval.json") == result


def test_another_datasets_classes_need_its_text_features(run, tmp_path):
    out, _, inputs = run
    split = read_json(inputs.split)
    split["classnames"] = [f"class {c}" for c in split["classnames"]]
    other = tmp_path / "split.json"
    other.write_text(json.dumps(split))
    with pytest.raises(ValueError, match="give --text-features"):
        evaluate_student(out, other)


def test_predict_names_the_top_classes_of_every_image_in_a_folder(run, tmp_path):
    out, _, inputs = run
    images = tmp_path / "images"
    for path in sorted((inputs.split.parent / "images").rglob("*.png"))[:3]:
        (images / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, images / path.parent.name / path.name)
    rows = predict_folder(out, images, top_k=2)
    assert len(rows) == 3 and set(rows[0]) == {"path", "class_1", "prob_1", "class_2", "prob_2"}
    assert all(r["class_1"] in load_student(out).classnames and r["prob_1"] >= r["prob_2"] for r in rows)


def test_a_changed_weights_file_or_an_old_student_pt_is_refused_with_the_reason(run, tmp_path):
    out, _, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    weights = copy / "student.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="student.safetensors changed"):
        load_student(copy)
    old = tmp_path / "old"
    old.mkdir()
    (old / "student.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="older ame"):
        load_student(old)


def test_training_curves_are_logged_live_through_dvclive_beside_the_resume_state(run):
    out, _, _ = run
    live = out.parent / "scratch" / "dvclive"
    history = (out / "history.csv").read_text().splitlines()
    header, rows = history[0].split(","), [dict(zip(history[0].split(","), r.split(","))) for r in history[1:]]
    assert header == ["epoch", "lr", "kd_loss", "rsm_entropy", "total_loss", "base_acc"]
    for name in ("kd_loss", "rsm_entropy", "total_loss", "lr", "base_acc"):
        logged = (live / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()
        assert logged[0] == f"step\t{name}"
        assert [(int(step), float(v)) for step, v in (line.split("\t") for line in logged[1:])] == \
            [(int(r["epoch"]), float(r[name])) for r in rows], name
    assert json.loads((live / "metrics.json").read_text())["step"] == len(rows)
