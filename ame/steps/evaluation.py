"""`ame evaluate`: score a trained student, a backbone zero-shot, or a loaded teacher on any
prepared dataset's test split (top-1, top-5, mean per-class recall; contracts.EVALUATION); and
`ame predict`: a student's classes for a folder of images.

The student comes from its run folder alone (`ame.models.student_file.load_student`); its
classifier is the teacher text features it was trained with, or, to score it on another dataset's
classes, the text features `ame teacher-features` stored for that dataset (`text_features`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ame import contracts
from ame.data import ImageSet, build_transform, load_split
from ame.evaluate import classification_scores, features_and_labels
from ame.io import write_json
from ame.models.student_file import load_student
from ame.runtime import resolve_device

CLASS_SETS = ("base", "new", "all")


def _classifier(model, split, text_features: str | os.PathLike | None) -> torch.Tensor:
    if text_features is None:
        if list(model.classnames) != list(split.classnames):
            raise ValueError(f"the student was trained on {len(model.classnames)} other classes than "
                             f"{split.dataset}'s {split.num_classes}; give --text-features, the teacher's "
                             f"features of {split.dataset} (models/features/<task>/{split.dataset}.pt)")
        return model.text_features.cpu()
    stored = torch.load(text_features, map_location="cpu", weights_only=True)
    if list(stored["classnames"]) != list(split.classnames):
        raise ValueError(f"{text_features}: its class names are not {split.dataset}'s (from its split.json)")
    return stored["features"].float()


def _score(model_name: str, encode, image_size: int, split, classes: str, text: torch.Tensor,
           batch_size: int, device: str, out) -> dict:
    if classes not in CLASS_SETS:
        raise ValueError(f"classes must be one of {CLASS_SETS}, got {classes!r}")
    chosen = {"base": split.base_labels, "new": split.new_labels,
              "all": lambda: list(range(split.num_classes))}[classes]()
    test = ImageSet(split.items("test", labels=chosen), build_transform(False, image_size))
    with torch.no_grad():
        features, labels = features_and_labels(encode, test, batch_size, torch.device(device))
    result = {"model": model_name, "dataset": split.dataset, "classes": classes, "n_classes": len(chosen),
              **classification_scores(features, labels, text, chosen)}
    contracts.validate(result, contracts.EVALUATION, where=str(out or "ame evaluate"))
    if out is not None:
        write_json(Path(out), result)
    return result


def evaluate_student(student: str | os.PathLike, split_path: str | os.PathLike, classes: str = "all",
                     text_features: str | os.PathLike | None = None, batch_size: int = 100,
                     device: str = "cpu", out: str | os.PathLike | None = None) -> dict:
    """Top-1, top-5 and mean per-class recall (%) of the student in `student` (a run folder or its
    student.json) on the test images of `split_path`'s `classes` ("base", "new" or "all"),
    classified among those classes. Written to `out` (contracts.EVALUATION) when given."""
    device = str(resolve_device(device))
    model = load_student(student, device)
    split = load_split(split_path)
    return _score(str(student), model.encode, model.image_size, split, classes,
                  _classifier(model, split, text_features), batch_size, device, out)


def evaluate_backbone(card: str | os.PathLike, split_path: str | os.PathLike, classes: str = "all",
                      batch_size: int = 100, device: str = "cpu", out: str | os.PathLike | None = None) -> dict:
    """The same scores for a CLIP backbone zero-shot (its card: `results/<preset>/models/backbone/
    <role>.json`): class vectors from "a photo of a {class}." (`ame.evaluate.ZERO_SHOT_TEMPLATE`),
    images at the backbone's own input size."""
    import torch.nn.functional as F

    from ame.evaluate import ZERO_SHOT_TEMPLATE
    from ame.models.clip import get_tokenizer
    from ame.models.load import load_backbone

    device = str(resolve_device(device))
    clip, meta = load_backbone(card)
    clip = clip.to(device)
    split = load_split(split_path)
    tokens = get_tokenizer(meta["arch"])([ZERO_SHOT_TEMPLATE.format(c.replace("_", " ")) for c in split.classnames])
    with torch.no_grad():
        text = F.normalize(clip.encode_text(tokens.to(device)), dim=-1).float().cpu()
    return _score(str(card), lambda x: F.normalize(clip.encode_image(x), dim=-1), _input_size(clip.visual),
                  split, classes, text, batch_size, device, out)


def evaluate_teacher(card: str | os.PathLike, text_features: str | os.PathLike, split_path: str | os.PathLike,
                     classes: str = "all", batch_size: int = 100, device: str = "cpu",
                     out: str | os.PathLike | None = None) -> dict:
    """The same scores for a loaded teacher (its card: `results/<preset>/models/teacher/<task>/
    <dataset>.json`) with its stored text features of the split's classes (`ame teacher-features`)."""
    from ame.models.load import load_teacher, read_text_features

    device = str(resolve_device(device))
    teacher, meta = load_teacher(card, torch.device(device))
    split = load_split(split_path)
    text = read_text_features(text_features, meta, split.classnames)
    return _score(str(card), teacher.encode_image, _input_size(teacher.clip.visual), split, classes, text,
                  batch_size, device, out)


def _input_size(visual) -> int:
    """The image side a CLIP vision tower was built for (open_clip's `image_size`)."""
    size = visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def predict_folder(student: str | os.PathLike, images: str | os.PathLike, top_k: int = 1,
                   batch_size: int = 100, device: str = "cpu") -> list[dict]:
    """The student's top-`top_k` classes (name and softmax probability of its logits) for every
    image under `images` (recursively, sorted by path; the suffixes custom datasets accept).
    One dict per image: path, then class_1, prob_1, ... class_k, prob_k."""
    from ame.data.custom import IMAGE_SUFFIXES

    folder = Path(images)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    device = str(resolve_device(device))
    model = load_student(student, device)
    k = min(top_k, len(model.classnames))
    rows = []
    loader = torch.utils.data.DataLoader(ImageSet([(f, -1) for f in files], build_transform(False, model.image_size),
                                                  cache=False), batch_size=batch_size)
    with torch.no_grad():
        for images_batch, _ in loader:
            probs = model(images_batch.to(device)).float().softmax(dim=1).cpu()
            top = probs.topk(k, dim=1)
            for p, i in zip(top.values, top.indices):
                row = {"path": str(files[len(rows)])}
                for rank, (prob, idx) in enumerate(zip(p.tolist(), i.tolist()), start=1):
                    row[f"class_{rank}"] = model.classnames[idx]
                    row[f"prob_{rank}"] = round(prob, 6)
                rows.append(row)
    return rows
