"""CLIP backbones through open_clip: the paper's OpenAI towers and the miniature's tiny ones.

Architectures are data: the tiny configs live in `ame/model_configs/*.json` and are registered with
open_clip, so every model, tiny or paper-size, is built by the same `open_clip.create_model` call.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from importlib import resources

import open_clip
import torch
from torch import nn

# OpenAI's CLIP and the PromptKD teachers use QuickGELU; open_clip's plain names build GELU.
ACTIVATION_NAME = "QuickGELU"


@functools.cache
def register_model_configs() -> None:
    open_clip.add_model_config(resources.files("ame") / "model_configs")


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _without_random_init_warning():
    root, drop = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(drop)  # open_clip logs through the root logger
    try:
        yield
    finally:
        root.removeFilter(drop)


def create_clip(arch: str, pretrained: str | None = None, block_type: str | None = None) -> nn.Module:
    """Build `arch` with open_clip (`pretrained`: an open_clip tag such as 'openai', or None).

    `block_type="custom"` selects open_clip's CustomResidualAttentionBlock in both towers: the same
    state-dict keys as the default block, and the fast CPU path under bf16 autocast (the default
    block's attention leaves its fast path there; install.md). Under `with torch.device("meta")` the
    model is built without data, for shape and parameter-count checks.
    """
    register_model_configs()
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown model architecture '{arch}'; choose one of open_clip's models "
                         f"(open_clip.list_models()) or a config in ame/model_configs/")
    kwargs = {}
    if block_type:
        # open_clip replaces (not merges) an overridden tower config, so pass the whole of it.
        cfg = open_clip.get_model_config(arch)
        kwargs.update({tower: {**cfg[tower], "block_type": block_type} for tower in ("vision_cfg", "text_cfg")})
    if torch.get_default_device().type == "meta":
        # Shapes only (parameter counts, state-dict keys): open_clip's final move to its default
        # device would try to copy the data that meta tensors do not have.
        if pretrained:
            raise ValueError(f"create_clip('{arch}'): pretrained weights cannot be loaded on the meta device; "
                             f"pass pretrained=None or leave the `torch.device('meta')` context")
        kwargs["device"] = "meta"
    if pretrained:
        model = open_clip.create_model(arch, pretrained=pretrained, **kwargs)
    else:
        # Our callers load their own weights right after (or want random ones on purpose), so
        # open_clip's "No pretrained weights loaded ... initialized randomly" would only mislead.
        with _without_random_init_warning():
            model = open_clip.create_model(arch, pretrained=pretrained, **kwargs)
    model.eval()
    return model


def get_tokenizer(arch: str):
    register_model_configs()
    return open_clip.get_tokenizer(arch)


def activation_class_names(model: nn.Module) -> set[str]:
    return {type(m).__name__ for m in model.modules() if "GELU" in type(m).__name__}

