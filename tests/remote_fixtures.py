"""Small generated stand-ins for the paper datasets (a few 8x8 JPEGs, a split JSON, archives).

Nothing binary is committed: every test builds what it serves. `tiny_dtd` mimics CoOp's dtd/
folder; `dtd_info` is the real DTD registry entry with sizes and URLs pointed at the test server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile

from PIL import Image

from ame.data.registry import DATASETS, DatasetInfo, Part, SplitSizes

CLASSES = ["banded", "blotchy", "braided"]
SPLIT_FILE = "split_zhou_DescribableTextures.json"
HUB = "/zhengli97/prompt_learning_dataset/resolve/main/"
SPLIT_ID = "SPLITID"


def jpeg(seed: int, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), ((37 * seed) % 256, (91 * seed) % 256, (53 * seed) % 256)).save(buf, "JPEG")
    return buf.getvalue()


def tiny_dtd(per_class: int = 4) -> tuple[dict[str, bytes], dict]:
    """(image files relative to images/, split_zhou JSON): 2 train, 1 val, 1 test per class."""
    files, split = {}, {"train": [], "val": [], "test": []}
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            rel = f"{name}/{name}_{i:04d}.jpg"
            files[rel] = jpeg(label * per_class + i)
            part = "train" if i < per_class - 2 else ("val" if i == per_class - 2 else "test")
            split[part].append([rel, label, name])
    return files, split


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tgz_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def mirror_zip(files: dict[str, bytes], split: dict | None) -> bytes:
    """The mirror's dtd.zip as we expect it: CoOp's dtd/ folder, split JSON included."""
    content = {f"dtd/images/{rel}": data for rel, data in files.items()}
    if split is not None:
        content[f"dtd/{SPLIT_FILE}"] = json.dumps(split).encode()
    return zip_bytes(content)


def hub_headers(data: bytes) -> dict[str, str]:
    """What a Hugging Face endpoint sends with a file (HEAD and GET)."""
    return {"X-Repo-Commit": "c" * 40, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}


def serve_on_hub(handler, filename: str, data: bytes) -> None:
    handler.files[HUB + filename] = data
    handler.headers_for[HUB + filename] = hub_headers(data)


def drive_confirm_page(url: str, file_id: str, uuid: str = "u1") -> bytes:
    """Google Drive's current "can't scan for viruses" page: a GET form to the real download."""
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">'
                     for k, v in (("id", file_id), ("export", "download"), ("confirm", "t"), ("uuid", uuid)))
    return (f'<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
            f'<form id="download-form" action="{url}/download" method="get">'
            f'<input type="submit" id="uc-download-link" value="Download anyway"/>{inputs}</form>'
            f'</body></html>').encode()


def serve_on_drive(handler, url: str, file_id: str, data: bytes, confirm: bool = True) -> None:
    entry = f"/uc?export=download&id={file_id}"
    if not confirm:
        handler.files[entry] = data
        return
    handler.files[entry] = drive_confirm_page(url, file_id)
    handler.headers_for[entry] = {"Content-Type": "text/html; charset=utf-8"}
    handler.files[f"/download?id={file_id}&export=download&confirm=t&uuid=u1"] = data


def dtd_info(url: str = "http://127.0.0.1:9", sizes: SplitSizes = SplitSizes(6, 3, 3)) -> DatasetInfo:
    """The registry's DTD entry with 3 classes, small sizes and the original archive on `url`."""
    base = DATASETS["DTD"]
    spec = dataclasses.replace(base.remote, sizes=sizes, split_drive_id=SPLIT_ID,
                               parts=(Part("dtd-r1.0.1.tar.gz", ("images",), url=f"{url}/dtd-r1.0.1.tar.gz"),))
    return dataclasses.replace(base, num_classes=len(CLASSES), remote=spec)
