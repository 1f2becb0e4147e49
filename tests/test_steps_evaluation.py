"""`ame evaluate` and `ame predict` (`ame.steps.evaluation`): a saved student scores exactly as
its run did, in a fresh process; backbones zero-shot and loaded teachers are scored the same way."""

import json
import shutil
import subprocess
import sys

import pytest

from ame.io import read_json
from ame.models.student_file import load_student
from ame.steps.evaluation import evaluate_student, predict_folder


def test_a_fresh_process_loads_the_student_and_reproduces_the_runs_base_and_new_accuracy(distilled_run):
    out, metrics, inputs = distilled_run
    code = ("import json, sys; from ame.steps.evaluation import evaluate_student; "
            "print(json.dumps([evaluate_student(sys.argv[1], sys.argv[2], c)['top1'] for c in ('base', 'new')]))")
    done = subprocess.run([sys.executable, "-c", code, str(out), str(inputs.split)], capture_output=True,
                          text=True, check=True)
    base, new = json.loads(done.stdout)
    assert (round(base, 4), round(new, 4)) == (metrics["base"], metrics["new"])


def test_evaluate_reports_top5_and_mean_per_class_recall_and_writes_its_contract(distilled_run, tmp_path):
    out, _, inputs = distilled_run
    result = evaluate_student(out, inputs.split, "all", out=tmp_path / "eval.json")
    assert result["n_classes"] == 10 and result["top1"] <= result["top5"] <= 100
    assert 0 <= result["mean_per_class_recall"] <= 100
    assert read_json(tmp_path / "eval.json") == result


def test_another_datasets_classes_need_its_text_features(distilled_run, tmp_path):
    out, _, inputs = distilled_run
    split = read_json(inputs.split)
    split["classnames"] = [f"class {c}" for c in split["classnames"]]
    other = tmp_path / "split.json"
    other.write_text(json.dumps(split))
    with pytest.raises(ValueError, match="give --text-features"):
        evaluate_student(out, other)


def test_predict_names_the_top_classes_of_every_image_in_a_folder(distilled_run, tmp_path):
    out, _, inputs = distilled_run
    images = tmp_path / "images"
    for path in sorted((inputs.split.parent / "images").rglob("*.png"))[:3]:
        (images / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, images / path.parent.name / path.name)
    rows = predict_folder(out, images, top_k=2)
    assert len(rows) == 3 and set(rows[0]) == {"path", "class_1", "prob_1", "class_2", "prob_2"}
    assert all(r["class_1"] in load_student(out).classnames and r["prob_1"] >= r["prob_2"] for r in rows)


def test_evaluate_scores_a_backbone_zero_shot_and_a_loaded_teacher_with_its_features(world, tmp_path):
    from ame.steps.evaluation import evaluate_backbone, evaluate_teacher
    from ame.steps.teacher_check import check_teacher

    _, inputs = world
    zero = evaluate_backbone(inputs.student_backbone, inputs.split, "new")
    assert zero["classes"] == "new" and zero["n_classes"] == 5 and 0 <= zero["top1"] <= zero["top5"]
    teacher = evaluate_teacher(inputs.teacher, inputs.text_features, inputs.split, "base")
    params = {"device": "cpu", "image_size": 32, "precision": "fp32", "batch_size": 100, "task": "base2new",
              "source": "train"}
    check = check_teacher(params, inputs.teacher, inputs.text_features, inputs.split, tmp_path / "check.json")
    assert round(teacher["top1"], 4) == check["base"]  # the teacher check's Base, by another route

