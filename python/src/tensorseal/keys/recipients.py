"""Recipient strings as the CLI accepts them: ``tseal1…`` (X25519), ``tseal1pq1…`` (ML-KEM-768 +
X25519), ``kek:NAME`` (keystore) and ``service:NAME`` (the key service)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import fail
from ..format.stanza import Recipient
from .x25519 import RECIPIENT_HRP, X25519Recipient
from .xwing import RECIPIENT_HRP as PQ_RECIPIENT_HRP
from .xwing import XWingRecipient

if TYPE_CHECKING:
    from .keystore import Keystore
    from .service import ServiceClient


def parse_recipient(s: str, keystore: Keystore | None = None, service: ServiceClient | None = None) -> Recipient:
    """A recipient from its string form.

    Args:
        s: ``tseal1…``, ``tseal1pq1…``, ``kek:NAME`` (needs ``keystore``) or ``service:NAME``.
        keystore: the opened local keystore.
        service: the key service for ``service:NAME``; default: configured from the
            environment as the CLI is (``TENSORSEAL_SERVER``...).

    Returns:
        The recipient.

    Example:
        >>> parse_recipient("kek:default", ks).id  # doctest: +SKIP
        'kek:default'
    """
    if s.startswith("kek:"):
        if keystore is None:
            fail("E_USAGE", f"recipient {s} needs the local keystore: pass keystore=Keystore.open(...)")
        return keystore.recipient(s[4:])
    if s.startswith("service:"):
        from .service import ServiceClient, ServiceRecipient

        return ServiceRecipient(service or ServiceClient.from_env(), None, s[8:])
    # tseal1pq1... first: it also starts with the X25519 prefix tseal1.
    if s.lower().startswith(PQ_RECIPIENT_HRP + "1"):
        return XWingRecipient(s)
    if s.lower().startswith(RECIPIENT_HRP + "1"):
        return X25519Recipient(s)
    if s.upper().startswith(("TSEAL-SECRET-KEY-1", "TSEAL-SECRET-KEY-PQ-1")):
        fail("E_USAGE", "a secret key was given as a recipient: pass its public tseal1... or tseal1pq1... string")
    shown = s if len(s) <= 80 else s[:80] + "..."
    fail("E_USAGE", f"unknown recipient {shown!r}: expected tseal1..., tseal1pq1..., kek:NAME or service:NAME")
