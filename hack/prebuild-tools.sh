#!/usr/bin/env bash
# Builds every tool the later `.ci/run` steps need, so `.ci/run` can start it in the background
# at nice 19 and let it use the CPU its Rust steps leave idle (fuzzing runs on one core, link-time
# optimization links on one core, tests wait on sockets). Each tool is built by the script that
# uses it, cached by version; on a warm machine this finds everything built and takes seconds.
#
# usage: hack/prebuild-tools.sh rust   cargo subcommands (cargo-fuzz, cargo-deny), the nightly
#                                      toolchain and the fuzz targets' build
#        hack/prebuild-tools.sh dist   what hack/dist.sh needs, and the shipped binary of both
#                                      architectures (the same builds the later steps ask for)
#        hack/prebuild-tools.sh go     helm, crane, promtool, etcd, kube-apiserver,
#                                      kube-controller-manager, every CSI driver version, and the
#                                      e2e suite's test binaries against each (Go's build cache)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_FUZZ_VERSION=0.13.2
CARGO_DENY_VERSION=0.20.2
say() { printf '[prebuild %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# cargo_bin NAME VERSION: `cargo install NAME` at VERSION unless that version is on PATH.
cargo_bin() {
  local name="$1" version="$2"
  if grep -qF " $version" <<<"$("$name" --version 2>/dev/null || true)"; then
    return 0
  fi
  say "cargo install $name $version"
  CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider/install-$name" \
    cargo install --quiet --locked --version "=$version" "$name"
}

case "${1:-}" in
  rust)
    if ! grep -q '^nightly' <<<"$(rustup toolchain list 2>/dev/null)"; then
      say "rustup toolchain install nightly (fuzzing)"
      rustup toolchain install nightly --profile minimal \
        || { echo "fuzzing needs a nightly Rust toolchain and rustup could not install one" >&2; exit 1; }
    fi
    cargo_bin cargo-fuzz "$CARGO_FUZZ_VERSION"
    # The fuzz targets, where .ci/run's fuzzing step builds them ($CARGO_TARGET_DIR/fuzz).
    if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
      say "cargo fuzz build -O"
      (cd "$ROOT/fuzz" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz" cargo +nightly fuzz build -O)
    fi
    cargo_bin cargo-deny "$CARGO_DENY_VERSION"
    ;;
  dist)
    for arch in amd64 arm64; do
      "$ROOT/hack/dist.sh" tools "$arch"
      say "the shipped binary for $arch: $("$ROOT/hack/dist.sh" build "$arch")"
    done
    ;;
  go)
    "$ROOT/hack/helm/build.sh" >/dev/null
    "$ROOT/hack/image/build.sh" tools
    "$ROOT/hack/verify/run.sh" tools
    "$ROOT/tests/e2e/build-tools.sh" all
    # The e2e suite's test binaries, compiled once per driver version's module graph, so the
    # e2e step only links what changed.
    # shellcheck source=../tests/e2e/lib.sh
    source "$ROOT/tests/e2e/lib.sh"
    default_driver="$(suite_default_driver)"
    out="$(mktemp -d)"
    for v in "${CSI_DRIVER_VERSIONS[@]}"; do
      mod=()
      [[ $v == "$default_driver" ]] || mod=(-modfile="$(suite_modfile "$v")")
      say "compiling the e2e suite against driver $v"
      (cd "$E2E_DIR/suite" && go test "${mod[@]}" -c -o "$out/" ./conformance/ ./driver/)
    done
    (cd "$E2E_DIR/suite" && go test -c -o "$out/" ./sync/ ./webhook/)
    rm -rf "$out"
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
say "done: $1"
