"""torch.distributed.checkpoint with sealed storage. Skipped when torch is missing, unless
TENSORSEAL_REQUIRE_ALL=1 (then a missing torch fails the run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
    import torch  # a missing torch must fail the run
else:
    torch = pytest.importorskip("torch")

import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException

import tensorseal.dcp as tsdcp
from tensorseal import KekIdentity, KekRecipient, SealedFile, TensorSealError, X25519Identity, generate_identity
from tensorseal.dcp import SealedFileSystemReader, SealedFileSystemWriter
from tensorseal.format.header import MAGIC

KEK = os.urandom(32)
R, I = KekRecipient("default", 1, KEK), KekIdentity.single("default", 1, KEK)


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(300, 64)
        self.fc = torch.nn.Linear(64, 96)
        self.head = torch.nn.Linear(96, 10).to(torch.bfloat16)
        self.norm = torch.nn.LayerNorm(96)


def state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = {k: v.detach().clone() for k, v in Net().state_dict().items()}
    # A marker no other byte string in the checkpoint should contain by chance.
    sd["marker"] = torch.frombuffer(bytearray(os.urandom(4096)), dtype=torch.uint8).clone()
    sd["step"] = torch.tensor(1234, dtype=torch.int64)
    return sd


def zeros_like(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.zeros_like(v) for k, v in sd.items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def save(sd: dict[str, torch.Tensor], path: Path, **kw: object) -> None:
    dcp.save(sd, storage_writer=SealedFileSystemWriter(path, recipients=[R], **kw))  # type: ignore[arg-type]


def failure(e: CheckpointException) -> BaseException:
    (exc, _trace), *_ = e.failures.values()
    return exc


def test_round_trip_with_bf16(tmp_path: Path) -> None:
    sd = state(0)
    assert sd["head.weight"].dtype == torch.bfloat16
    save(sd, tmp_path / "ckpt")
    got = zeros_like(sd)
    dcp.load(got, storage_reader=SealedFileSystemReader(tmp_path / "ckpt", identities=[I]))
    assert same(got, sd)


def test_every_file_is_sealed_and_holds_no_plaintext(tmp_path: Path) -> None:
    sd = state(1)
    # Several files per rank and small chunks, so tensors straddle chunk boundaries.
    save(sd, tmp_path / "ckpt", single_file_per_rank=False, chunk_size=16384)
    files = sorted(p for p in (tmp_path / "ckpt").rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert ".metadata" in names and any(n.endswith(".distcp") for n in names)
    assert not any(n.endswith(".tmp") for n in names)
    marker = sd["marker"].numpy().tobytes()
    weights = sd["fc.weight"].numpy().tobytes()
    for p in files:
        data = p.read_bytes()
        assert data.startswith(MAGIC), p.name
        assert marker[:64] not in data and marker[-64:] not in data, p.name
        assert weights[:64] not in data, p.name
        assert b"fc.weight" not in data and b"marker" not in data, p.name  # names are secret too
    got = zeros_like(sd)
    dcp.load(got, storage_reader=SealedFileSystemReader(tmp_path / "ckpt", identities=[I]))
    assert same(got, sd)


def test_tampered_shard_fails_with_e_decrypt(tmp_path: Path) -> None:
    sd = state(2)
    save(sd, tmp_path / "ckpt")
    (shard,) = sorted((tmp_path / "ckpt").glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    with SealedFile(shard, [I]) as sf:
        at = sf.header.header_length + 100  # inside the first chunk's ciphertext
    data[at] ^= 0x20
    shard.write_bytes(bytes(data))
    got = zeros_like(sd)
    with pytest.raises(CheckpointException) as e:
        dcp.load(got, storage_reader=SealedFileSystemReader(tmp_path / "ckpt", identities=[I]))
    err = failure(e.value)
    assert isinstance(err, TensorSealError) and err.code == "E_DECRYPT"
    assert err.file == str(shard) and str(shard) in str(err)
    with pytest.raises(TensorSealError) as e2:  # the convenience wrapper unwraps it
        tsdcp.load(got, tmp_path / "ckpt", identities=[I])
    assert e2.value.code == "E_DECRYPT" and e2.value.file == str(shard)


def test_wrong_identity_fails(tmp_path: Path) -> None:
    sd = state(3)
    save(sd, tmp_path / "ckpt")
    other = KekIdentity.single("default", 1, os.urandom(32))
    with pytest.raises(CheckpointException) as e:
        dcp.load(zeros_like(sd), storage_reader=SealedFileSystemReader(tmp_path / "ckpt", identities=[other]))
    # DCP reports a metadata failure as text; the code and the file are in it.
    assert f"E_DECRYPT: {tmp_path / 'ckpt' / '.metadata'}: kek stanza" in str(failure(e.value))
    with pytest.raises(TensorSealError) as e2:
        tsdcp.load(zeros_like(sd), tmp_path / "ckpt", identities=[other])
    assert e2.value.code == "E_DECRYPT"
    with pytest.raises(TensorSealError) as e2:
        tsdcp.load(zeros_like(sd), tmp_path / "ckpt", identities=[X25519Identity(generate_identity()[0])])
    assert e2.value.code == "E_NO_IDENTITY"


def test_x25519_and_helpers_round_trip(tmp_path: Path) -> None:
    secret, public = generate_identity()
    ident = X25519Identity(secret)
    sd = state(4)
    tsdcp.save(sd, tmp_path / "ckpt", recipients=[ident.recipient], chunk_size=16384)
    got = zeros_like(sd)
    tsdcp.load(got, tmp_path / "ckpt", identities=ident)
    assert same(got, sd)


def test_swapped_shards_across_checkpoints_are_refused(tmp_path: Path) -> None:
    a, b = state(5), state(6)
    save(a, tmp_path / "a")
    save(b, tmp_path / "b")
    (sa,) = (tmp_path / "a").glob("*.distcp")
    shutil.copyfile(tmp_path / "b" / sa.name, sa)  # same name, same key, another save
    with pytest.raises(TensorSealError) as e:
        tsdcp.load(zeros_like(a), tmp_path / "a", identities=[I])
    assert "dcp.save_id" in str(e.value)


def test_failed_save_leaves_no_plaintext_and_no_temp(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    sd = state(7)

    class Planner(dcp.DefaultSavePlanner):
        def resolve_data(self, write_item):  # type: ignore[no-untyped-def]
            if write_item.index.fqn == "norm.bias":
                raise Boom()
            return super().resolve_data(write_item)

    with pytest.raises(CheckpointException):
        dcp.save(sd, storage_writer=SealedFileSystemWriter(tmp_path / "ckpt", recipients=[R]), planner=Planner())
    leftover = [p.name for p in (tmp_path / "ckpt").iterdir()]
    assert leftover == [], leftover


def test_needs_keys() -> None:
    with pytest.raises(TensorSealError) as e:
        SealedFileSystemWriter("x", recipients=[])
    assert e.value.code == "E_USAGE"
    with pytest.raises(TensorSealError) as e:
        SealedFileSystemReader("x", identities=[])
    assert e.value.code == "E_NO_IDENTITY"


def test_read_stream_matches_plaintext_and_decrypts_only_what_it_reads(tmp_path: Path) -> None:
    import io
    import random

    from tensorseal import seal_bytes
    from tensorseal.dcp import _SealedReadStream

    plain = os.urandom(300_000)
    c = 16384
    (tmp_path / "f.tseal").write_bytes(seal_bytes(plain, [R], chunk_size=c))
    with SealedFile(tmp_path / "f.tseal", [I]) as sf:
        s, ref = _SealedReadStream(sf), io.BytesIO(plain)
        rnd = random.Random(0)
        for _ in range(300):
            at = rnd.randrange(0, len(plain) + 10)
            n = rnd.choice([1, 7, 100, c - 1, c, c + 1, 3 * c + 5, -1])
            assert s.seek(at) == ref.seek(at)
            if rnd.random() < 0.5:
                assert s.read(n) == ref.read(n)
            else:
                b1, b2 = bytearray(max(n, 0)), bytearray(max(n, 0))
                assert s.readinto(b1) == ref.readinto(b2) and b1 == b2
            assert s.tell() == ref.tell()
        assert s.seek(-5, os.SEEK_END) == len(plain) - 5 and s.read() == plain[-5:]
    with SealedFile(tmp_path / "f.tseal", [I]) as sf:
        s = _SealedReadStream(sf)
        base = sf.decrypted_bytes  # the final chunk, opened to authenticate the length
        s.seek(5 * c + 123)
        assert s.read(4 * c) == plain[5 * c + 123 : 9 * c + 123]
        assert sf.decrypted_bytes - base <= 4 * c + 2 * c
        for i in range(100):  # small reads inside one chunk decrypt it once
            s.seek(20 * c + i * 10)
            s.read(10)
        assert sf.decrypted_bytes - base <= 7 * c
