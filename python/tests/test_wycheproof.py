"""Wycheproof vectors read from test/fixtures/wycheproof/: Cobblestone-256 against the payload
code (streaming opener in varied piece sizes, raw mode, deterministic re-encryption, final-chunk
length authentication), and HKDF-SHA-512 expand with the PRK length this format uses."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import pytest

from helpers import WYCHEPROOF, load_json
from tensorseal import TensorSealError
from tensorseal.format.chunked import PAYLOAD_PREFIX_SIZE, SALT_SIZE, TAG_SIZE, ChunkCipher, Geometry
from tensorseal.format.hkdf import hkdf_expand
from tensorseal.format.payload import PayloadOpener, PayloadSealer

CHUNK = 16384
SEALED = CHUNK + TAG_SIZE
COBBLESTONE = load_json(WYCHEPROOF / "c2sp_chunked_encryption_aes_256_gcm_test.json")
TESTS = [t for g in COBBLESTONE["testGroups"] for t in g["tests"]]


def test_cobblestone_file_is_complete() -> None:
    assert COBBLESTONE["numberOfTests"] == len(TESTS) == 35
    for g in COBBLESTONE["testGroups"]:
        assert (g["aead"], g["sha"]) == ("AEAD_AES_256_GCM", "SHA-512")


def stream_open(ct: bytes, key: bytes, ctx: bytes, piece: int) -> tuple[list[bytes], Exception | None, Any]:
    try:
        opener = PayloadOpener(key, ctx, CHUNK)
    except TensorSealError as e:
        return [], e, None
    parts: list[bytes] = []
    try:
        for i in range(0, len(ct), piece):
            parts.extend(opener.push(ct[i : i + piece]))
        parts.append(opener.finish())
        return parts, None, opener
    except TensorSealError as e:
        return parts, e, opener


def header_failure_code(t: dict[str, Any]) -> str:
    if "InvalidKeySize" in t["flags"]:
        return "E_KEY"
    if "Truncation" in t["flags"]:
        return "E_TRUNCATED"
    return "E_COMMITMENT"


def open_final_chunk(ct: bytes, key: bytes, ctx: bytes) -> bytes:
    geo = Geometry(CHUNK)
    length = geo.plaintext_length(len(ct))
    c = ChunkCipher(key, ct[:SALT_SIZE], ctx, CHUNK)
    c.check_commitment(ct[SALT_SIZE:PAYLOAD_PREFIX_SIZE])
    last = geo.chunk_count(length) - 1
    pt = c.open(last, ct[geo.chunk_offset(last) :])
    assert len(pt) == geo.chunk_plaintext_length(last, length)
    return pt


@pytest.mark.parametrize("t", TESTS, ids=lambda t: f"tc{t['tcId']}-{t['result']}-{'+'.join(t['flags'])}")
def test_cobblestone(t: dict[str, Any]) -> None:
    ct = zlib.decompress(bytes.fromhex(t["ct"]))
    key, ctx = bytes.fromhex(t["key"]), bytes.fromhex(t["ctx"])
    valid = t["result"] == "valid"
    header_failure = "HeaderFailure" in t["flags"]
    prefix_length = t.get("msgLength", 0)

    pieces = [1, 7, SEALED, len(ct) or 1] if len(ct) <= 64 * 1024 else [4093, SEALED, len(ct)]
    message = None
    for piece in pieces:
        parts, err, opener = stream_open(ct, key, ctx, piece)
        if valid:
            assert err is None
            message = b"".join(parts)
            assert len(message) == t["msgLength"]
            assert hashlib.sha512(message).hexdigest() == t["msgSha512"]
            continue
        assert isinstance(err, TensorSealError)
        released = opener.released if opener else 0
        assert sum(map(len, parts)) <= released <= prefix_length
        if header_failure or "WrongKey" in t["flags"] or "WrongContext" in t["flags"]:
            assert released == 0
            assert err.code == header_failure_code(t)
        else:
            assert err.code in ("E_DECRYPT", "E_TRUNCATED")
        if opener is not None:  # the opener remembers its failure
            with pytest.raises(TensorSealError) as again:
                opener.finish()
            assert again.value is err
            with pytest.raises(TensorSealError) as again:
                opener.push(bytes(SEALED))
            assert again.value is err

    if not header_failure:  # raw mode: aeadKey and baseNonce directly
        raw = ChunkCipher.raw(bytes.fromhex(t["aeadKey"]), bytes.fromhex(t["baseNonce"]))
        if len(key) == 32 and len(ct) >= SALT_SIZE:
            derived = ChunkCipher(key, ct[:SALT_SIZE], ctx, CHUNK)
            assert (derived.aead_key.hex(), derived.base_nonce.hex()) == (t["aeadKey"], t["baseNonce"])
        body = ct[min(PAYLOAD_PREFIX_SIZE, len(ct)) :]

        def raw_open() -> list[bytes]:
            out, index, pos = [], 0, 0
            while len(body) - pos >= SEALED:
                out.append(raw.open(index, body[pos : pos + SEALED]))
                index, pos = index + 1, pos + SEALED
            out.append(raw.open(index, body[pos:]))
            return out

        if valid:
            chunks = raw_open()
            assert hashlib.sha512(b"".join(chunks)).hexdigest() == t["msgSha512"]
            assert b"".join(raw.seal(i, c) for i, c in enumerate(chunks)) == body
        else:
            with pytest.raises(TensorSealError):
                raw_open()

    if valid:  # deterministic encryption with the vector's salt reproduces ct
        assert message is not None
        s = PayloadSealer(key, ctx, CHUNK, ct[:SALT_SIZE])
        assert s.prefix + b"".join(s.push(message)) + s.finish() == ct

    if valid or "ValidFinalChunk" in t["flags"]:
        open_final_chunk(ct, key, ctx)
    else:
        with pytest.raises(TensorSealError):
            open_final_chunk(ct, key, ctx)


HKDF = load_json(WYCHEPROOF / "hkdf_sha512_test.json")


@pytest.mark.parametrize(
    "t", [t for g in HKDF["testGroups"] for t in g["tests"] if t["result"] == "valid"], ids=lambda t: f"tc{t['tcId']}"
)
def test_hkdf_sha512_expand(t: dict[str, Any]) -> None:
    """Extract with HMAC (pyca), then our Expand must give the vector's OKM."""
    from cryptography.hazmat.primitives import hashes, hmac

    salt = bytes.fromhex(t["salt"]) or bytes(64)
    h = hmac.HMAC(salt, hashes.SHA512())
    h.update(bytes.fromhex(t["ikm"]))
    prk = h.finalize()
    assert hkdf_expand("sha512", prk, bytes.fromhex(t["info"]), t["size"]).hex() == t["okm"]


def test_hkdf_expand_accepts_32_byte_prk_with_sha512() -> None:
    """RFC 5869 allows a PRK shorter than HashLen; the format expands a 32-byte key."""
    from cryptography.hazmat.primitives import hashes, hmac

    prk, info = bytes(range(32)), b"tensorseal"
    t1 = hmac.HMAC(prk, hashes.SHA512())
    t1.update(info + b"\x01")
    first = t1.finalize()
    t2 = hmac.HMAC(prk, hashes.SHA512())
    t2.update(first + info + b"\x02")
    assert hkdf_expand("sha512", prk, info, 76) == (first + t2.finalize())[:76]
