#!/usr/bin/env bash
# Usage: scripts/ensure_bun.sh VERSION TOOLS_DIR
# Makes sure `bun` on PATH is VERSION. When it is not, installs bun@VERSION from the npm registry
# (the `bun` package ships the binary for this platform) into TOOLS_DIR/node_modules/.bin, which
# the caller (the Makefile) puts first on PATH. Nothing is reinstalled when the version matches.
set -euo pipefail

version=${1:?usage: ensure_bun.sh VERSION TOOLS_DIR}
tools=${2:?usage: ensure_bun.sh VERSION TOOLS_DIR}
local_bun="$tools/node_modules/.bin/bun"

if [ "$(bun --version 2>/dev/null)" = "$version" ]; then
  exit 0
fi
if [ "$("$local_bun" --version 2>/dev/null)" = "$version" ]; then
  # Installed here already but not first on PATH (the Makefile puts it first; a direct call may not).
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "ensure_bun: Bun $version is not on PATH and npm (Node.js) is missing to install it" >&2
  exit 1
fi

echo "ensure_bun: installing bun@$version from npm into $tools" >&2
mkdir -p "$tools"
npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
  --prefix "$tools" "bun@$version" >&2 || {
  echo "ensure_bun: npm install bun@$version failed (see npm's error above)" >&2
  exit 1
}

# The binary is put in place by the package's postinstall; with ignore-scripts set in an npmrc it
# was not run, so run it now.
if [ "$("$local_bun" --version 2>/dev/null)" != "$version" ] && [ -f "$tools/node_modules/bun/install.js" ]; then
  (cd "$tools/node_modules/bun" && node install.js) >&2 || true
fi

got=$("$local_bun" --version 2>/dev/null || true)
if [ "$got" != "$version" ]; then
  echo "ensure_bun: $local_bun reports '${got:-nothing}', expected $version" >&2
  exit 1
fi
echo "ensure_bun: bun $got installed in $tools/node_modules/.bin" >&2
