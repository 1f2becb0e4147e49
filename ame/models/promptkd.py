"""PromptKD's released teachers (PromptSRC checkpoints) mapped onto our `Teacher`.

A release file is a Dassl checkpoint: a torch-saved dict `{state_dict, epoch, optimizer, scheduler,
val_result}` whose `state_dict` is PromptSRC's whole `CustomCLIP` (protocol.md §1b; the key set there
is derived from the PromptSRC/PromptKD code, not read from a released file). PromptKD's CLIP code
keeps OpenAI's parameter names, which open_clip also uses, so the towers map by prefix:

    image_encoder.<name>                               -> clip.visual.<name>
    image_encoder.VPT                                  -> vision_prompts.tokens[0]
    image_encoder.transformer.resblocks.<i>.VPT_shallow -> vision_prompts.tokens[i]     (i >= 1)
    text_encoder.{transformer.*, positional_embedding, ln_final.*, text_projection}
                                                       -> clip.<same name>
    text_encoder.transformer.resblocks.<i>.VPT_shallow -> text_prompts.tokens[i]       (i >= 1)
    prompt_learner.ctx                                 -> text_prompts.tokens[0]
    logit_scale                                        -> clip.logit_scale

Every other tensor is either in `IGNORED` (with the reason) or an error naming it. The checkpoint
holds no token embedding (PromptSRC's text encoder receives embeddings from its prompt learner), so
`clip.token_embedding.weight` keeps the backbone's OpenAI weights. All other backbone tensors are
taken from the checkpoint, as PromptKD does: PromptSRC's prompt averaging (GPA) sums whole state
dicts, so they need not be bit-identical to OpenAI's.
"""

from __future__ import annotations

import functools
import pickle
import re
import types
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

VISION_PROMPTS = "vision_prompts.tokens"
TEXT_PROMPTS = "text_prompts.tokens"
TOKEN_EMBEDDING = "clip.token_embedding.weight"

# Checkpoint tensors we read but do not use. A key ending in "." stands for everything under it.
IGNORED: tuple[tuple[str, str], ...] = (
    ("prompt_learner.token_prefix",
     "frozen [SOS] token embeddings of the training run's class names; recomputed from the token "
     "embedding for the class names being scored"),
    ("prompt_learner.token_suffix",
     "frozen class-name/[EOS] token embeddings of the training run's class names; recomputed likewise"),
    ("prompt_learner.token_prefix2",
     "PromptKD's own prompt learner keeps the new classes' [SOS] embeddings here; recomputed likewise"),
    ("prompt_learner.token_suffix2",
     "PromptKD's own prompt learner keeps the new classes' suffix embeddings here; recomputed likewise"),
    ("prompt_learner.ZS_image_encoder.",
     "PromptSRC's frozen zero-shot copy of the visual tower, used only by its self-regularising "
     "training loss; PromptKD's teacher has no such module"),
)

# Teacher tensors the checkpoint does not hold, and where they come from instead.
NOT_IN_CHECKPOINT = {
    TOKEN_EMBEDDING: "PromptSRC's text encoder takes embeddings from its prompt learner, so the checkpoint "
                     "has no token embedding; it comes from the backbone (open_clip pretrained 'openai')",
}

_PROMPT_LAYER = re.compile(r"^(image_encoder|text_encoder)\.transformer\.resblocks\.(\d+)\.VPT_shallow$")
_TEXT_NAMES = ("transformer.", "positional_embedding", "ln_final.", "text_projection")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the teacher; the message names the file, the key and what to do."""


@dataclass(frozen=True)
class Slot:
    """Where one checkpoint tensor goes: a `Teacher` state-dict key and, for prompts, the layer."""

    key: str
    layer: int | None = None

    def __str__(self) -> str:
        return self.key if self.layer is None else f"{self.key}[{self.layer}]"


def strip_module_prefix(state: dict) -> dict:
    """Drop the `module.` prefix nn.DataParallel adds (Dassl strips it on save; be safe on load)."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def ignore_reason(key: str) -> str | None:
    for pattern, reason in IGNORED:
        if key == pattern or (pattern.endswith(".") and key.startswith(pattern)):
            return reason
    return None


