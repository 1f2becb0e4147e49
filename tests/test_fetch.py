"""Downloads resume, verify, record unknown hashes, place files atomically and fail clearly offline."""

import logging
import socket

import pytest

from ame.fetch import Artifact, ChecksumError, ChecksumStore, FetchError, download, extract, fetch, sha256_bytes
from tests.fileserver import serve
from tests.remote_fixtures import tgz_bytes, zip_bytes

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def test_download_verifies_and_places_the_file(tmp_path):
    with serve({"/a.bin": PAYLOAD}) as (url, _):
        path = download(f"{url}/a.bin", tmp_path / "a.bin", sha256_bytes(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()


def test_cut_connection_leaves_only_a_part_file_and_a_rerun_resumes(tmp_path):
    with serve({"/a.bin": PAYLOAD}) as (url, handler):
        handler.cut_after["/a.bin"] = 300_000
        with pytest.raises(FetchError, match="rerun to resume"):
            download(f"{url}/a.bin", tmp_path / "a.bin", sha256_bytes(PAYLOAD))
        assert not (tmp_path / "a.bin").exists()
        assert (tmp_path / "a.bin.part").stat().st_size == 300_000
        download(f"{url}/a.bin", tmp_path / "a.bin", sha256_bytes(PAYLOAD))
        assert handler.requests[-1] == ("/a.bin", "bytes=300000-")
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_server_ignoring_ranges_restarts_the_download(tmp_path):
    (tmp_path / "a.bin.part").write_bytes(b"garbage")
    with serve({"/a.bin": PAYLOAD}) as (url, handler):
        handler.honour_ranges = False
        download(f"{url}/a.bin", tmp_path / "a.bin", sha256_bytes(PAYLOAD))
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_download_and_says_what_to_do(tmp_path):
    with serve({"/a.bin": PAYLOAD}) as (url, _):
        with pytest.raises(ChecksumError, match="checksum mismatch .*expected 0+, got .*rerun"):
            download(f"{url}/a.bin", tmp_path / "a.bin", "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_unknown_hash_is_recorded_on_first_download_and_enforced_later(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ame")
    store = ChecksumStore(tmp_path / "checksums.json")
    with serve({"/a.bin": PAYLOAD, "/b.bin": PAYLOAD[::-1]}) as (url, _):
        download(f"{url}/a.bin", tmp_path / "x" / "a.bin", None, name="thing", store=store)
        assert store.get("thing") == sha256_bytes(PAYLOAD)
        assert sha256_bytes(PAYLOAD) in caplog.text
        with pytest.raises(ChecksumError, match="thing"):
            download(f"{url}/b.bin", tmp_path / "y" / "a.bin", None, name="thing", store=store)


def test_offline_error_names_the_file_and_where_to_put_it(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match=r"cannot reach .*place it at .*a\.bin"):
        download(f"http://127.0.0.1:{port}/a.bin", tmp_path / "a.bin", None, timeout=5)


def test_artifact_without_url_asks_for_a_manual_download(tmp_path):
    art = Artifact("teacher/DTD", "model-best.pth.tar", url=None, manual="get it from the Baidu share")
    with pytest.raises(FetchError, match=r"no direct download .*Baidu share, and place it at .*model-best\.pth\.tar"):
        fetch(art, tmp_path)


def test_existing_file_is_verified_not_downloaded_again(tmp_path):
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    art = Artifact("a", "a.bin", url="http://127.0.0.1:9/never", sha256=sha256_bytes(PAYLOAD))
    assert fetch(art, tmp_path).read_bytes() == PAYLOAD


def test_extract_zip_and_tar_atomically(tmp_path):
    (tmp_path / "a.zip").write_bytes(zip_bytes({"d/x.txt": b"hi"}))
    assert (extract(tmp_path / "a.zip", tmp_path / "out_zip") / "d" / "x.txt").read_bytes() == b"hi"
    (tmp_path / "a.tar.gz").write_bytes(tgz_bytes({"d/y.txt": b"yo"}))
    assert (extract(tmp_path / "a.tar.gz", tmp_path / "out_tar") / "d" / "y.txt").read_bytes() == b"yo"


def test_truncated_archive_stops_with_the_file_named_and_leaves_nothing(tmp_path):
    data = zip_bytes({"d/x.txt": b"hello" * 1000})
    (tmp_path / "a.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(FetchError, match=r"a\.zip.*(truncated or corrupt)"):
        extract(tmp_path / "a.zip", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_archive_members_outside_the_target_are_refused(tmp_path):
    (tmp_path / "evil.zip").write_bytes(zip_bytes({"../evil.txt": b"x"}))
    with pytest.raises(FetchError, match="outside the target"):
        extract(tmp_path / "evil.zip", tmp_path / "out")


def test_a_hand_placed_file_is_never_deleted_and_a_broken_one_never_recorded(tmp_path):
    import json

    import torch

    from ame.models.promptkd import CheckpointError
    from ame.models.releases import CHECKSUMS, locate_checkpoint

    root = tmp_path / "teacher_model"
    placed = root / "OxfordPets" / "VLPromptLearner" / "model-best.pth.tar"
    placed.parent.mkdir(parents=True)
    good = tmp_path / "good.pth.tar"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 20}, good)
    placed.write_bytes(good.read_bytes()[:100])  # a truncated copy, placed by hand
    with pytest.raises(CheckpointError):
        locate_checkpoint("base2new", "OxfordPets", root)
    assert not (root / CHECKSUMS).exists() or json.loads((root / CHECKSUMS).read_text()) == {}
    placed.write_bytes(good.read_bytes())  # the good copy, as the error advised
    path, digest = locate_checkpoint("base2new", "OxfordPets", root)
    assert path == placed and digest == sha256_bytes(good.read_bytes())
    torch.save({"state_dict": {"w": torch.zeros(2)}}, placed)  # another file under the same name
    with pytest.raises(ChecksumError) as err:
        locate_checkpoint("base2new", "OxfordPets", root)
    message = str(err.value)
    assert "The file was left in place" in message and str(root / CHECKSUMS) in message and digest in message
    assert placed.is_file()


def _record_many(path, prefix, n):
    store = ChecksumStore(path)
    for i in range(n):
        store.record(f"{prefix}{i}", f"{i:064x}")


def test_parallel_jobs_sharing_a_checksum_store_never_lose_each_others_entries(tmp_path):
    import json
    import multiprocessing

    path = tmp_path / "sha256.json"
    context = multiprocessing.get_context("spawn")
    jobs = [context.Process(target=_record_many, args=(path, prefix, 40)) for prefix in ("a", "b", "c")]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
        assert job.exitcode == 0
    assert len(json.loads(path.read_text())) == 3 * 40
