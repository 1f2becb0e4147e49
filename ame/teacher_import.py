"""Importing a released PromptKD teacher (teacher.source: fetch): locate or fetch, convert, record.

Writes the same pair of files a prompt-tuned teacher has — a weights file and a card — so everything
downstream (`load_teacher`, text features, distillation) is the same for both. The weights file
holds the converted tensors in the checkpoint's own dtypes (the backbone's token embedding excepted,
which the checkpoint lacks), so later steps need neither the release file nor the conversion code.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ame.io import read_json, sha256_file, torch_save, write_json
from ame.models import promptkd
from ame.models.load import build_teacher
from ame.models.teachers import locate_checkpoint

log = logging.getLogger(__name__)

FORMAT = "promptkd"


def _scalar(value):
    return value if isinstance(value, (int, float, str, bool)) or value is None else repr(value)


def _warn_skips(dataset: str, summary: dict) -> None:
    kept = [k for k in summary["kept_from_backbone"] if k not in promptkd.NOT_IN_CHECKPOINT]
    if summary["unknown_skipped"]:
        log.warning(f"[teacher {dataset}] skipped tensors outside the mapping: {summary['unknown_skipped']}")
    if kept:
        log.warning(f"[teacher {dataset}] absent from the checkpoint, kept the backbone's weights: {kept}")


def import_teacher(params: dict, backbone_card: Path, out_weights: Path, out_card: Path, *,
                   allow_unknown_keys: bool = False) -> dict:
    """Convert PromptKD's released teacher for (params['task'], params['dataset']) into our format."""
    path, digest = locate_checkpoint(params["task"], params["dataset"], params["checkpoint_root"],
                                     mirror=params.get("checkpoint_mirror"))
    checkpoint = promptkd.read_checkpoint(path)
    state = promptkd.checkpoint_state(checkpoint, where=str(path))
    teacher = build_teacher(params, backbone_card)
    conversion = promptkd.convert(state, teacher, allow_unknown_keys=allow_unknown_keys, where=str(path))
    promptkd.load_converted(teacher, conversion.state, conversion.kept, where=str(path))
    summary = conversion.summary()
    _warn_skips(params["dataset"], summary)
    torch_save({"format": FORMAT, "state": conversion.state, "kept": conversion.kept}, out_weights)
    backbone = read_json(backbone_card)
    card = {"format": FORMAT, "arch": backbone["arch"], "backbone_card": str(backbone_card),
            "backbone_sha256": backbone["sha256"], "file": Path(out_weights).name,
            "sha256": sha256_file(out_weights), "dataset": params["dataset"], "task": params["task"],
            "source": {"path": str(path), "sha256": digest, "epoch": _scalar(checkpoint.get("epoch")),
                       "val_result": _scalar(checkpoint.get("val_result"))},
            "conversion": summary, "params": params}
    write_json(out_card, card)
    log.info(f"[teacher {params['dataset']}] converted {path} ({summary['consumed']} tensors; ignored "
          f"{summary['ignored']})")
    return card
