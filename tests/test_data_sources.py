"""The Google-Drive client (our transport with resume and checksums; gdown's parser reads Drive's
confirmation pages) and the registry's remote entries."""

from __future__ import annotations

import json

import pytest

from ame.data import DATASETS, PAPER_DATASETS
from ame.data import sources
from ame.data.registry import MIRROR_REPO
from ame.fetch import ChecksumStore, FetchError, sha256_bytes
from tests.fileserver import serve
from tests.remote_fixtures import serve_on_drive

PAYLOAD = json.dumps({"train": [], "val": [], "test": []}).encode() * 50


def _base(url):
    return url + "/uc?export=download&id={id}"


def _drive_answers_with_a_page(handler, file_id: str, page: bytes, **headers) -> str:
    """Drive's entry URL for `file_id` serves the HTML `page`; returns that entry."""
    entry = f"/uc?export=download&id={file_id}"
    handler.files[entry] = page
    handler.headers_for[entry] = {"Content-Type": "text/html", **headers}
    return entry


def test_small_drive_file_comes_straight_back_and_its_hash_is_recorded(tmp_path):
    store = ChecksumStore(tmp_path / "checksums.json")
    with serve({}) as (url, handler):
        serve_on_drive(handler, url, "SMALL", PAYLOAD, confirm=False)
        path = sources.drive_download("SMALL", tmp_path / "s.json", name="X/s.json", store=store, base=_base(url))
    assert path.read_bytes() == PAYLOAD
    assert store.get("X/s.json") == sha256_bytes(PAYLOAD)


def test_large_drive_file_is_fetched_through_the_virus_scan_form(tmp_path):
    with serve({}) as (url, handler):
        serve_on_drive(handler, url, "BIG", PAYLOAD)
        path = sources.drive_download("BIG", tmp_path / "b.zip", name="b", base=_base(url))
        assert handler.requests[-1] == ("/download?id=BIG&export=download&confirm=t&uuid=u1", None)
    assert path.read_bytes() == PAYLOAD


def test_older_drive_confirm_token_in_a_cookie_is_followed(tmp_path):
    with serve({}) as (url, handler):
        entry = _drive_answers_with_a_page(
            handler, "OLD", b"<html><head><title>Google Drive</title></head><body>large file</body></html>",
            **{"Set-Cookie": "download_warning_13058=tok9; Path=/"})
        handler.files[entry + "&confirm=tok9"] = PAYLOAD
        path = sources.drive_download("OLD", tmp_path / "o.bin", name="o", base=_base(url))
    assert path.read_bytes() == PAYLOAD


def test_an_older_relative_confirm_link_is_followed_on_the_pages_own_host(tmp_path):
    with serve({}) as (url, handler):
        _drive_answers_with_a_page(handler, "LINK", b'<html><body><a id="uc-download-link" '
                                   b'href="/uc?export=download&amp;confirm=abc&amp;id=LINK">Download anyway</a>'
                                   b'</body></html>')
        handler.files["/uc?export=download&confirm=abc&id=LINK"] = PAYLOAD
        path = sources.drive_download("LINK", tmp_path / "l.bin", name="l", base=_base(url))
    assert path.read_bytes() == PAYLOAD


def test_drives_own_error_caption_is_reported_and_nothing_is_written(tmp_path):
    with serve({}) as (url, handler):
        _drive_answers_with_a_page(handler, "GONE", b'<html><head><title>Google Drive - Error</title></head><body>\n'
                                   b'<p class="uc-error-subcaption">Too many users have viewed or downloaded this '
                                   b'file recently.</p>\n</body></html>')
        with pytest.raises(FetchError, match="Google Drive answered: Too many users have viewed or downloaded"):
            sources.drive_download("GONE", tmp_path / "g.bin", name="g", base=_base(url))
    assert list(tmp_path.iterdir()) == []


def test_drive_quota_page_is_reported_with_its_title_and_nothing_is_written(tmp_path):
    with serve({}) as (url, handler):
        _drive_answers_with_a_page(
            handler, "HOT", b"<html><head><title>Google Drive - Quota exceeded</title></head><body></body></html>")
        with pytest.raises(FetchError, match=r"^Google Drive file HOT: Drive answered with a web page "
                                             r"\('Google Drive - Quota exceeded'\) instead of the file"):
            sources.drive_download("HOT", tmp_path / "h.bin", name="h", base=_base(url))
    assert list(tmp_path.iterdir()) == []


def test_every_paper_dataset_names_its_sources_layout_sizes_and_class_names():
    # protocol.md §5b: train / test counts checked after preparation.
    expected = {"ImageNet": (1_281_167, 50_000), "Caltech101": (4_128, 2_465), "OxfordPets": (2_944, 3_669),
                "StanfordCars": (6_509, 8_041), "Flowers102": (4_093, 2_463), "Food101": (50_500, 30_300),
                "FGVCAircraft": (3_334, 3_333), "SUN397": (15_880, 19_850), "DTD": (2_820, 1_692),
                "EuroSAT": (13_500, 8_100), "UCF101": (7_639, 3_783)}
    assert sorted(PAPER_DATASETS) == sorted(expected)
    for name, (train, test) in expected.items():
        info = DATASETS[name]
        spec = info.remote
        assert (spec.sizes.train, spec.sizes.test) == (train, test), name
        assert spec.layout and spec.image_root is not None and info.classnames_source and info.licence
        if name == "ImageNet":
            assert spec.mirror_file is None and spec.manual and spec.converter == "imagenet"
        elif name == "FGVCAircraft":
            assert spec.converter == "fgvc_variants" and spec.split_file is None and "variants.txt" in spec.layout
        else:
            assert spec.converter == "zhou_json" and spec.split_file == f"split_zhou_{_coop_name(name)}.json"
            assert len(spec.split_drive_id) == 33
        if name != "ImageNet":
            assert spec.mirror_file.endswith(".zip") and spec.parts
            assert spec.mirror_confirmed == (name == "DTD")  # only dtd.zip is confirmed
    assert MIRROR_REPO == "zhengli97/prompt_learning_dataset"


def _coop_name(name):
    return {"Flowers102": "OxfordFlowers", "DTD": "DescribableTextures"}.get(name, name)
