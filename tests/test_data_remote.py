"""Paper datasets end to end against a local server: hub mirror, original archive, Drive split file;
resume after a cut connection, checksum and archive failures, conversion, sizes, sampling."""

from __future__ import annotations

import json
import logging

import pytest

from ame.data import load_split, read_shots, write_shots
from ame.data.registry import SplitSizes
from ame.data.remote import ArchiveError, prepare_remote
from ame.data import sources
from ame.fetch import ChecksumError, FetchError
from tests.fileserver import serve
from tests.remote_fixtures import (
    CLASSES, HUB, SPLIT_FILE, SPLIT_ID, dtd_info, mirror_zip, serve_on_drive, serve_on_hub, tgz_bytes, tiny_dtd,
)


@pytest.fixture
def hub_online(monkeypatch):
    """Offline mode off in this test only; the endpoint is always the local server."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _leftovers(root):
    """Everything under `root` but the checksum store's lock file."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != ".checksums.json.lock")


def test_mirror_zip_from_the_hub_is_verified_converted_sampled_and_never_fetched_again(tmp_path, hub_online):
    files, split = tiny_dtd()
    with serve({}) as (url, handler):
        serve_on_hub(handler, "dtd.zip", mirror_zip(files, split))
        path = prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url)
        assert [p for p, _ in handler.requests] == [HUB + "dtd.zip", HUB + "dtd.zip"]  # HEAD, GET
    prepared = load_split(path)
    assert path == tmp_path / "DTD" / "split.json"
    assert json.loads(path.read_text())["root"] == "raw/images"  # in place, relative
    assert prepared.classnames == CLASSES
    assert prepared.train == [(rel, label) for rel, label, _ in split["train"]]  # the file's order
    assert [len(prepared.train), len(prepared.val), len(prepared.test)] == [6, 3, 3]
    prepared.check_images_exist()
    assert not (tmp_path / "DTD" / "downloads").exists()  # the archive's content lives in raw/
    assert "DTD/mirror/dtd.zip" in json.loads((tmp_path / "checksums.json").read_text())
    shots = write_shots(path, 1, 1, tmp_path / "DTD" / "shots" / "1_seed1.json")
    assert len(read_shots(shots, prepared)["indices"]) == len(CLASSES)
    # The server is gone: a prepared dataset returns at once, without the network.
    assert prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url) == path


def test_missing_mirror_file_falls_back_to_the_original_archive_which_resumes_after_a_cut(
        tmp_path, hub_online, monkeypatch):
    files, split = tiny_dtd()
    archive = tgz_bytes({f"dtd/images/{rel}": data for rel, data in files.items()})
    half = len(archive) // 2
    with serve({"/dtd-r1.0.1.tar.gz": archive}) as (url, handler):
        monkeypatch.setattr(sources, "DRIVE_DOWNLOAD", url + "/uc?export=download&id={id}")
        serve_on_drive(handler, url, SPLIT_ID, json.dumps(split).encode())  # behind a confirmation page
        handler.cut_after["/dtd-r1.0.1.tar.gz"] = half
        with pytest.raises(FetchError) as err:
            prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url)
        message = str(err.value)
        assert "DTD/mirror/dtd.zip" in message and "404" in message  # the hub was tried first
        assert "rerun to resume" in message
        assert f"place it at {tmp_path / 'DTD' / 'downloads' / 'dtd.zip'}" in message
        assert not (tmp_path / "DTD" / "raw").exists() and not (tmp_path / "DTD" / "split.json").exists()
        assert (tmp_path / "DTD" / "downloads" / "dtd-r1.0.1.tar.gz.part").stat().st_size == half
        path = prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url)
        assert ("/dtd-r1.0.1.tar.gz", f"bytes={half}-") in handler.requests
    assert load_split(path).classnames == CLASSES
    assert json.loads((tmp_path / "DTD" / "raw" / SPLIT_FILE).read_text()) == split


def test_checksum_mismatch_stops_naming_the_file_and_leaves_nothing(tmp_path, hub_online):
    (tmp_path / "checksums.json").write_text(json.dumps({"DTD/mirror/dtd.zip": "0" * 64}))
    files, split = tiny_dtd()
    with serve({}) as (url, handler):
        serve_on_hub(handler, "dtd.zip", mirror_zip(files, split))
        with pytest.raises(ChecksumError, match=r"checksum mismatch for .*downloads/dtd\.zip: expected 0{64}.*rerun"):
            prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url)
    assert _leftovers(tmp_path) == ["checksums.json"]


