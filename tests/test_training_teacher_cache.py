"""The teacher-output cache replays the teacher's logits on pre-drawn augmentations: training from it
is training with the online teacher on the same crops (full logits: to float rounding; top-k: within
a stated error), and it is built once per grid cell for every method of the cell."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from ame.data import load_split, read_shots
from ame.data.plan import AugmentationPlan, training_set
from ame.io import read_json
from ame.kd import kd_loss
from ame.models.student import Student
from ame.models.load import load_backbone
from ame.models.load import load_teacher
from ame.spec import RunSpec, load_preset, run_spec
from ame.spec.grid import teacher_cache_params
from ame.spec.run import RSMSettings
from ame.steps.distill import RunInputs, distill
from ame.steps.teacher_cache import build
from ame.training.teacher_cache import TeacherCache, compress, expand, storage_k, table_bytes, teacher_logits

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# KD loss from the cache vs from the online teacher, same random student, same crops; measured on
# the tiny random teacher over Digits' 10 classes (2 epochs x 2 batches of 16), max relative error:
# full float16 table 8e-5; top-5 of 10 (teacher tail mass 0.2 %) 1.4e-2 with the uniform tail,
# 2.8e-2 had the tail been dropped and the top-5 renormalised; top-3 (tail 0.7 %) 4.0e-2 vs 1.1e-1.
# A random student puts log-probabilities far below the teacher's on the tail classes, which is
# where the tail's shape matters; the bounds leave about 2x room over the measurements.
FLOAT16_REL_ERROR = 2e-4
TOP5_REL_ERROR = 0.03


def _cache_params(spec: RunSpec, **options) -> dict:
    """The dict `ame.spec.grid.teacher_cache_params` derives, for the world's run specification."""
    return {"task": spec.task, "dataset": spec.dataset, "setting": spec.setting,
            "teacher_arch": spec.teacher_arch, "student_arch": spec.student_arch, "logit_scale": spec.kd.logit_scale,
            "batch_size": spec.optim.batch_size, "epochs": spec.optim.epochs,
            "augment": dataclasses.asdict(spec.augment), "precision": spec.precision, "device": "cpu",
            **{"top_k": 5, "full_max_mb": 1024, "dtype": "float32", **options}}


def _build(world, tmp_path, seed=1, **options):
    spec, inputs = world
    cache_params = _cache_params(spec, **options)
    path = tmp_path / f"cache_{seed}_{'_'.join(f'{k}{v}' for k, v in options.items())}.pt"
    summary = build(cache_params, seed, inputs.split, inputs.shots, inputs.teacher, inputs.text_features, path,
                    inputs.student_backbone, inference_batch=24)
    return dataclasses.replace(spec, teacher_cache=cache_params), path, summary


def test_the_test_cache_parameters_are_what_the_preset_derives(world):
    spec, _ = world
    options = {"enabled": True, "top_k": 5, "full_max_mb": 1024, "dtype": "float32"}
    cfg = load_preset(ROOT / "config" / "mini.yaml",
                      overrides={"kd": {"teacher_cache": options}, "optim": {"epochs": spec.optim.epochs}})
    derived = run_spec(cfg, spec.task, spec.dataset, spec.setting, spec.method, spec.seed)
    assert derived.teacher_cache == teacher_cache_params(cfg, spec.task, spec.dataset, spec.setting)
    assert derived.teacher_cache == _cache_params(spec)
    assert dataclasses.replace(derived, teacher_cache=None) == spec


# --- storage ---------------------------------------------------------------------------------

def test_full_table_round_trips_and_topk_keeps_the_top_classes_and_the_tail_mass():
    torch.manual_seed(0)
    log_probs = torch.log_softmax(5 * torch.randn(6, 10), dim=-1)
    torch.testing.assert_close(compress(log_probs, None, "float32")["log_probs"], log_probs)
    top = compress(log_probs, 4, "float32")
    dense = expand(top["values"], top["indices"], 10)
    torch.testing.assert_close(dense.gather(1, top["indices"].long()), log_probs.topk(4).values)
    torch.testing.assert_close(dense.exp().sum(-1), torch.ones(6))
    tail = dense.exp().scatter(1, top["indices"].long(), 0.0)
    assert torch.allclose(tail.max(-1).values * 6, tail.sum(-1), rtol=1e-5)  # the 6 others share it equally
    everything = compress(log_probs, 10, "float32")
    torch.testing.assert_close(expand(everything["values"], everything["indices"], 10), log_probs)


