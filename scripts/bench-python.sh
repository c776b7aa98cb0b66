#!/usr/bin/env bash
# Python load benchmark (python/bench/python_load.py) with the repository's .venv: sets the
# venv up as scripts/test-python.sh does (package, test extra, torch 2.13.0), adds the
# CryptoTensors peer when pip can fetch it (skipped with a note otherwise), then runs.
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
exec "$venv/bin/python" python/bench/python_load.py "$@"
