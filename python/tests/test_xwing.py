"""The mlkem768x25519 (X-Wing) recipient over pyca's hpke: key derivation against the published
X-Wing vectors, files the TS CLI opens and seals, and the attacks it must reject.

The cross-language tests need the built CLI (`npm run build`), as test_cross_language.py does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO, run_cli
from tensorseal import (
    TensorSealError,
    XWingIdentity,
    XWingRecipient,
    open_bytes,
    open_file,
    read_identity_file,
    seal_bytes,
)
from tensorseal.format.stanza import Stanza
from tensorseal.keys import bech32
from tensorseal.keys.recipients import parse_recipient
from tensorseal.keys.x25519 import X25519Identity, parse_identity_file
from tensorseal.keys.x25519 import generate_identity as generate_x25519
from tensorseal.keys.xwing import (
    XWING_STANZA,
    decode_identity,
    decode_recipient,
    format_identity_file,
    generate_identity,
    public_key_of,
    xwing_tag,
)

FIXTURE = REPO / "test" / "fixtures" / "xwing" / "draft-connolly-cfrg-xwing-kem-10-appendix-c.txt"


def published_vectors() -> list[dict[str, bytes]]:
    out: list[dict[str, str]] = []
    key = ""
    for line in FIXTURE.read_text().split("\n"):
        if not line.strip():
            continue
        if line.startswith(" "):
            out[-1][key] += line.strip()
            continue
        parts = line.split()
        key = parts[0]
        if key == "seed":
            out.append({})
        out[-1][key] = parts[1] if len(parts) > 1 else ""
    return [{k: bytes.fromhex(v) for k, v in d.items()} for d in out]


@pytest.mark.parametrize("i", range(3))
def test_seed_expansion_matches_published_vector(i: int) -> None:
    # pyca builds the hybrid key from its halves: our SHAKE256 expansion of the seed must give the
    # draft's public key (the KEM itself is pyca's; encap/decap are checked by the TS suite
    # against the same vectors and by the cross-language files below).
    v = published_vectors()[i]
    assert public_key_of(v["seed"]) == v["pk"]
    assert XWingIdentity(v["seed"]).recipient.id == bech32.encode("tseal1pq", v["pk"])


def test_round_trip_and_field_sizes() -> None:
    secret, public = generate_identity()
    fk = os.urandom(32)
    s = XWingRecipient(public).wrap(fk)
    assert s.type == XWING_STANZA and [len(f) for f in s.fields] == [16, 1120, 48]
    assert s.fields[0] == xwing_tag(decode_recipient(public))
    assert XWingIdentity(secret).unwrap(s) == fk


def test_other_identity_and_other_types_are_not_mine() -> None:
    a, b = generate_identity(), generate_identity()
    s = XWingRecipient(a[1]).wrap(os.urandom(32))
    assert XWingIdentity(b[0]).unwrap(s) is None
    assert X25519Identity(generate_x25519()[0]).unwrap(s) is None
    assert XWingIdentity(a[0]).unwrap(Stanza("x25519", (b"\0" * 16, b"\0" * 32, b"\0" * 48))) is None


def _flip(s: Stanza, field: int, byte: int) -> Stanza:
    fields = [bytearray(f) for f in s.fields]
    fields[field][byte] ^= 1
    return Stanza(s.type, tuple(bytes(f) for f in fields))


@pytest.mark.parametrize(("field", "byte"), [(1, 0), (1, 700), (1, 1088), (1, 1119), (2, 0), (2, 47)])
def test_tampered_enc_or_ct_is_e_decrypt(field: int, byte: int) -> None:
    secret, public = generate_identity()
    s = XWingRecipient(public).wrap(os.urandom(32))
    with pytest.raises(TensorSealError) as e:
        XWingIdentity(secret).unwrap(_flip(s, field, byte))
    assert e.value.code == "E_DECRYPT"


def test_tampered_tag_is_not_mine_and_retagging_fails() -> None:
    a, b = generate_identity(), generate_identity()
    s = XWingRecipient(a[1]).wrap(os.urandom(32))
    assert XWingIdentity(a[0]).unwrap(_flip(s, 0, 0)) is None
    retagged = Stanza(s.type, (xwing_tag(decode_recipient(b[1])), s.fields[1], s.fields[2]))
    with pytest.raises(TensorSealError) as e:
        XWingIdentity(b[0]).unwrap(retagged)
    assert e.value.code == "E_DECRYPT"


BAD_SIZES = [(16, 1120), (16, 1120, 48, 0), (15, 1120, 48), (16, 1119, 48), (16, 1121, 48), (16, 32, 48), (16, 1120, 47)]


@pytest.mark.parametrize("sizes", BAD_SIZES)
def test_wrong_field_counts_and_lengths_are_malformed(sizes: tuple[int, ...]) -> None:
    secret, _ = generate_identity()
    with pytest.raises(TensorSealError) as e:
        XWingIdentity(secret).unwrap(Stanza(XWING_STANZA, tuple(b"\0" * n for n in sizes)))
    assert e.value.code == "E_MALFORMED"


def test_bad_key_strings_are_e_key_and_never_echoed() -> None:
    secret, public = generate_identity()
    pk, sk = decode_recipient(public), decode_identity(secret)
    bad_recipients = [
        bech32.encode("tseal1pq", pk[:1215]),
        bech32.encode("tseal1pq", pk + b"\0"),
        bech32.encode("tseal1pq", pk[:32]),
        public[:-1],
        public[:50].upper() + public[50:],
    ]
    for s in bad_recipients:
        with pytest.raises(TensorSealError) as e:
            XWingRecipient(s)
        assert e.value.code == "E_KEY"
    for s in [bech32.encode("tseal-secret-key-pq-", sk[:31]).upper(), bech32.encode("tseal-secret-key-", sk).upper()]:
        with pytest.raises(TensorSealError) as e:
            XWingIdentity(s)
        assert e.value.code == "E_KEY" and s[22:40] not in str(e.value)
    with pytest.raises(TensorSealError) as e:
        parse_recipient(secret)
    assert e.value.code == "E_USAGE" and secret[21:] not in str(e.value)


def test_invalid_mlkem_public_key_is_refused() -> None:
    _, public = generate_identity()
    pk = bytearray(decode_recipient(public))
    pk[:384] = b"\xff" * 384  # coefficients >= q: fails FIPS 203's encapsulation key check
    with pytest.raises(TensorSealError) as e:
        XWingRecipient(bytes(pk))
    assert e.value.code == "E_KEY"


def test_identity_file_with_both_kinds() -> None:
    secret, public = generate_identity()
    x = generate_x25519()
    ids = parse_identity_file(format_identity_file(secret) + x[0] + "\n")
    assert len(ids) == 2
    data = seal_bytes(b"weights", [parse_recipient(public)])
    assert open_bytes(data, ids[:1]) == b"weights"
    with pytest.raises(TensorSealError) as e:
        parse_identity_file("# c\n" + secret[:-1] + "\n")
    assert e.value.code == "E_KEY" and "line 2" in str(e.value) and secret[21:40] not in str(e.value)


def test_ts_and_python_open_each_others_pq_files(tmp_path: Path) -> None:
    env = {"TENSORSEAL_HOME": str(tmp_path / "home")}
    p = run_cli(["keygen", "--pq", "-o", str(tmp_path / "pq.txt")], env)
    recipient = next(w for w in (p.stdout + p.stderr).split() if w.startswith("tseal1pq1"))
    ids = read_identity_file(tmp_path / "pq.txt")
    assert ids[0].recipient.id == recipient
    data = os.urandom(100_000)
    (tmp_path / "py.tseal").write_bytes(seal_bytes(data, [parse_recipient(recipient)]))
    run_cli(["open", str(tmp_path / "py.tseal"), "-o", str(tmp_path / "py.out"), "-i", str(tmp_path / "pq.txt")], env)
    assert (tmp_path / "py.out").read_bytes() == data
    (tmp_path / "plain").write_bytes(data[:777])
    run_cli(["seal", str(tmp_path / "plain"), "-r", recipient, "-o", str(tmp_path / "ts.tseal")], env)
    assert open_file(tmp_path / "ts.tseal", ids) == data[:777]
    with pytest.raises(TensorSealError) as e:
        open_file(tmp_path / "ts.tseal", [XWingIdentity(generate_identity()[0])])
    assert e.value.code == "E_NO_IDENTITY"
