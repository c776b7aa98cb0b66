"""moto's S3 server on a free loopback port, for the object-storage tests.

Found at TENSORSEAL_MOTO_SERVER, .venv-moto/bin/moto_server (scripts/setup-test-deps.sh) or
on PATH. Missing moto or boto3 skips the tests, except under TENSORSEAL_REQUIRE_ALL=1 (CI),
where it fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def missing(why: str) -> None:
    """Fails under TENSORSEAL_REQUIRE_ALL=1, skips otherwise."""
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        pytest.fail(f"{why} (TENSORSEAL_REQUIRE_ALL=1: required)")
    pytest.skip(why)


def moto_server() -> str | None:
    for c in (os.environ.get("TENSORSEAL_MOTO_SERVER"), str(REPO / ".venv-moto/bin/moto_server")):
        if c and os.path.exists(c):
            return c
    return shutil.which("moto_server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def moto_s3() -> Iterator[str]:
    """Starts moto's server; yields its endpoint URL; stops it."""
    exe = moto_server()
    if exe is None:
        missing("moto_server not found (run scripts/setup-test-deps.sh)")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("moto_server did not listen within 30 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Dummy credentials (moto accepts any) and the endpoint, for clients made by tensorseal."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(k, raising=False)


def boto3_client(endpoint: str) -> Any:
    try:
        import boto3
    except ImportError:
        missing("boto3 is not installed: pip install 'tensorseal[s3]'")
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
