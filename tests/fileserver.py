"""A tiny HTTP file server on 127.0.0.1 for download tests: Range support and a cut-off switch.

`handler.headers_for[path]` adds response headers to one path (a Content-Type, a cookie, the
X-Repo-Commit/ETag headers a Hugging Face endpoint sends); HEAD answers like GET without a body.
Paths include the query string, so Drive-like ``/uc?export=download&id=...`` routes are plain keys.
"""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut_after: dict[str, int] = {}  # path -> bytes to send before dropping the connection (once)
    honour_ranges = True
    requests: list[tuple[str, str | None]] = []
    headers_for: dict[str, dict[str, str]] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def end_headers(self):
        for key, value in self.headers_for.get(self.path, {}).items():
            self.send_header(key, value)
        super().end_headers()

    def do_HEAD(self):
        data = self.files.get(self.path)
        self.requests.append((self.path, "HEAD"))
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("Range")))
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.honour_ranges:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.cut_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@contextlib.contextmanager
def serve(files: dict[str, bytes]):
    handler = type("Handler", (_Handler,), {"files": dict(files), "cut_after": {}, "requests": [],
                                            "headers_for": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
