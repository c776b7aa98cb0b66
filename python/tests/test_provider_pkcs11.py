"""The PKCS#11 provider against a real SoftHSM2 token (python-pkcs11): wrap and unwrap in the
token, the allow-list refusals, the failure modes, and files sealed by the TS CLI to a
``pkcs11:`` recipient opening here and the other way round (the CLI from dist/: build first)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from softhsm import PIN, softhsm_token
from tensorseal import TensorSealError, X25519Identity, generate_identity, open_bytes, parse_recipient, read_header, seal_bytes
from tensorseal.format.stanza import Stanza
from tensorseal.keys.pkcs11 import Pkcs11Provider, parse_pkcs11_key_ref, pkcs11_aad
from tensorseal.keys.provider import ProviderAllowList, parse_kms_stanza, provider_identities
from tensorseal.keys.provider_allow import ProviderAllowList as PAL

TOKEN = "py-token"
DATA = os.urandom(200_000)


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("hsm")
    with softhsm_token(d, TOKEN) as env:
        # One key made by the TS CLI (`hsm create-key`), one by this package: both kinds must
        # serve both sides.
        r = run_cli(["hsm", "create-key", f"{TOKEN}/ts-made"], {**env, "TENSORSEAL_HOME": str(d / "home")})
        assert r.stdout.strip() == f"pkcs11:{TOKEN}/ts-made"
        p = Pkcs11Provider(env["TENSORSEAL_PKCS11_MODULE"], lambda: PIN)
        assert p.generate_key(f"{TOKEN}/py-made") == f"{TOKEN}/py-made"
        yield {"dir": d, "env": env, "provider": p}


def kms_stanza(blob: bytes) -> Stanza:
    h = read_header(io.BytesIO(blob))
    (s,) = [s for s in h.stanzas if s.type == "kms"]
    return s


def test_seal_and_open_in_the_token(hsm: Any) -> None:
    blob = seal_bytes(DATA, [parse_recipient(f"pkcs11:{TOKEN}/py-made")])
    s = kms_stanza(blob)
    k = parse_kms_stanza(s)
    assert (k.provider, k.key_ref, len(k.params[0]), len(k.wrapped)) == ("pkcs11", f"{TOKEN}/py-made", 12, 48)
    assert open_bytes(blob, provider_identities(ProviderAllowList(pkcs11=[TOKEN]))) == DATA
    assert open_bytes(blob, provider_identities({"pkcs11": [f"{TOKEN}/py-made"]})) == DATA


def test_the_key_stays_in_the_token(hsm: Any) -> None:
    import pkcs11

    lib = pkcs11.lib(hsm["env"]["TENSORSEAL_PKCS11_MODULE"])
    with lib.get_token(token_label=TOKEN).open(user_pin=PIN) as s:
        key = s.get_key(label="py-made", object_class=pkcs11.ObjectClass.SECRET_KEY)
        assert key[pkcs11.Attribute.SENSITIVE] and not key[pkcs11.Attribute.EXTRACTABLE] and key[pkcs11.Attribute.TOKEN]
        with pytest.raises(pkcs11.AttributeSensitive):
            key[pkcs11.Attribute.VALUE]


def test_the_aad_binds_the_key_reference(hsm: Any) -> None:
    assert pkcs11_aad("t/k") == b"tensorseal.dev/v1 kms pkcs11\0\x00\x03t/k"
    assert parse_pkcs11_key_ref("t/a/b").label == "a/b"
    with pytest.raises(TensorSealError) as e:
        parse_pkcs11_key_ref("no-slash")
    assert e.value.code == "E_USAGE"


def test_a_key_not_allowed_is_refused_without_a_session(hsm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = seal_bytes(DATA, [parse_recipient(f"pkcs11:{TOKEN}/py-made")])
    # No PIN at all: had a session been opened, the error would be the missing PIN.
    monkeypatch.delenv("TENSORSEAL_PKCS11_PIN")
    for allow in ([], ["other-token"], [f"{TOKEN}/ts-made"]):
        with pytest.raises(TensorSealError) as e:
            open_bytes(blob, provider_identities(PAL(pkcs11=allow)))
        assert e.value.code == "E_KEY_STATE", e.value.message
        assert "is not allowed, so no session was opened" in e.value.message


def test_an_unlisted_key_is_skipped_when_another_stanza_opens(hsm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = generate_identity()
    blob = seal_bytes(DATA, [parse_recipient(f"pkcs11:{TOKEN}/py-made"), parse_recipient(public)])
    monkeypatch.delenv("TENSORSEAL_PKCS11_PIN")
    assert open_bytes(blob, [*provider_identities(PAL()), X25519Identity(secret)]) == DATA


def test_a_modified_stanza_does_not_open(hsm: Any) -> None:
    p: Pkcs11Provider = hsm["provider"]
    s = p.wrap(bytes(range(32)), f"{TOKEN}/py-made")
    assert p.unwrap(s) == bytes(range(32))
    iv = bytearray(s.fields[2])
    iv[0] ^= 1
    for bad in (Stanza("kms", (s.fields[0], s.fields[1], bytes(iv), s.fields[3])),
                Stanza("kms", (s.fields[0], f"{TOKEN}/ts-made".encode(), s.fields[2], s.fields[3]))):  # fmt: skip
        with pytest.raises(TensorSealError) as e:
            p.unwrap(bad)
        assert e.value.code == "E_DECRYPT", e.value.message
    with pytest.raises(TensorSealError) as e:
        p.unwrap(Stanza("kms", (s.fields[0], s.fields[1], s.fields[2][:11], s.fields[3])))
    assert e.value.code == "E_MALFORMED"


@pytest.mark.parametrize(("change", "message"), [
    ({"pin": "0000"}, r"cannot log in to token py-token: wrong PIN .*CKR_PIN_INCORRECT"),
    ({"ref": "nope/k"}, r"no token labelled .nope. in .* \(tokens present: .py-token."),
    ({"ref": f"{TOKEN}/gone"}, r"no AES key labelled .gone. in token py-token"),
    ({"module": "/nonexistent/libp11.so"}, r"cannot load PKCS#11 module /nonexistent/libp11.so"),
])  # fmt: skip
def test_provider_failures_name_the_cause_never_the_pin(hsm: Any, change: dict[str, str], message: str) -> None:
    pin = change.get("pin", PIN)
    p = Pkcs11Provider(change.get("module", hsm["env"]["TENSORSEAL_PKCS11_MODULE"]), lambda: pin)
    with pytest.raises(TensorSealError) as e:
        p.wrap(bytes(32), change.get("ref", f"{TOKEN}/py-made"))
    assert e.value.code == "E_PROVIDER"
    assert re.search(message, e.value.message), e.value.message
    assert pin not in e.value.message


def test_no_pin_configured(hsm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorseal.keys.pkcs11 import pin_from_env

    with pytest.raises(TensorSealError) as e:
        pin_from_env({})
    assert e.value.code == "E_PROVIDER" and "no PIN" in e.value.message
    f = hsm["dir"] / "pin.txt"
    f.write_text(PIN + "\r\nsecond line\n")
    assert pin_from_env({"TENSORSEAL_PKCS11_PIN_FILE": str(f)}) == PIN


def cli_env(hsm: Any, home: Path) -> dict[str, str]:
    return {**hsm["env"], "TENSORSEAL_HOME": str(home), "TENSORSEAL_PKCS11_TOKENS": TOKEN}


@pytest.mark.parametrize("key", ["ts-made", "py-made"])
def test_sealed_by_the_cli_opens_here(hsm: Any, tmp_path: Path, key: str) -> None:
    (tmp_path / "w.bin").write_bytes(DATA)
    run_cli(["seal", str(tmp_path / "w.bin"), "-o", str(tmp_path / "w.tseal"), "-r", f"pkcs11:{TOKEN}/{key}"], cli_env(hsm, tmp_path / "home"))
    blob = (tmp_path / "w.tseal").read_bytes()
    assert parse_kms_stanza(kms_stanza(blob)).key_ref == f"{TOKEN}/{key}"
    assert open_bytes(blob, provider_identities(PAL(pkcs11=[TOKEN]))) == DATA


@pytest.mark.parametrize("key", ["ts-made", "py-made"])
def test_sealed_here_opens_in_the_cli(hsm: Any, tmp_path: Path, key: str) -> None:
    (tmp_path / "w.tseal").write_bytes(seal_bytes(DATA, [parse_recipient(f"pkcs11:{TOKEN}/{key}")]))
    env = cli_env(hsm, tmp_path / "home")
    run_cli(["open", str(tmp_path / "w.tseal"), "-o", str(tmp_path / "w.out")], env)
    assert (tmp_path / "w.out").read_bytes() == DATA
    # The CLI applies the same refusal: without the token on its list it opens no session.
    del env["TENSORSEAL_PKCS11_TOKENS"]
    p = run_cli(["open", str(tmp_path / "w.tseal"), "-o", str(tmp_path / "w2.out")], env, check=False)
    assert p.returncode == 9 and "is not allowed" in p.stderr, p.stderr
    assert not (tmp_path / "w2.out").exists()
