"""Preparing a paper dataset: obtain its raw tree, convert it, check it, write split.json.

Files under ``<data_root>/<Name>/``::

    split.json      the contract (design §4); `root` points into raw/, paths are relative
    raw/            the dataset in CoOp's layout for its ``$DATA/<folder>/`` (see the registry)
    downloads/      archives while they download (``*.part`` resumes); those this run downloaded
                    are removed once prepared, those placed there by hand are kept
    .staging-*/     extraction in progress; renamed into raw/ only when complete

and ``<data_root>/checksums.json``, the hashes recorded on first download (sources publish none).

Order of work: a valid split.json is returned at once (no network). Otherwise raw/ is used when it
already has the layout (a hand-placed or linked CoOp folder), or assembled from the first source
that works: the Hugging Face mirror's zip, then the original files. The split file is fetched by
its Drive id when raw/ lacks it. ImageNet is validated instead (`ame.data.imagenet`). The split is
then converted, its sizes compared with the protocol's, every image opened, and split.json written
atomically. Every failure names the file and the fix; none leaves a split.json, a half-extracted
raw/ or a partial archive at a final path (interrupted downloads stay as ``.part`` for resuming).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from . import sources
from ..fetch import ChecksumError, ChecksumStore, FetchError, extract
from .convert import (Converted, check_sizes, read_fgvc_variants, read_zhou_split, small_splits_allowed, verify_images,
                      write_split)
from .registry import MIRROR_REPO, DatasetInfo, Part
from .splits import load_split

log = logging.getLogger(__name__)

#: How deep below an archive's top a dataset folder may sit (``dtd/``, ``fgvc-aircraft-2013b/data/``).
LAYOUT_DEPTH = 3


class ArchiveError(FetchError):
    """A downloaded archive that cannot be used (corrupt, truncated, wrong content); stops preparation."""


def checksum_store(data_root: str | Path) -> ChecksumStore:
    """The store of recorded hashes shared by all datasets under `data_root`."""
    return ChecksumStore(Path(data_root) / "checksums.json")


def _already_prepared(split_path: Path, name: str) -> bool:
    if not split_path.is_file():
        return False
    try:
        split = load_split(split_path)
    except (ValueError, OSError) as err:
        log.warning(f"{name}: existing {split_path} is unusable ({err}); preparing again")
        return False
    if split.dataset != name or not split.root.is_dir():
        log.warning(f"{name}: existing {split_path} is for dataset {split.dataset!r} with image folder {split.root}, "
              "which does not match; preparing again")
        return False
    return True


def find_layout_root(tree: Path, required: tuple[str, ...], depth: int = LAYOUT_DEPTH) -> Path | None:
    """The shallowest folder at most `depth` levels below `tree` holding every path in `required`."""
    level = [tree]
    for _ in range(depth + 1):
        for folder in level:
            if all((folder / rel).exists() for rel in required):
                return folder
        level = sorted(p for folder in level for p in folder.iterdir()
                       if p.is_dir() and not p.name.startswith((".", "__MACOSX")))  # macOS zip metadata
        if not level:
            break
    return None


def _is_archive(filename: str) -> bool:
    return filename.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def _unpack(archive: Path, into: Path, name: str, store: ChecksumStore, *, ours: bool) -> Path:
    """Extract `archive` (atomically, into a fresh folder). A broken archive stops us; it is deleted
    only when this run downloaded it (`ours`): one that was already in place may have been put there
    by hand and is left as it is."""
    try:
        return extract(archive, into)
    except FetchError as err:
        sources.forget_checksum(store, name)  # the hash of a broken file is no reference
        what = str(err).split("; ")[0]  # fetch's own advice ("delete it and rerun") is given here
        if not ours:
            raise ArchiveError(f"{what}; {archive} was already in place (put there by hand or kept from an "
                               "earlier run) and is left untouched: replace it with a good copy, or delete it "
                               "to download it again, then rerun.") from None
        archive.unlink(missing_ok=True)
        raise ArchiveError(f"{what}; the archive is truncated or corrupt and was deleted: rerun to download "
                           "it again. If this repeats, "
                           f"the source serves a broken file: place a good copy at {archive} by hand.") from None


def _listing(tree: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in tree.iterdir())
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") or "nothing"


def _locate(tree: Path, required: tuple[str, ...], archive: Path) -> Path:
    # A layout mismatch is a FetchError, not an ArchiveError: the next source may still work, and the
    # archive is kept so that a rerun does not download it again only to find the same content.
    root = find_layout_root(tree, required)
    if root is None:
        raise FetchError(f"{archive} does not contain {', '.join(required)} (looked {LAYOUT_DEPTH} folder "
                         f"levels deep; it holds {_listing(tree)})")
    return root


def _prune(folder: Path) -> None:
    """Remove lock files and empty folders (the hub client's bookkeeping) below and at `folder`."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and path.suffix == ".lock":
            path.unlink(missing_ok=True)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


class _Workspace:
    """The per-dataset folders used while preparing (see the module docstring)."""

    def __init__(self, info: DatasetInfo, data_root: Path, store: ChecksumStore):
        self.info, self.store = info, store
        self.spec = info.remote
        self.dir = data_root / info.name
        self.raw = self.dir / "raw"
        self.downloads = self.dir / "downloads"
        self.staging = self.dir / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Complete files already in downloads/ (placed by hand, or kept from an earlier run): never deleted.
        self.placed = {p for p in self.downloads.rglob("*") if p.is_file() and p.suffix != ".part"
                       and ".cache" not in p.relative_to(self.downloads).parts} if self.downloads.is_dir() else set()

    def artifact(self, *parts: str) -> str:
        return "/".join((self.info.name, *parts))

    # --- sources, each assembling a complete raw tree in staging and returning it ---------------

    def from_mirror(self, endpoint: str | None) -> Path:
        name = self.artifact("mirror", self.spec.mirror_file)
        archive = sources.hub_download(self.spec.mirror_file, self.downloads, name=name, store=self.store,
                                       sha256=self.spec.mirror_sha256, endpoint=endpoint)
        tree = _unpack(archive, self.staging / "mirror", name, self.store, ours=archive not in self.placed)
        return _locate(tree, self.spec.layout, archive)

    def fetch_part(self, part: Part) -> Path:
        name = self.artifact(part.filename)
        dest = self.downloads / part.filename
        if part.url is not None:
            return sources.url_download(part.url, dest, name=name, store=self.store, sha256=part.sha256)
        return sources.drive_download(part.drive_id, dest, name=name, store=self.store, sha256=part.sha256)

    def from_parts(self) -> Path:
        assembled = self.staging / "raw"
        assembled.mkdir(parents=True)
        for part in self.spec.parts:
            file = self.fetch_part(part)
            if _is_archive(part.filename):
                tree = _unpack(file, self.staging / f"{part.filename}.x", self.artifact(part.filename), self.store,
                               ours=file not in self.placed)
                root = _locate(tree, part.provides, file)
                for rel in part.provides:
                    (assembled / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.rename(root / rel, assembled / rel)
            else:
                os.replace(file, assembled / part.filename)
        return assembled

    def manual_steps(self) -> str:
        spec, steps = self.spec, []
        if spec.mirror_file:
            note = "" if spec.mirror_confirmed else (
                f" (that file name is UNCONFIRMED: if the mirror names it differently, see "
                f"https://huggingface.co/{MIRROR_REPO}/tree/main and save the {self.info.name} zip under "
                f"the name {spec.mirror_file})")
            steps.append(f"download {sources.mirror_page(spec.mirror_file)} and place it at "
                         f"{self.downloads / spec.mirror_file}{note}")
        if spec.parts:
            files = "; ".join(f"{p.url or sources.drive_page(p.drive_id)} -> {self.downloads / p.filename}"
                              for p in spec.parts)
            steps.append(f"download the original files and place them at: {files}")
        layout = ", ".join([*spec.layout, *([spec.split_file] if spec.split_file else [])])
        steps.append(f"place CoOp's {spec.folder}/ folder (holding {layout}) at {self.raw} (a symbolic link is fine)")
        return " OR ".join(f"({i}) {s}" for i, s in enumerate(steps, start=1))

    # --- the raw tree ------------------------------------------------------------------------------

    def ensure_raw(self, endpoint: str | None) -> None:
        """Make raw/ hold the layout: use it as it is, or build it from the first working source."""
        if self.raw.exists():
            missing = [rel for rel in self.spec.layout if not (self.raw / rel).exists()]
            if missing:
                raise FileNotFoundError(
                    f"{self.info.name}: {self.raw} exists but lacks {', '.join(missing)}; it must have the "
                    f"layout of CoOp's {self.spec.folder}/ folder ({', '.join(self.spec.layout)}). Complete "
                    f"it, or delete it to download the dataset again.")
            return
        attempts = [lambda: self.from_mirror(endpoint)] if self.spec.mirror_file else []
        if self.spec.parts:
            attempts.append(self.from_parts)
        failures = []
        for attempt in attempts:
            try:
                tree = attempt()
            except (ChecksumError, ArchiveError):
                raise
            except FetchError as err:
                failures.append(str(err))
                shutil.rmtree(self.staging, ignore_errors=True)
                continue
            os.rename(tree, self.raw)
            return
        tried = "".join(f"\n  - {line}" for line in failures) or "\n  - (no automatic source)"
        raise FetchError(f"{self.info.name}: could not download the dataset. Tried:{tried}\n"
                         f"To prepare it by hand, {self.manual_steps()}; then rerun "
                         f"`ame prepare --dataset {self.info.name}`.")

    def split_file(self) -> Path:
        """raw/<split_file>, fetched by its Drive id when absent."""
        spec = self.spec
        for candidate in (self.raw / spec.split_file, self.dir / spec.split_file):
            if candidate.is_file():
                return candidate
        dest = self.raw / spec.split_file
        try:
            return sources.drive_download(spec.split_drive_id, dest, name=self.artifact(spec.split_file),
                                          store=self.store, sha256=spec.split_sha256)
        except ChecksumError:
            raise
        except (FetchError, OSError) as err:
            raise FetchError(
                f"{self.info.name}: the split file {spec.split_file} is missing from {self.raw} and could not "
                f"be downloaded ({err}). Download {sources.drive_page(spec.split_drive_id)} and place it at "
                f"{dest}, then rerun.") from None

    def cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def drop_downloads(self) -> None:
        """Once prepared: delete the archives this run downloaded (their content is in raw/); keep
        those that were already in place, which may have no other copy."""
        if not self.downloads.is_dir():
            return
        for path in self.downloads.rglob("*"):
            if path.is_file() and path not in self.placed:
                path.unlink()
        kept = sorted(self.placed & {p for p in self.downloads.rglob("*") if p.is_file()})
        if kept:
            log.info(f"{self.info.name}: kept {', '.join(map(str, kept))} (already in place before this run; "
                  "delete by hand to save space: its content is in raw/)")
        _prune(self.downloads)

    def remove_stale_staging(self) -> None:
        # Leftovers of a killed run (SIGKILL skips cleanup) are never valid.
        if self.dir.is_dir():
            for stale in self.dir.glob(".staging-*"):
                shutil.rmtree(stale, ignore_errors=True)


def _convert(ws: _Workspace, endpoint: str | None) -> tuple[Converted, Path]:
    """The converted dataset and its image root, for the non-ImageNet converters."""
    spec = ws.spec
    ws.ensure_raw(endpoint)
    classes = None if small_splits_allowed() else ws.info.num_classes  # the test switch: any class count
    if spec.converter == "fgvc_variants":
        converted = read_fgvc_variants(ws.raw, classes)
    else:
        converted = read_zhou_split(ws.split_file(), classes)
    return converted, ws.raw / spec.image_root


def _convert_imagenet(ws: _Workspace) -> tuple[Converted, Path]:
    from . import imagenet

    wnids = imagenet.validate_layout(ws.raw, None if small_splits_allowed() else ws.info.num_classes or 1000)
    (part,) = ws.spec.parts
    first, second = imagenet.classnames_locations(ws.raw, ws.dir)
    path = first if first.is_file() else second
    if not path.is_file():
        try:
            path = sources.drive_download(part.drive_id, second, name=ws.artifact(part.filename),
                                          store=ws.store, sha256=part.sha256)
        except ChecksumError:
            raise
        except FetchError as err:
            raise FileNotFoundError(imagenet.NO_CLASSNAMES.format(
                first=first, second=second, reason=err, page=sources.drive_page(part.drive_id))) from None
    classnames = imagenet.read_classnames(path, wnids, page=sources.drive_page(part.drive_id))
    return imagenet.read_imagenet(ws.raw, classnames, wnids), ws.raw / ws.spec.image_root


def prepare_remote(info: DatasetInfo, data_root: str | Path, *, hub_endpoint: str | None = None) -> Path:
    """Make ``<data_root>/<info.name>/split.json`` exist for a remote dataset; return its path.

    `hub_endpoint` overrides the Hugging Face endpoint (tests point it at a local server).
    """
    if info.remote is None:
        raise ValueError(f"{info.name} is not a remote dataset")
    data_root = Path(data_root)
    ws = _Workspace(info, data_root, checksum_store(data_root))
    split_path = ws.dir / "split.json"
    if _already_prepared(split_path, info.name):
        return split_path
    created = not ws.dir.exists()
    ws.remove_stale_staging()
    try:
        if info.remote.converter == "imagenet":
            converted, image_root = _convert_imagenet(ws)
            fix = "restore the listed files from your ImageNet copy, then rerun"
        else:
            converted, image_root = _convert(ws, hub_endpoint)
            fix = (f"delete {ws.raw} and rerun to download the dataset again (or replace the listed "
                   "files by hand)")
        check_sizes(info.name, converted, info.remote.sizes, fix)
        verify_images(info.name, image_root, converted, level=info.remote.verify, fix=fix)
        write_split(split_path, info.name, converted.classnames,
                    os.path.relpath(image_root, ws.dir), converted.splits)
    finally:
        ws.cleanup()
        _prune(ws.downloads)
        if created and ws.dir.is_dir() and not any(ws.dir.iterdir()):
            ws.dir.rmdir()  # nothing was obtained: leave no empty folder behind
    ws.drop_downloads()
    counts = " / ".join(f"{converted.count(s):,} {s}" for s in ("train", "val", "test"))
    log.info(f"{info.name}: prepared {len(converted.classnames)} classes ({counts}) -> {split_path}")
    return split_path