def test_imagenet_scale_needs_topk_and_small_cells_keep_full_logits():
    # 1,281,167 images x 1000 classes x 20 epochs x 2 bytes = 51 TB; top-20 (2+2 bytes) = 2.0 TB
    assert table_bytes(20, 1_281_167, 1000, None) == 1_281_167 * 1000 * 20 * 2
    assert table_bytes(20, 1_281_167, 1000, 20) == 1_281_167 * 20 * 20 * 4
    options = {"top_k": 20, "full_max_mb": 2048, "dtype": "float16"}
    assert storage_k(20, 1_281_167, 1000, options) == 20
    assert storage_k(2, 1_281_167, 1000, options) == 20  # full-shot ImageNet's 2 epochs: 5.1 TB
    assert storage_k(20, 16 * 100, 100, options) is None  # a 16-shot 100-class cell: 6 MB


# --- training from the cache -----------------------------------------------------------------

@pytest.mark.parametrize("method", ["pkd_rsm", "simple_rsm"])
def test_cached_training_gives_the_online_loss_on_the_same_augmentations(world, tmp_path, method):  # noqa: F811
    """PKD + RSM reads the teacher from the cache; Simple + RSM reads its frozen tower's features too
    (built in passes of 24 crops, not the training batch of 16: each crop's output is its own)."""
    spec, inputs = world
    cached_spec, cache, summary = _build(world, tmp_path, full_max_mb=1024, dtype="float32")
    assert summary["top_k"] is None  # the tiny cell stores every class
    if method == "simple_rsm":
        spec = RunSpec.from_dict({**spec.to_dict(), "method": "simple_rsm", "prompts": None}, where="test")
        cached_spec = dataclasses.replace(spec, teacher_cache=cached_spec.teacher_cache)
        assert torch.load(cache, weights_only=True)["student_features"].shape[-1] == 32  # the tiny tower's width
    online = distill(spec, inputs, tmp_path / "online", tmp_path / "s1")
    cached = distill(cached_spec, RunInputs(**{**vars(inputs), "teacher_cache": cache}),
                     tmp_path / "cached", tmp_path / "s2")
    h_online, h_cached = (pd.read_csv(tmp_path / d / "history.csv") for d in ("online", "cached"))
    for column in ("kd_loss", "rsm_entropy", "total_loss"):
        assert h_cached[column].tolist() == pytest.approx(h_online[column].tolist(), rel=1e-5)
    assert (cached["base"], cached["new"]) == pytest.approx((online["base"], online["new"]), abs=1e-6)


@pytest.mark.parametrize("options,bound", [({"dtype": "float16", "full_max_mb": 1024}, FLOAT16_REL_ERROR),
                                           ({"dtype": "float16", "full_max_mb": 0, "top_k": 5}, TOP5_REL_ERROR)],
                         ids=["full-float16", "top5-float16"])
def test_compressed_cache_changes_the_kd_loss_by_a_bounded_amount(world, tmp_path, options, bound):  # noqa: F811
    cached_spec, path, summary = _build(world, tmp_path, **options)
    spec, inputs = world
    assert summary["top_k"] == options.get("top_k")
    split = load_split(inputs.split)
    images = training_set(split, read_shots(inputs.shots, split), dataclasses.asdict(spec.augment))
    plan = AugmentationPlan.draw(len(images), spec.optim.epochs, 1)
    cache = TeacherCache.open(path, cached_spec.teacher_cache, 1, plan, split.num_classes,
                              read_json(inputs.teacher)["sha256"])
    teacher, _ = load_teacher(inputs.teacher, CPU)
    feats = torch.load(inputs.text_features, weights_only=True)["features"]
    torch.manual_seed(0)
    student = Student(load_backbone(inputs.student_backbone)[0], feats.shape[1], 4, 2).eval()
    scale, weight = spec.kd.logit_scale, spec.kd.weight
    errors = []
    for epoch in range(plan.epochs):
        for step, (x, _) in enumerate(plan.loader(images, epoch, spec.optim.batch_size)):
            with torch.no_grad():
                z_s = scale * student(x) @ feats.t()
                exact = kd_loss(z_s, teacher_logits(teacher, x, feats, scale, CPU, "fp32"), 1.0, weight)
                approx = kd_loss(z_s, cache.log_probs(epoch, step), 1.0, weight)
            errors.append(abs(approx - exact).item() / exact.item())
    assert len(errors) == 4 and max(errors) < bound


