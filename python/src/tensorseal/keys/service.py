"""The ``service`` stanza (FORMAT.md §3.6) and a client of the TensorSeal key service.

Only the service (``tensorseal serve``, docs/SERVICE.md) holds the KEK versions: this module
never computes or checks ``wrapped``. :class:`ServiceIdentity` sends a stanza to
``POST /v1/datakeys/unwrap`` and :class:`ServiceRecipient` has the writer's file key wrapped by
``POST /v1/datakeys/wrap``, the same HTTP API and rules as the TypeScript client
(``src/keys/service/``)::

    fields = [serverId (UTF-8, 1..128), name (UTF-8, 1..128), version u32, nonce 12, wrapped 48]

Configuration, as the CLI reads it (:meth:`ServiceClient.from_env`): ``TENSORSEAL_SERVER``
(base URL), ``TENSORSEAL_SERVER_CA`` (PEM file of the CA to trust, e.g. the ``serve --dev``
CA; when given, *only* that CA is trusted), ``TENSORSEAL_SERVER_TOKEN`` or
``TENSORSEAL_SERVER_TOKEN_FILE`` (bearer token), ``TENSORSEAL_SERVER_CERT`` and
``TENSORSEAL_SERVER_KEY`` (PEM client certificate chain and its unencrypted private key for
mTLS, both or neither: a SPIFFE X509-SVID authenticates without a token, docs/SERVICE.md "mTLS
and SPIFFE principals"). The token is sent only in the Authorization header; it and the key
never appear in an error message, a repr or a log.

Errors: an unreachable service, a refusal (401/403, audit unavailable...) or a malformed answer
is ``E_PROVIDER``; a stanza the service holds but that does not open (HTTP 422) is
``E_DECRYPT``; a stanza of another server (its id differs from ``GET /v1/info``) or one the
service does not know (404) is "not mine" (``None``). Standard library only (``urllib``,
``ssl``): no proxies from the environment are used and redirects are not followed, so the
token goes to the configured origin and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import re
import ssl
import urllib.error
import urllib.request
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ..errors import fail, printable
from ..format.stanza import Stanza, expect_fields

SERVICE_STANZA = "service"
DEFAULT_TIMEOUT = 30.0
_MAX_REPLY = 1 << 20


def _utf8_field(b: bytes, what: str) -> str:
    if not 1 <= len(b) <= 128:
        fail("E_MALFORMED", f"service stanza {what} must be 1..128 bytes of UTF-8")
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        fail("E_MALFORMED", f"service stanza {what} must be 1..128 bytes of UTF-8")


def parse_service_stanza(s: Stanza) -> tuple[str, str, int]:
    """(server id, key name, version) of a ``service`` stanza; ``E_MALFORMED`` if misframed.

    Example:
        >>> parse_service_stanza(Stanza("service", (b"srv", b"models", b"\\0\\0\\0\\2", bytes(12), bytes(48))))
        ('srv', 'models', 2)
    """
    if s.type != SERVICE_STANZA:
        fail("E_MALFORMED", f"not a service stanza: {s.type}")
    server_id, name, version, _, _ = expect_fields(s, [None, None, 4, 12, 48])
    v = int.from_bytes(version, "big")
    if v == 0:
        fail("E_MALFORMED", "service stanza version must be at least 1")
    return _utf8_field(server_id, "server id"), _utf8_field(name, "key name"), v


def stanza_to_wire(s: Stanza) -> dict[str, Any]:
    """The JSON form of a stanza: ``{"type", "fields": [base64...]}``."""
    return {"type": s.type, "fields": [base64.b64encode(f).decode("ascii") for f in s.fields]}


def stanza_from_wire(w: object) -> Stanza:
    """A stanza from its JSON form; ``E_PROVIDER`` if the service sent something else."""
    if not isinstance(w, dict) or not isinstance(w.get("type"), str) or not isinstance(w.get("fields"), list):
        fail("E_PROVIDER", "key service sent a malformed stanza")
    try:
        fields = tuple(base64.b64decode(f, validate=True) for f in w["fields"])
    except (TypeError, ValueError, binascii.Error):
        fail("E_PROVIDER", "key service sent a malformed stanza")
    return Stanza(w["type"], fields)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the 3xx it is: the bearer token never follows it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_TOKEN = re.compile(r"[\x21-\x7e]+")


def _check_token(token: str, source: str) -> None:
    """A bearer token is one run of printable ASCII, as the CLI requires: anything else (a
    second line, a CR/LF that would inject a header) is refused, naming where it came from and
    never the token itself."""
    if not _TOKEN.fullmatch(token):
        fail(
            "E_USAGE",
            f"{source}: not a bearer token (it must be one line of printable ASCII, as"
            " `tensorseal service token create` prints it)",
        )


def _reason(e: BaseException) -> str:
    """A short, secret-free cause: ECONNREFUSED, CERTIFICATE_VERIFY_FAILED, timeout..."""
    r: object = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(r, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {r.verify_message}"
    if isinstance(r, ssl.SSLError):
        return f"TLS: {r.reason or type(r).__name__}"
    if isinstance(r, TimeoutError):
        return "timeout"
    if isinstance(r, OSError) and r.errno in errno.errorcode:
        return errno.errorcode[r.errno]
    if isinstance(r, BaseException):
        return type(r).__name__
    return str(r)[:200]


def _no_passphrase() -> NoReturn:
    # OpenSSL's default would prompt on the terminal for an encrypted key; the TS client has no
    # passphrase option either, so an encrypted key is a configuration error, never a prompt.
    raise _EncryptedKey


class _EncryptedKey(Exception):
    pass


def _load_client_cert(ctx: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    """The client certificate (chain) and its key into ``ctx``; ``E_USAGE`` naming the files."""
    what = f"client certificate {cert_file!r} / key {key_file!r}"
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _EncryptedKey:
        fail("E_USAGE", f"{what}: the key is encrypted; give an unencrypted PEM key (mode 0600)")
    except (OSError, ssl.SSLError) as e:
        # SSLError covers "not PEM" and "key does not match the certificate"; never the bytes.
        fail("E_USAGE", f"{what} cannot be loaded ({_reason(e)})")


class ServiceClient:
    """JSON over HTTPS to one key service; shared by :class:`ServiceIdentity` and
    :class:`ServiceRecipient`.

    Args:
        server_url: ``https://host:port`` of the service (``http://`` is accepted, as by the
            CLI, for a TLS-terminating proxy on loopback; the token then travels in clear).
        token: bearer token (``tsk_...`` or an OIDC JWT); None sends no Authorization header.
        ca_file: PEM file of the CA to trust instead of the system trust store.
        timeout: seconds per request.
        cert_file, key_file: PEM client certificate (chain) and its unencrypted private key for
            mTLS; both or neither (``E_USAGE``), checked like the TS client. Used on ``https://``
            only. A token may be given as well: the service then authenticates the token and
            still refuses the request if the certificate is bad (docs/SERVICE.md).

    Example:
        >>> ServiceClient("https://keys.example:8443/ignored", "tsk_x").url
        'https://keys.example:8443'
    """

    def __init__(
        self,
        server_url: str,
        token: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
    ) -> None:
        try:
            u = urlsplit(server_url)
            port = u.port
        except (TypeError, ValueError, AttributeError):
            fail("E_USAGE", "key service URL is not a URL")
        if u.scheme not in ("https", "http") or not u.hostname:
            fail("E_USAGE", f"key service URL must be https://HOST[:PORT], got scheme {u.scheme!r}")
        if bool(cert_file) != bool(key_file):
            fail("E_USAGE", "a client certificate needs its key: give both (TENSORSEAL_SERVER_CERT/_KEY)")
        host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
        default = 443 if u.scheme == "https" else 80
        self._origin = f"{u.scheme}://{host}" + ("" if port in (None, default) else f":{port}")
        if token:
            _check_token(token, "token")
        self._token = token or None
        self._timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}), _NoRedirect()]
        if u.scheme == "https":
            try:
                # With a CA file only that CA is trusted (no system roots), as the CLI does.
                ctx = ssl.create_default_context(cafile=None if ca_file is None else os.fspath(ca_file))
            except (OSError, ssl.SSLError) as e:
                fail("E_USAGE", f"key service CA file {os.fspath(ca_file)!r} cannot be loaded ({_reason(e)})")  # type: ignore[arg-type]
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert_file and key_file:
                _load_client_cert(ctx, os.fspath(cert_file), os.fspath(key_file))
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        self._opener = urllib.request.build_opener(*handlers)
        self._server_id: str | None = None

    @classmethod
    def from_env(cls, server_url: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> ServiceClient:
        """The client the CLI would use: ``TENSORSEAL_SERVER`` (or ``server_url``, like
        ``--server``), ``TENSORSEAL_SERVER_CA``, ``TENSORSEAL_SERVER_TOKEN`` or else
        ``TENSORSEAL_SERVER_TOKEN_FILE``, ``TENSORSEAL_SERVER_CERT`` and ``TENSORSEAL_SERVER_KEY``.
        ``E_USAGE`` when no URL is configured, when only one of CERT/KEY is set (an empty value
        counts as unset), or when either file cannot be read. No token is needed with a
        certificate; neither is required here (the service refuses what it does not accept)."""
        url = server_url or os.environ.get("TENSORSEAL_SERVER")
        if not url:
            fail("E_USAGE", "no key service configured: set TENSORSEAL_SERVER (and TENSORSEAL_SERVER_CA, TENSORSEAL_SERVER_TOKEN)")
        token = os.environ.get("TENSORSEAL_SERVER_TOKEN")
        token_file = os.environ.get("TENSORSEAL_SERVER_TOKEN_FILE")
        if token is None and token_file:
            try:
                with open(token_file, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as e:
                fail("E_IO", f"TENSORSEAL_SERVER_TOKEN_FILE {token_file!r} cannot be read ({_reason(e)})")
        if token:
            source = "TENSORSEAL_SERVER_TOKEN" if "TENSORSEAL_SERVER_TOKEN" in os.environ else "TENSORSEAL_SERVER_TOKEN_FILE"
            _check_token(token, source)
        cert_file = os.environ.get("TENSORSEAL_SERVER_CERT") or None
        key_file = os.environ.get("TENSORSEAL_SERVER_KEY") or None
        if bool(cert_file) != bool(key_file):
            fail("E_USAGE", "TENSORSEAL_SERVER_CERT and TENSORSEAL_SERVER_KEY go together (PEM files)")
        for name, path in (("TENSORSEAL_SERVER_CERT", cert_file), ("TENSORSEAL_SERVER_KEY", key_file)):
            if path:
                try:
                    with open(path, "rb"):
                        pass
                except OSError as e:
                    fail("E_USAGE", f"{name}={path}: {_reason(e)}")
        return cls(
            url,
            token,
            os.environ.get("TENSORSEAL_SERVER_CA") or None,
            timeout=timeout,
            cert_file=cert_file,
            key_file=key_file,
        )

    @property
    def url(self) -> str:
        """The service's origin (scheme, host, port): safe to print."""
        return self._origin

    def __repr__(self) -> str:
        return f"ServiceClient({self._origin!r})"

    def server_id(self) -> str:
        """The id the service stamps into its stanzas (``GET /v1/info``, cached once known)."""
        if self._server_id is None:
            status, body = self.call("GET", "/v1/info")
            sid = body.get("serverId")
            if status != 200 or not isinstance(sid, str):
                self.refused("/v1/info", status, body)
            self._server_id = sid
        return self._server_id

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON object answered: ``{}`` if none); ``E_PROVIDER`` if unreachable."""
        headers = {"accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["content-type"] = "application/json"
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(self._origin + path, data=data, headers=headers, method=method)
        try:
            try:
                with self._opener.open(req, timeout=self._timeout) as res:
                    status, raw = res.status, res.read(_MAX_REPLY)
            except urllib.error.HTTPError as e:
                with e:
                    status, raw = e.code, e.read(_MAX_REPLY)
        except (urllib.error.URLError, OSError, ValueError) as e:
            fail(
                "E_PROVIDER",
                f"key service {self._origin} unreachable ({_reason(e)}): check TENSORSEAL_SERVER,"
                " TENSORSEAL_SERVER_CA (and _CERT/_KEY for mTLS)",
            )
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            parsed = {}
        return status, parsed if isinstance(parsed, dict) else {}

    def refused(self, path: str, status: int, body: dict[str, Any]) -> NoReturn:
        """Raises ``E_PROVIDER`` with the service's own message (token redacted, if echoed)."""
        msg = body.get("message")
        text = msg[:500] if isinstance(msg, str) else f"HTTP {status}"
        if self._token:
            text = text.replace(self._token, "[token]")
        fail("E_PROVIDER", f"key service {self._origin}{path}: {text}")


