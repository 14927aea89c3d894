#!/usr/bin/env bash
# Builds the multi-arch OCI image without a container engine, then tests it:
#   1. the static binaries for linux/amd64 and linux/arm64 (hack/dist.sh: the Dockerfile's build);
#   2. a CycloneDX SBOM of each, from the dependency list `cargo auditable` embedded in it;
#   3. the OCI image index (hack/image/main.go, go-containerregistry), as a layout directory and
#      a tarball, reproducibly (every time is the commit time);
#   4. the image test (hack/image/image_test.go), which also pushes the layout to a registry on
#      loopback with `crane push`, the command the README gives.
# crane is built from Go modules (the version in hack/image/go.mod) and cached by version.
#
# usage: hack/image/build.sh [--no-test]   (or `tools`: only build crane)
# env:   IMAGE_OUT   output directory (default: target/oci): akeyless-csi-provider/ (layout),
#                    akeyless-csi-provider.oci.tar, sbom-<arch>.cdx.json, digest
# Prints the image digest last.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${IMAGE_OUT:-$ROOT/target/oci}"
BIN_DIR="${AKEYLESS_CSI_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider/bin}"
say() { printf '[image] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { echo "go is required to build the image" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"

# crane, once per version.
CRANE_VERSION="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/google/go-containerregistry)"
CRANE="$BIN_DIR/crane-$CRANE_VERSION"
if [[ ! -x $CRANE ]]; then
  say "building crane $CRANE_VERSION from Go modules"
  mkdir -p "$BIN_DIR"
  (cd "$HERE" && go build -trimpath -ldflags "-s -w" -o "$CRANE.tmp.$$" github.com/google/go-containerregistry/cmd/crane)
  mv -f "$CRANE.tmp.$$" "$CRANE"
fi
# `build.sh tools`: only build what the image needs (hack/prebuild-tools.sh).
[[ ${1:-} != tools ]] || exit 0

mkdir -p "$OUT"
declare -A BIN
for arch in amd64 arm64; do
  BIN[$arch]="$("$ROOT/hack/dist.sh" build "$arch")"
  say "linux/$arch: ${BIN[$arch]} ($(stat -c %s "${BIN[$arch]}") bytes)"
  "$ROOT/hack/dist.sh" sbom "${BIN[$arch]}" "$OUT/sbom-$arch.cdx.json"
done

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)"
REVISION="$(git -C "$ROOT" rev-parse HEAD)"
CREATED="$(git -C "$ROOT" log -1 --format=%ct HEAD)"
say "assembling the OCI index (version $VERSION, revision $REVISION, created $CREATED)"
DIGEST="$(cd "$HERE" && go run . -out "$OUT/akeyless-csi-provider" -tar "$OUT/akeyless-csi-provider.oci.tar" \
  -version "$VERSION" -revision "$REVISION" -created "$CREATED" \
  -binary "linux/amd64=${BIN[amd64]}" -sbom "linux/amd64=$OUT/sbom-amd64.cdx.json" \
  -binary "linux/arm64=${BIN[arm64]}" -sbom "linux/arm64=$OUT/sbom-arm64.cdx.json")"
echo "$DIGEST" >"$OUT/digest"
say "layout $OUT/akeyless-csi-provider, tarball $OUT/akeyless-csi-provider.oci.tar"

if [[ "${1:-}" != "--no-test" ]]; then
  say "image test (hack/image/image_test.go)"
  (cd "$HERE" && IMAGE_LAYOUT="$OUT/akeyless-csi-provider" IMAGE_TAR="$OUT/akeyless-csi-provider.oci.tar" \
    CRANE="$CRANE" DIST_PROFILE="$("$ROOT/hack/dist.sh" profile)" DIST_FEATURES="$("$ROOT/hack/dist.sh" features)" \
    go test -count=1 -v .)
fi
echo "image: $DIGEST"
