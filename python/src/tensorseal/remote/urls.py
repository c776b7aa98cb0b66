"""URLs of sealed objects: which strings are URLs, and how they appear in messages.

Errors and ``SealedFile.name`` show a URL without its credentials: no ``user:password@``, no
query string (presigned S3 URLs carry their signature and credential scope there) and no
fragment.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(source: object) -> str | None:
    """The lower-case scheme of a URL string (``s3``, ``https``...), or None for a path.

    A one-letter scheme is a Windows drive (``C:\\``), not a URL; ``file://`` counts as a URL.

    Example:
        >>> url_scheme("s3://bucket/model.tseal"), url_scheme("/tmp/model.tseal")
        ('s3', None)
    """
    if isinstance(source, os.PathLike) or not isinstance(source, str):
        return None
    m = _SCHEME.match(source)
    if m is None or len(m.group(1)) == 1:
        return None
    return m.group(1).lower()


def is_url(source: object) -> bool:
    """Whether ``source`` is a URL string that :func:`~tensorseal.remote.open_source` opens."""
    return url_scheme(source) is not None


def redact_url(url: str) -> str:
    """``url`` without user info, query string or fragment (safe to put in a message).

    Example:
        >>> redact_url("https://u:secret@host/m.tseal?X-Amz-Signature=abc#x")
        'https://host/m.tseal'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def join_url(root: str, rel: str) -> str:
    """``root`` (a directory URL, with or without a trailing ``/``) joined with ``rel``.

    Example:
        >>> join_url("s3://b/models/gpt2/", "config.json.tseal")
        's3://b/models/gpt2/config.json.tseal'
    """
    return root.rstrip("/") + "/" + rel.lstrip("/")
