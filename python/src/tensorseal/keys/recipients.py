"""Recipient strings as the CLI accepts them: ``tseal1…`` (X25519), ``tseal1pq1…`` (ML-KEM-768 +
X25519), ``kek:NAME`` (keystore), ``service:NAME`` (the key service), ``aws-kms:KEY`` (AWS KMS)
and ``pkcs11:TOKEN/KEYLABEL`` (an HSM)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import fail
from ..format.stanza import Recipient
from .x25519 import RECIPIENT_HRP, X25519Recipient
from .xwing import RECIPIENT_HRP as PQ_RECIPIENT_HRP
from .xwing import XWingRecipient

if TYPE_CHECKING:
    from .keystore import Keystore
    from .provider import KeyProvider
    from .service import ServiceClient


def parse_recipient(
    s: str,
    keystore: Keystore | None = None,
    service: ServiceClient | None = None,
    *,
    providers: Mapping[str, KeyProvider] | None = None,
) -> Recipient:
    """A recipient from its string form.

    Args:
        s: ``tseal1…``, ``tseal1pq1…``, ``kek:NAME`` (needs ``keystore``), ``service:NAME``,
            ``aws-kms:ARN|alias/NAME|KEY_ID`` or ``pkcs11:TOKEN/KEYLABEL`` (docs/PROVIDERS.md).
        keystore: the opened local keystore.
        service: the key service for ``service:NAME``; default: configured from the
            environment as the CLI is (``TENSORSEAL_SERVER``...).
        providers: the KMS / PKCS#11 providers by name (``"aws-kms"``, ``"pkcs11"``); default:
            configured from the environment as the CLI's (``AWS_REGION``, ``TENSORSEAL_PKCS11_MODULE``...).

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
    if s.startswith(("aws-kms:", "pkcs11:")):
        from .provider import parse_provider_recipient

        r = parse_provider_recipient(s, providers)
        assert r is not None
        return r
    # tseal1pq1... first: it also starts with the X25519 prefix tseal1.
    if s.lower().startswith(PQ_RECIPIENT_HRP + "1"):
        return XWingRecipient(s)
    if s.lower().startswith(RECIPIENT_HRP + "1"):
        return X25519Recipient(s)
    if s.upper().startswith(("TSEAL-SECRET-KEY-1", "TSEAL-SECRET-KEY-PQ-1")):
        fail("E_USAGE", "a secret key was given as a recipient: pass its public tseal1... or tseal1pq1... string")
    shown = s if len(s) <= 80 else s[:80] + "..."
    fail("E_USAGE", f"unknown recipient {shown!r}: expected tseal1..., tseal1pq1..., kek:NAME, service:NAME, aws-kms:KEY or pkcs11:TOKEN/KEYLABEL")
