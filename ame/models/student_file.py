"""Self-describing student files: what a run saves, and one call that loads a ready classifier.

A run folder holds `student.safetensors` (the student's trained tensors — vision prompts,
projector with its BatchNorm statistics — and its classifier, the teacher's text features) and
`student.json`:

    format          "ame-student/1"
    backbone        the frozen CLIP's card (path relative to this file), arch, weights tag or
                    file, sha256 — the backbone's bytes are checked when loading
    prompts         tokens and depth of the deep vision prompts (depth 0: Simple, no prompts)
    projector       in_dim -> out_dim (PromptKD's 512 -> 768 at the paper's sizes)
    classnames      the classes, in the order of the classifier's rows
    text_features   where the classifier came from (path relative to this file) and its sha256
    logit_scale     the scale of the logits (KD's, 100 as CLIP's)
    weights_sha256  sha256 of student.safetensors
    params          the run's whole specification (params.json)

`load_student(path)` rebuilds the model from these alone (no preset, no guessing); students saved
by older versions (`student.pt`, trainable tensors only) get an error that says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ame.io import atomic_path, read_json, sha256_file, write_json
from ame.models.load import load_backbone
from ame.models.student import Student

FORMAT = "ame-student/1"
WEIGHTS = "student.safetensors"
CONFIG = "student.json"
_STUDENT = "student."
_TEXT = "text_features"


class StudentClassifier(nn.Module):
    """A distilled student with its classifier: images (B×3×H×W, the run's preprocessing) ->
    logits (B×C) = logit_scale · normalised student features · text features (C×d)ᵀ.

    Attributes: `student` (ame.models.student.Student), `classnames`, `config` (student.json).
    """

    def __init__(self, student: Student, text_features: torch.Tensor, classnames: list[str],
                 logit_scale: float, config: dict) -> None:
        super().__init__()
        self.student = student
        self.register_buffer("text_features", text_features)
        self.classnames = list(classnames)
        self.logit_scale = float(logit_scale)
        self.config = config

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised features (B×d) in the teacher's embedding space."""
        return self.student(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * self.encode(images) @ self.text_features.t()

    @property
    def image_size(self) -> int:
        return int(self.config["params"]["augment"]["image_size"])

    def preprocess(self, image) -> torch.Tensor:
        """An image file's path or a PIL image (any mode) -> 3×H×W tensor, prepared as the run's
        test images were: decoded to RGB as the datasets are (`ame.data.images.load_rgb`), then
        `ame.data.build_transform(False, image_size)` (resize, centre crop, CLIP's normalisation)."""
        from ame.data.images import build_transform, load_rgb
        from ame.data.pixels import to_rgb

        rgb = load_rgb(image) if isinstance(image, (str, os.PathLike)) else to_rgb(image)
        return build_transform(False, self.image_size)(rgb)


def save_student(out_dir: str | os.PathLike, student: Student, text_features: torch.Tensor,
                 classnames: list[str], backbone_card: str | os.PathLike,
                 text_features_file: str | os.PathLike, params: dict, logit_scale: float) -> list[Path]:
    """Write student.safetensors and student.json into `out_dir` (atomically); their paths."""
    out_dir = Path(out_dir)
    weights, config_path = out_dir / WEIGHTS, out_dir / CONFIG
    tensors = {_STUDENT + k: v.detach().cpu().contiguous() for k, v in student.trainable_state().items()}
    tensors[_TEXT] = text_features.detach().float().cpu().contiguous()
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    card = read_json(backbone_card)
    depth, tokens = (student.prompts.tokens.shape[:2] if student.prompts is not None else (0, 0))
    config = {
        "format": FORMAT,
        "backbone": {"card": os.path.relpath(backbone_card, out_dir), "arch": card["arch"],
                     "weights": card["weights"], "sha256": card["sha256"]},
        "prompts": {"tokens": int(tokens), "depth": int(depth)},
        "projector": {"in_dim": int(student.visual.output_dim), "out_dim": int(text_features.shape[1])},
        "classnames": list(classnames),
        "text_features": {"source": os.path.relpath(text_features_file, out_dir),
                          "sha256": sha256_file(text_features_file)},
        "logit_scale": float(logit_scale),
        "weights_sha256": sha256_file(weights),
        "params": params,
    }
    write_json(config_path, config)
    return [weights, config_path]


def _config_path(path: Path) -> Path:
    if path.is_dir():
        if not (path / CONFIG).is_file() and (path / "student.pt").is_file():
            raise ValueError(f"{path}: holds student.pt, saved by an older ame (trainable tensors only: no "
                             "architecture, prompt settings or class names); rerun its distill job to write "
                             f"{WEIGHTS} and {CONFIG}")
        path = path / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no student here; give a run folder or its {CONFIG}")
    return path


def load_student(path: str | os.PathLike, device: str | torch.device = "cpu") -> StudentClassifier:
    """The distilled student of a run folder (or its student.json), ready to classify, in eval mode
    on `device`. Checks the weights' and the backbone's sha256 (ValueError naming the file when
    either changed). Runs in float32 whatever the run trained in."""
    config_path = _config_path(Path(path))
    config = read_json(config_path)
    if config.get("format") != FORMAT:
        raise ValueError(f"{config_path}: format {config.get('format')!r}, this ame reads {FORMAT!r}")
    weights = config_path.parent / WEIGHTS
    if sha256_file(weights) != config["weights_sha256"]:
        raise ValueError(f"{weights} changed since {config_path} was written; rerun its distill job")
    card_path = config_path.parent / config["backbone"]["card"]
    if not card_path.is_file():
        raise FileNotFoundError(f"{config_path}: its backbone card {card_path} is missing; the student needs "
                                "the preset's models/ folder beside its runs")
    clip, card = load_backbone(card_path)
    if card["sha256"] != config["backbone"]["sha256"]:
        raise ValueError(f"{card_path}: the backbone changed since the student was trained "
                         f"(sha256 {card['sha256'][:12]}…, student {config['backbone']['sha256'][:12]}…)")
    tensors = load_file(str(weights))
    text = tensors.pop(_TEXT)
    student = Student(clip, config["projector"]["out_dim"], max(config["prompts"]["tokens"], 1),
                      config["prompts"]["depth"])
    student.load_trainable_state({k[len(_STUDENT):]: v for k, v in tensors.items()})
    model = StudentClassifier(student, text, config["classnames"], config["logit_scale"], config)
    return model.eval().to(device)
