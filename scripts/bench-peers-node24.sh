#!/usr/bin/env bash
# `npm run bench:peers:node24`: bench/peers.ts with this build timed on the machine's Node and on
# Node 24 in the same alternating rounds (BENCH_NODE2), so issue 11's table for both runtimes
# comes from one command. Node 24 and a copy of the tree with node_modules and build/ compiled
# for it come from scripts/node24-root.sh into .bench-tmp/node24, kept while package-lock.json,
# binding.gyp and native/ are unchanged (only those decide what is compiled there; this build's
# dist is copied in by the bench itself). Other BENCH_* variables pass through (bench/peers.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
root=.bench-tmp/node24
stamp=$(cat package-lock.json binding.gyp native/* | sha256sum | cut -d' ' -f1)
if [ "$(cat "$root/stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$root"
  bash scripts/node24-root.sh "$PWD/$root"
  echo "$stamp" > "$root/stamp"
fi
BENCH_NODE2="$PWD/$root/node/bin/node" BENCH_NODE2_ROOT="$PWD/$root/repo" node dist/bench/peers.js
