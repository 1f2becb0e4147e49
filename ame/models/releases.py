"""Registry of PromptKD's released teachers: one `Artifact` per checkpoint, and where to find it.

The release has no direct URLs: the files sit in a Baidu Yun share, a TeraBox share and a Google
Drive folder (the Drive folder holds only some of them), to be unpacked into `teacher_model/`
(protocol.md §1a). So every entry has `url=None` and the error for a missing file says exactly which
file to put where; `teacher.checkpoint_mirror` points at a server that holds the same tree, and
then files are downloaded (resumable, verified, placed atomically). No checksums are published:
`sha256=None`, so the first file seen is hashed, recorded in `<root>/sha256.json` and printed, and
every later copy must match.

Layout, from the loader in PromptKD's `trainers/promptkd.py`:
    base-to-new:    <root>/<DATASET.NAME>/VLPromptLearner/model-best.pth.tar
    cross-dataset:  <root>/ImageNet-xd/VLPromptLearner_large/model.pth.tar-20
with DATASET.NAME as in PromptKD's `configs/datasets/*.yaml`. Licence: PromptKD's repository is
Apache-2.0 and the teachers are fine-tuned OpenAI CLIP (MIT); the release states no separate terms
for the checkpoints, so check with the authors before redistributing them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ame.fetch import Artifact, ChecksumStore, fetch

HOSTS = (
    ("Baidu Yun (extraction code mjf4)", "https://pan.baidu.com/s/1KNJ1mhNKoxdSli4ZldeZUg?pwd=mjf4"),
    ("TeraBox", "https://terabox.com/s/1X4mxJtSaR8W2lrK5bsrCkg"),
    ("Google Drive folder (holds only some of the teachers)",
     "https://drive.google.com/drive/folders/1OdQ9WauZmYAzVSUTTw7tIKKChyECIS5B?usp=sharing"),
)

CHECKSUMS = "sha256.json"

# Our canonical dataset ids -> PromptKD's DATASET.NAME (the folder its loader builds).
DATASET_FOLDER = {
    "ImageNet": "ImageNet", "Caltech101": "Caltech101", "OxfordPets": "OxfordPets",
    "StanfordCars": "StanfordCars", "Flowers102": "OxfordFlowers", "Food101": "Food101",
    "FGVCAircraft": "FGVCAircraft", "SUN397": "SUN397", "DTD": "DescribableTextures",
    "EuroSAT": "EuroSAT", "UCF101": "UCF101",
}
# Spellings in PromptKD's teacher_model/README.md that differ from the loader's; accepted as well.
FOLDER_VARIANTS = {"FGVCAircraft": ("FGVCaircraft",), "StanfordCars": ("StandfordCars",)}

BASE2NEW_FILE = "{folder}/VLPromptLearner/model-best.pth.tar"
XD_SOURCE = "ImageNet"
XD_FILE = "ImageNet-xd/VLPromptLearner_large/model.pth.tar-20"


@dataclass(frozen=True)
class ReleasedTeacher:
    """One released checkpoint: the artifact (relative path, source, checksum) and accepted variants."""

    task: str
    dataset: str
    artifact: Artifact
    variants: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.artifact.filename, *self.variants)


def _manual(what: str, filename: str, variants: tuple[str, ...]) -> str:
    hosts = "; ".join(f"{name}: {url}" for name, url in HOSTS)
    also = f" ('{variants[0]}' is accepted too)" if variants else ""
    return (f"get {what}, file '{filename}'{also} of the teacher_model/ tree, from PromptKD's release "
            f"[{hosts}] or set teacher.checkpoint_mirror to a server holding that tree")


def _entry(task: str, dataset: str) -> ReleasedTeacher:
    if task == "xd":
        filename, variants, what = XD_FILE, (), "PromptKD's cross-dataset teacher (ImageNet, all classes)"
    else:
        folder = DATASET_FOLDER[dataset]
        filename = BASE2NEW_FILE.format(folder=folder)
        variants = tuple(BASE2NEW_FILE.format(folder=v) for v in FOLDER_VARIANTS.get(dataset, ()))
        what = f"PromptKD's base-to-new teacher for {dataset}"
    artifact = Artifact(name=f"promptkd-teacher/{task}/{dataset}", filename=filename, url=None, sha256=None,
                        manual=_manual(what, filename, variants))
    return ReleasedTeacher(task, dataset, artifact, variants)


TEACHERS: dict[tuple[str, str], ReleasedTeacher] = {
    **{("base2new", d): _entry("base2new", d) for d in DATASET_FOLDER},
    ("xd", XD_SOURCE): _entry("xd", XD_SOURCE),
}


def released_teacher(task: str, dataset: str) -> ReleasedTeacher:
    from ame.data import canonical_name

    try:
        return TEACHERS[(task, canonical_name(dataset))]
    except (KeyError, ValueError):
        known = ", ".join(f"{t}/{d}" for t, d in TEACHERS)
        raise ValueError(f"PromptKD released no teacher for {task}/{dataset}; released: {known}. Use "
                         "teacher.source: train for other datasets") from None


def locate_checkpoint(task: str, dataset: str, root: str | Path, *, mirror: str | None = None,
                      timeout: float = 30.0) -> tuple[Path, str]:
    """Path and sha256 of the released teacher for (task, dataset) under `root`.

    A file already there (under any accepted folder spelling) is verified; otherwise it is
    downloaded from `mirror` when given, else FetchError says which file to place where.
    """
    root = Path(root)
    entry = released_teacher(task, dataset)
    store = ChecksumStore(root / CHECKSUMS)
    artifact = entry.artifact
    for relative in entry.paths:
        if (root / relative).is_file():
            artifact = replace(entry.artifact, filename=relative)
            break
    else:
        if mirror:
            artifact = replace(artifact, url=f"{mirror.rstrip('/')}/{artifact.filename}")
    # A checksum is recorded only for a file that loads as a checkpoint (see ame.fetch.verify).
    from ame.models.promptkd import read_checkpoint

    path = fetch(artifact, root, store=store, timeout=timeout, usable=read_checkpoint)
    return path, artifact.sha256 or store.get(artifact.name)