def test_truncated_archive_stops_naming_it_deletes_it_and_leaves_nothing(tmp_path, hub_online):
    files, split = tiny_dtd()
    data = mirror_zip(files, split)
    with serve({}) as (url, handler):
        serve_on_hub(handler, "dtd.zip", data[: len(data) // 2])  # served whole: the publisher's file is broken
        with pytest.raises(ArchiveError) as err:
            prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url)
    assert str(err.value).startswith(f"{tmp_path / 'DTD' / 'downloads' / 'dtd.zip'}: ")
    assert "truncated or corrupt and was deleted: rerun to download it again" in str(err.value)
    assert _leftovers(tmp_path) == ["checksums.json"]
    assert json.loads((tmp_path / "checksums.json").read_text()) == {}  # the broken file's hash is forgotten


def test_missing_split_file_names_where_to_put_it_and_writes_no_split(tmp_path, hub_online, monkeypatch):
    files, _ = tiny_dtd()
    with serve({}) as (url, handler):
        monkeypatch.setattr(sources, "DRIVE_DOWNLOAD", url + "/uc?export=download&id={id}")
        serve_on_hub(handler, "dtd.zip", mirror_zip(files, split=None))  # Drive answers 404
        with pytest.raises(FetchError) as err:
            prepare_remote(dtd_info(url), tmp_path, hub_endpoint=url)
    dest = tmp_path / "DTD" / "raw" / SPLIT_FILE
    assert str(err.value) == (
        f"DTD: the split file {SPLIT_FILE} is missing from {tmp_path / 'DTD' / 'raw'} and could not be "
        f"downloaded (Google Drive file {SPLIT_ID}: {url}/uc?export=download&id={SPLIT_ID} answered HTTP 404). "
        f"Download https://drive.google.com/file/d/{SPLIT_ID}/view and place it at {dest}, then rerun.")
    assert not (tmp_path / "DTD" / "split.json").exists()


def test_truncated_image_is_named_with_the_fix_and_no_split_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("AME_OFFLINE", "1")
    files, split = tiny_dtd()
    raw = tmp_path / "DTD" / "raw"  # a hand-placed CoOp folder, one image cut short
    for rel, data in files.items():
        (raw / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / "images" / rel).write_bytes(data[: len(data) // 2] if rel.startswith("blotchy/blotchy_0001") else data)
    (raw / SPLIT_FILE).write_text(json.dumps(split))
    with pytest.raises(ValueError) as err:
        prepare_remote(dtd_info(), tmp_path)
    message = str(err.value)
    assert message.startswith("DTD: 1 of 12 listed images are missing, truncated or unreadable: "
                              f"{raw / 'images' / 'blotchy' / 'blotchy_0001.jpg'} (train: OSError: ")
    assert message.endswith(f". Delete {raw} and rerun to download the dataset again (or replace the listed "
                            "files by hand)")
    assert not (tmp_path / "DTD" / "split.json").exists()


def test_split_sizes_other_than_the_protocols_stop_naming_dataset_split_and_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("AME_OFFLINE", "1")
    files, split = tiny_dtd()
    raw = tmp_path / "DTD" / "raw"
    for rel, data in files.items():
        (raw / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / "images" / rel).write_bytes(data)
    (raw / SPLIT_FILE).write_text(json.dumps(split))
    with pytest.raises(ValueError, match=r"^DTD: the train split has 6 images but the protocol's has 2,820 "
                                         r"\(read from .*split_zhou_DescribableTextures\.json\)"):
        prepare_remote(dtd_info(sizes=SplitSizes(2_820, 1_128, 1_692)), tmp_path)
    assert not (tmp_path / "DTD" / "split.json").exists()


def test_offline_error_lists_every_source_and_where_to_place_files_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("AME_OFFLINE", "1")
    from ame.data import prepare_dataset

    with pytest.raises(FetchError) as err:
        prepare_dataset("Flowers", tmp_path)  # the real registry entry; nothing is contacted
    downloads, raw = tmp_path / "Flowers102" / "downloads", tmp_path / "Flowers102" / "raw"
    assert str(err.value) == (
        "Flowers102: could not download the dataset. Tried:\n"
        "  - Flowers102/mirror/oxford_flowers.zip: not downloaded because AME_OFFLINE is set\n"
        "  - Flowers102/102flowers.tgz: not downloaded because AME_OFFLINE is set\n"
        "To prepare it by hand, (1) download "
        "https://huggingface.co/zhengli97/prompt_learning_dataset/blob/main/oxford_flowers.zip and place it at "
        f"{downloads / 'oxford_flowers.zip'} (that file name is UNCONFIRMED: if the mirror names it differently, "
        "see https://huggingface.co/zhengli97/prompt_learning_dataset/tree/main and save the Flowers102 zip under "
        "the name oxford_flowers.zip) OR (2) download the original files and place them at: "
        f"https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz -> {downloads / '102flowers.tgz'} OR "
        f"(3) place CoOp's oxford_flowers/ folder (holding jpg, split_zhou_OxfordFlowers.json) at {raw} "
        "(a symbolic link is fine); then rerun `ame prepare --dataset Flowers102`.")
    assert _leftovers(tmp_path) == []


def test_hand_placed_archive_is_used_without_the_network_and_kept(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ame")
    monkeypatch.setenv("AME_OFFLINE", "1")
    files, split = tiny_dtd()
    placed = tmp_path / "DTD" / "downloads" / "dtd.zip"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(mirror_zip(files, split))
    content = placed.read_bytes()
    path = prepare_remote(dtd_info(), tmp_path)
    assert load_split(path).classnames == CLASSES
    assert placed.read_bytes() == content  # it may have no other copy
    assert f"kept {placed}" in caplog.text


def test_a_broken_hand_placed_archive_stops_and_is_left_in_place(tmp_path, monkeypatch):
    monkeypatch.setenv("AME_OFFLINE", "1")
    files, split = tiny_dtd()
    placed = tmp_path / "DTD" / "downloads" / "dtd.zip"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(mirror_zip(files, split)[:-100])
    content = placed.read_bytes()
    with pytest.raises(ArchiveError) as err:
        prepare_remote(dtd_info(), tmp_path)
    assert f"{placed} was already in place" in str(err.value) and "left untouched" in str(err.value)
    assert placed.read_bytes() == content
    assert not (tmp_path / "DTD" / "split.json").exists() and not (tmp_path / "DTD" / "raw").exists()
    store = tmp_path / "checksums.json"
    assert "DTD/mirror/dtd.zip" not in (store.read_text() if store.exists() else "")  # a broken file's hash


def test_raw_folder_without_the_layout_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("AME_OFFLINE", "1")
    (tmp_path / "DTD" / "raw" / "imgs").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        prepare_remote(dtd_info(), tmp_path)
    raw = tmp_path / "DTD" / "raw"
    assert str(err.value) == (f"DTD: {raw} exists but lacks images; it must have the layout of CoOp's dtd/ "
                              "folder (images). Complete it, or delete it to download the dataset again.")


def test_fgvc_aircraft_is_converted_from_its_variant_files(tmp_path, monkeypatch):
    import dataclasses

    from ame.data.registry import DATASETS
    from tests.remote_fixtures import jpeg

    monkeypatch.setenv("AME_OFFLINE", "1")
    raw = tmp_path / "FGVCAircraft" / "raw"
    (raw / "images").mkdir(parents=True)
    variants = ["707-320", "A300B4", "Cessna 172"]  # a name with a space, as in the real file
    (raw / "variants.txt").write_text("\n".join(variants) + "\n")
    lines = {"train": ["0034309 Cessna 172", "0034958 707-320", "0037511 A300B4"],
             "val": ["0034001 707-320"], "test": ["0062000 A300B4", "0062001 Cessna 172"]}
    for split_name, rows in lines.items():
        (raw / f"images_variant_{split_name}.txt").write_text("\n".join(rows) + "\n")
        for i, row in enumerate(rows):
            (raw / "images" / f"{row.split()[0]}.jpg").write_bytes(jpeg(i))
    base = DATASETS["FGVCAircraft"]
    info = dataclasses.replace(base, num_classes=3,
                               remote=dataclasses.replace(base.remote, sizes=SplitSizes(3, 1, 2)))
    split = load_split(prepare_remote(info, tmp_path))
    assert split.classnames == variants
    assert split.train == [("0034309.jpg", 2), ("0034958.jpg", 0), ("0037511.jpg", 1)]
    assert split.root == raw / "images"
