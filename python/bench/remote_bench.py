"""Benchmark (not a test): a sealed model loaded straight from an HTTP Range server against
downloading the plaintext from the same server and loading it, in one run.

The server (python/tests/range_server.py) runs in its own process on loopback and serves both
files from memory. Plaintext: one GET of the whole file, then ``safetensors.numpy.load`` of
the bytes. Sealed: ``tensorseal.safetensors.load_file(url)`` (ranged GETs fetched and
decrypted in parallel). Prints the median times, the ratio plaintext/sealed (issue 14 goal:
>= 0.8), and what one tensor read through ``safe_open`` fetched against its bound (its bytes +
2 chunks + the header). With ``--s3`` the same comparison runs against moto's S3 server
(.venv-moto, scripts/setup-test-deps.sh) on loopback: plaintext with one ``GetObject``, sealed
with ``load_file("s3://...")``. Usage:
``.venv/bin/python python/bench/remote_bench.py [--size-mib 256] [--runs 3] [--threads 8] [--s3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
KEK = bytes(range(32))


def make(d: Path, size_mib: int) -> dict[str, int]:
    from safetensors.numpy import save_file

    from tensorseal import KekRecipient, seal_file

    rng = np.random.default_rng(0)
    per = 16 << 20
    t = {f"layer.{i}.weight": rng.standard_normal(per // 4, dtype=np.float32).reshape(-1, 1024) for i in range(max(1, size_mib // 16))}
    t["norm.bias"] = rng.standard_normal(4096, dtype=np.float32)
    save_file(t, str(d / "m.safetensors"))
    seal_file(d / "m.safetensors", d / "m.tseal", [KekRecipient("bench", 1, KEK)])
    return {k: v.nbytes for k, v in t.items()}


def plain_load(url: str) -> float:
    from safetensors.numpy import load

    t0 = time.perf_counter()
    if url.startswith("s3://"):
        import boto3

        bucket, key = url[5:].split("/", 1)
        data = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        with urllib.request.urlopen(url) as r:
            data = r.read()
    out = load(data)
    assert out
    return time.perf_counter() - t0


def sealed_load(url: str, threads: int | None) -> float:
    from tensorseal import KekIdentity
    from tensorseal.safetensors import load_file

    t0 = time.perf_counter()
    out = load_file(url, identities=[KekIdentity.single("bench", 1, KEK)], threads=threads)
    assert out
    return time.perf_counter() - t0


def one_tensor(url: str, nbytes: int, name: str) -> dict[str, int]:
    from tensorseal import KekIdentity, SealedFile
    from tensorseal.format.chunked import PAYLOAD_PREFIX_SIZE
    from tensorseal.remote import open_source
    from tensorseal.safetensors import safe_open

    src = open_source(url)
    with safe_open(SealedFile(src, [KekIdentity.single("bench", 1, KEK)]), identities=[]) as f:
        header = f._file.sealed.header.header_length + PAYLOAD_PREFIX_SIZE
        chunk = f._file.sealed.chunk_size + 16
        opened = src.bytes_fetched
        f.get_tensor(name)
    return {"tensor_bytes": nbytes, "fetched": src.bytes_fetched, "opening": opened,
            "bound": nbytes + 2 * chunk + header + 2 * chunk}  # fmt: skip


def compare(plain_url: str, sealed_url: str, a: argparse.Namespace, sizes: dict[str, int]) -> tuple[dict[str, int], list[float], list[float]]:
    plain, sealed = [], []
    for _ in range(a.runs):
        plain.append(plain_load(plain_url))
        sealed.append(sealed_load(sealed_url, a.threads))
    one = one_tensor(sealed_url, sizes["layer.0.weight"], "layer.0.weight")
    return one, plain, sealed


def run_s3(d: Path, a: argparse.Namespace, sizes: dict[str, int]) -> tuple[dict[str, int], list[float], list[float]]:
    import os

    sys.path.insert(0, str(REPO / "python/tests"))
    from moto_s3 import boto3_client, moto_s3

    with moto_s3() as endpoint:
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                          AWS_ENDPOINT_URL_S3=endpoint)  # fmt: skip
        c = boto3_client(endpoint)
        c.create_bucket(Bucket="bench-models")
        for name in ("m.safetensors", "m.tseal"):
            c.upload_file(str(d / name), "bench-models", name)
        return compare("s3://bench-models/m.safetensors", "s3://bench-models/m.tseal", a, sizes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--s3", action="store_true", help="against moto's S3 server instead of the HTTP Range server")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sizes = make(d, a.size_mib)
        if a.s3:
            one, plain, sealed = run_s3(d, a, sizes)
        else:
            server = subprocess.Popen([sys.executable, str(REPO / "python/tests/range_server.py"), str(d)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
            try:
                base = server.stdout.readline().strip()  # type: ignore[union-attr]
                one, plain, sealed = compare(base + "/m.safetensors", base + "/m.tseal", a, sizes)
            finally:
                server.stdin.close()  # type: ignore[union-attr]
                server.wait(30)
    p, s = statistics.median(plain), statistics.median(sealed)
    print(json.dumps({
        "server": "moto S3" if a.s3 else "HTTP Range", "size_mib": a.size_mib, "runs": a.runs,
        "plaintext_download_and_load_s": round(p, 3), "sealed_ranged_load_s": round(s, 3),
        "ratio_plain_over_sealed": round(p / s, 3), "goal": ">= 0.8",
        "one_tensor": one, "one_tensor_within_bound": one["fetched"] <= one["bound"],
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
