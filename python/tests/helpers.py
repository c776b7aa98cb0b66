"""Shared test helpers: repository paths, vector specs to keys, mutations, the TS CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tensorseal.errors import fail
from tensorseal.format.header import _read_slot, encode_slot, parse_prefix
from tensorseal.format.stanza import Identity, Stanza
from tensorseal.keys.kek import KekIdentity, wrap_kek
from tensorseal.keys.passphrase import PassphraseIdentity, PassphraseRecipient
from tensorseal.keys.x25519 import X25519Identity, decode_recipient, public_key_of, x25519_tag
from tensorseal.keys.xwing import XWingIdentity, xwing_tag
from tensorseal.keys.xwing import decode_recipient as decode_pq_recipient

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "spec" / "vectors"
WYCHEPROOF = REPO / "test" / "fixtures" / "wycheproof"
# What users run: package.json's "bin" (the bundled CLI, scripts/build-cli.mjs).
CLI = REPO / json.loads((REPO / "package.json").read_text(encoding="utf-8"))["bin"]["tensorseal"]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def mod251(n: int) -> bytes:
    return bytes(i % 251 for i in range(251)) * (n // 251) + bytes(range(n % 251))


def identity(spec: dict[str, Any]) -> Identity:
    t = spec["type"]
    if t == "kek":
        return KekIdentity.single(spec["name"], spec["version"], bytes.fromhex(spec["kek"]))
    if t == "keystore":
        return KekIdentity(_keystore_lookup(spec["versions"]), "keystore")
    if t == "passphrase":
        return PassphraseIdentity(spec["passphrase"])
    if t == "x25519":
        return X25519Identity(spec["identity"])
    if t == "mlkem768x25519":
        return XWingIdentity(spec["identity"])
    raise AssertionError(f"unknown identity type {t}")


def _keystore_lookup(versions: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """As the keystore: listed versions unwrap when enabled and refuse (E_KEY_STATE) otherwise;
    versions it does not list are "not mine"."""
    held = {(v["name"], v["version"]): v for v in versions}

    def lookup(name: str, version: int) -> bytes | None:
        v = held.get((name, version))
        if v is None:
            return None
        if v["state"] != "enabled":
            fail("E_KEY_STATE", f"version {version} of key {name} is {v['state']}")
        return bytes.fromhex(v["kek"])

    return lookup


def stanza(spec: dict[str, Any], file_key: bytes, recorded: list[Stanza]) -> Stanza:
    """Rebuilds a recorded stanza from its spec. x25519: pyca's HPKE takes no fixed ephemeral
    key, so the recorded stanza is reused after checking its tag and that enc is the public
    key of the recorded ephemeral private key (ct is checked by opening the file).
    mlkem768x25519: likewise (pyca has no derandomized X-Wing encapsulation); the X25519 half of
    enc must be the public key of the eseed's last 32 bytes, the rest is checked by opening."""
    t = spec["type"]
    if t == "kek":
        return wrap_kek(spec["name"], spec["version"], bytes.fromhex(spec["kek"]), file_key, bytes.fromhex(spec["nonce"]))
    if t == "passphrase":
        r = PassphraseRecipient(spec["passphrase"], work_factor=spec["logN"], salt=bytes.fromhex(spec["salt"]))
        return r.wrap(file_key)
    if t == "raw":
        return Stanza(spec["stanzaType"], tuple(bytes.fromhex(f) for f in spec["fields"]))
    if t == "public":
        from tensorseal.format.public import public_stanza

        return public_stanza(file_key)
    if t == "x25519":
        tag = x25519_tag(decode_recipient(spec["recipient"]))
        enc = public_key_of(bytes.fromhex(spec["ephemeralPrivateKey"]))
        matches = [s for s in recorded if s.type == "x25519" and s.fields[0] == tag]
        assert len(matches) == 1, "recorded x25519 stanza not found"
        assert matches[0].fields[1] == enc, "enc must be the ephemeral public key"
        return matches[0]
    if t == "mlkem768x25519":
        tag = xwing_tag(decode_pq_recipient(spec["recipient"]))
        matches = [s for s in recorded if s.type == "mlkem768x25519" and s.fields[0] == tag]
        assert len(matches) == 1, "recorded mlkem768x25519 stanza not found"
        assert matches[0].fields[1][1088:] == public_key_of(bytes.fromhex(spec["eseed"])[32:])
        return matches[0]
    raise AssertionError(f"unknown recipient type {t}")


