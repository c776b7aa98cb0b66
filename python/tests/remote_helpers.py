"""Shared by the object-storage tests: a safetensors model sealed by the TS CLI, and byte
bounds of what a partial read may fetch."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file as save_plain

from helpers import run_cli
from tensorseal import X25519Identity, generate_identity
from tensorseal.format.chunked import PAYLOAD_PREFIX_SIZE, TAG_SIZE
from tensorseal.format.header import parse_header

SECRET, PUBLIC = generate_identity()
IDS = [X25519Identity(SECRET)]
CHUNK = 16384
SHARDS, PER_SHARD = 5, 7


def tensors(seed: int = 3) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    t = {f"layer.{i}.weight": g.standard_normal((64, 100 + 37 * i)).astype(np.float32) for i in range(8)}
    t["embed.weight"] = g.standard_normal((500, 64)).astype(np.float16)
    t["tiny"] = np.arange(5, dtype=np.int64)
    return t


def cli_seal(plain: Path, out: Path, home: Path, chunk: str = "16KiB") -> bytes:
    """Seals ``plain`` with the TS CLI to the test recipient; returns the sealed bytes."""
    run_cli(["seal", str(plain), "-o", str(out), "-r", PUBLIC, "--chunk-size", chunk, "-f"], {"TENSORSEAL_HOME": str(home)})
    return out.read_bytes()


def sealed_model(d: Path, seed: int = 3) -> tuple[dict[str, np.ndarray], bytes, bytes]:
    """(tensors, plaintext safetensors bytes, sealed bytes by the TS CLI)."""
    t = tensors(seed)
    plain = d / f"m{seed}.safetensors"
    save_plain(t, str(plain), {"format": "pt"})
    return t, plain.read_bytes(), cli_seal(plain, d / f"m{seed}.tseal", d / "home")


def open_overhead(sealed: bytes, plain: bytes, chunk: int = CHUNK) -> int:
    """Most bytes opening may fetch: the sealed header and payload prefix, the chunks holding
    the safetensors header, and the final chunk (opened first to authenticate the length)."""
    header = parse_header(sealed[: len(sealed)]).header_length
    st_end = 8 + int.from_bytes(plain[:8], "little")
    head_chunks = st_end // chunk + 1
    return header + PAYLOAD_PREFIX_SIZE + (head_chunks + 1) * (chunk + TAG_SIZE)


def tensor_bound(nbytes: int, chunk: int = CHUNK) -> int:
    """Most bytes one tensor's read may fetch: its bytes, plus 2 chunks (the partial ones at
    each end), plus each chunk's tag."""
    return nbytes + 2 * chunk + TAG_SIZE * (nbytes // chunk + 2)


def data_range(plain: bytes, name: str) -> tuple[int, int]:
    n = int.from_bytes(plain[:8], "little")
    head = json.loads(plain[8 : 8 + n])
    lo, hi = head[name]["data_offsets"]
    return 8 + n + lo, 8 + n + hi


def make_shards(d: Path) -> tuple[dict[str, dict[str, bytes]], list[Path]]:
    """5 tar shards of 7 samples (a .bin payload of varying size and a .cls label), sealed."""
    samples: dict[str, dict[str, bytes]] = {}
    sealed = []
    for s in range(SHARDS):
        tar_path = d / f"shard-{s:03d}.tar"
        with tarfile.open(tar_path, "w") as tar:
            for i in range(PER_SHARD):
                key = f"train/{s:03d}{i:03d}"
                payload = os.urandom(3000 + 9000 * i)
                label = str((s * 7 + i) % 10).encode()
                samples[key] = {"bin": payload, "cls": label}
                for ext, data in (("bin", payload), ("cls", label)):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        sealed.append(d / f"shard-{s:03d}.tar.tseal")
        cli_seal(tar_path, sealed[-1], d / "home")
    return samples, sealed


def upload_dir(c: Any, local: Path, prefix: str, bucket: str) -> None:
    for p in sorted(local.rglob("*")):
        if p.is_file():
            c.put_object(Bucket=bucket, Key=f"{prefix}/{p.relative_to(local).as_posix()}", Body=p.read_bytes())
