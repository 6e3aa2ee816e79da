#!/usr/bin/env bash
# Regenerates every committed generated file and fails if any differs from what is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
for generator in dist/scripts/generate-*.js; do
  [ -e "$generator" ] || continue
  node "$generator"
done
if ! git diff --exit-code --stat -- . ':!package-lock.json'; then
  echo "generated files drifted from their sources: run the generators and commit the result" >&2
  exit 1
fi
