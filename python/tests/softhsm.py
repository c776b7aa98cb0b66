"""A SoftHSM2 token for the PKCS#11 tests, set up as test/keys/softhsm.ts does: a fresh token
directory and configuration file, ``softhsm2-util --init-token``, and the environment the
provider (and the TS CLI) read: SOFTHSM2_CONF, TENSORSEAL_PKCS11_MODULE, TENSORSEAL_PKCS11_PIN.

SoftHSM2 reads SOFTHSM2_CONF in C_Initialize, so the module is finalised before and after
(``close_modules``): the next operation initialises it again with this token directory.
Missing python-pkcs11, the module or softhsm2-util skips the tests, except under
TENSORSEAL_REQUIRE_ALL=1 (CI), where it fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto_s3 import missing

from tensorseal.keys.pkcs11 import DEFAULT_PKCS11_MODULE, close_modules
from tensorseal.keys.provider import reset_providers

MODULE = os.environ.get("TENSORSEAL_PKCS11_MODULE") or DEFAULT_PKCS11_MODULE
PIN, SO_PIN = "4321", "87654321"


def softhsm_missing() -> str | None:
    """Why the SoftHSM2 tests cannot run here, or None when they can."""
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 is not installed: pip install 'tensorseal[pkcs11]' (python/pyproject.toml)"
    if not os.path.exists(MODULE):
        return f"no PKCS#11 module at {MODULE} (run scripts/setup-test-deps.sh)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is not on PATH (run scripts/setup-test-deps.sh)"
    return None


@contextmanager
def softhsm_token(d: Path, label: str) -> Iterator[dict[str, str]]:
    """A fresh token ``label`` under ``d``; yields the environment for it (also set in os.environ)."""
    why = softhsm_missing()
    if why:
        missing(why)
    tokens = d / "tokens"
    tokens.mkdir(parents=True)
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf), "TENSORSEAL_PKCS11_MODULE": MODULE, "TENSORSEAL_PKCS11_PIN": PIN}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    close_modules()
    reset_providers()
    try:
        r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
                           capture_output=True, text=True, env={**os.environ}, timeout=60)  # fmt: skip
        assert r.returncode == 0, f"softhsm2-util --init-token failed: {r.stderr}"
        yield env
    finally:
        close_modules()
        reset_providers()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
