"""Two processes needing the same shared file at once never see or write a partial file: the
checksum store, a download, and an atomically written artefact such as a dataset's teacher features."""

import hashlib
import json
import multiprocessing
import time

import torch

from ame.fetch import ChecksumStore, download
from ame.io import torch_save
from tests.fileserver import serve

SPAWN = multiprocessing.get_context("spawn")  # fresh interpreters, as separate jobs would be


def _record_many(store_path, prefix, n, start):
    store = ChecksumStore(store_path)
    while time.time() < start:
        pass
    for i in range(n):
        store.record(f"{prefix}/{i}", f"{prefix}-{i}")


def test_two_processes_recording_checksums_keep_every_entry(tmp_path):
    store_path = tmp_path / "checksums.json"
    start = time.time() + 2  # both begin together, after their start-up
    procs = [SPAWN.Process(target=_record_many, args=(store_path, p, 40, start)) for p in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    data = json.loads(store_path.read_text())
    assert data == {f"{p}/{i}": f"{p}-{i}" for p in ("a", "b") for i in range(40)}


def _fetch(url, dest, store_path, start, out):
    while time.time() < start:
        pass
    path = download(url, dest, name="shared.bin", store=ChecksumStore(store_path))
    out.put(hashlib.sha256(path.read_bytes()).hexdigest())


def test_two_processes_downloading_one_file_get_the_whole_verified_file(tmp_path):
    content = bytes(range(256)) * 40_000  # 10 MB: long enough for the two downloads to overlap
    with serve({"/shared.bin": content}) as (url, handler):
        dest, store = tmp_path / "downloads" / "shared.bin", tmp_path / "checksums.json"
        out = SPAWN.Queue()
        start = time.time() + 2
        procs = [SPAWN.Process(target=_fetch, args=(f"{url}/shared.bin", dest, store, start, out))
                 for _ in range(2)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
            assert proc.exitcode == 0
        gets = [r for r in handler.requests if r[0] == "/shared.bin"]
    expected = hashlib.sha256(content).hexdigest()
    assert [out.get(timeout=5) for _ in procs] == [expected, expected]
    assert dest.read_bytes() == content and not dest.with_name("shared.bin.part").exists()
    assert json.loads(store.read_text()) == {"shared.bin": expected}
    assert len(gets) == 1  # the second job waited and used the first one's file


def _read_while_written(path, ready, done, out):
    versions = set()
    ready.set()
    while not done.is_set():
        if path.exists():
            data = torch.load(path, weights_only=True)  # raises on a partial file
            assert bool((data["features"] == data["version"]).all())
            versions.add(data["version"])
    out.put(len(versions))


def test_a_reader_never_sees_a_partially_written_artefact(tmp_path):
    path = tmp_path / "features.pt"
    ready, done, out = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    reader = SPAWN.Process(target=_read_while_written, args=(path, ready, done, out))
    reader.start()
    assert ready.wait(120)
    version, until = 0, time.time() + 3
    while time.time() < until:  # rewrite it, atomically, as fast as possible
        torch_save({"version": version, "features": torch.full((512, 512), float(version))}, path)
        version += 1
    done.set()
    reader.join(60)
    assert reader.exitcode == 0
    assert out.get(timeout=5) > 1  # it read while the file was being replaced
