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


def open_report(html: Path, screenshot: Path | None = None) -> dict:
    """{result path: {mime, caption, labels, width, height[, text]}} as Chromium renders the
    report; page errors fail. With `screenshot`, a PNG of the page after it loaded."""
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
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert not errors, errors
    return found
