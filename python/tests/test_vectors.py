"""spec/vectors: every valid vector re-seals byte for byte from its inputs and opens with each
identity alone; every invalid vector fails with its recorded error code."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from helpers import VECTORS, identity, load_json, mod251, mutate, rewrap, slot_stanzas, stanza
from tensorseal import SealedFile, TensorSealError, open_bytes
from tensorseal.format.chunked import ChunkCipher, payload_context
from tensorseal.format.descriptor import Descriptor, encode_descriptor
from tensorseal.format.filekey import header_mac_key, payload_input_key
from tensorseal.format.header import parse_header
from tensorseal.writer import Sealer

VALID = sorted(VECTORS.glob("valid-*.json"))
INVALID = sorted(VECTORS.glob("invalid-*.json"))


def test_vector_counts() -> None:
    assert len(VALID) == 20 and len(INVALID) == 54


def reseal(v: dict[str, Any], recorded: list) -> bytes:  # type: ignore[type-arg]
    fk = bytes.fromhex(v["fileKey"])
    d = v["descriptor"]
    plaintext = mod251(v["plaintext"]["length"])
    stanzas = [stanza(r, fk, recorded) for r in v["recipients"]]
    s = Sealer(
        [],
        plaintext_length=len(plaintext),
        chunk_size=d["chunkSize"],
        content_type=d["contentType"],
        context=d["context"],
        labels=d["labels"],
        suite=d.get("suite", 1),
        file_key=fk,
        salt=bytes.fromhex(v["payloadSalt"]),
        stanzas=stanzas,
    )
    file = b"".join([s.start(), *s.push(plaintext), s.finish()])
    if v.get("rewrap"):
        rw = v["rewrap"]
        file = rewrap(file, fk, rw, [stanza(r, fk, recorded) for r in rw["recipients"]])
    return file


def recorded_file(v: dict[str, Any]) -> bytes:
    if "file" in v:
        return bytes.fromhex(v["file"])
    header = bytes.fromhex(v["header"])
    file = reseal(v, slot_stanzas(header))
    assert file[: len(header)] == header
    assert hashlib.sha256(file).hexdigest() == v["fileSha256"]
    return file


_cache: dict[str, bytes] = {}


def vector_file(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = recorded_file(load_json(VECTORS / f"valid-{name}.json"))
    return _cache[name]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_reseals_byte_for_byte(path) -> None:  # type: ignore[no-untyped-def]
    v = load_json(path)
    file = vector_file(v["name"])
    assert len(file) == v["fileLength"]
    assert hashlib.sha256(file).hexdigest() == v["fileSha256"]
    header_len = v["intermediate"]["headerLength"]
    assert reseal(v, slot_stanzas(file[:header_len])) == file


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_intermediates(path) -> None:  # type: ignore[no-untyped-def]
    v = load_json(path)
    file = vector_file(v["name"])
    inter = v["intermediate"]
    d = v["descriptor"]
    descriptor = encode_descriptor(
        Descriptor(
            d["chunkSize"], v["plaintext"]["length"], d["contentType"], d["context"], d["labels"], d.get("suite", 1)
        )
    )
    assert descriptor.hex() == inter["descriptor"]
    fk = bytes.fromhex(v["fileKey"])
    assert header_mac_key(fk).hex() == inter["headerMacKey"]
    assert payload_input_key(fk).hex() == inter["payloadInputKey"]
    c = ChunkCipher(payload_input_key(fk), bytes.fromhex(v["payloadSalt"]), payload_context(descriptor), d["chunkSize"])
    assert (c.aead_key.hex(), c.base_nonce.hex(), c.commitment.hex()) == (
        inter["aeadKey"],
        inter["baseNonce"],
        inter["commitment"],
    )
    h = parse_header(file)
    assert h.header_length == inter["headerLength"]
    assert h.descriptor_bytes == descriptor
    assert h.stale_slot == bool(v.get("rewrap") and v["rewrap"]["keepOldSlot"])


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_opens_with_each_identity(path) -> None:  # type: ignore[no-untyped-def]
    v = load_json(path)
    file = vector_file(v["name"])
    # A public (suite 2) vector opens with no identity at all; every other needs one.
    assert (not v["identities"]) == (v["descriptor"].get("suite") == 2)
    if not v["identities"]:
        plaintext = open_bytes(file, [])
        assert hashlib.sha256(plaintext).hexdigest() == v["plaintext"]["sha256"]
    for spec in v["identities"]:
        plaintext = open_bytes(file, [identity(spec)])
        assert len(plaintext) == v["plaintext"]["length"]
        assert hashlib.sha256(plaintext).hexdigest() == v["plaintext"]["sha256"]
        if "hex" in v["plaintext"]:
            assert plaintext.hex() == v["plaintext"]["hex"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_fails_with_recorded_code(path) -> None:  # type: ignore[no-untyped-def]
    import io

    v = load_json(path)
    file = mutate(vector_file(v["base"]), v["mutations"])
    assert len(file) == v["fileLength"]
    assert hashlib.sha256(file).hexdigest() == v["fileSha256"]
    ids = [identity(s) for s in v["identities"]]
    with pytest.raises(TensorSealError) as e:
        open_bytes(file, ids)
    assert e.value.code == v["expectedError"]
    # The random-access reader fails the same way: at open for header, length, commitment and
    # final-chunk failures; a modified inner chunk only when that chunk is read.
    with pytest.raises(TensorSealError) as e2:
        with SealedFile(io.BytesIO(file), ids) as sf:
            sf.read_all()
    assert e2.value.code == v["expectedError"]


def test_metadata_vector_exposes_tier_purpose_owner() -> None:
    """FORMAT.md §2.2.1: the inspect API (read_header) gives tier, purpose and owner."""
    import io

    from tensorseal import read_header

    h = read_header(io.BytesIO(vector_file("metadata-16k-100")))
    d = h.descriptor
    assert (d.tier, d.purpose, d.owner) == (
        "confidential",
        "fraud-detection weights, production",
        "ml-platform@example.com",
    )
    assert d.labels["team"] == "ml"
    plain = read_header(io.BytesIO(vector_file("kek-16k-1"))).descriptor
    assert (plain.tier, plain.purpose, plain.owner) == (None, None, None)


@pytest.mark.parametrize("bad", ["Public", "", "x" * 33, "9lives", "tier_1"])
def test_writer_refuses_a_bad_tier(bad: str) -> None:
    with pytest.raises(TensorSealError) as e:
        encode_descriptor(
            Descriptor(chunk_size=16384, plaintext_length=0, labels={"tensorseal:tier": bad})
        )
    assert e.value.code == "E_MALFORMED"


def test_public_vector_is_readable_plaintext_and_refused_where_encryption_is_required() -> None:
    """FORMAT.md §2.5: suite 2 keeps the plaintext in the file (readable by anyone); a reader that
    requires encryption refuses it before reading the payload; the descriptor says which it is."""
    import io

    from tensorseal import read_header

    file = vector_file("public-16k-100")
    plaintext = mod251(100)
    assert plaintext in file
    h = read_header(io.BytesIO(file))
    assert (h.descriptor.suite, h.descriptor.encrypted, h.descriptor.tier) == (2, False, "public")
    assert read_header(io.BytesIO(vector_file("kek-public-tier-16k-100"))).descriptor.encrypted
    kek = load_json(VECTORS / "valid-kek-16k-1.json")["identities"]
    # Identities given are ignored for a public file...
    assert open_bytes(file, [identity(kek[0])]) == plaintext
    # ...unless the caller requires encryption.
    with pytest.raises(TensorSealError) as e:
        open_bytes(file, [identity(kek[0])], require_encrypted=True)
    assert e.value.code == "E_NOT_ENCRYPTED"
    assert open_bytes(vector_file("kek-public-tier-16k-100"), [identity(kek[0])], require_encrypted=True) == plaintext


def test_public_writer_round_trip_and_stanza_rules() -> None:
    from tensorseal.format.public import public_stanza
    from tensorseal.keys.kek import KekRecipient
    from tensorseal.writer import seal_bytes

    data = bytes(range(256)) * 300
    sealed = seal_bytes(data, [], public=True, chunk_size=16384)
    assert data[:16384] in sealed
    assert open_bytes(sealed) == data
    # A public file takes no recipients; a published key next to a real recipient is refused.
    with pytest.raises(TensorSealError) as e:
        seal_bytes(data, [KekRecipient("k", 1, bytes(32))], public=True)
    assert e.value.code == "E_USAGE"
    with pytest.raises(TensorSealError) as e:
        seal_bytes(data, [KekRecipient("k", 1, bytes(32))], stanzas=[public_stanza(bytes(32))])
    assert e.value.code == "E_USAGE"
