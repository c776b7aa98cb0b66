"""Finding the file key (FORMAT.md §5 steps 4–5).

Each identity is offered each stanza in order; the first file key any identity yields must
verify the header MAC, otherwise the file is rejected: no fallback to further stanzas, so a
stanza spliced in from another file can never be "tried past".

An identity may also refuse a stanza by policy (``E_KEY_STATE``: it holds the key version but
its lifecycle state forbids this use). A refusal yields no key, so the search goes on — a later
usable stanza still opens the file — and the refusals are reported only when no stanza yields a
key. Any other error (a stanza that is the identity's own but does not open) ends the search.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import TensorSealError, fail
from .header import ParsedHeader, verify_header
from .public import is_public_suite, refuse_unencrypted
from .stanza import Identity, Stanza


def unlock_file_key(
    header: ParsedHeader, identities: Sequence[Identity], *, require_encrypted: bool = False
) -> bytes:
    """The header-MAC-verified file key.

    Args:
        header: the parsed header.
        identities: tried in order for each stanza in order (not asked for a public file).
        require_encrypted: refuse a public (integrity-only) file with ``E_NOT_ENCRYPTED``.

    Returns:
        The 32-byte file key.

    Raises:
        TensorSealError: ``E_NO_IDENTITY`` when nothing matches, ``E_KEY_STATE`` when every
            stanza an identity held was refused by its lifecycle state, ``E_HEADER_MAC`` when
            the first key found does not authenticate the header, or the identity's own error.
    """
    if is_public_suite(header.descriptor.suite):
        # Suite 2 (§2.5): the key is published in the only stanza; the header MAC still checks.
        if require_encrypted:
            refuse_unencrypted(header.descriptor.suite)
        file_key = bytes(header.stanzas[0].fields[0])
        verify_header(header, file_key)
        return file_key
    if not identities:
        fail("E_NO_IDENTITY", "no key given: pass a key, identity or passphrase")
    refused: list[TensorSealError] = []
    for stanza in header.stanzas:
        for identity in identities:
            file_key = _offer(identity, stanza, refused)
            if file_key is None:
                continue
            verify_header(header, file_key)
            return file_key
    if len(refused) == 1:
        raise refused[0]
    if refused:
        fail("E_KEY_STATE", "; ".join(e.message for e in refused))
    types = ", ".join(dict.fromkeys(s.type for s in header.stanzas))
    ids = ", ".join(i.id for i in identities)
    fail(
        "E_NO_IDENTITY",
        f"none of the {len(header.stanzas)} recipient stanzas ({types}) matches the keys given ({ids})",
    )


def _offer(identity: Identity, stanza: Stanza, refused: list[TensorSealError]) -> bytes | None:
    """The identity's answer; a policy refusal is recorded and counts as no key."""
    try:
        return identity.unwrap(stanza)
    except TensorSealError as e:
        if e.code != "E_KEY_STATE":
            raise
        refused.append(e)
        return None
