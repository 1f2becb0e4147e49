"""Deep prompts (IVLP / PromptKD style) injected into open_clip's vision and text towers.

Vision: `n` learned tokens are appended after [CLS]+patches (after the positional embedding, before
`ln_pre`); at each prompted layer 1..depth-1 the last `n` tokens are replaced by that layer's
tokens. Text: the first layer's tokens replace the embeddings of the `n` context words right after
SOS; layers 1..depth-1 replace those positions again. Only the prompt tensors are trained.
"""

from __future__ import annotations

import torch
from torch import nn


def _blocks(transformer: nn.Module):
    return transformer.resblocks


def _run_blocks(transformer: nn.Module, x: torch.Tensor, prompts: torch.Tensor | None,
                replace, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    batch_first = getattr(transformer, "batch_first", True)
    if not batch_first:
        x = x.transpose(0, 1)
    depth = 0 if prompts is None else prompts.shape[0]
    for i, block in enumerate(_blocks(transformer)):
        if 0 < i < depth:
            x = replace(x if batch_first else x.transpose(0, 1), prompts[i])
            x = x if batch_first else x.transpose(0, 1)
        x = block(x, attn_mask=attn_mask)
    return x if batch_first else x.transpose(0, 1)


class VisionPrompts(nn.Module):
    """`depth` x `n` x width learned vision tokens, N(0, 0.02) as PromptKD initialises them."""

    def __init__(self, width: int, n_tokens: int, depth: int) -> None:
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(depth, n_tokens, width) * 0.02)

    @property
    def depth(self) -> int:
        return self.tokens.shape[0]


def encode_image(visual: nn.Module, images: torch.Tensor, prompts: VisionPrompts | None = None, *,
                 tokens: torch.Tensor | None = None) -> torch.Tensor:
    """open_clip VisionTransformer forward with optional deep prompts; returns projected CLS features.

    Prompts are `prompts` (one set for every image) or `tokens` (N x depth x n x width: image i's
    own, as lockstep training gives each run's images their run's prompts).
    """
    x = visual.conv1(images.to(visual.conv1.weight.dtype))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    if prompts is not None:
        tokens = prompts.tokens.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1, -1)
    if tokens is None:
        layers, replace = None, None
    else:
        if tokens.ndim != 4 or tokens.shape[0] != x.shape[0]:
            raise ValueError(f"per-image prompt tokens must be N x depth x n x width with N = {x.shape[0]}, "
                             f"got {tuple(tokens.shape)}")
        layers = tokens.to(x.dtype).transpose(0, 1)  # depth x N x n x width
        n = layers.shape[2]
        x = torch.cat([x, layers[0]], dim=1)

        def replace(h, layer_tokens):
            return torch.cat([h[:, :-n], layer_tokens], dim=1)
    x = visual.ln_pre(x)
    x = _run_blocks(visual.transformer, x, layers, replace)
    pooled, _ = visual._pool(x)
    return pooled @ visual.proj if visual.proj is not None else pooled


class TextPrompts(nn.Module):
    """`depth` x `n` x width learned text context; layer 0 initialised from the ctx_init words."""

    def __init__(self, init: torch.Tensor, depth: int) -> None:
        super().__init__()
        n, width = init.shape
        deep = torch.randn(depth - 1, n, width) * 0.02
        self.tokens = nn.Parameter(torch.cat([init.unsqueeze(0), deep], dim=0))

    @property
    def depth(self) -> int:
        return self.tokens.shape[0]


def encode_text(clip: nn.Module, token_ids: torch.Tensor, prompts: TextPrompts | None = None) -> torch.Tensor:
    """open_clip CLIP text forward; with prompts, positions 1..n (the context words) are learned."""
    x = clip.token_embedding(token_ids)
    if prompts is None:
        tokens, replace = None, None
    else:
        tokens = prompts.tokens.to(x.dtype)
        n = tokens.shape[1]

        def replace(h, layer_tokens):
            return torch.cat([h[:, :1], layer_tokens.expand(h.shape[0], -1, -1), h[:, 1 + n:]], dim=1)

        x = replace(x, tokens[0])
    x = x + clip.positional_embedding.to(x.dtype)
    x = _run_blocks(clip.transformer, x, tokens, replace, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)
    pooled = x[torch.arange(x.shape[0], device=x.device), token_ids.argmax(dim=-1)]
    return pooled @ clip.text_projection
