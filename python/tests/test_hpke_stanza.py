"""tensorseal.keys.hpke_stanza, the part the x25519 and mlkem768x25519 stanzas share: the labels
it derives are the spec's, both recipients survive pickling (DataLoader workers get them that
way), and each identity opens its own stanzas, ignores the other KEM's and refuses a modified one."""

from __future__ import annotations

import pickle
import re

import pytest

from helpers import REPO
from tensorseal import TensorSealError
from tensorseal.format.stanza import Stanza
from tensorseal.keys import x25519, xwing

KEMS = [(x25519, x25519.X25519Recipient, x25519.X25519Identity), (xwing, xwing.XWingRecipient, xwing.XWingIdentity)]


@pytest.mark.parametrize(("mod", "_r", "_i"), KEMS)
def test_labels_are_the_specs(mod, _r, _i) -> None:  # type: ignore[no-untyped-def]
    spec = (REPO / "spec" / "FORMAT.md").read_text(encoding="utf-8")
    kem = mod._KEM
    tag = re.search(rf'^tag\s+= SHA-256\("(tensorseal\.dev/v1 {kem.stanza} tag)\\0"', spec, flags=re.M)
    info = re.search(rf'info = "(tensorseal\.dev/v1 {kem.stanza})\\0" \|\| tag', spec)
    assert tag is not None and info is not None, f"FORMAT.md no longer states the {kem.stanza} labels"
    assert kem.tag_label == tag.group(1).encode() + b"\x00"
    assert kem.info_label == info.group(1).encode() + b"\x00"


@pytest.mark.parametrize(("mod", "recipient_class", "identity_class"), KEMS)
def test_a_pickled_recipient_wraps_for_its_identity(mod, recipient_class, identity_class) -> None:  # type: ignore[no-untyped-def]
    secret, public = mod.generate_identity()
    r = pickle.loads(pickle.dumps(recipient_class(public)))
    file_key = bytes(range(32))
    s = r.wrap(file_key)
    assert s.type == mod._KEM.stanza and [len(f) for f in s.fields] == [16, mod._KEM.enc_size, 48]
    assert identity_class(secret).unwrap(s) == file_key
    assert identity_class(mod.generate_identity()[0]).unwrap(s) is None  # another key: not mine
    other = KEMS[1 - KEMS.index((mod, recipient_class, identity_class))]
    assert other[2](other[0].generate_identity()[0]).unwrap(s) is None  # another KEM's stanza
    bad = bytearray(s.fields[2])
    bad[0] ^= 1
    with pytest.raises(TensorSealError) as e:
        identity_class(secret).unwrap(Stanza(s.type, (s.fields[0], s.fields[1], bytes(bad))))
    assert e.value.code == "E_DECRYPT"
    assert secret not in str(e.value) and secret.lower() not in str(e.value)
