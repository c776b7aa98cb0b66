"""Sealed files over HTTP(S) with ``Range`` requests (the standard library only).

Opening asks for the first bytes of the object (``Range: bytes=0-19``, a GET: presigned URLs
allow no HEAD), which gives its size (``Content-Range``) and its ETag; every later request
carries ``If-Match`` with that ETag (a strong one) and checks the size and ETag of the answer,
so an object replaced mid-read fails (see :mod:`tensorseal.remote.base`). A server that
ignores ``Range`` is refused rather than downloaded whole.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import fail
from .base import DEFAULT_RETRIES, Pin, RangeSource, Transient, changed
from .urls import redact_url

PROBE_BYTES = 20
"""Bytes asked for at opening: the sealed header's fixed prefix (served from memory after)."""
TIMEOUT_S = 60.0
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class HttpSource(RangeSource):
    """An ``http://`` or ``https://`` object read with ranged GETs.

    Args:
        url: the object's URL (a presigned URL works: its query string is kept for requests
            and left out of every message).
        headers: extra request headers (``Authorization``...), never shown in messages;
            ``Authorization`` and ``Cookie`` are sent to the URL's host only, not on to
            another host it redirects to.
        retries: attempts after the first for a transient failure.
        timeout_s: socket timeout per request.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        retries: int = DEFAULT_RETRIES,
        timeout_s: float = TIMEOUT_S,
        backoff_s: float | None = None,
    ) -> None:
        super().__init__(retries=retries, **({} if backoff_s is None else {"backoff_s": backoff_s}))
        self._url, auth = _split_userinfo(url)
        self.name = redact_url(url)
        given = {**auth, **dict(headers or {})}
        self._secret_headers = {k: v for k, v in given.items() if k.lower() in _CREDENTIAL_HEADERS}
        self._headers = {k: v for k, v in given.items() if k.lower() not in _CREDENTIAL_HEADERS}
        self._timeout = timeout_s
        self._etag: str | None = None
        self._modified: str | None = None
        self.pin = Pin(size=PROBE_BYTES)  # until the probe answers
        self._head = b""
        self._probing = True
        self._head = self.read(0, PROBE_BYTES)
        self._probing = False

    def read_into(self, offset: int, buf: memoryview) -> None:
        n = len(buf)
        if not self._probing and offset + n <= len(self._head) and not self.closed:
            buf[:] = self._head[offset : offset + n]
            return
        super().read_into(offset, buf)

    def _fetch(self, offset: int, n: int) -> bytes:
        buf = bytearray(n)
        got = self._fetch_into(offset, memoryview(buf))
        return bytes(buf[:got])

    def _fetch_into(self, offset: int, buf: memoryview) -> int:
        n = len(buf)
        headers = {**self._headers, "Range": f"bytes={offset}-{offset + n - 1}", "Accept-Encoding": "identity"}
        if self._etag is not None:
            headers["If-Match"] = self._etag
        req = urllib.request.Request(self._url, headers=headers, method="GET")
        for k, v in self._secret_headers.items():  # not sent on to another host after a redirect
            req.add_unredirected_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                return self._answer(resp.status, resp.headers, resp, offset, buf)
        except urllib.error.HTTPError as e:
            with e:
                return self._answer(e.code, e.headers, e, offset, buf)
        except (urllib.error.URLError, ConnectionError, socket.timeout, http.client.HTTPException) as e:
            raise Transient(_reason(e)) from None

    def _answer(self, status: int, headers: object, body: object, offset: int, buf: memoryview) -> int:
        n = len(buf)
        h = headers  # an http.client.HTTPMessage
        if status == 412:
            raise changed("the ETag no longer matches")
        if status in (429,) or status >= 500:
            raise Transient(f"HTTP {status}")
        if status == 404:
            fail("E_IO", "no such object (HTTP 404)")
        if status in (401, 403):
            fail("E_IO", f"access denied (HTTP {status}): check the URL's credentials or expiry")
        if status == 416 and not self._probing:
            raise changed("the range is past the end")
        if status == 200:
            fail("E_IO", "the server ignores Range requests (HTTP 200): serve the object with Range support")
        if status != 206:
            fail("E_IO", f"unexpected HTTP status {status}")
        m = _CONTENT_RANGE.match(h.get("Content-Range", ""))  # type: ignore[attr-defined]
        if m is None or m.group(3) == "*":
            fail("E_IO", "the server's answer has no usable Content-Range")
        total, lo, hi = int(m.group(3)), int(m.group(1)), int(m.group(2))
        etag, modified = h.get("ETag"), h.get("Last-Modified")  # type: ignore[attr-defined]
        if self._probing:
            self._pin_from(total, etag, modified)
            n = min(n, total)
            buf = buf[:n]
        else:
            self._check_same(total, etag, modified)
        if lo != offset or hi != offset + n - 1:
            fail("E_IO", f"the server answered bytes {lo}-{hi} for {offset}-{offset + n - 1}")
        got = 0
        try:
            while got < n:
                k = body.readinto(buf[got:])  # type: ignore[attr-defined]
                if not k:
                    break
                got += k
        except (ConnectionError, socket.timeout, http.client.HTTPException) as e:
            raise Transient(_reason(e)) from None
        if got != n:
            raise Transient(f"short body: {got} of {n} bytes")
        return n

    def _pin_from(self, total: int, etag: str | None, modified: str | None) -> None:
        strong = etag is not None and not etag.startswith("W/")
        self._etag = etag if strong else None
        self._modified = modified
        self.pin = Pin(size=total, etag=etag)

    def _check_same(self, total: int, etag: str | None, modified: str | None) -> None:
        if total != self.pin.size:
            raise changed(f"its size went from {self.pin.size} to {total} bytes")
        if self.pin.etag is not None and etag != self.pin.etag:
            raise changed("the ETag no longer matches")
        if self._etag is None and self._modified is not None and modified != self._modified:
            raise changed("Last-Modified no longer matches")


def _reason(e: BaseException) -> str:
    """A short reason for a network failure (never the URL: it may hold a signature)."""
    if isinstance(e, urllib.error.URLError):
        r = e.reason
        return type(r).__name__ if not isinstance(r, str) else "connection failed"
    return type(e).__name__


def _split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without ``user:password@``, and the Basic ``Authorization`` header it gave."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), {"Authorization": f"Basic {token}"}
