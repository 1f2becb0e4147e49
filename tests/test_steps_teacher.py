"""`ame teacher` (ame.steps.teacher) with teacher.source: fetch: a released teacher is located or
fetched, converted, loaded like a tuned teacher, and scored by `ame teacher-check` beside PromptKD's
published accuracy."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ame import contracts
from ame.cli import main
from ame.data import ImageSet, build_transform, load_split
from ame.fetch import sha256_bytes
from ame.io import read_json, sha256_file, write_json
from ame.models.clip import create_clip, get_tokenizer
from ame.models.load import load_teacher
from ame.report.teacher_table import write_teacher_check
from ame.spec import preset as preset_module
from ame.spec import validate_preset
from ame.spec.grid import teacher_check_params, teacher_params
from tests import promptkd_fixtures as fx
from tests.fileserver import serve

CLASSNAMES = ["abyssinian", "beagle", "bengal", "boxer"]


def _png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (28, 28, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny ViT-L-shaped backbone, a 4-class 'OxfordPets' split and a PromptSRC checkpoint."""
    root = tmp_path_factory.mktemp("world")
    arch = fx.register_tiny_config(root)
    torch.manual_seed(3)
    torch.save(create_clip(arch).state_dict(), root / "backbone.pt")
    write_json(root / "backbone.json", {"arch": arch, "weights": "pretrain", "file": "backbone.pt",
                                        "sha256": sha256_file(root / "backbone.pt")})
    items = {"train": [], "test": []}
    for label in range(len(CLASSNAMES)):
        for part, n in (("train", 1), ("test", 3)):
            for i in range(n):
                rel = f"img/{part}_{label}_{i}.png"
                _png(root / rel, 100 * label + 10 * i + (part == "test"))
                items[part].append([rel, label])
    write_json(root / "split.json", {"dataset": "OxfordPets", "classnames": CLASSNAMES, "root": ".", **items})
    state = fx.random_state(fx.promptkd_shapes(fx.TINY, depth=fx.TINY_DEPTH, n_cls=len(CLASSNAMES)), seed=5)
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "epoch": 20, "optimizer": {}, "scheduler": {}, "val_result": 90.0}, buffer)
    return {"root": root, "arch": arch, "state": state, "checkpoint": buffer.getvalue()}


def _preset(world, mirror):
    """A validated preset around the tiny ViT-L stand-in (28-px images: both models use it).

    Validation checks architectures against the open_clip config folders; the stand-in's config
    lives in the world's folder, so that folder is looked at too while validating."""
    raw = {
        "preset": "t", "datasets": ["OxfordPets"], "shots": [1], "seeds": [1], "methods": ["pkd"],
        "models": {"student": {"arch": world["arch"], "weights": "pretrain"},
                   "teacher": {"arch": world["arch"], "weights": "pretrain"}},
        "teacher": {"source": "fetch", "prompt_depth": fx.TINY_DEPTH,
                    "checkpoint_root": str(world["root"] / "teacher_model"), "checkpoint_mirror": mirror},
        "augment": {"image_size": 28}, "eval": {"batch_size": 5},
        "runtime": {"device": "cpu", "precision": "fp32"}}
    folders = preset_module._model_config_dirs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preset_module, "_model_config_dirs", lambda: [*folders(), world["root"]])
        return validate_preset(raw, name="t", where="t.yaml")


def _teacher_cmd(world, cfg, out):
    return ["teacher", "--params", json.dumps(teacher_params(cfg, "base2new", "OxfordPets")),
            "--backbone", str(world["root"] / "backbone.json"), "--split", str(world["root"] / "split.json"),
            "--out-weights", str(out / "teacher.pt"), "--out-card", str(out / "teacher.json")]


def test_without_the_file_or_a_mirror_ame_teacher_says_which_file_to_place_where(world, tmp_path, capsys):
    cfg = _preset(world, None)
    cfg["teacher"]["checkpoint_root"] = str(tmp_path / "empty")
    with pytest.raises(SystemExit):
        main(_teacher_cmd(world, cfg, tmp_path))
    err = capsys.readouterr().err
    assert "OxfordPets/VLPromptLearner/model-best.pth.tar" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "teacher.json").exists()


