#!/usr/bin/env bash
# Builds helm from its Go module (no downloaded release binaries) and caches it by version.
# The version is pinned in hack/helm/go.mod (with go.sum); this wrapper module exists only for
# that. Prints the path of the binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
VERSION="$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' go.mod)"
[[ -n "$VERSION" ]] || { echo "hack/helm/go.mod: no helm.sh/helm/v3 requirement" >&2; exit 1; }
BIN_DIR="${AKEYLESS_CSI_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider/bin}"
OUT="$BIN_DIR/helm-$VERSION"
if [[ -x "$OUT" ]]; then
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "go is required to build helm $VERSION" >&2; exit 1; }
mkdir -p "$BIN_DIR"
echo "building helm $VERSION from Go modules (a cold build takes several minutes)" >&2
CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$VERSION" \
  -o "$OUT.tmp.$$" helm.sh/helm/v3/cmd/helm >&2
mv -f "$OUT.tmp.$$" "$OUT"
echo "$OUT"
