"""Round trips through every key type, random access, and tamper rejection."""

from __future__ import annotations

import io
import os
import random

import pytest

from tensorseal import (
    KekIdentity,
    KekRecipient,
    PassphraseIdentity,
    PassphraseRecipient,
    SealedFile,
    TensorSealError,
    X25519Identity,
    X25519Recipient,
    generate_identity,
    open_bytes,
    open_file,
    parse_identity_file,
    seal_bytes,
    seal_file,
)
from tensorseal.format.header import parse_header
from tensorseal.keys import bech32
from tensorseal.keys.x25519 import decode_identity, decode_recipient, format_identity_file

KEK = bytes(range(32))
C = 16384


def kek_pair() -> tuple[KekRecipient, KekIdentity]:
    return KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)


@pytest.mark.parametrize("n", [0, 1, C - 1, C, C + 1, 3 * C + 5])
def test_round_trip_lengths(n: int) -> None:
    r, i = kek_pair()
    data = os.urandom(n)
    sealed = seal_bytes(data, [r], chunk_size=C)
    assert open_bytes(sealed, [i]) == data
    assert parse_header(sealed).descriptor.plaintext_length == n


def test_multi_recipient_each_opens() -> None:
    sk, pk = generate_identity()
    r, i = kek_pair()
    sealed = seal_bytes(b"weights", [r, X25519Recipient(pk), PassphraseRecipient("pw", work_factor=10)],
                        context={"model": "m"}, labels={"owner": "me"})
    for ident in (i, X25519Identity(sk), PassphraseIdentity("pw")):
        assert open_bytes(sealed, [ident]) == b"weights"


def test_wrong_keys() -> None:
    r, _ = kek_pair()
    sealed = seal_bytes(b"x", [r, PassphraseRecipient("pw", work_factor=10)])
    with pytest.raises(TensorSealError) as e:
        open_bytes(sealed, [KekIdentity.single("default", 1, bytes(32))])
    assert e.value.code == "E_DECRYPT"
    with pytest.raises(TensorSealError) as e:
        open_bytes(sealed, [PassphraseIdentity("nope")])
    assert e.value.code == "E_DECRYPT"
    with pytest.raises(TensorSealError) as e:
        open_bytes(sealed, [X25519Identity(generate_identity()[0])])
    assert e.value.code == "E_NO_IDENTITY"
    with pytest.raises(TensorSealError) as e:
        open_bytes(sealed, [])
    assert e.value.code == "E_NO_IDENTITY"


def test_error_messages_hold_no_secrets() -> None:
    sealed = seal_bytes(b"top secret plaintext", [PassphraseRecipient("hunter2-passphrase", work_factor=10)])
    with pytest.raises(TensorSealError) as e:
        open_bytes(sealed, [PassphraseIdentity("wrong-passphrase-xyz")])
    assert "wrong-passphrase-xyz" not in str(e.value) and "hunter2" not in str(e.value)
    sk, _ = generate_identity()
    with pytest.raises(TensorSealError) as e:
        parse_identity_file(sk[:-1] + ("Q" if sk[-1] != "Q" else "P"))
    assert sk[:20] not in str(e.value)


def test_read_range_decrypts_only_covering_chunks() -> None:
    r, i = kek_pair()
    data = os.urandom(10 * C + 123)
    with SealedFile(io.BytesIO(seal_bytes(data, [r], chunk_size=C)), [i]) as sf:
        after_open = sf.decrypted_bytes
        assert after_open == 123  # the final chunk authenticates the length
        assert bytes(sf.read_range(3 * C + 10, 100)) == data[3 * C + 10 : 3 * C + 110]
        assert sf.decrypted_bytes - after_open == C
        rng = random.Random(1)
        for _ in range(50):
            off = rng.randrange(len(data))
            n = rng.randrange(len(data) - off + 1)
            assert bytes(sf.read_range(off, n)) == data[off : off + n]
        out = bytearray(2 * C)
        sf.read_range(C, 2 * C, out)
        assert bytes(out) == data[C : 3 * C]
        assert b"".join(sf.iter_chunks()) == data
        with pytest.raises(TensorSealError):
            sf.read_range(len(data) - 1, 2)