def _client(
    server_url: str | ServiceClient,
    token: str | None,
    ca_file: str | os.PathLike[str] | None,
    cert_file: str | os.PathLike[str] | None,
    key_file: str | os.PathLike[str] | None,
) -> ServiceClient:
    if isinstance(server_url, ServiceClient):
        return server_url
    return ServiceClient(server_url, token, ca_file, cert_file=cert_file, key_file=key_file)


class ServiceIdentity:
    """Unwraps ``service`` stanzas of one key service; other types and other servers are
    "not mine" (``None``) and are never sent.

    Args:
        server_url: the service's URL, or a :class:`ServiceClient` (then token, CA and client
            certificate are its).
        token: bearer token with the ``unwrap`` role; None with a client certificate alone.
        ca_file: PEM file of the CA to trust (e.g. ``$TENSORSEAL_HOME/service-dev/ca.pem``).
        cert_file, key_file: PEM client certificate and key (mTLS), both or neither.
        attest: attested release (:mod:`tensorseal.keys.attest`): an evidence provider, a
            callable ``(EvidenceRequest) -> JWT`` or an evidence program (path), as the CLI's
            ``open --attest PROGRAM``. Every stanza then goes to
            ``POST /v1/datakeys/unwrap-attested`` with fresh evidence and comes back
            HPKE-sealed to an ephemeral key; None (default) uses ``/v1/datakeys/unwrap``.

    Raises (from :meth:`unwrap`):
        TensorSealError: ``E_PROVIDER`` (unreachable, refused, bad answer), ``E_DECRYPT``
            (HTTP 422: the service holds the version but the stanza does not open),
            ``E_MALFORMED`` (a misframed service stanza). Each ends the unlock (§5 step 5).

    Example:
        >>> ServiceIdentity("https://127.0.0.1:8443", "tsk_secret").id
        'service:https://127.0.0.1:8443'
    """

    def __init__(
        self,
        server_url: str | ServiceClient,
        token: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        *,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        attest: Any = None,
    ) -> None:
        self.client = _client(server_url, token, ca_file, cert_file, key_file)
        self._evidence = None
        if attest is not None:
            from .attest import evidence_provider

            self._evidence = evidence_provider(attest)

    @classmethod
    def from_env(cls, server_url: str | None = None, *, attest: Any = None) -> ServiceIdentity:
        """Configured as the CLI is (:meth:`ServiceClient.from_env`); ``attest`` defaults to
        the program in ``TENSORSEAL_ATTEST_COMMAND``, as for the CLI's reading commands."""
        return cls(ServiceClient.from_env(server_url), attest=attest or os.environ.get("TENSORSEAL_ATTEST_COMMAND") or None)

    @property
    def id(self) -> str:
        return f"service:{self.client.url}"

    def __repr__(self) -> str:
        return f"ServiceIdentity({self.client.url!r})"

    def unwrap(self, s: Stanza) -> bytes | None:
        if s.type != SERVICE_STANZA:
            return None
        server_id, name, version = parse_service_stanza(s)
        if server_id != self.client.server_id():
            return None
        if self._evidence is not None:
            from .attest import unwrap_attested

            return unwrap_attested(self.client, s, self._evidence)
        path = "/v1/datakeys/unwrap"
        status, body = self.client.call("POST", path, {"stanza": stanza_to_wire(s)})
        if status == 200:
            fk = body.get("fileKey")
            try:
                key = base64.b64decode(fk, validate=True) if isinstance(fk, str) else b""
            except (ValueError, binascii.Error):
                key = b""
            if len(key) != 32:
                fail("E_PROVIDER", f"key service {self.client.url} sent a bad file key")
            return key
        if status == 404:
            return None
        if status == 422:
            fail("E_DECRYPT", f"service stanza for {printable(name)} v{version} does not open")
        self.client.refused(path, status, body)


