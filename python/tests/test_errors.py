"""Errors raised while reading a sealed file name the file (``e.file`` and the message) for every
cause — tampering, truncation, a wrong key, a malformed header — never hold a key byte or a
plaintext byte, escape untrusted strings, and pickle as themselves."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from helpers import fix_checksum
from tensorseal import (
    KekIdentity,
    KekRecipient,
    SealedFile,
    TensorSealError,
    open_bytes,
    open_file,
    read_header,
    seal_bytes,
)
from tensorseal.errors import DecryptError, error, printable
from tensorseal.format.header import parse_header
from tensorseal.safetensors import load_file, safe_open, save

KEK = bytes(range(100, 132))
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)
MARKER = b"PLAINTEXT-MARKER-7f3a" * 4
C = 16384


def sealed(plain: bytes) -> bytes:
    return seal_bytes(plain, [R], chunk_size=C)


def _tamper_chunk(f: bytearray) -> None:
    f[parse_header(bytes(f)).header_length + 56 + 10] ^= 1


def _header_mac(f: bytearray) -> None:
    h = parse_header(bytes(f))
    at = h.prefix.slot_offset(0) + 4 + len(h.body_bytes)
    f[at] ^= 1
    fix_checksum(f, 0)


def _unknown_flag(f: bytearray) -> None:
    f[20 + 3] |= 0x02  # descriptor flags


def _truncate(f: bytearray) -> None:
    del f[-1:]


def _append(f: bytearray) -> None:
    f += b"\x00"


def _commitment(f: bytearray) -> None:
    f[parse_header(bytes(f)).header_length + 24] ^= 1


def _magic(f: bytearray) -> None:
    f[1] ^= 1


def _cut_header(f: bytearray) -> None:
    del f[100:]


CASES: list[tuple[str, Callable[[bytearray], None], str]] = [
    ("chunk tampered", _tamper_chunk, "E_DECRYPT"),
    ("header MAC", _header_mac, "E_HEADER_MAC"),
    ("malformed descriptor", _unknown_flag, "E_MALFORMED"),
    ("truncated payload", _truncate, "E_TRUNCATED"),
    ("trailing byte", _append, "E_TRAILING"),
    ("commitment", _commitment, "E_COMMITMENT"),
    ("not a tseal file", _magic, "E_NOT_TSEAL"),
    ("truncated header", _cut_header, "E_TRUNCATED"),
]


def assert_names(e: TensorSealError, path: Path, code: str) -> None:
    assert e.code == code, str(e)
    assert e.file == str(path)
    text = str(e)
    assert text.startswith(f"{code}: {path}: "), text
    for secret in (KEK, KEK.hex().encode(), MARKER[:16]):
        assert secret.decode("latin-1") not in text and secret.decode("latin-1") not in repr(e)


@pytest.fixture()
def file(tmp_path: Path) -> tuple[Path, bytes]:
    plain = MARKER + os.urandom(3 * C)
    p = tmp_path / "dir with space" / "model.tseal"
    p.parent.mkdir()
    p.write_bytes(sealed(plain))
    return p, plain


@pytest.mark.parametrize("what,change,code", CASES, ids=[c[0] for c in CASES])
def test_open_file_and_sealed_file_name_the_file(file, what, change, code) -> None:  # type: ignore[no-untyped-def]
    path, _ = file
    data = bytearray(path.read_bytes())
    change(data)
    path.write_bytes(bytes(data))
    with pytest.raises(TensorSealError) as e:
        open_file(path, [I])
    assert_names(e.value, path, code)
    with pytest.raises(TensorSealError) as e:
        with SealedFile(path, [I]) as sf:
            sf.read_all()
    assert_names(e.value, path, code)
    # A file object opened from a path is named too.
    with open(path, "rb") as f, pytest.raises(TensorSealError) as e:
        with SealedFile(f, [I]) as sf:
            sf.read_all()
    assert_names(e.value, path, code)


def test_wrong_key_no_key_missing_file_and_header_only_reads_name_the_file(file) -> None:  # type: ignore[no-untyped-def]
    path, _ = file
    with pytest.raises(TensorSealError) as e:
        open_file(path, [KekIdentity.single("default", 1, bytes(32))])
    assert_names(e.value, path, "E_DECRYPT")
    with pytest.raises(TensorSealError) as e:
        open_file(path, [KekIdentity.single("other", 1, KEK)])
    assert_names(e.value, path, "E_NO_IDENTITY")
    with pytest.raises(TensorSealError) as e:
        open_file(path, [])
    assert_names(e.value, path, "E_NO_IDENTITY")
    with pytest.raises(TensorSealError) as e:
        SealedFile(path, [I], expect_context={"model": "m"})
    assert_names(e.value, path, "E_CONTEXT")  # not usage: genuine, but not the file expected
    missing = path.parent / "missing.tseal"
    with pytest.raises(TensorSealError) as e:
        open_file(missing, [I])
    assert_names(e.value, missing, "E_IO")
    data = bytearray(path.read_bytes())
    _unknown_flag(data)
    path.write_bytes(bytes(data))
    with open(path, "rb") as f, pytest.raises(TensorSealError) as e:
        read_header(f)
    assert_names(e.value, path, "E_MALFORMED")


def test_lazy_reads_name_the_file(file) -> None:  # type: ignore[no-untyped-def]
    path, _ = file
    data = bytearray(path.read_bytes())
    data[parse_header(bytes(data)).header_length + 56 + (C + 16) + 5] ^= 1  # chunk 1
    path.write_bytes(bytes(data))
    with SealedFile(path, [I]) as sf:  # opens: the header and the final chunk are intact
        with pytest.raises(TensorSealError) as e:
            sf.read_range(C, 10)
        assert_names(e.value, path, "E_DECRYPT")
        with pytest.raises(TensorSealError) as e:
            list(sf.iter_chunks())
        assert_names(e.value, path, "E_DECRYPT")


def test_in_memory_files_have_no_name() -> None:
    data = bytearray(sealed(MARKER))
    _tamper_chunk(data)
    with pytest.raises(TensorSealError) as e:
        open_bytes(bytes(data), [I])
    assert e.value.code == "E_DECRYPT" and e.value.file is None
    assert str(e.value).startswith("E_DECRYPT: chunk")


def test_safetensors_reads_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.tseal"
    path.write_bytes(save({"w": np.arange(20000, dtype=np.float32)}, recipients=[R], chunk_size=C))
    with safe_open(path, identities=[I]) as f:
        with pytest.raises(TensorSealError) as e:
            f.get_tensor("nope")
        assert e.value.code == "E_USAGE" and e.value.file == str(path)
    data = bytearray(path.read_bytes())
    data[parse_header(bytes(data)).header_length + 56 + (C + 16) + 5] ^= 1  # inside tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(TensorSealError) as e:
        load_file(path, identities=[I])
    assert_names(e.value, path, "E_DECRYPT")
    with safe_open(path, identities=[I]) as f, pytest.raises(TensorSealError) as e:
        f.get_tensor("w")
    assert_names(e.value, path, "E_DECRYPT")
    # A sealed file whose plaintext is not safetensors: malformed, named.
    bad = tmp_path / "bad.tseal"
    bad.write_bytes(seal_bytes(b"\xff" * 64, [R]))
    with pytest.raises(TensorSealError) as e:
        load_file(bad, identities=[I])
    assert e.value.code == "E_MALFORMED" and e.value.file == str(bad)


def test_errors_pickle_as_themselves() -> None:
    e = error("E_DECRYPT", "chunk 3 failed authentication").naming("/data/m.tseal")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is DecryptError and isinstance(back, TensorSealError)
    assert (back.code, back.message, back.file, str(back)) == (e.code, e.message, e.file, str(e))
    plain = pickle.loads(pickle.dumps(error("E_USAGE", "x")))
    assert plain.file is None and str(plain) == "E_USAGE: x"


def test_untrusted_strings_are_escaped(tmp_path: Path) -> None:
    hostile = "m\x1b[2J\u202e"
    r = KekRecipient(hostile, 1, KEK)
    d = tmp_path / "ckpt\x1b]0;x\x07"
    d.mkdir()
    path = d / "f.tseal"
    path.write_bytes(seal_bytes(b"x", [r]))
    with pytest.raises(TensorSealError) as e:
        open_file(path, [KekIdentity.single(hostile, 1, bytes(32))])
    text = str(e.value)
    assert e.value.code == "E_DECRYPT"
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, text
    assert "m\\x1b[2J\\u202e" in text and "ckpt\\x1b]0;x\\x07" in text
    assert printable("plain é") == "plain é"


def test_error_objects_hold_no_secret_in_their_state(file) -> None:  # type: ignore[no-untyped-def]
    path, _ = file
    with pytest.raises(TensorSealError) as e:
        open_file(path, [KekIdentity.single("default", 1, bytes(32))])
    state = pickle.dumps(e.value)
    assert KEK not in state and MARKER[:16] not in state
