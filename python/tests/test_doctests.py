"""The runnable examples in the docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tensorseal.errors",
    "tensorseal.format.descriptor",
    "tensorseal.format.chunked",
    "tensorseal.format.hkdf",
    "tensorseal.format.payload",
    "tensorseal.format.stanza",
    "tensorseal.keys.bech32",
    "tensorseal.keys.canonical_json",
    "tensorseal.keys.kek",
    "tensorseal.keys.x25519",
    "tensorseal.keys.xwing",
    "tensorseal.keys.passphrase",
    "tensorseal.keys.service",
    "tensorseal.keys.attest",
    "tensorseal.st_format",
    "tensorseal.chunk_cache",
    "tensorseal.hf.manifest",
    "tensorseal.remote.urls",
    "tensorseal.remote.s3",
    "tensorseal.shards",
    "tensorseal.keys.provider",
    "tensorseal.keys.provider_allow",
    "tensorseal.keys.aws_kms",
    "tensorseal.keys.pkcs11",
    "tensorseal.remote.s3_upload",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
