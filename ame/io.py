"""Atomic file output and hashing.

Every artefact the pipeline writes goes through these helpers: a crash or an interrupt leaves either
the old file or the new one at the final path, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator


class OutputError(OSError):
    """An output that cannot be written (disk full, read-only, no permission); names the path."""


# Causes a user can act on, by errno.
_CAUSES = {errno.ENOSPC: "no space left on the device: free space or point results_root/data_root elsewhere",
           errno.EDQUOT: "disk quota exceeded: free space or point results_root/data_root elsewhere",
           errno.EROFS: "the file system is read-only: point results_root/data_root to a writable folder",
           errno.EACCES: "permission denied: make the folder writable or choose another one"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The file gets the permissions the user's umask gives new files (mkstemp's are 0600). A full
    disk, a read-only or an unwritable folder raises `OutputError` naming `path` and the cause;
    the old file, if any, stays as it was.
    """
    final = Path(path)
    tmp_path = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    except OSError as err:
        if err.errno in _CAUSES and not isinstance(err, OutputError):
            raise OutputError(err.errno, f"{final}: cannot write it: {_CAUSES[err.errno]}") from None
        raise
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the directory itself) for the block.

    Processes that write into the same folder take turns; no lock file is created, so nothing is
    left among the user's files, and a killed holder's lock goes with its process.
    """
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Deterministic JSON (sorted keys, fixed indent) so identical results are identical bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found; run the pipeline step that produces it") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); delete it and rerun the step that wrote it") from None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` whose bytes depend on `obj` only: saved to a buffer first, because a file's
    archive records its (temporary, random) file name."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


# A fixed timestamp for every archive member: zip entries otherwise record the time of writing.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """`numpy.savez_compressed` layout (readable by `numpy.load`) with reproducible bytes."""
    import numpy as np

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    write_bytes(path, buffer.getvalue())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