def test_cache_built_for_another_seed_is_refused(world, tmp_path):  # noqa: F811
    spec, inputs = world
    cached_spec, cache, _ = _build(world, tmp_path, seed=2)
    assert cached_spec.seed == 1
    with pytest.raises(ValueError, match="seed, augmentation plan differ.*rerun the teacher_cache step"):
        distill(cached_spec, RunInputs(**{**vars(inputs), "teacher_cache": cache}), tmp_path / "r", tmp_path / "s")


def test_enabled_cache_without_a_file_is_an_error(world, tmp_path):  # noqa: F811
    spec, inputs = world
    with pytest.raises(ValueError, match="no cache file was given"):
        distill(dataclasses.replace(spec, teacher_cache=_cache_params(spec)), inputs, tmp_path / "r", tmp_path / "s")


# --- configuration ---------------------------------------------------------------------------

def test_cache_is_on_for_the_paper_off_for_the_miniature_and_touches_nothing_else_of_a_run():
    """The paper's ViT-L teacher costs more per step than the student (benchmarks/README.md), the
    miniature's tiny one less than the extra job's start-up: so on for `paper`, off for `mini`."""
    defaults = {"top_k": 20, "full_max_mb": 2048, "dtype": "float16"}
    for name, enabled in (("mini", False), ("paper", True)):
        cfg = load_preset(ROOT / "config" / f"{name}.yaml")
        assert cfg["kd"]["teacher_cache"] == {"enabled": enabled, **defaults}
        off = load_preset(ROOT / "config" / f"{name}.yaml", overrides={"kd": {"teacher_cache": {"enabled": False}}})
        on = load_preset(ROOT / "config" / f"{name}.yaml", overrides={"kd": {"teacher_cache": {"enabled": True}}})
        for method in ("pkd", "pkd_rsm", "simple", "simple_rsm"):
            spec = run_spec(off, "base2new", cfg["datasets"][0], "16shot", method, 1)
            assert spec.teacher_cache is None and spec.job_params()["teacher_cache"] is None
            # the cache touches nothing else of a run's specification
            cached = run_spec(on, "base2new", cfg["datasets"][0], "16shot", method, 1)
            assert cached.teacher_cache is not None and dataclasses.replace(cached, teacher_cache=None) == spec


def test_every_method_of_a_cell_shares_one_cache_definition():
    cfg = load_preset(ROOT / "config" / "paper.yaml", overrides={"kd": {"teacher_cache": {"enabled": True}}})
    per_method = [run_spec(cfg, "base2new", "DTD", "16shot", m, 1).teacher_cache
                  for m in ("pkd", "pkd_rsm", "simple", "simple_rsm")]
    per_method.append(run_spec(cfg, "base2new", "DTD", "16shot", "pkd_rsm", 1, variant="omega1_frozen",
                               rsm=RSMSettings(omega=1.0, rank=cfg["rsm"]["rank"], trainable=False)).teacher_cache)
    per_method.append(run_spec(cfg, "base2new", "DTD", "16shot", "pkd", 2).teacher_cache)  # seeds too
    assert per_method[0] is not None
    assert all(p == per_method[0] for p in per_method)
    assert per_method[0] != run_spec(cfg, "base2new", "DTD", "4shot", "pkd", 1).teacher_cache
