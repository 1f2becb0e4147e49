"""Image loading for training and evaluation: a torch Dataset over (path, label) and CLIP transforms."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image
from torchvision import transforms as T

from ame.data.pixels import to_rgb

#: CLIP's (OpenAI) input normalisation, used by both towers of every model here.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageReadError(OSError):
    """An image listed in a split cannot be decoded (missing, truncated or corrupt)."""


def load_rgb(path: str | Path) -> Image.Image:
    """Open and fully decode `path` as 8-bit RGB (`to_rgb`); raise ImageReadError naming the file on failure."""
    try:
        with Image.open(path) as img:
            # Decoding happens here, so truncation surfaces here rather than inside a transform.
            return to_rgb(img, str(path))
    except (OSError, SyntaxError, ValueError) as err:  # PIL reports broken PNG chunks as SyntaxError
        raise ImageReadError(
            f"{path}: cannot read image ({type(err).__name__}: {err}); the file is missing, "
            f"truncated, corrupt or of an unsupported kind: re-run the prepare step for this dataset"
        ) from err


class ImageSet(torch.utils.data.Dataset):
    """``(transform(image), label)`` for a list of ``(path, label)``.

    With ``cache=True`` decoded RGB images stay in memory after their first load: the mini datasets
    are a few MB and every epoch would otherwise re-decode them. ``store`` (a dict path -> image)
    lets several sets share one cache, as the seeds of a lockstep job share most of their images.
    DataLoader worker processes inherit what was decoded before they started (`preload`) and
    cache the rest for themselves. Random transforms still run on every access.
    """

    def __init__(self, items: Sequence[tuple[str | Path, int]],
                 transform: Callable[[Image.Image], torch.Tensor] | None = None, cache: bool = True,
                 store: dict | None = None):
        self.items = [(Path(path), int(label)) for path, label in items]
        self.transform = transform if transform is not None else T.ToTensor()
        self.cache = cache
        self._images: dict[Path, Image.Image] = store if store is not None else {}

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.items]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        img = self._images.get(path)
        if img is None:
            img = load_rgb(path)
            if self.cache:
                self._images[path] = img
        return self.transform(img), label

    def decoded_bytes(self, sample: int | None = None) -> int:
        """Bytes the decoded RGB images of this set take, read from the files' headers (nothing is
        decoded); with `sample`, estimated from that many evenly spaced files."""
        paths = list(dict.fromkeys(p for p, _ in self.items))
        chosen = paths if sample is None or sample >= len(paths) else paths[::max(1, len(paths) // sample)]
        total = 0
        for path in chosen:
            try:
                with Image.open(path) as img:
                    total += img.width * img.height * 3
            except (OSError, SyntaxError, ValueError) as err:
                raise ImageReadError(f"{path}: cannot read image header ({type(err).__name__}: {err}); re-run "
                                     "the prepare step for this dataset") from err
        return round(total * len(paths) / max(1, len(chosen)))

    def preload(self) -> None:
        """Decode every image into the cache now (before DataLoader workers start, which then share it)."""
        for path in dict.fromkeys(p for p, _ in self.items):
            if path not in self._images:
                self._images[path] = load_rgb(path)


def build_transform(train: bool, image_size: int, scale: tuple[float, float] = (0.08, 1.0),
                    hflip: bool = True) -> T.Compose:
    """CLIP-style preprocessing.

    train: RandomResizedCrop(image_size, scale, bicubic) -> [RandomHorizontalFlip(0.5)] -> ToTensor
    -> Normalize(CLIP). test: Resize(image_size, bicubic) -> CenterCrop(image_size) -> ToTensor ->
    Normalize(CLIP) (CLIP's own eval transform).
    """
    bicubic = T.InterpolationMode.BICUBIC
    if train:
        steps = [T.RandomResizedCrop(image_size, scale=scale, interpolation=bicubic)]
        if hflip:
            steps.append(T.RandomHorizontalFlip(0.5))
    else:
        steps = [T.Resize(image_size, interpolation=bicubic), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
