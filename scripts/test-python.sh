#!/usr/bin/env bash
# Python package tests (python/tests): installs the package with its test extra into .venv
# and runs pytest. Torch and transformers are installed (pinned: local wheels, never a
# multi-GB download; transformers 5.17.0 and its dependencies are all on this machine's local
# index) when TENSORSEAL_REQUIRE_ALL=1 or TENSORSEAL_WITH_TORCH=1; with
# TENSORSEAL_REQUIRE_ALL=1 a missing torch or transformers fails their tests instead of
# skipping them. The cross-language tests run the TS CLI from dist/: build it first
# (`npm run build`). The object-storage tests (test_remote_*.py, test_datasets.py) start moto's
# S3 server from .venv-moto (scripts/setup-test-deps.sh) on loopback and use boto3 / fsspec from
# the test extra (pinned in python/pyproject.toml); under TENSORSEAL_REQUIRE_ALL=1 a missing
# moto_server fails them. The HSM and KMS provider tests (test_provider_*.py) use the same
# moto_server (its KMS) and a SoftHSM2 token made with softhsm2-util (scripts/setup-test-deps.sh
# installs SoftHSM2), through boto3 and python-pkcs11 from the test extra; under
# TENSORSEAL_REQUIRE_ALL=1 a missing SoftHSM2, python-pkcs11 or moto fails them.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -e 'python[test]'
if [ "${TENSORSEAL_REQUIRE_ALL:-}" = "1" ] || [ "${TENSORSEAL_WITH_TORCH:-}" = "1" ]; then
  "$venv/bin/python" -m pip install -q torch==2.13.0 transformers==5.17.0
fi
exec "$venv/bin/python" -m pytest python/tests -q "$@"
