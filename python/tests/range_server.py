"""A loopback HTTP server with Range, ETag and If-Match support that counts what it sends.

Objects live in memory (``server.objects[path] = bytes``; replace one to simulate an upload
landing mid-read). ``server.sent`` counts body bytes sent, ``server.requests`` the requests;
``server.fail_next = n`` answers the next n requests with 503 (retries);
``server.redirects[path] = url`` answers 302; ``server.auth_seen`` lists each request's
Authorization header; ``server.ignore_range = True`` answers 200 with the whole object, as a server without Range
support; ``server.on_request`` runs before each answer (a test replaces an object from there).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class RangeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.sent = 0
        self.requests = 0
        self.fail_next = 0
        self.ignore_range = False
        self.redirects: dict[str, str] = {}
        self.auth_seen: list[str | None] = []
        self.on_request: Callable[[str, str | None], None] | None = None
        self.ranges: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self._etags: dict[str, tuple[bytes, str]] = {}

    def etag(self, path: str, data: bytes) -> str:
        """The object's ETag, hashed once per object version (not per request)."""
        cached = self._etags.get(path)
        if cached is None or cached[0] is not data:
            cached = (data, etag_of(data))
            self._etags[path] = cached
        return cached[1]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def reset_counts(self) -> None:
        with self.lock:
            self.sent = 0
            self.requests = 0
            self.ranges.clear()


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class _Handler(BaseHTTPRequestHandler):
    server: RangeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        srv = self.server
        path = self.path.split("?", 1)[0]
        rng = self.headers.get("Range")
        with srv.lock:
            srv.requests += 1
            srv.ranges.append((path, rng))
            failing = srv.fail_next > 0
            if failing:
                srv.fail_next -= 1
        if srv.on_request is not None:
            srv.on_request(path, rng)
        with srv.lock:
            srv.auth_seen.append(self.headers.get("Authorization"))
        if failing:
            return self._status(503)
        if path in srv.redirects:
            return self._status(302, {"Location": srv.redirects[path]})
        data = srv.objects.get(path)
        if data is None:
            return self._status(404)
        etag = srv.etag(path, data)
        want = self.headers.get("If-Match")
        if want is not None and want != etag:
            return self._status(412)
        status, lo, hi = 200, 0, len(data) - 1
        if rng is not None and not srv.ignore_range:
            m = _RANGE.match(rng)
            if m is None:
                return self._status(416)
            lo = int(m.group(1))
            hi = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if lo >= len(data) or hi < lo:
                return self._status(416, {"Content-Range": f"bytes */{len(data)}"})
            status = 206
        part = data[lo : hi + 1]
        self.send_response(status)
        self.send_header("Content-Length", str(len(part)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {lo}-{hi}/{len(data)}")
        self.end_headers()
        if body:
            with srv.lock:  # counted before sending: the client may check as soon as it has them
                srv.sent += len(part)
            self.wfile.write(part)

    def _status(self, code: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def range_server() -> Iterator[RangeServer]:
    srv = RangeServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def main() -> None:
    """``python range_server.py DIR``: serves DIR's files (read into memory) on a free port,
    prints the URL, counts nothing; stops on stdin EOF (the bench's server process)."""
    import sys
    from pathlib import Path

    srv = RangeServer()
    for p in Path(sys.argv[1]).iterdir():
        if p.is_file():
            srv.objects["/" + p.name] = p.read_bytes()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    print(srv.url, flush=True)
    sys.stdin.read()
    srv.shutdown()


if __name__ == "__main__":
    main()
