"""Where remote dataset files come from: the Hugging Face mirror, plain URLs, Google Drive.

Each function puts one verified file at a given path or raises `ame.fetch.FetchError` saying what
failed; the caller (`ame.data.remote`) decides whether to try the next source. Downloading itself is
`ame.fetch.download` (resume from ``<file>.part``, checksum, atomic rename), except on the hub,
whose own client resumes (``.cache/huggingface/download/*.incomplete``) and renames atomically; its
result is then verified against the same checksum store.

A file already at its destination (downloaded earlier or placed by hand) is verified and used
without any network access. Setting ``AME_OFFLINE=1`` forbids network access altogether (for
air-gapped machines and tests); ``HF_HUB_OFFLINE=1`` skips only the hub.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from ..fetch import ChecksumStore, FetchError, download, verify
from .registry import MIRROR_REPO

#: Google Drive's direct-download entry point; large files answer it with a confirmation page.
DRIVE_DOWNLOAD = "https://drive.google.com/uc?export=download&id={id}"

#: Page bytes read to find a confirmation form (Drive's pages are about 3 kB).
_PAGE_LIMIT = 1 << 20


def offline() -> bool:
    """True when ``AME_OFFLINE`` is set to a true value: no source may use the network."""
    return os.environ.get("AME_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def mirror_page(filename: str, repo_id: str = MIRROR_REPO) -> str:
    """The web page of a file in the Hugging Face mirror (for messages)."""
    return f"https://huggingface.co/{repo_id}/blob/main/{filename}"


def drive_page(file_id: str) -> str:
    """The web page of a Google-Drive file (for messages; opens in a browser)."""
    return f"https://drive.google.com/file/d/{file_id}/view"


def forget_checksum(store: ChecksumStore | None, name: str) -> None:
    """Drop a recorded hash that turned out to belong to a broken file (corrupt archive, web page)."""
    if store is not None:
        store.forget(name)


def _use_existing(dest: Path, sha256: str | None, name: str, store: ChecksumStore | None) -> Path | None:
    if not dest.is_file():
        return None
    verify(dest, sha256, name=name, store=store, final=dest)
    return dest


def _no_network(name: str) -> FetchError:
    return FetchError(f"{name}: not downloaded because AME_OFFLINE is set")


# ------------------------------------------------------------------------------------------------
# Hugging Face mirror

def hub_download(filename: str, dest_dir: str | os.PathLike, *, name: str, store: ChecksumStore | None = None,
                 sha256: str | None = None, endpoint: str | None = None, repo_id: str = MIRROR_REPO) -> Path:
    """``dest_dir/filename`` from the hub repo `repo_id` (a model-type repo), verified.

    `endpoint` overrides the hub address (default: huggingface_hub's, i.e. ``HF_ENDPOINT`` or
    https://huggingface.co). Raises FetchError when the hub is offline, unreachable or lacks the file.
    """
    dest = Path(dest_dir) / filename
    if (found := _use_existing(dest, sha256, name, store)) is not None:
        return found
    if offline():
        raise _no_network(name)
    from huggingface_hub import constants, hf_hub_download

    if constants.is_offline_mode():
        raise FetchError(f"{name}: not asked, because HF_HUB_OFFLINE is set")
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename, repo_type="model",
                                    local_dir=dest_dir, endpoint=endpoint))
    except Exception as err:  # noqa: BLE001 - the hub client raises HTTP, transport, metadata and OS errors alike
        _drop_hub_bookkeeping(Path(dest_dir))
        cause = err.__cause__ or err  # "not in the local cache" wraps the real reason (404, no route, ...)
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise FetchError(f"{name}: {mirror_page(filename, repo_id)} failed "
                         f"({type(cause).__name__}{': ' + detail if detail else ''})") from None
    try:
        verify(path, sha256, name=name, store=store, final=path, delete_on_mismatch=True)  # our own download
    finally:
        _drop_hub_bookkeeping(Path(dest_dir))  # we check the file ourselves; its metadata only clutters
    return path


def _drop_hub_bookkeeping(dest_dir: Path) -> None:
    """Remove the hub client's ``.cache`` folder after a failure unless it holds a partial download."""
    cache = dest_dir / ".cache" / "huggingface"
    if cache.is_dir() and not any(cache.rglob("*.incomplete")):
        shutil.rmtree(cache, ignore_errors=True)
        with contextlib.suppress(OSError):
            cache.parent.rmdir()


# ------------------------------------------------------------------------------------------------
# Plain URLs

def url_download(url: str, dest: str | os.PathLike, *, name: str, store: ChecksumStore | None = None,
                 sha256: str | None = None, timeout: float = 30.0) -> Path:
    """`url` to `dest` through `ame.fetch.download` (resumable, verified, atomic)."""
    dest = Path(dest)
    if (found := _use_existing(dest, sha256, name, store)) is not None:
        return found
    if offline():
        raise _no_network(name)
    return download(url, dest, sha256, timeout=timeout, name=name, store=store)


# ------------------------------------------------------------------------------------------------
# Google Drive

class _TitleFinder(HTMLParser):
    """The <title> of a page Drive answered with (named in errors)."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self._in_title = "", False

    def handle_starttag(self, tag, attrs):
        self._in_title = self._in_title or tag == "title"

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _confirm_url(page: str, page_url: str, jar: http.cookiejar.CookieJar) -> str | None:
    """The URL behind Drive's "can't scan this file for viruses" page, or None if there is none.

    The page is read by gdown's parser (`get_url_from_gdrive_confirmation`), which its maintainers
    follow Drive's changes in: the current GET form to drive.usercontent.google.com, older confirm
    links, embedded download URLs. Drive's own error caption (quota exceeded, no access) becomes a
    FetchError. The oldest form, a token only in a download_warning cookie, is handled here."""
    from gdown.download import get_url_from_gdrive_confirmation
    from gdown.exceptions import FileURLRetrievalError

    try:
        url = get_url_from_gdrive_confirmation(page)
    except FileURLRetrievalError as err:
        if "uc-error-subcaption" in page:
            raise FetchError(f"Google Drive answered: {err}") from None
        url = ""
    if url:
        # gdown makes a relative confirm link absolute on docs.google.com; resolve it against the
        # page's own URL, as a browser does (the same host on Drive itself).
        return urllib.parse.urljoin(page_url, url.removeprefix(_GDOWN_LINK_ORIGIN))
    for cookie in jar:  # oldest Drive: the token only in a download_warning cookie
        if cookie.name.startswith("download_warning"):
            sep = "&" if "?" in page_url else "?"
            return f"{page_url}{sep}confirm={urllib.parse.quote(cookie.value)}"
    return None


_GDOWN_LINK_ORIGIN = "https://docs.google.com"


def _page_title(page: str) -> str:
    finder = _TitleFinder()
    finder.feed(page)
    return " ".join(finder.title.split())


def resolve_drive_url(file_id: str, *, base: str | None = None, timeout: float = 30.0) -> str:
    """The URL that serves the Drive file `file_id` itself, after any confirmation page.

    Small files come straight back; large ones first answer with an HTML page (form, link or
    cookie token) whose target serves the file. `base` (default `DRIVE_DOWNLOAD`, read at call time)
    is the entry URL with ``{id}``. Only the response headers of the file are read
    here; the body is left to `ame.fetch.download`. Raises FetchError when Drive answers with a
    page that leads nowhere (quota exceeded, no access, deleted file), naming the page's title.
    """
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = (base or DRIVE_DOWNLOAD).format(id=file_id)
    for _ in range(3):  # file, or page -> file, or page -> page -> file
        request = urllib.request.Request(url, headers={"User-Agent": "ame-fetch"})
        try:
            with opener.open(request, timeout=timeout) as response:
                is_page = (response.headers.get_content_type() == "text/html"
                           and "attachment" not in response.headers.get("Content-Disposition", ""))
                final = response.geturl()
                if not is_page:
                    return final
                page = response.read(_PAGE_LIMIT).decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            raise FetchError(f"Google Drive file {file_id}: {url} answered HTTP {err.code}") from None
        except (urllib.error.URLError, OSError) as err:
            raise FetchError(f"Google Drive file {file_id}: cannot reach {url} "
                             f"({getattr(err, 'reason', err)})") from None
        next_url = _confirm_url(page, final, jar)
        if next_url is None or next_url == url:
            title = _page_title(page) or "no title"
            raise FetchError(f"Google Drive file {file_id}: Drive answered with a web page ('{title}') "
                             "instead of the file (download quota exceeded, no access, or the file is gone)")
        url = next_url
    raise FetchError(f"Google Drive file {file_id}: still a confirmation page after 3 requests")


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def drive_download(file_id: str, dest: str | os.PathLike, *, name: str, store: ChecksumStore | None = None,
                   sha256: str | None = None, base: str | None = None, timeout: float = 30.0) -> Path:
    """The Google-Drive file `file_id` at `dest`: resumable, checksummed and atomic like every
    download (`ame.fetch.download`); Drive's confirmation pages are read by gdown's parser."""
    dest = Path(dest)
    if (found := _use_existing(dest, sha256, name, store)) is not None:
        return found
    if offline():
        raise _no_network(name)
    url = resolve_drive_url(file_id, base=base, timeout=timeout)
    path = download(url, dest, sha256, timeout=timeout, name=name, store=store,
                    manual=f"download {drive_page(file_id)} in a browser")
    if _looks_like_html(path):  # Drive changed its pages in a way the resolver does not know
        path.unlink()
        forget_checksum(store, name)
        raise FetchError(f"{name}: Google Drive sent a web page instead of the file")
    return path


__all__ = [
    "DRIVE_DOWNLOAD", "FetchError", "drive_download", "drive_page",
    "forget_checksum", "hub_download", "mirror_page", "offline", "resolve_drive_url", "url_download",
]
