"""Canonical JSON for the keystore MAC (KEYSTORE.md): keys sorted, no whitespace, integers
only, strings written as JavaScript's ``JSON.stringify`` writes them."""

from __future__ import annotations

import json

from ..errors import fail

_MAX_SAFE = 2**53 - 1


def canonical_json(v: object) -> str:
    """The one encoding of a JSON value that the keystore MAC covers.

    Example:
        >>> canonical_json({"b": [1, "é"], "a": "x"})
        '{"a":"x","b":[1,"é"]}'
    """
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool) or v is None:
        fail("E_KEYSTORE", f"keystore holds an unsupported JSON value ({type(v).__name__})")
    if isinstance(v, int):
        if abs(v) > _MAX_SAFE:
            fail("E_KEYSTORE", "keystore holds a non-integer number")
        return str(v)
    if isinstance(v, float):
        fail("E_KEYSTORE", "keystore holds a non-integer number")
    if isinstance(v, list):
        return "[" + ",".join(canonical_json(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{canonical_json(x)}" for k, x in items) + "}"
    fail("E_KEYSTORE", f"keystore holds an unsupported JSON value ({type(v).__name__})")