class ServiceRecipient:
    """``service:KEY``: the service wraps the writer's file key under the key's primary version
    (``POST /v1/datakeys/wrap``), so a file keeps one file key for all its recipients.

    Args:
        server_url: the service's URL, or a :class:`ServiceClient`.
        token: bearer token with the ``wrap`` role; None with a client certificate alone.
        key_name: the KEK's name on the service.
        ca_file: PEM file of the CA to trust.
        cert_file, key_file: PEM client certificate and key (mTLS), both or neither.

    Example:
        >>> ServiceRecipient("https://127.0.0.1:8443", "tsk_secret", "models").id
        'service:models'
    """

    def __init__(
        self,
        server_url: str | ServiceClient,
        token: str | None,
        key_name: str,
        ca_file: str | os.PathLike[str] | None = None,
        *,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if not key_name:
            fail("E_USAGE", "recipient service:NAME needs a key name")
        self.client = _client(server_url, token, ca_file, cert_file, key_file)
        self.key_name = key_name

    @classmethod
    def from_env(cls, key_name: str, server_url: str | None = None) -> ServiceRecipient:
        """``service:KEY`` configured as the CLI is (:meth:`ServiceClient.from_env`)."""
        return cls(ServiceClient.from_env(server_url), None, key_name)

    @property
    def id(self) -> str:
        return f"service:{self.key_name}"

    def __repr__(self) -> str:
        return f"ServiceRecipient({self.client.url!r}, key_name={self.key_name!r})"

    def wrap(self, file_key: bytes) -> Stanza:
        if len(file_key) != 32:
            fail("E_KEY", "file key must be 32 bytes")
        path = "/v1/datakeys/wrap"
        status, body = self.client.call(
            "POST", path, {"key": self.key_name, "fileKey": base64.b64encode(bytes(file_key)).decode("ascii")}
        )
        if status != 200:
            self.client.refused(path, status, body)
        stanza = stanza_from_wire(body.get("stanza"))
        if stanza.type != SERVICE_STANZA:
            fail("E_PROVIDER", f"key service {self.client.url} answered a {stanza.type!r} stanza to a wrap")
        _, name, _ = parse_service_stanza(stanza)
        if name != self.key_name:
            fail("E_PROVIDER", f"key service {self.client.url} wrapped under {name!r}, not {self.key_name!r}")
        return stanza
