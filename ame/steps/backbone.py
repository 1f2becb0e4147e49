"""`ame backbone`: a CLIP backbone's card (and, when pre-trained here, its weights).

`models.<role>.weights` says where the weights come from: `pretrain` (the miniature's contrastive
pre-training, `ame.training.contrastive`; the weights file is written beside the card), the open_clip
tag `openai` (downloaded once into open_clip's cache), or a local weights file. The card
records the architecture, the source and the sha256 of the weights' bytes; `ame.models.load`
loads any of them and checks that digest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader

from ame.data import ImageSet, build_transform, load_split
from ame.io import sha256_file, torch_save, write_json
from ame.models.clip import create_clip, get_tokenizer
from ame.models.load import LOCAL, PRETRAIN, load_weights_file, tag_weights_file
from ame.training.contrastive import Captioned, Contrastive, zero_shot_accuracy
from ame.training.engine import fit

log = logging.getLogger(__name__)


def pretrain(params: dict, split_paths: list[Path], out_weights: Path, out_card: Path, seed: int = 0) -> dict:
    """Train `params['arch']` contrastively on the splits' training images; write its weights and a
    card (arch, sha256, zero-shot accuracy on each split's val images)."""
    torch.manual_seed(seed)
    model = create_clip(params["arch"])
    # open_clip's N(0, 0.02) token init suits web-scale data; from scratch on ten-class captions it
    # leaves all captions nearly identical for hundreds of steps, so start with distinct words.
    torch.nn.init.normal_(model.token_embedding.weight, std=params["token_init_std"])
    tokenizer = get_tokenizer(params["arch"])
    size = params["image_size"]
    splits = [load_split(p) for p in split_paths]
    augment = build_transform(True, size, (params["scale_min"], 1.0), hflip=False)
    train_sets = [Captioned(ImageSet(s.items("train"), augment), s.dataset, s.classnames, seed + i)
                  for i, s in enumerate(splits)]
    loader = DataLoader(ConcatDataset(train_sets), batch_size=params["batch_size"], shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(seed))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=params["lr"], weight_decay=params["weight_decay"])
    fit(Contrastive(model, tokenizer, loader, params), opt, epochs=params["epochs"], steps_per_epoch=len(loader))
    val = {s.dataset: round(zero_shot_accuracy(model, tokenizer, s.items("val"), s.classnames, size), 2)
           for s in splits}
    log.info(f"[pretrain {params['arch']}] zero-shot accuracy on val splits: {val}")
    torch_save(model.state_dict(), out_weights)
    card = {"arch": params["arch"], "weights": PRETRAIN, "file": out_weights.name,
            "sha256": sha256_file(out_weights), "val_zero_shot_accuracy": val, "params": params}
    write_json(out_card, card)
    return card


def make_backbone(params: dict, split_paths: list[Path], out_card: Path, out_weights: Path | None = None) -> dict:
    """Write the backbone card for `params` (`arch`, `weights`, and for `pretrain` the trainer's
    settings); `out_weights` is the pre-trained weights file, given for `pretrain` only.

    ValueError when `out_weights` is given for weights that are not trained here (they would be an
    empty placeholder) or missing for `pretrain`, and when a local file does not fit `arch`."""
    arch, source = params["arch"], params["weights"]
    if source == PRETRAIN:
        if out_weights is None:
            raise ValueError("weights: pretrain writes a weights file; pass --out-weights")
        return pretrain(params, split_paths, Path(out_weights), Path(out_card))
    if out_weights is not None:
        raise ValueError(f"weights: {source} are not trained here, so there is no weights file to write; "
                         "drop --out-weights (the card records where the weights are)")
    if source == "openai":
        path = tag_weights_file(arch, source)  # downloads into open_clip's cache unless it is there
        create_clip(arch, pretrained=source)  # loads as every later step will: fails here if it cannot
        card = {"arch": arch, "weights": source, "file": str(path), "sha256": sha256_file(path), "params": params}
    else:
        path = Path(source).resolve()
        load_weights_file(create_clip(arch), path, arch)
        card = {"arch": arch, "weights": LOCAL, "file": str(path), "sha256": sha256_file(path), "params": params}
    write_json(out_card, card)
    log.info(f"[backbone {arch}] {card['weights']} weights {card['file']} (sha256 {card['sha256'][:12]}…)")
    return card