def slot_for(key: str) -> Slot | None:
    """The teacher slot a PromptSRC checkpoint key maps to, or None for a key outside the mapping."""
    if key == "prompt_learner.ctx":
        return Slot(TEXT_PROMPTS, 0)
    if key == "image_encoder.VPT":
        return Slot(VISION_PROMPTS, 0)
    if match := _PROMPT_LAYER.match(key):
        return Slot(VISION_PROMPTS if match[1] == "image_encoder" else TEXT_PROMPTS, int(match[2]))
    if key == "logit_scale":
        return Slot("clip.logit_scale")
    if key.startswith("image_encoder."):
        return Slot("clip.visual." + key.removeprefix("image_encoder."))
    if key.startswith("text_encoder."):
        name = key.removeprefix("text_encoder.")
        if name.startswith(_TEXT_NAMES):
            return Slot("clip." + name)
    return None


def checkpoint_key(slot: Slot) -> str:
    """The checkpoint key that feeds `slot` (the inverse of `slot_for`, for error messages)."""
    if slot.key == TEXT_PROMPTS:
        return "prompt_learner.ctx" if slot.layer == 0 else f"text_encoder.transformer.resblocks.{slot.layer}.VPT_shallow"
    if slot.key == VISION_PROMPTS:
        return "image_encoder.VPT" if slot.layer == 0 else f"image_encoder.transformer.resblocks.{slot.layer}.VPT_shallow"
    if slot.key.startswith("clip.visual."):
        return "image_encoder." + slot.key.removeprefix("clip.visual.")
    if slot.key == "clip.logit_scale":
        return "logit_scale"
    return "text_encoder." + slot.key.removeprefix("clip.")


@dataclass
class Conversion:
    """A checkpoint's tensors renamed to `Teacher` state-dict keys (prompt layers stacked), plus an
    account of everything not consumed."""

    state: dict[str, torch.Tensor]
    consumed: int
    ignored: dict[str, str] = field(default_factory=dict)  # checkpoint key -> reason
    unknown: list[str] = field(default_factory=list)  # skipped under allow_unknown_keys
    kept: list[str] = field(default_factory=list)  # teacher keys left at the backbone's weights

    def summary(self) -> dict:
        groups: dict[str, int] = defaultdict(int)
        for key in self.ignored:
            groups[next(p for p, _ in IGNORED if key == p or (p.endswith(".") and key.startswith(p)))] += 1
        return {"consumed": self.consumed, "ignored": dict(sorted(groups.items())),
                "unknown_skipped": sorted(self.unknown), "kept_from_backbone": sorted(self.kept)}


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"'{k}'" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _stack_prompts(name: str, per_layer: dict[int, torch.Tensor], depth: int, where: str) -> torch.Tensor:
    """depth x n x width, layer 0 first; every layer must be present. Dtypes are promoted: in
    PromptSRC's fp16 code path the first text context is half precision, the deeper prompts float32."""
    missing = [checkpoint_key(Slot(name, i)) for i in range(depth) if i not in per_layer]
    if missing:
        raise CheckpointError(f"{where}: prompt tensor(s) missing: {_listing(missing)}; the teacher has "
                              f"{depth} prompted layers (teacher.prompt_depth) — is this a PromptSRC "
                              "checkpoint of that depth?")
    tensors = [per_layer[i] for i in range(depth)]
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return torch.stack([t.to(dtype) for t in tensors])