def test_fetched_teacher_is_converted_loaded_featurised_and_checked(world, tmp_path, capsys):
    files = {"/OxfordPets/VLPromptLearner/model-best.pth.tar": world["checkpoint"]}
    with serve(files) as (url, handler):
        cfg = _preset(world, url)
        main(_teacher_cmd(world, cfg, tmp_path))
        assert sha256_bytes(world["checkpoint"]) in capsys.readouterr().err  # hash printed on first download
        main(_teacher_cmd(world, cfg, tmp_path))  # second time: the verified local copy, no download
        assert len(handler.requests) == 1
    card = read_json(tmp_path / "teacher.json")
    assert card["format"] == "promptkd" and card["source"]["sha256"] == sha256_bytes(world["checkpoint"])
    assert card["source"]["epoch"] == 20 and card["conversion"]["unknown_skipped"] == []

    # load_teacher rebuilds exactly PromptKD's teacher from the card's weights file
    teacher, _ = load_teacher(tmp_path / "teacher.json", torch.device("cpu"))
    split = load_split(world["root"] / "split.json")
    images = torch.stack([img for img, _ in ImageSet(split.items("test"), build_transform(False, 28))])
    labels = torch.tensor([label for _, label in split.test])
    tokenizer = get_tokenizer(world["arch"])
    with torch.no_grad():
        ours = 100 * teacher.encode_image(images) @ teacher.encode_text(CLASSNAMES).t()
        expected = fx.reference_logits(world["state"], teacher.clip.token_embedding.weight, tokenizer, images,
                                       CLASSNAMES)
    torch.testing.assert_close(ours, expected, atol=2e-4, rtol=1e-4)

    # teacher-check scores the loaded teacher among base / new classes from the stored text features
    features, check = tmp_path / "features.pt", tmp_path / "check.json"
    main(["teacher-features", "--teacher", str(tmp_path / "teacher.json"), "--split", str(world["root"] / "split.json"),
          "--device", "cpu", "--out", str(features)])
    main(["teacher-check", "--params", json.dumps(teacher_check_params(cfg, "base2new", "OxfordPets")),
          "--teacher", str(tmp_path / "teacher.json"), "--features", str(features),
          "--split", str(world["root"] / "split.json"), "--out", str(check)])
    result = contracts.validate(read_json(check), contracts.TEACHER_CHECK, "check.json")

    def accuracy(classes):
        keep = torch.isin(labels, torch.tensor(classes))
        predicted = torch.tensor(classes)[expected[keep][:, classes].argmax(dim=1)]
        return 100.0 * float((predicted == labels[keep]).float().mean())

    assert result["base"] == pytest.approx(accuracy([0, 1]), abs=1e-3)
    assert result["new"] == pytest.approx(accuracy([2, 3]), abs=1e-3)
    assert result["source"] == "fetch" and result["n_test"] == 12

    table = write_teacher_check([check], tmp_path / "t.csv", tmp_path / "t.md", "t")
    row = table.iloc[0]
    assert (row["promptkd_base"], row["promptkd_new"], row["promptkd_hm"]) == (96.86, 98.82, 97.83)
    assert row["delta_hm"] == pytest.approx(result["hm"] - 97.83)


def test_fetch_parameters_leave_out_training_keys_and_training_ones_leave_out_fetch_keys(world):
    fetch = teacher_params(_preset(world, None), "base2new", "OxfordPets")
    assert {"checkpoint_root", "checkpoint_mirror", "allow_unknown_keys"} <= set(fetch)
    assert not {"shots", "epochs", "lr", "augment"} & set(fetch)
    cfg = _preset(world, None)
    cfg["teacher"]["source"] = "train"
    train = teacher_params(cfg, "base2new", "OxfordPets")
    assert not {"checkpoint_root", "checkpoint_mirror", "allow_unknown_keys"} & set(train)
    assert {"shots", "epochs", "lr", "augment"} <= set(train)
