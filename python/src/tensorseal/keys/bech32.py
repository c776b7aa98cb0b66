"""Bech32 (BIP 173, not Bech32m) for key strings, without BIP 173's 90-character limit.

An encoding, not cryptography. Errors never echo the input: an identity string is a secret.
"""

from __future__ import annotations

from ..errors import fail

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_REV = {c: i for i, c in enumerate(_CHARSET)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], frm: int, to: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to) - 1
    for v in data:
        if v >> frm:
            return None
        acc = (acc << frm) | v
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to - bits)) & maxv)
    elif bits >= frm or (acc << (to - bits)) & maxv:
        return None
    return out


def encode(hrp: str, data: bytes) -> str:
    """Lower-case Bech32 of ``data`` under ``hrp``.

    Example:
        >>> encode("a", b"")
        'a12uel5l'
    """
    words = _convert(data, 8, 5, True)
    assert words is not None
    poly = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def decode(s: str, hrp: str, size: int, what: str) -> bytes:
    """Decodes ``s`` (all lower or all upper case), checking the HRP and the payload size.

    Args:
        s: the Bech32 string.
        hrp: the required human-readable part (lower case).
        size: the required payload length in bytes.
        what: a name for error messages (the input itself is never quoted).

    Returns:
        The payload bytes.

    Raises:
        TensorSealError: ``E_KEY`` for a bad string, HRP or size.

    Example:
        >>> decode("A12UEL5L", "a", 0, "test")
        b''
    """
    bad = f"{what} is not valid bech32 (a typo, or a truncated copy)"
    if s.lower() != s and s.upper() != s:
        fail("E_KEY", bad)
    if any(ord(c) < 33 or ord(c) > 126 for c in s):
        fail("E_KEY", bad)
    s = s.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        fail("E_KEY", bad)
    prefix, rest = s[:pos], s[pos + 1 :]
    if any(c not in _REV for c in rest):
        fail("E_KEY", bad)
    values = [_REV[c] for c in rest]
    if _polymod(_hrp_expand(prefix) + values) != 1:
        fail("E_KEY", bad)
    data = _convert(values[:-6], 5, 8, False)
    if data is None:
        fail("E_KEY", bad)
    if prefix != hrp:
        fail("E_KEY", f'{what} must start with "{hrp}1"')
    if len(data) != size:
        fail("E_KEY", f"{what} encodes {len(data)} bytes, expected {size}")
    return bytes(data)