def convert(state: dict[str, torch.Tensor], teacher: nn.Module, *, allow_unknown_keys: bool = False,
            where: str = "checkpoint") -> Conversion:
    """Map a PromptSRC `state_dict` onto `teacher`'s keys, checking every shape.

    Raises CheckpointError naming the key for: a shape that differs from the teacher's (expected vs
    found); prompts deeper or shallower than the teacher's `prompt_depth`; a key neither mapped nor
    in `IGNORED`; a backbone tensor the checkpoint lacks. `allow_unknown_keys` skips unknown keys and
    keeps the backbone's weights for missing backbone tensors (PromptKD's own `strict=False` load);
    prompt tensors are always required.
    """
    expected = {k: tuple(v.shape) for k, v in teacher.state_dict().items()}
    direct: dict[str, torch.Tensor] = {}
    layers: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
    ignored, unknown, errors = {}, [], []
    consumed = 0
    for key, tensor in strip_module_prefix(state).items():
        if (reason := ignore_reason(key)) is not None:
            ignored[key] = reason
            continue
        slot = slot_for(key)
        if slot is None or slot.key not in expected:
            unknown.append(key)
            continue
        want = expected[slot.key]
        if slot.layer is not None:
            if slot.layer >= want[0]:
                errors.append(f"'{key}': prompts on layer {slot.layer}, but the teacher has prompts on layers "
                              f"0..{want[0] - 1}; set teacher.prompt_depth to the checkpoint's depth")
                continue
            want = want[1:]
        if tuple(tensor.shape) != want:
            errors.append(f"'{key}' -> {slot}: expected shape {want}, found {tuple(tensor.shape)}")
        elif slot.layer is not None and slot.layer in layers[slot.key]:
            errors.append(f"'{key}' -> {slot}: another key already fills this prompt layer")
        else:
            consumed += 1
            if slot.layer is None:
                direct[slot.key] = tensor
            else:
                layers[slot.key][slot.layer] = tensor
    if errors:
        raise CheckpointError(f"{where}: {len(errors)} tensor(s) do not fit the teacher "
                              f"(is teacher.arch / prompt_tokens / prompt_depth right?):\n  " + "\n  ".join(errors[:10]))
    if unknown and not allow_unknown_keys:
        raise CheckpointError(
            f"{where}: {len(unknown)} tensor(s) outside the PromptSRC key mapping: {_listing(sorted(unknown))}. "
            f"List the file with `ame dump-checkpoint {where}`; if these keys are safe to skip, rerun with "
            "--allow-unknown-keys (teacher.allow_unknown_keys: true), or extend ame/models/promptkd.py")

    for name in (TEXT_PROMPTS, VISION_PROMPTS):
        direct[name] = _stack_prompts(name, layers[name], expected[name][0], where)
    absent = [k for k in expected if k not in direct and k not in NOT_IN_CHECKPOINT]
    if absent and not allow_unknown_keys:
        raise CheckpointError(
            f"{where}: the checkpoint lacks {len(absent)} backbone tensor(s): "
            f"{_listing([checkpoint_key(Slot(k)) for k in absent])}. Rerun with --allow-unknown-keys "
            "(teacher.allow_unknown_keys: true) to keep the backbone's OpenAI weights for them, as PromptKD's "
            "non-strict load would")
    return Conversion(direct, consumed, ignored, unknown, absent + [k for k in NOT_IN_CHECKPOINT if k in expected])


def load_converted(teacher: nn.Module, state: dict[str, torch.Tensor], kept: list[str] | tuple = (),
                   where: str = "teacher weights") -> nn.Module:
    """Load converted tensors into `teacher`; every teacher tensor must come from `state` except
    those the checkpoint lacks by design (`NOT_IN_CHECKPOINT`) or by an allowed skip (`kept`)."""
    result = teacher.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise CheckpointError(f"{where}: tensors the teacher does not have: {_listing(result.unexpected_keys)}")
    missing = sorted(set(result.missing_keys) - set(NOT_IN_CHECKPOINT) - set(kept))
    if missing:
        raise CheckpointError(f"{where}: teacher tensors not provided: {_listing(missing)}; convert the "
                              "checkpoint again (`ame teacher`)")
    return teacher


# ------------------------------------------------------------------------------------ reading files