def slot_stanzas(header: bytes) -> list[Stanza]:
    """Stanzas of every intact slot of a header (for reusing recorded x25519 stanzas)."""
    p = parse_prefix(header)
    out: list[Stanza] = []
    for i in (0, 1):
        at = p.slot_offset(i)
        state = _read_slot(header[at : at + p.slot_capacity], i)
        out.extend(state[2])
    return out


def rewrap(file: bytes, file_key: bytes, spec: dict[str, Any], stanzas: list[Stanza]) -> bytes:
    """Writes the rewrap slot as the generator does."""
    p = parse_prefix(file)
    prefix = file[:20]
    descriptor = file[20 : 20 + p.descriptor_length]
    slot = encode_slot(file_key, prefix, descriptor, spec["generation"], stanzas, p.slot_capacity)
    out = bytearray(file)
    at = p.slot_offset(spec["slot"])
    out[at : at + p.slot_capacity] = slot
    if not spec["keepOldSlot"]:
        old = p.slot_offset(1 - spec["slot"])
        out[old : old + p.slot_capacity] = bytes(p.slot_capacity)
    return bytes(out)


def fix_checksum(file: bytearray, slot: int) -> None:
    p = parse_prefix(bytes(file))
    at = p.slot_offset(slot)
    n = int.from_bytes(file[at : at + 4], "big")
    end = at + 4 + n + 32
    file[end : end + 32] = hashlib.sha256(bytes(file[at:end])).digest()


def mutate(file: bytes, mutations: list[dict[str, Any]]) -> bytes:
    out = bytearray(file)
    for m in mutations:
        k = m["kind"]
        if k == "flip-bit":
            out[m["offset"]] ^= 1 << m["bit"]
        elif k == "set-byte":
            out[m["offset"]] = m["value"]
        elif k == "truncate":
            del out[m["length"] :]
        elif k == "append":
            out += bytes.fromhex(m["hex"])
        elif k == "copy":
            out[m["to"] : m["to"] + m["length"]] = out[m["from"] : m["from"] + m["length"]]
        else:
            raise AssertionError(f"unknown mutation {k}")
        if "fixSlotChecksum" in m:
            fix_checksum(out, m["fixSlotChecksum"])
    return bytes(out)


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node is not installed: the cross-language tests need Node.js and the built TS CLI")
    return exe


def require_cli() -> Path:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `npm run build` (or `npx tsc -p .`) in {REPO} first")
    return CLI


def run_cli(
    args: list[str], env: dict[str, str], check: bool = True, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    exe = node()
    cli = require_cli()
    full_env = {**os.environ, **env}
    p = subprocess.run([exe, str(cli), *args], env=full_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"tensorseal {' '.join(args[:1])} failed ({p.returncode}): {p.stderr}")
    return p


def ts_keystore(d: Path, root_key: bytes) -> dict[str, Any]:
    """A keystore created by the TS CLI (``init``: key ``default``, version 1) in ``d/home``, its
    root key file ``d/root.hex``: ``{"dir", "home", "root", "env"}``, ``env`` for run_cli."""
    root = d / "root.hex"
    root.write_text(root_key.hex() + "\n")
    home = d / "home"
    env = {"TENSORSEAL_HOME": str(home), "TENSORSEAL_ROOT_KEY_FILE": str(root)}
    run_cli(["init"], env)
    return {"dir": d, "home": home, "root": root, "env": env}
