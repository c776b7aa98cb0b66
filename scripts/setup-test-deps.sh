#!/usr/bin/env bash
# Installs the real components the provider tests run against (idempotent):
#   - SoftHSM2 (Debian package softhsm2): a PKCS#11 token for test/keys/pkcs11.test.ts
#   - moto's server mode in a Python venv at .venv-moto: a local AWS KMS for test/keys/aws-kms.test.ts,
#     and a local S3 for the Python object-storage tests (python/tests/moto_s3.py)
#   - Schemathesis in a Python venv at .venv-schemathesis: test/service/schemathesis.test.ts
#   - strace (Debian package strace): fault injection in test/cli/rewrap-crash.test.ts
#   - chromium (Debian package): `report --pdf` and the browser tests (playwright-core: test/console/, test/cli/report.test.ts)
#   - the OpenSSF model-signing tool in a Python venv at .venv-model-signing: the cross-check of
#     signed sealed directories in test/integrations/provenance-model-signing.test.ts
# Needs root (or sudo) for apt-get; PyPI for pip. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
  echo "setup-test-deps: installing softhsm2" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends softhsm2
fi

# Chromium (Debian package): `report --pdf` and the browser tests (playwright-core drives it).
if [ ! -x /usr/bin/chromium ]; then
  echo "setup-test-deps: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends chromium
fi

if ! command -v strace >/dev/null 2>&1; then
  echo "setup-test-deps: installing strace" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends strace
fi


VENV=".venv-moto"
if [ ! -x "$VENV/bin/moto_server" ]; then
  echo "setup-test-deps: installing moto[server] into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi

ST_VENV=".venv-schemathesis"
ST_VERSION="4.32.5"
if [ "$("$ST_VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$ST_VERSION" ]; then
  echo "setup-test-deps: installing schemathesis $ST_VERSION into $ST_VENV" >&2
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

MS_VENV=".venv-model-signing"
MS_VERSION="1.1.1"
if [ "$("$MS_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("model-signing"))' 2>/dev/null)" != "$MS_VERSION" ] \
  || ! "$MS_VENV/bin/model_signing" --help >/dev/null 2>&1; then
  echo "setup-test-deps: installing model-signing $MS_VERSION into $MS_VENV" >&2
  python3 -m venv "$MS_VENV"
  # pyOpenSSL: model_signing imports it (certificate signing) but 1.1.1 does not declare it.
  "$MS_VENV/bin/pip" install --quiet --disable-pip-version-check "model-signing==$MS_VERSION" "pyOpenSSL==26.4.0"
fi

echo "setup-test-deps: model-signing $MS_VERSION in $MS_VENV" >&2
echo "setup-test-deps: softhsm2 $(softhsm2-util --version), moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)'), $("$ST_VENV/bin/schemathesis" --version)" >&2