class _Opaque:
    """Stands in for an object of a class the checkpoint pickled but we never use (optimizer and
    scheduler objects, numpy scalars, Dassl types); it records its state and executes nothing."""

    qualname = "?"

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state) -> None:
        self.state = state

    def __setitem__(self, key, value) -> None:
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value) -> None:
        self.__dict__.setdefault("list", []).append(value)

    def extend(self, values) -> None:
        self.__dict__.setdefault("list", []).extend(values)

    def __repr__(self) -> str:
        return f"<{self.qualname}>"


@functools.cache
def _opaque(module: str, name: str) -> type:
    return type(name, (_Opaque,), {"qualname": f"{module}.{name}"})


@functools.cache
def _allowed_globals() -> dict:
    """What torch's own `weights_only` loader may construct: tensors, storages, dtypes, OrderedDict."""
    try:
        from torch import _weights_only_unpickler

        return dict(_weights_only_unpickler._get_allowed_globals())
    except (ImportError, AttributeError):  # private API; keep working if it moves
        import collections

        return {"collections.OrderedDict": collections.OrderedDict, "torch.Size": torch.Size,
                "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
                "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter}


class _Unpickler(pickle.Unpickler):
    """Builds tensors and plain containers; replaces every other class by an inert `_Opaque`, so an
    untrusted download runs no code and Dassl need not be installed."""

    def find_class(self, module: str, name: str):
        return _allowed_globals().get(f"{module}.{name}") or _opaque(module, name)


_SAFE_PICKLE = types.ModuleType("ame_safe_pickle")
_SAFE_PICKLE.Unpickler = _Unpickler
_SAFE_PICKLE.load = pickle.load
_SAFE_PICKLE.__name__ = "ame_safe_pickle"


def read_checkpoint(path: str | Path) -> dict:
    """The torch-saved object at `path` (tensors on CPU), without executing pickled code."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_SAFE_PICKLE)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: checkpoint not found") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: cannot read as a torch checkpoint ({err}); the file may be truncated "
                              "or an archive still to unpack — delete it and fetch it again") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict (Dassl checkpoint or state dict), found {type(obj).__name__}")
    return obj


def checkpoint_state(checkpoint: dict, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model tensors of a Dassl checkpoint (`state_dict`), or of a bare state dict; `module.`
    prefixes stripped."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: 'state_dict' is a {type(state).__name__}, not a dict of tensors")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{where}: no tensors found (top-level keys: {sorted(map(str, checkpoint))}); "
                              "list it with `ame dump-checkpoint`")
    others = sorted(str(k) for k in state if k not in tensors)
    if others:
        raise CheckpointError(f"{where}: state_dict entries that are not tensors: {_listing(others)}")
    return strip_module_prefix(tensors)


def _describe_value(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, dict):
        n = sum(isinstance(v, torch.Tensor) for v in value.values())
        return f"dict with {len(value)} entries ({n} tensors)"
    if isinstance(value, (int, float, str, bool)) or value is None:
        return repr(value)
    return f"{type(value).__name__} object" if not isinstance(value, _Opaque) else f"{value!r} object"


def describe_checkpoint(checkpoint: dict) -> list[str]:
    """Human-readable listing: top-level entries, then every state_dict tensor with shape, dtype and
    where the teacher mapping puts it (or why it is ignored)."""
    if "state_dict" in checkpoint:
        lines = ["top-level entries:"] + [f"  {k}: {_describe_value(v)}" for k, v in checkpoint.items()]
        state = checkpoint["state_dict"]
        if not isinstance(state, dict):
            return lines
    else:
        lines, state = ["a bare state dict (no Dassl 'state_dict' entry)"], checkpoint
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    total = sum(v.numel() for v in tensors.values())
    lines.append(f"state_dict: {len(tensors)} tensors, {total:,} values (key  shape  dtype  -> target)")
    width = max((len(k) for k in tensors), default=0)
    for key, value in tensors.items():
        name = key.removeprefix("module.")
        reason = ignore_reason(name)
        slot = slot_for(name)
        target = "ignored" if reason else (str(slot) if slot else "UNKNOWN")
        lines.append(f"  {key:<{width}}  {str(tuple(value.shape)):<20} {str(value.dtype).removeprefix('torch.'):<9} -> {target}")
    return lines
