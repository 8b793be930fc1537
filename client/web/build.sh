#!/usr/bin/env bash
# Builds the card editor into client/web/dist (served by `kiln-server --web_root`):
# installs packages when needed, generates the TypeScript API from proto/, type-checks, bundles.
# `build.sh install` only installs the packages (npm ci from package-lock.json), as
# scripts/setup does.
# Idempotent; offline once node_modules exists. Exits non-zero on any failure.
set -euo pipefail

web="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$web/../.." && pwd)"
cd "$web"
start=$(date +%s%N)

# npm writes node_modules/.package-lock.json on every install: older than the lockfile means
# the lockfile changed since.
installed="skipped"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  installed="ran"
fi
# `build.sh install` (scripts/setup) stops here: the packages, no build.
if [[ "${1:-}" == install ]]; then
  echo "kiln web: npm packages installed from package-lock.json (npm ci $installed)"
  exit 0
fi

protoc="${PROTOC:-$(command -v protoc || echo /usr/bin/protoc)}"
# Generate beside the old output and swap, so a failed run leaves the previous code intact.
rm -rf src/gen.tmp
mkdir -p src/gen.tmp
"$protoc" -I "$repo/proto" \
  --plugin=protoc-gen-es="$web/node_modules/.bin/protoc-gen-es" \
  --es_out=src/gen.tmp --es_opt=target=ts \
  "$repo"/proto/kiln/v1/*.proto "$repo"/proto/google/rpc/*.proto
rm -rf src/gen
mv src/gen.tmp src/gen

node_modules/.bin/tsc --noEmit -p tsconfig.json

# Bundle into dist.tmp and swap, so a running server never serves a half-written directory.
rm -rf dist.tmp
node_modules/.bin/esbuild src/main.tsx --bundle --minify --sourcemap \
  --target=es2022 --format=esm --outdir=dist.tmp --entry-names=app \
  --define:process.env.NODE_ENV='"production"' --log-level=warning
cp src/index.html dist.tmp/index.html
rm -rf dist.old
if [[ -d dist ]]; then mv dist dist.old; fi
mv dist.tmp dist
rm -rf dist.old

ms=$(( ($(date +%s%N) - start) / 1000000 ))
kib() { echo $(( ($(stat -c %s "$1") + 1023) / 1024 )); }
echo "kiln web: built dist/ (app.js $(kib dist/app.js) KiB, app.css $(kib dist/app.css) KiB) in $((ms / 1000)).$(( (ms % 1000) / 100 ))s; npm ci $installed"
