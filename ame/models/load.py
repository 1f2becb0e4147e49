"""Loading what the pipeline stored, whatever produced it: a backbone from its card (weights trained
by `ame backbone`, open_clip's `openai` weights, or a local weights file), a teacher from its card
(prompts tuned by `ame teacher`, or PromptKD's released checkpoint converted by it), and a dataset's
stored teacher text features. Every step and every user script loads through here.

Cards are JSON files (`arch`, `weights`, `file`, `sha256` of the weights' bytes, `params`; a teacher
card adds `backbone_card` and, for converted checkpoints, `format: promptkd`). Each load checks the
weights against the card's sha256.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from ame.io import read_json, sha256_file
from ame.models import promptkd
from ame.models.clip import create_clip, get_tokenizer
from ame.models.teacher import Teacher


PRETRAIN = "pretrain"  # a card's `weights` for weights trained by `ame backbone` (file beside the card)
LOCAL = "file"  # a card's `weights` for a local weights file (models.<role>.weights: a path)
# Otherwise a card's `weights` is an open_clip tag ("openai"): open_clip's cache holds the file.


def tag_weights_file(arch: str, tag: str) -> Path:
    """The file open_clip keeps `arch`'s `tag` weights in (its cache; downloaded there first when
    absent and the network is allowed). ValueError for an unknown tag; FileNotFoundError saying
    how to fill the cache when the file is neither cached nor downloadable (e.g. HF_HUB_OFFLINE=1)."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    if not cfg:
        raise ValueError(f"open_clip has no '{tag}' weights for {arch} (open_clip.list_pretrained())")
    try:
        path = download_pretrained(cfg)
    except Exception as err:  # huggingface_hub and urllib raise many kinds; all mean "not here"
        raise FileNotFoundError(f"{arch} '{tag}' weights are not in open_clip's cache and could not be "
                                f"downloaded ({type(err).__name__}: {err}); fill the cache on a machine with "
                                "internet (README: Backbone weights, also offline) or set models.<role>.weights "
                                "to a local file") from None
    if not path:
        raise FileNotFoundError(f"open_clip found no file for {arch} '{tag}'")
    return Path(path)


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in a local weights file: an open_clip or OpenAI-format state dict (.pt, .pth,
    .bin, .safetensors; a nested `state_dict` is unwrapped) or OpenAI's released TorchScript archive."""
    path = str(path)
    try:
        return open_clip.factory.load_state_dict(path)
    except RuntimeError as err:
        if not any(word in str(err).lower() for word in ("torchscript", "jit")):
            raise ValueError(f"{path}: not a readable weights file ({err})") from None
    state = torch.jit.load(path, map_location="cpu").state_dict()  # OpenAI's own .pt archives
    return {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}


def load_weights_file(model: torch.nn.Module, path: str | Path, arch: str) -> None:
    """Load a local weights file into `model` (built as `arch`), all tensors or none; ValueError
    naming the file, the key and both shapes when it was made for another architecture."""
    state = read_weights_file(path)
    expected = model.state_dict()
    # Buffers the model rebuilds itself (e.g. the text tower's attention mask) are not weights.
    rebuilt = {name for name, _ in model.named_buffers()} - set(expected)
    state = {k: v for k, v in state.items() if k not in rebuilt}
    for key, tensor in state.items():
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(f"{path}: tensor '{key}' has shape {tuple(tensor.shape)} in the file but "
                             f"{tuple(expected[key].shape)} in {arch}; are these weights for another architecture?")
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: not a state dict of {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}"
                         f"{' ...' if len(missing) > 5 or len(unexpected) > 5 else ''}")
    model.load_state_dict(state)


def load_backbone(card_path: str | Path, block_type: str | None = None):
    """(CLIP model in eval mode, card) for the backbone a card describes, after checking the
    weights' bytes against the card's sha256 (ValueError naming the file when they changed).

    `block_type` ("custom" or None) picks the towers' attention block; both have the same
    state-dict keys, so either loads the same weights. `ame.runtime.block_type_for(precision)`
    gives the one to use (custom under bf16, where it is open_clip's fast CPU path).
    """
    card_path = Path(card_path)
    card = read_json(card_path)
    source = card["weights"]
    if source == PRETRAIN:
        path = card_path.parent / card["file"]
    elif source == LOCAL:
        path = Path(card["file"])
    else:
        path = tag_weights_file(card["arch"], source)
    if sha256_file(path) != card["sha256"]:
        raise ValueError(f"{path} changed since {card_path} was written (sha256 {str(card['sha256'])[:12]}…); "
                         "rerun the backbone step")
    if source == PRETRAIN:
        model = create_clip(card["arch"], block_type=block_type)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    elif source == LOCAL:
        model = create_clip(card["arch"], block_type=block_type)
        load_weights_file(model, path, card["arch"])
    else:
        model = create_clip(card["arch"], pretrained=source, block_type=block_type)
    return model.eval(), card


def build_teacher(params: dict, backbone_card: str | Path, block_type: str | None = None) -> Teacher:
    """A teacher with freshly initialised prompts (`params`: prompt_tokens, prompt_depth, ctx_init)
    on the backbone a card describes."""
    clip, card = load_backbone(backbone_card, block_type=block_type)
    return Teacher(clip, get_tokenizer(card["arch"]), params["prompt_tokens"], params["prompt_depth"],
                   params["ctx_init"])


def load_teacher(card_path: str | Path, device: torch.device,
                 block_type: str | None = None) -> tuple[Teacher, dict]:
    """(frozen teacher on `device`, card): backbone + tuned prompt tensors, or backbone + converted
    PromptKD tensors (card format 'promptkd', see `ame.steps.teacher`).

    Raises KeyError for tensors the teacher does not have."""
    card_path = Path(card_path)
    card = read_json(card_path)
    teacher = build_teacher(card["params"], card["backbone_card"], block_type=block_type)
    weights = card_path.parent / card["file"]
    if card.get("format") == "promptkd":
        saved = torch.load(weights, map_location="cpu", weights_only=True)
        promptkd.load_converted(teacher, saved["state"], saved.get("kept", ()), where=str(weights))
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        missing = teacher.load_state_dict(state["prompts"], strict=False)
        if missing.unexpected_keys:
            raise KeyError(f"{card_path}: unexpected teacher tensors {missing.unexpected_keys[:5]}")
    return teacher.to(device).eval().requires_grad_(False), card


def read_text_features(path: str | Path, card: dict, classnames: list[str]) -> torch.Tensor:
    """The C x d text features `ame teacher-features` stored, checked against the teacher card
    (sha256) and the split's class names; ValueError naming the file otherwise."""
    stored = torch.load(path, map_location="cpu", weights_only=True)
    if stored["teacher_sha256"] != card["sha256"]:
        raise ValueError(f"{path}: computed from another teacher (sha256 {stored['teacher_sha256'][:12]}…, "
                         f"card {card['sha256'][:12]}…); rerun teacher_features")
    if list(stored["classnames"]) != list(classnames):
        raise ValueError(f"{path}: class names differ from the split's; rerun teacher_features")
    return stored["features"].float()
