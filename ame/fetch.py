"""Downloading external artefacts: resumable, checksummed, atomically placed, clear when offline.

One mechanism for every file the paper preset fetches (datasets, split files, teacher checkpoints):

- a partial download lives at `<dest>.part`; a rerun resumes it with an HTTP Range request (and
  starts over if the server ignores ranges);
- the finished file is hashed; a known sha256 must match, an unknown one (`None`) is recorded in a
  checksum store on first download and printed, and must match on every later download;
- only a verified file is renamed onto its final path, so nothing half-written ever sits there;
- connection problems fail fast (timeouts, no retries loops) with a message that says which file
  to fetch by hand and where to put it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ame.io import folder_lock, sha256_file, write_json

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download or extraction that cannot complete; the message says what to do by hand."""


class ChecksumError(FetchError):
    pass


@dataclass(frozen=True)
class Artifact:
    """One external file: where it comes from and how to verify it.

    url: a direct URL, or None where the source has none (a Baidu/TeraBox/Drive folder, a licence
    form); `manual` then tells the user where to get it. sha256: expected hash, or None to record
    the first download's.
    """

    name: str
    filename: str
    url: str | None = None
    sha256: str | None = None
    manual: str = ""


class ChecksumStore:
    """Hashes recorded on first download (for artefacts published without one), as a JSON file.

    Updates hold an exclusive lock (a hidden ``.<store>.lock`` beside it), so parallel jobs sharing
    one store (one prepare or teacher job per dataset) never lose each other's entries, and the
    file itself is replaced atomically, so a reader never sees half of it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def _locked(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(self.path.with_name(f".{self.path.name}.lock"))

    def _load(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as err:
            raise FetchError(f"{self.path}: checksum store is not valid JSON ({err}); fix or delete it") from None

    def get(self, name: str) -> str | None:
        return self._load().get(name)

    def record(self, name: str, digest: str) -> None:
        with self._locked():
            data = self._load()
            data[name] = digest
            write_json(self.path, data)

    def forget(self, name: str) -> None:
        """Drop a recorded hash that turned out to belong to a broken file."""
        with self._locked():
            data = self._load()
            if data.pop(name, None) is not None:
                write_json(self.path, data)


def _manual_hint(artifact: Artifact, dest: Path) -> str:
    where = artifact.manual or (f"download {artifact.url}" if artifact.url else "obtain it from its publisher")
    return f"{where}, and place it at {dest}"


def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "ame-fetch"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _progress(total: int | None, initial: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=desc, file=sys.stderr,
                mininterval=1.0, disable=None)


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, *, timeout: float = 30.0,
             name: str | None = None, store: ChecksumStore | None = None, manual: str = "",
             usable: Callable[[Path], object] | None = None) -> Path:
    """Fetch `url` to `dest` (resuming `<dest>.part`), verify, and rename into place.

    Jobs downloading into the same folder take turns (`ame.io.folder_lock`): the first downloads,
    the others find the finished file and verify it, so no two processes ever write one ``.part``.
    """
    dest = Path(dest)
    name = name or dest.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(dest.parent):
        if dest.exists():  # another job finished it while this one waited
            verify(dest, sha256, name=name, store=store, final=dest, usable=usable)
            return dest
        return _download(url, dest, sha256, timeout=timeout, name=name, store=store, manual=manual,
                         usable=usable)


def _download(url: str, dest: Path, sha256: str | None, *, timeout: float, name: str,
              store: ChecksumStore | None, manual: str, usable: Callable[[Path], object] | None) -> Path:
    artifact = Artifact(name, dest.name, url, sha256, manual)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the partial file is already complete
            response = None
        else:
            raise FetchError(f"{name}: {url} answered HTTP {err.code}; {_manual_hint(artifact, dest)}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"{name}: cannot reach {url} ({reason}); if this machine is offline, "
                         f"{_manual_hint(artifact, dest)}") from None
    if response is not None:
        with response:
            resumed = start and response.status == 206
            if start and not resumed:
                start = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = start + int(length) if length else None
            try:
                with open(part, "ab" if resumed else "wb") as fh, _progress(total, start, name) as bar:
                    while block := response.read(CHUNK):
                        fh.write(block)
                        bar.update(len(block))
            except (OSError, urllib.error.URLError) as err:
                raise FetchError(f"{name}: download interrupted ({err}); rerun to resume from "
                                 f"{part.stat().st_size if part.exists() else 0} bytes") from None
            if total is not None and part.stat().st_size < total:
                raise FetchError(f"{name}: connection closed after {part.stat().st_size} of {total} bytes; "
                                 "rerun to resume")
    verify(part, sha256, name=name, store=store, final=dest, usable=usable, delete_on_mismatch=True)
    os.replace(part, dest)
    return dest


def verify(path: Path, sha256: str | None, *, name: str, store: ChecksumStore | None = None,
           final: Path | None = None, usable: Callable[[Path], object] | None = None,
           delete_on_mismatch: bool = False) -> str:
    """Check `path` against the expected or recorded hash; record and print it when there is none.

    A hash is recorded only after `usable(path)` (e.g. loading a checkpoint) has succeeded, so an
    unreadable file never becomes the reference its good copy is held to. On a mismatch the file
    is deleted only with `delete_on_mismatch` (our own partial download); a file that was already
    in place, maybe put there by hand, is never deleted: the error names it, both hashes and the
    checksum entry to remove.
    """
    digest = sha256_file(path)
    expected = sha256 or (store.get(name) if store else None)
    if expected is None:
        if usable is not None:
            usable(path)
        if store is not None:
            store.record(name, digest)
        log.info(f"[fetch] {name}: sha256 {digest} (no published checksum; recorded"
              f"{f' in {store.path}' if store else ''}, later downloads must match)")
        return digest
    if digest != expected:
        entry = f"remove the entry '{name}' from {store.path}" if store and not sha256 else \
            "update the expected sha256"
        if delete_on_mismatch:
            path.unlink(missing_ok=True)
            raise ChecksumError(f"{name}: checksum mismatch for {final or path}: expected {expected}, got {digest}. "
                                "The download was deleted; rerun to download it again. If the publisher changed "
                                f"the file on purpose, {entry}.")
        raise ChecksumError(f"{name}: checksum mismatch for {final or path}: expected {expected}, got {digest}. "
                            f"The file was left in place. If it is the right file (e.g. a good copy placed by hand "
                            f"after a broken one was recorded), {entry} and rerun; otherwise replace the file.")
    return digest


def fetch(artifact: Artifact, dest_dir: str | os.PathLike, *, store: ChecksumStore | None = None,
          timeout: float = 30.0, usable: Callable[[Path], object] | None = None) -> Path:
    """Make `dest_dir/artifact.filename` exist, usable and verified; download it when a URL is known.
    `usable(path)` raises when the file cannot be used (see `verify`)."""
    dest = Path(dest_dir) / artifact.filename
    if dest.exists():
        verify(dest, artifact.sha256, name=artifact.name, store=store, final=dest, usable=usable)
        return dest
    if artifact.url is None:
        raise FetchError(f"{artifact.name}: no direct download exists; {_manual_hint(artifact, dest)}")
    return download(artifact.url, dest, artifact.sha256, timeout=timeout, name=artifact.name, store=store,
                    manual=artifact.manual, usable=usable)


def _safe_members(names: list[str], archive: Path) -> None:
    for member in names:
        target = Path(member)
        if target.is_absolute() or ".." in target.parts:
            raise FetchError(f"{archive}: refuses to extract '{member}' (path outside the target folder)")


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Unpack a zip or tar archive into `dest_dir`, atomically (temp folder, then rename)."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists():
        return dest_dir
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".extract", dir=dest_dir.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _safe_members(zf.namelist(), archive)
                bad = zf.testzip()
                if bad is not None:
                    raise FetchError(f"{archive}: corrupt member '{bad}'; delete the archive and rerun to download it again")
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                _safe_members(tf.getnames(), archive)
                tf.extractall(tmp, filter="data")
        else:
            raise FetchError(f"{archive}: not a zip or tar archive (truncated or corrupt?); delete it and rerun")
        os.replace(tmp, dest_dir)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise FetchError(f"{archive}: cannot extract ({err}); the archive is truncated or corrupt: delete it and "
                         "rerun to download it again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
