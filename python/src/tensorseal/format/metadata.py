"""Governance metadata of a sealed file (FORMAT.md §2.2.1): tier, purpose and owner.

They are reserved ``tensorseal:`` entries of the descriptor's labels map, so they are descriptor
bytes: authenticated by the header MAC and the payload derivation like every label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import fail

TIER_LABEL = "tensorseal:tier"
PURPOSE_LABEL = "tensorseal:purpose"
OWNER_LABEL = "tensorseal:owner"
RESERVED_LABEL_PREFIX = "tensorseal:"
MAX_METADATA_TEXT = 255

_TIER_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
_FIELDS = (("tier", TIER_LABEL), ("purpose", PURPOSE_LABEL), ("owner", OWNER_LABEL))


def metadata_problem(field: str, value: str) -> str | None:
    """Why ``value`` is not valid for metadata ``field`` (tier, purpose, owner), or None."""
    if field == "tier":
        if _TIER_NAME.fullmatch(value):
            return None
        return "a tier name is 1..32 characters of a-z, 0-9 and -, starting with a letter"
    if value == "":
        return f"{field} must not be empty"
    if len(value.encode("utf-8")) > MAX_METADATA_TEXT:
        return f"{field} exceeds {MAX_METADATA_TEXT} bytes"
    if _CONTROL.search(value):
        return f"{field} contains a control character"
    return None


def validate_metadata_labels(labels: Mapping[str, str]) -> None:
    """Readers: ``E_MALFORMED`` for a reserved metadata label with an invalid value."""
    for name, key in _FIELDS:
        v = labels.get(key)
        if v is None:
            continue
        why = metadata_problem(name, v)
        if why:
            fail("E_MALFORMED", f"label {key}: {why}")


def metadata_of(labels: Mapping[str, str]) -> dict[str, str]:
    """The metadata fields (tier, purpose, owner) a labels map records."""
    return {name: labels[key] for name, key in _FIELDS if key in labels}
