#!/usr/bin/env bash
# actionlint, the linter of .github/workflows: built once from its Go module at a pinned
# version into the project's cache, like the other Go tools, and reused after (a second
# call builds nothing). Prints the binary's path on stdout; progress goes to stderr.
#
# actionlint runs shellcheck on `run:` scripts when shellcheck is on PATH (GitHub's Ubuntu
# runners have it) and skips that check otherwise; it is optional here.
set -euo pipefail

VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
MODULE=github.com/rhysd/actionlint/cmd/actionlint
CACHE="${SOLAR_CHAOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/solar-chaos}"
OUT="$CACHE/bin/actionlint-$VERSION"

if [ -x "$OUT/actionlint" ]; then
    echo "$OUT/actionlint"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "actionlint: Go is missing, needed to build $MODULE@$VERSION; install Go >= 1.25 (actionlint's go.mod)" >&2
    exit 1
fi

mkdir -p "$CACHE/bin" "$CACHE/logs"
tmp=$(mktemp -d "$CACHE/bin/.actionlint-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
log="$CACHE/logs/go-install-actionlint.log"
echo "actionlint: building $MODULE@$VERSION (once; cached in $OUT)" >&2
start=$(date +%s)
if ! CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$tmp" GOFLAGS=-trimpath \
    go install -ldflags='-s -w' "$MODULE@$VERSION" >"$log" 2>&1; then
    echo "actionlint: go install $MODULE@$VERSION failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
# One rename, so an interrupted build never leaves a folder that looks complete; when a
# concurrent build got there first, keep its copy.
mv -T "$tmp" "$OUT" 2>/dev/null || [ -x "$OUT/actionlint" ]
echo "actionlint: built in $(($(date +%s) - start)) s" >&2
echo "$OUT/actionlint"
