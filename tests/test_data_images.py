"""ImageSet and CLIP transforms: shapes, caching, and a clear error for damaged files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from ame.data import CLIP_MEAN, CLIP_STD, ImageReadError, ImageSet, build_transform


@pytest.fixture
def pngs(tmp_path):
    rng = np.random.default_rng(0)
    items = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(8, 8), dtype=np.uint8)).save(path)
        items.append((path, i))
    return items


@pytest.mark.parametrize("train", [True, False])
def test_imageset_gives_three_channel_tensors_at_image_size_and_int_labels(pngs, train):
    data = ImageSet(pngs, build_transform(train=train, image_size=32))
    assert len(data) == 3
    x, y = data[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y == 2 and isinstance(y, int)
    assert data.labels == [0, 1, 2]


def test_test_transform_is_deterministic_and_clip_normalised(pngs):
    data = ImageSet(pngs, build_transform(train=False, image_size=16))
    assert torch.equal(data[0][0], data[0][0])
    grey = Image.new("RGB", (8, 8), (128, 128, 128))
    x = build_transform(train=False, image_size=16)(grey)
    expected = torch.tensor([(128 / 255 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD)])
    assert torch.allclose(x[:, 8, 8], expected, atol=1e-5)


def test_transform_steps_follow_the_specification():
    train = build_transform(train=True, image_size=224, scale=(0.5, 1.0)).transforms
    assert [type(t) for t in train] == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ToTensor,
                                        T.Normalize]
    assert train[0].scale == (0.5, 1.0) and train[0].interpolation == T.InterpolationMode.BICUBIC
    no_flip = build_transform(train=True, image_size=224, hflip=False).transforms
    assert T.RandomHorizontalFlip not in [type(t) for t in no_flip]
    test = build_transform(train=False, image_size=224).transforms
    assert [type(t) for t in test] == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert test[0].interpolation == T.InterpolationMode.BICUBIC
    assert tuple(test[-1].mean) == CLIP_MEAN and tuple(test[-1].std) == CLIP_STD


def test_cache_keeps_decoded_images_after_the_first_load(pngs):
    cached = ImageSet(pngs, build_transform(train=False, image_size=8))
    uncached = ImageSet(pngs, build_transform(train=False, image_size=8), cache=False)
    first = cached[0][0]
    uncached[0]
    pngs[0][0].unlink()  # only the cache can serve it now
    assert torch.equal(cached[0][0], first)
    with pytest.raises(ImageReadError):
        uncached[0]


def test_truncated_image_error_names_the_file_and_the_prepare_step(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match=r"cut\.png.*re-run the prepare step"):
        ImageSet([(path, 0)], build_transform(train=False, image_size=8))[0]


def test_non_image_file_error_names_the_file(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match=r"junk\.png"):
        ImageSet([(path, 0)], None)[0]
