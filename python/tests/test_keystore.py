"""Keystore reading (spec/KEYSTORE.md) on documents built here, version 1 and version 2 with
lifecycle states; the CLI-written keystore is covered by test_cross_language.py."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tensorseal import Keystore, TensorSealError, open_bytes, seal_bytes
from tensorseal.keys.keystore_doc import compute_mac as _mac

ROOT = bytes(range(32))
B64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
WHEN = "2026-01-01T00:00:00.000Z"


def sealed_version(name: str, version: int, kek: bytes, state: str | None) -> dict[str, Any]:
    nonce = os.urandom(12)
    aad = b"tensorseal.dev/v1 keystore kek\x00" + name.encode() + version.to_bytes(4, "big")
    v: dict[str, Any] = {"version": version, "created": WHEN, "nonce": B64(nonce), "material": B64(AESGCM(ROOT).encrypt(nonce, kek, aad))}
    if state is not None:
        v.update(state=state, wraps=3)
        if state == "scheduled_for_destruction":
            v["destroy_after"] = WHEN
        if state == "destroyed":
            del v["nonce"], v["material"]
            v["destroyed"] = WHEN
    return v


def write(home: Path, doc: dict[str, Any], *, mac: bool = True) -> None:
    home.mkdir(exist_ok=True)
    if mac:
        doc = {**{k: v for k, v in doc.items() if k != "mac"}}
        doc["mac"] = B64(_mac(ROOT, doc))  # type: ignore[arg-type]
    (home / "keystore.json").write_text(json.dumps(doc, indent=2))


def key_file(tmp_path: Path) -> Path:
    p = tmp_path / "root.hex"
    p.write_text(ROOT.hex() + "\n")
    return p


def check() -> str:
    h = chmac.HMAC(ROOT, hashes.SHA256())
    h.update(b"tensorseal.dev/v1 keystore check")
    return B64(h.finalize())


def doc_v2(states: list[str], primary: int, min_dec: int = 1) -> tuple[dict[str, Any], list[bytes]]:
    keks = [os.urandom(32) for _ in states]
    versions = [sealed_version("m", i + 1, keks[i], s) for i, s in enumerate(states)]
    key = {"name": "m", "created": WHEN, "primary": primary, "min_decryption_version": min_dec, "min_encryption_version": 1, "versions": versions}
    return {"format": "tensorseal-keystore", "version": 2, "id": "ab" * 16, "root": {"kind": "key-file", "check": check()}, "keys": [key]}, keks


def test_v1_document(tmp_path: Path) -> None:
    kek = os.urandom(32)
    doc = {"format": "tensorseal-keystore", "version": 1, "root": {"kind": "key-file", "check": check()},
           "keys": [{"name": "default", "created": WHEN, "primary": 1, "versions": [sealed_version("default", 1, kek, None)]}]}
    write(tmp_path / "h", doc)
    ks = Keystore.open(tmp_path / "h", root_key_file=key_file(tmp_path))
    sealed = seal_bytes(b"x", [ks.recipient()])
    assert open_bytes(sealed, [ks]) == b"x"


def test_v2_states(tmp_path: Path) -> None:
    doc, _ = doc_v2(["enabled", "disabled", "scheduled_for_destruction", "destroyed", "enabled", "enabled"], primary=6, min_dec=5)
    write(tmp_path / "h", doc)
    ks = Keystore.open(tmp_path / "h", root_key_file=key_file(tmp_path))
    assert ks.list_keys()[0].primary_version == 6
    from tensorseal.keys.kek import KekRecipient

    for version, code in [(1, "E_KEY_STATE"), (2, "E_KEY_STATE"), (3, "E_KEY_STATE"), (4, "E_KEY_STATE"), (5, None), (6, None)]:
        material = ks._materials.get(("m", version), bytes(32))
        sealed = seal_bytes(b"y", [KekRecipient("m", version, material)])
        if code is None:
            assert open_bytes(sealed, [ks]) == b"y"
        else:
            with pytest.raises(TensorSealError) as e:
                open_bytes(sealed, [ks])
            assert e.value.code == code
    assert ks.recipient("m").version == 6


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(extra=1),
        lambda d: d["keys"][0].update(primary=2),
        lambda d: d["keys"][0]["versions"][0].update(wraps=1.5),
        lambda d: d["keys"][0].update(name="bad name"),
        lambda d: d["keys"][0]["versions"][0].update(state="lost"),
        lambda d: d["keys"][0].update(tier="Top Secret"),
        lambda d: d["keys"][0].update(owner=""),
        lambda d: d["keys"][0].update(colour="red"),
    ],
)
def test_edits_are_refused(tmp_path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    doc, _ = doc_v2(["enabled"], primary=1)
    write(tmp_path / "h", doc)
    signed = json.loads((tmp_path / "h" / "keystore.json").read_text())
    edit(signed)
    write(tmp_path / "h", signed, mac=False)
    with pytest.raises(TensorSealError) as e:
        Keystore.open(tmp_path / "h", root_key_file=key_file(tmp_path))
    assert e.value.code == "E_KEYSTORE"
    # ... even when the MAC is recomputed (a structurally invalid document is "damaged")
    if not isinstance(signed["keys"][0]["versions"][0].get("wraps"), float):
        write(tmp_path / "h", signed)
        with pytest.raises(TensorSealError) as e:
            Keystore.open(tmp_path / "h", root_key_file=key_file(tmp_path))
        assert e.value.code == "E_KEYSTORE"


def test_passphrase_root_bounds_checked_before_scrypt(tmp_path: Path) -> None:
    for log_n, r in [(30, 8), (9, 8), (18, 16)]:
        doc = {"format": "tensorseal-keystore", "version": 2, "id": "00" * 16,
               "root": {"kind": "passphrase", "kdf": "scrypt", "logN": log_n, "r": r, "p": 1, "salt": B64(bytes(16)),
                        "nonce": B64(bytes(12)), "sealed": B64(bytes(48))}, "keys": [], "mac": B64(bytes(32))}
        write(tmp_path / "h", doc, mac=False)
        with pytest.raises(TensorSealError) as e:
            Keystore.open(tmp_path / "h", passphrase="pw")
        assert e.value.code == "E_UNSUPPORTED"


def test_unknown_version_and_junk(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    for text, code in [("{", "E_KEYSTORE"), ('{"format":"tensorseal-keystore","version":3}', "E_UNSUPPORTED"),
                       ('{"format":"x"}', "E_KEYSTORE"), ('{"a":1,"a":2}', "E_KEYSTORE"), ("NaN", "E_KEYSTORE")]:
        (home / "keystore.json").write_text(text)
        with pytest.raises(TensorSealError) as e:
            Keystore.open(home, root_key_file=key_file(tmp_path))
        assert e.value.code == code, text


def test_key_metadata_is_read(tmp_path: Path) -> None:
    """owner, purpose and tier (KEYSTORE.md, set by `keys set`) are optional and exposed."""
    doc, _ = doc_v2(["enabled"], primary=1)
    doc["keys"][0].update(owner="ml-platform@example.com", purpose="prod weights", tier="confidential")
    write(tmp_path / "h", doc)
    info = Keystore.open(tmp_path / "h", root_key_file=key_file(tmp_path)).list_keys()[0]
    assert (info.owner, info.purpose, info.tier) == ("ml-platform@example.com", "prod weights", "confidential")
    doc2, _ = doc_v2(["enabled"], primary=1)
    write(tmp_path / "h2", doc2)
    plain = Keystore.open(tmp_path / "h2", root_key_file=key_file(tmp_path)).list_keys()[0]
    assert (plain.owner, plain.purpose, plain.tier) == (None, None, None)
