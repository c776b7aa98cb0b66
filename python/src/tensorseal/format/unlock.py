"""Finding the file key (FORMAT.md §5 steps 4–5).

Each identity is offered each stanza in order; the first file key any identity yields must
verify the header MAC, otherwise the file is rejected: no fallback to further stanzas, so a
stanza spliced in from another file can never be "tried past".
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import fail
from .header import ParsedHeader, verify_header
from .stanza import Identity


def unlock_file_key(header: ParsedHeader, identities: Sequence[Identity]) -> bytes:
    """The header-MAC-verified file key.

    Args:
        header: the parsed header.
        identities: tried in order for each stanza in order.

    Returns:
        The 32-byte file key.

    Raises:
        TensorSealError: ``E_NO_IDENTITY`` when nothing matches, ``E_HEADER_MAC`` when the
            first key found does not authenticate the header, or the identity's own error.
    """
    if not identities:
        fail("E_NO_IDENTITY", "no key given: pass a key, identity or passphrase")
    for stanza in header.stanzas:
        for identity in identities:
            file_key = identity.unwrap(stanza)
            if file_key is None:
                continue
            verify_header(header, file_key)
            return file_key
    types = ", ".join(dict.fromkeys(s.type for s in header.stanzas))
    ids = ", ".join(i.id for i in identities)
    fail(
        "E_NO_IDENTITY",
        f"none of the {len(header.stanzas)} recipient stanzas ({types}) matches the keys given ({ids})",
    )
