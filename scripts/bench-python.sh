#!/usr/bin/env bash
# Python load benchmark (python/bench/python_load.py) with the repository's .venv: sets the
# venv up as scripts/test-python.sh does (package, test extra, torch 2.13.0), adds the
# CryptoTensors and tensorizer peers when pip can fetch them (each skipped with a note
# otherwise), then runs. tensorizer's encryption needs libsodium (Debian: libsodium23); without
# it the bench skips the tensorizer peers and says why.
# Expects the CLI built (npm run bench:python builds it first). Extra arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -e 'python[test]'
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q cryptotensors==0.2.3 ||
  echo "CryptoTensors could not be installed: the bench runs without that peer" >&2
"$venv/bin/python" -m pip install -q tensorizer==2.12.1 ||
  echo "tensorizer could not be installed: the bench runs without that peer" >&2
if ! "$venv/bin/python" -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("sodium") is None)' 2>/dev/null; then
  echo "libsodium not found: tensorizer's encryption needs it (Debian: apt-get install libsodium23); the bench skips the tensorizer peers" >&2
fi
exec "$venv/bin/python" python/bench/python_load.py "$@"
