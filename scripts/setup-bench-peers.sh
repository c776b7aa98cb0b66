#!/usr/bin/env bash
# Installs the peers `npm run bench:peers` compares against (bench/peers.ts): age, gpg and
# openssl from Debian (age is packaged since Debian 12), GNU time for peak RSS, and the AWS
# Encryption SDK for JavaScript from npm into bench/esdk (pinned by its own lockfile, kept out
# of the package's dependencies). The bench itself installs nothing; a peer that is missing is
# skipped with a note.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  age gnupg openssl time
(cd "$(dirname "$0")/../bench/esdk" && npm ci --no-audit --no-fund --silent) &&
  echo "ok: AWS Encryption SDK (bench/esdk)" || echo "missing: AWS Encryption SDK (bench/esdk)"
for tool in age gpg openssl /usr/bin/time; do
  command -v "$tool" >/dev/null && echo "ok: $tool" || echo "missing: $tool"
done
