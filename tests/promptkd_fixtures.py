"""PromptSRC checkpoints written from protocol.md §1b alone, and a forward pass computed straight from
their raw tensors — both independent of `ame.models.promptkd`, so the tests check it against them.

`promptkd_shapes` lists the §1b key set at given dimensions (ViT-L/14's or a tiny stand-in's);
`reference_logits` re-implements PromptKD's teacher (IVLP prompts, QuickGELU CLIP) in plain torch.
"""

from __future__ import annotations

import json
import math

import open_clip
import torch
import torch.nn.functional as F

# ViT-L/14 at 224 px (OpenAI CLIP), the released teachers' backbone.
VIT_L14 = dict(vision_width=1024, vision_layers=24, patch=14, grid=16, text_width=768, text_layers=12,
               context=77, embed=768)

# A tiny model shaped like it: distinct vision and text widths (a swapped mapping cannot pass the shape
# checks), more vision layers than prompted ones (the last layer runs without prompts).
TINY_ARCH = "ame-test-promptkd-tiny"
TINY = dict(vision_width=40, vision_layers=4, patch=14, grid=2, text_width=24, text_layers=3, context=20, embed=16)
TINY_HEADS = {"vision": 2, "text": 2}
TINY_DEPTH = 3
TINY_CONFIG = {
    "embed_dim": TINY["embed"],
    "quick_gelu": True,
    "vision_cfg": {"image_size": TINY["patch"] * TINY["grid"], "layers": TINY["vision_layers"],
                   "width": TINY["vision_width"], "head_width": TINY["vision_width"] // TINY_HEADS["vision"],
                   "patch_size": TINY["patch"]},
    "text_cfg": {"context_length": TINY["context"], "vocab_size": 49408, "width": TINY["text_width"],
                 "heads": TINY_HEADS["text"], "layers": TINY["text_layers"]},
}
N_CTX = 4
CTX_INIT = "a photo of a"


def register_tiny_config(folder) -> str:
    path = folder / f"{TINY_ARCH}.json"
    path.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(path)
    return TINY_ARCH


def _block(prefix: str, width: int) -> dict[str, tuple]:
    return {prefix + "ln_1.weight": (width,), prefix + "ln_1.bias": (width,),
            prefix + "attn.in_proj_weight": (3 * width, width), prefix + "attn.in_proj_bias": (3 * width,),
            prefix + "attn.out_proj.weight": (width, width), prefix + "attn.out_proj.bias": (width,),
            prefix + "ln_2.weight": (width,), prefix + "ln_2.bias": (width,),
            prefix + "mlp.c_fc.weight": (4 * width, width), prefix + "mlp.c_fc.bias": (4 * width,),
            prefix + "mlp.c_proj.weight": (width, 4 * width), prefix + "mlp.c_proj.bias": (width,)}


def _visual(prefix: str, d: dict, prompts: bool, n_ctx: int, depth: int) -> dict[str, tuple]:
    w = d["vision_width"]
    shapes = {prefix + "conv1.weight": (w, 3, d["patch"], d["patch"]), prefix + "class_embedding": (w,),
              prefix + "positional_embedding": (d["grid"] ** 2 + 1, w),
              prefix + "ln_pre.weight": (w,), prefix + "ln_pre.bias": (w,)}
    for i in range(d["vision_layers"]):
        shapes |= _block(f"{prefix}transformer.resblocks.{i}.", w)
        if prompts and 1 <= i < depth:
            shapes[f"{prefix}transformer.resblocks.{i}.VPT_shallow"] = (n_ctx, w)
    shapes |= {prefix + "ln_post.weight": (w,), prefix + "ln_post.bias": (w,), prefix + "proj": (w, d["embed"])}
    if prompts:
        shapes[prefix + "VPT"] = (n_ctx, w)
    return shapes


def promptkd_shapes(d: dict, n_ctx: int = N_CTX, depth: int = 9, n_cls: int = 10) -> dict[str, tuple]:
    """PromptSRC `CustomCLIP.state_dict()` key -> shape, per protocol.md §1b."""
    tw = d["text_width"]
    shapes = {"prompt_learner.ctx": (n_ctx, tw),
              "prompt_learner.token_prefix": (n_cls, 1, tw),
              "prompt_learner.token_suffix": (n_cls, d["context"] - 1 - n_ctx, tw)}
    shapes |= _visual("prompt_learner.ZS_image_encoder.", d, False, n_ctx, depth)
    shapes |= _visual("image_encoder.", d, True, n_ctx, depth)
    for i in range(d["text_layers"]):
        shapes |= _block(f"text_encoder.transformer.resblocks.{i}.", tw)
        if 1 <= i < depth:
            shapes[f"text_encoder.transformer.resblocks.{i}.VPT_shallow"] = (n_ctx, tw)
    shapes |= {"text_encoder.positional_embedding": (d["context"], tw), "text_encoder.ln_final.weight": (tw,),
               "text_encoder.ln_final.bias": (tw,), "text_encoder.text_projection": (tw, d["embed"]),
               "logit_scale": ()}
    return shapes