def test_files_on_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r, i = kek_pair()
    src = tmp_path / "plain.bin"
    src.write_bytes(os.urandom(3 * (1 << 20) + 7))
    seal_file(src, tmp_path / "x.tseal", [r])
    assert open_file(tmp_path / "x.tseal", [i]) == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.bin", "x.tseal"]


def test_bit_flips_anywhere_are_rejected() -> None:
    r, i = kek_pair()
    sealed = seal_bytes(os.urandom(2 * C + 77), [r], chunk_size=C)
    h = parse_header(sealed)
    rng = random.Random(7)
    positions = list(range(0, h.header_length, 97)) + rng.sample(range(h.header_length, len(sealed)), 200)
    for pos in positions:
        bad = bytearray(sealed)
        bad[pos] ^= 1 << rng.randrange(8)
        slot1 = h.prefix.slot_offset(1) <= pos < h.header_length
        try:
            out = open_bytes(bytes(bad), [i])
        except TensorSealError:
            assert not slot1, f"a flip in the empty slot 1 (at {pos}) makes it damaged, hence ignored"
            continue
        # Only the empty inactive slot may change: it becomes "damaged" and is ignored (§2.3).
        assert slot1, f"flip at {pos} accepted"
        assert out == open_bytes(sealed, [i])


def test_truncation_and_extension_are_rejected() -> None:
    r, i = kek_pair()
    sealed = seal_bytes(os.urandom(2 * C + 77), [r], chunk_size=C)
    for n in [0, 5, 19, 100, parse_header(sealed).header_length, len(sealed) - 1, len(sealed) - 78, len(sealed) - 94]:
        with pytest.raises(TensorSealError) as e:
            open_bytes(sealed[:n], [i])
        assert e.value.code in ("E_TRUNCATED", "E_NOT_TSEAL"), (n, e.value.code)
    with pytest.raises(TensorSealError) as e:
        open_bytes(sealed + b"\x00", [i])
    assert e.value.code == "E_TRAILING"
    with pytest.raises(TensorSealError) as e:
        open_bytes(b"PK\x03\x04" + sealed, [i])
    assert e.value.code == "E_NOT_TSEAL"


def test_passphrase_logn_bounded_before_scrypt() -> None:
    from tensorseal.format.stanza import Stanza

    for log_n in (9, 21, 40, 255):
        s = Stanza("passphrase", (bytes(16), bytes([log_n]), bytes(48)))
        with pytest.raises(TensorSealError) as e:
            PassphraseIdentity("pw").unwrap(s)
        assert e.value.code == "E_UNSUPPORTED"


def test_bech32_keys() -> None:
    sk, pk = generate_identity()
    assert sk == sk.upper() and pk == pk.lower() and pk.startswith("tseal1")
    assert decode_identity(sk.lower()) == decode_identity(sk)
    assert len(decode_recipient(pk.upper())) == 32
    for bad in (pk[:-1] + ("q" if pk[-1] != "q" else "p"), pk[:10] + pk[10:].upper(), "tseal1", sk, pk + "q"):
        with pytest.raises(TensorSealError) as e:
            decode_recipient(bad)
        assert e.value.code == "E_KEY"
    # BIP 173 test vectors (valid checksums), without the 90-character limit.
    assert bech32.decode("A12UEL5L", "a", 0, "t") == b""
    long = bech32.encode("tseal", bytes(200))
    assert len(long) > 90 and bech32.decode(long, "tseal", 200, "t") == bytes(200)


def test_identity_file() -> None:
    sk, pk = generate_identity()
    text = format_identity_file(sk)
    assert f"# recipient: {pk}" in text
    assert [x.id for x in parse_identity_file("\r\n# c\n\n" + sk + "\r\n")] == [pk]
    with pytest.raises(TensorSealError) as e:
        parse_identity_file("# only comments\n")
    assert e.value.code == "E_NO_IDENTITY"
