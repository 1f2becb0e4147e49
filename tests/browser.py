"""Opening the HTML report in headless Chromium (Debian's `chromium`, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Every result the report embeds, decoded by the browser: images give their natural size.
_DECODE_RESULTS = """async () => {
  const out = {};
  for (const [path, r] of Object.entries(results)) {
    const entry = {mime: r.mime_type, caption: r.caption, labels: r.labels, width: 0, height: 0};
    if (r.mime_type.startsWith("image/")) {
      const img = new Image();
      img.src = r.data_uri;
      try { await img.decode(); } catch (e) {}
      entry.width = img.naturalWidth; entry.height = img.naturalHeight;
    } else if (r.mime_type === "text/html") {
      entry.text = new DOMParser().parseFromString(
        atob(r.data_uri.split(",")[1]), "text/html").body.innerText;
    }
    out[path] = entry;
  }
  return out;
}"""


def chromium() -> str:
    """Path of the system Chromium; skips (fails under CI=true) where it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "chromium is not installed (make system-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the HTML report must be opened in a browser in CI: {reason}")
        pytest.skip(reason)
    return path


def _view_first_result(page, category: str) -> dict:
    """Click `category` in the report's menu, then its first result's view button: the natural
    size of the image shown, or the text of the page shown in the frame."""
    page.get_by_text(category, exact=True).click()
    page.locator("a[iconname=eye]").first.click()
    page.wait_for_function("document.querySelector('#app img[src^=\"data:image/png\"], #app iframe')")
    if page.locator("#app iframe").count():
        return {"text": page.frame_locator("#app iframe").locator("body").inner_text()}
    return {"img": page.evaluate("Array.from(document.querySelectorAll('#app img[src^=\"data:image/png\"]'))"
                                 ".map(i => [i.naturalWidth, i.naturalHeight])")}


def open_report(html: Path, categories=(), screenshot: Path | None = None) -> tuple[dict, dict]:
    """As Chromium renders the report: ({result path: {mime, caption, labels, width, height[,
    text]}}, {category: what viewing its first result shows (`_view_first_result`)}) for each of
    `categories`, clicked through the report's own menu. Page errors fail. With `screenshot`, a
    PNG of the page after the last view."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(html.resolve().as_uri())
            page.wait_for_function("typeof results === 'object' && document.querySelector('#app *')")
            found = page.evaluate(_DECODE_RESULTS)
            views = {}
            for category in categories:
                page.goto(html.resolve().as_uri())
                page.wait_for_function("typeof results === 'object' && document.querySelector('#app *')")
                views[category] = _view_first_result(page, category)
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert not errors, errors
    return found, views
