#!/usr/bin/env bash
# Node 22 for packages/net-sync (js-libp2p 3 needs Node 22: on Node 20 a connection fails with
# EncryptionFailedError, Promise.withResolvers). Debian's nodejs is too old, so it comes from the npm
# registry: the npm package `node` at a pinned version, whose preinstall fetches the binary package
# `node-linux-<arch>` of the same version. Installed into the project's cache folder.
#
# Idempotent: when the pinned binary is already there, nothing is installed (well under a second).
# Prints the absolute path of the node binary on stdout; everything else goes to stderr.
#   NODE="$(scripts/node22.sh)" && "$NODE" --version
set -euo pipefail

NODE_VERSION=22.23.3
# In the project's cache folder, outside the checkout, so a fresh clone reuses it (docs/operations.md).
CACHE="${NODE22_CACHE:-${SOLAR_CHAOS_CACHE:-$HOME/.cache/solar-chaos}/node22}"
BIN="$CACHE/node_modules/node/bin/node"

if [[ -x "$BIN" && "$("$BIN" --version 2>/dev/null)" == "v$NODE_VERSION" ]]; then
  echo "$BIN"
  exit 0
fi

command -v npm >/dev/null || {
  echo "node22.sh: npm is needed to fetch Node $NODE_VERSION from the npm registry (apt-get install npm)" >&2
  exit 1
}

echo "node22.sh: installing node@$NODE_VERSION into $CACHE" >&2
rm -rf "$CACHE.tmp"
mkdir -p "$CACHE.tmp"
printf '{"name": "node22-cache", "private": true}\n' >"$CACHE.tmp/package.json"
# The `node` package's preinstall installs node-linux-<arch>, so install scripts must run here.
npm install --prefix "$CACHE.tmp" --no-audit --no-fund --no-save --loglevel=error \
  "node@$NODE_VERSION" >&2
got="$("$CACHE.tmp/node_modules/node/bin/node" --version)"
if [[ "$got" != "v$NODE_VERSION" ]]; then
  echo "node22.sh: installed node reports $got, expected v$NODE_VERSION" >&2
  exit 1
fi
rm -rf "$CACHE"
mv "$CACHE.tmp" "$CACHE"
echo "$BIN"