def meta_state(shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors for every key: LayerNorm gains near 1, everything else small and distinct."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key == "logit_scale":
            state[key] = torch.tensor(math.log(100.0))
        elif key.endswith(".weight") and ("ln_" in key):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = shape[-1] if len(shape) >= 2 else 1
            state[key] = torch.randn(shape, generator=g) * (0.5 / math.sqrt(fan_in) if len(shape) >= 2 else 0.1)
    return state


# ----------------------------------------------------------------------------- reference forward

def _ln(x, sd, name):
    return F.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"], eps=1e-5)


def _attention(x, sd, p, heads, mask):
    b, n, d = x.shape
    q, k, v = (x @ sd[p + "attn.in_proj_weight"].t() + sd[p + "attn.in_proj_bias"]).chunk(3, dim=-1)
    q, k, v = (t.reshape(b, n, heads, d // heads).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
    if mask is not None:
        scores = scores + mask
    out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
    return out @ sd[p + "attn.out_proj.weight"].t() + sd[p + "attn.out_proj.bias"]


def _block_forward(x, sd, p, heads, mask=None):
    x = x + _attention(_ln(x, sd, p + "ln_1"), sd, p, heads, mask)
    h = _ln(x, sd, p + "ln_2") @ sd[p + "mlp.c_fc.weight"].t() + sd[p + "mlp.c_fc.bias"]
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU
    return x + h @ sd[p + "mlp.c_proj.weight"].t() + sd[p + "mlp.c_proj.bias"]


def reference_image_features(sd, images, layers, heads, n_ctx=N_CTX):
    """PromptKD's prompted image encoder: patches, [CLS], pos-emb, VPT appended, per-layer replace."""
    e = "image_encoder."
    patches = F.conv2d(images, sd[e + "conv1.weight"], stride=sd[e + "conv1.weight"].shape[-1])
    x = patches.flatten(2).transpose(1, 2)
    cls = sd[e + "class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + sd[e + "positional_embedding"]
    x = torch.cat([x, sd[e + "VPT"].expand(x.shape[0], -1, -1)], dim=1)
    x = _ln(x, sd, e + "ln_pre")
    for i in range(layers):
        p = f"{e}transformer.resblocks.{i}."
        if p + "VPT_shallow" in sd:
            x = torch.cat([x[:, :-n_ctx], sd[p + "VPT_shallow"].expand(x.shape[0], -1, -1)], dim=1)
        x = _block_forward(x, sd, p, heads)
    return _ln(x[:, 0], sd, e + "ln_post") @ sd[e + "proj"]


def reference_text_features(sd, token_embedding, ids, layers, heads, n_ctx=N_CTX):
    """PromptKD's prompted text encoder: [SOS] ctx <name> . [EOS], per-layer replace, causal mask."""
    t = "text_encoder."
    emb = token_embedding[ids]
    ctx = sd["prompt_learner.ctx"].expand(ids.shape[0], -1, -1)
    x = torch.cat([emb[:, :1], ctx, emb[:, 1 + n_ctx:]], dim=1) + sd[t + "positional_embedding"]
    n = x.shape[1]
    mask = torch.full((n, n), float("-inf")).triu(1)
    for i in range(layers):
        p = f"{t}transformer.resblocks.{i}."
        if p + "VPT_shallow" in sd:
            deep = sd[p + "VPT_shallow"].expand(x.shape[0], -1, -1)
            x = torch.cat([x[:, :1], deep, x[:, 1 + n_ctx:]], dim=1)
        x = _block_forward(x, sd, p, heads, mask)
    x = _ln(x, sd, t + "ln_final")
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ sd[t + "text_projection"]


def reference_logits(sd, token_embedding, tokenizer, images, classnames):
    """100 · cos(image, text) of PromptKD's teacher, from the raw checkpoint tensors."""
    ids = tokenizer([f"{CTX_INIT} {c.replace('_', ' ')}." for c in classnames])
    image = reference_image_features(sd, images, TINY["vision_layers"], TINY_HEADS["vision"])
    text = reference_text_features(sd, token_embedding, ids, TINY["text_layers"], TINY_HEADS["text"])
    return 100 * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
