"""The paper path's inputs in miniature, at the real architectures, written without any network:
what `config/paper-smoke.yaml` runs on (`make paper-smoke`; tests/test_paper_smoke.py).

    python -m tests.paper_smoke [FOLDER]      # default: smoke/ (the preset's paths point there)

writes under FOLDER:

- `weights/ViT-B-16-quickgelu.safetensors`, `weights/ViT-L-14-quickgelu.safetensors`: randomly
  initialised open_clip state dicts of the paper's student and teacher backbones (float16), used
  as local weights files (`models.<role>.weights`);
- `teacher_model/DescribableTextures/VLPromptLearner/model-best.pth.tar`: a checkpoint in the
  layout and key names of PromptKD's released teachers — a Dassl checkpoint whose `state_dict`
  has PromptSRC's keys at ViT-L/14's shapes (protocol.md §1b; `tests/promptkd_fixtures.py`),
  random float16 values — for `teacher.source: fetch` to locate, convert and load;
- `teacher_model/ImageNet-xd/VLPromptLearner_large/model.pth.tar-20`: the same for the
  cross-dataset teacher (trained on ImageNet, the source);
- `data/DTD/raw/`: DTD in CoOp's layout (`images/<class>/<class>_NNNN.jpg` and
  `split_zhou_DescribableTextures.json`) with 4 of its 47 classes and 224-px images;
- `data/ImageNet/raw/`: ImageNet in CoOp's layout (`images/{train,val}/<wnid>/*.JPEG`,
  `classnames.txt`) with 4 of its 1,000 classes, the cross-dataset source.

The `prepare_dataset` jobs convert both with the real converters. Their class counts and split
sizes are not the protocol's, so the jobs need the test switch `AME_TEST_SMALL_SPLITS=1`
(ame.data.convert).

Existing files are kept (delete FOLDER to write them again), so a rerun costs nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.promptkd_fixtures import VIT_L14, promptkd_shapes, random_state

ARCHS = {"student": "ViT-B-16-quickgelu", "teacher": "ViT-L-14-quickgelu"}
CLASSES = ["banded", "blotchy", "braided", "bubbly"]  # DTD's first four classes, in its label order
IMAGES_PER_CLASS = {"train": 4, "val": 1, "test": 2}
IMAGE_SIZE = 224
SPLIT_FILE = "split_zhou_DescribableTextures.json"
# The release's folders: Dassl's DATASET.NAME for base-to-new (DescribableTextures for DTD), and
# the cross-dataset teacher's own.
CHECKPOINTS = (Path("teacher_model/DescribableTextures/VLPromptLearner/model-best.pth.tar"),
               Path("teacher_model/ImageNet-xd/VLPromptLearner_large/model.pth.tar-20"))
# ImageNet's first four classes: WordNet id and CLIP's class name (CoOp's classnames.txt).
IMAGENET_CLASSES = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark"),
                    ("n01491361", "tiger shark")]
PROMPT_TOKENS, PROMPT_DEPTH = 4, 9  # the paper preset's teacher prompts


def weights_path(folder: Path, role: str) -> Path:
    return folder / "weights" / f"{ARCHS[role]}.safetensors"


def write_backbone_weights(folder: Path) -> None:
    from safetensors.torch import save_file

    from ame.models.clip import create_clip

    for seed, role in enumerate(ARCHS):
        path = weights_path(folder, role)
        if path.is_file():
            continue
        torch.manual_seed(seed)
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in create_clip(ARCHS[role]).state_dict().items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path.with_suffix(".part")))
        path.with_suffix(".part").rename(path)


def write_teacher_checkpoints(folder: Path) -> None:
    for seed, relative in enumerate(CHECKPOINTS, start=7):
        path = folder / relative
        if path.is_file():
            continue
        shapes = promptkd_shapes(VIT_L14, n_ctx=PROMPT_TOKENS, depth=PROMPT_DEPTH, n_cls=len(CLASSES))
        state = {k: v.to(torch.float16) for k, v in random_state(shapes, seed=seed).items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        torch.save({"state_dict": state, "epoch": 20, "val_result": 0.0}, part)
        part.rename(path)


def _texture(label: int, index: int) -> Image.Image:
    """A 224-px image with a class-dependent stripe frequency and colour, plus noise."""
    rng = np.random.default_rng(1000 * label + index)
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    stripes = np.sin((x + index * 7) * (label + 1) * 0.08)[..., None]
    colour = np.array([[60, 120, 200], [200, 80, 60], [80, 180, 90], [190, 170, 40]][label])
    pixels = 127 + 0.45 * stripes * colour + rng.normal(0, 12, (IMAGE_SIZE, IMAGE_SIZE, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def write_dataset(folder: Path) -> None:
    raw = folder / "data" / "DTD" / "raw"
    if (raw / SPLIT_FILE).is_file():
        return
    split, number = {}, 0
    for name, count in IMAGES_PER_CLASS.items():
        split[name] = []
        for label, classname in enumerate(CLASSES):
            for _ in range(count):
                number += 1
                relative = f"{classname}/{classname}_{number:04d}.jpg"
                target = raw / "images" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                _texture(label, number).save(target, quality=90)
                split[name].append([relative, label, classname])
    (raw / SPLIT_FILE).write_text(json.dumps(split))  # last: marks a complete folder


def write_imagenet(folder: Path) -> None:
    raw = folder / "data" / "ImageNet" / "raw"
    if (raw / "classnames.txt").is_file():
        return
    number = 0
    for part, count in (("train", IMAGES_PER_CLASS["train"]), ("val", IMAGES_PER_CLASS["test"])):
        for label, (wnid, _) in enumerate(IMAGENET_CLASSES):
            for _ in range(count):
                number += 1
                target = raw / "images" / part / wnid / f"{wnid}_{number:05d}.JPEG"
                target.parent.mkdir(parents=True, exist_ok=True)
                _texture(label, number).save(target, format="JPEG", quality=90)
    (raw / "classnames.txt").write_text("".join(f"{w} {name}\n" for w, name in IMAGENET_CLASSES))  # last


def write_inputs(folder: str | Path = "smoke") -> Path:
    folder = Path(folder)
    write_dataset(folder)
    write_imagenet(folder)
    write_teacher_checkpoints(folder)
    write_backbone_weights(folder)
    return folder


if __name__ == "__main__":
    print(f"paper-smoke inputs in {write_inputs(*sys.argv[1:2])}")
