#!/usr/bin/env bash
# Checks of what we ship, against a real provider process (hack/verify, a Go module):
#
#   hack/verify/run.sh socket BINARY [RUNNER]
#       BINARY serves mounts over its Unix socket as the CSI driver makes them (RUNNER, e.g.
#       qemu-aarch64, runs a binary of another architecture): TestShippedBinaryMountsOverItsSocket.
#   hack/verify/run.sh observability BINARY
#       `promtool check rules` and `promtool test rules` on the chart's alerts, then the metrics
#       contract: every metric, label and label value the dashboard and the alerts use exists in
#       BINARY's /metrics after mounts of each outcome, and in the /metrics of BINARY's `sync`
#       controller after it synced an SPC and failed another on a real kube-apiserver
#       (TestMetricsContract); the runbook links resolve in the README (TestRunbooks); the chart
#       ships both files unchanged (TestChart*).
#
# The Akeyless emulator is EMULATOR_BIN (default: the native release build, `cargo build
# --release`; the shipped binary may be built without the emulator). promtool is built from Go
# modules (the version in hack/verify/go.mod, without service discovery) and cached by version.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN_DIR="${AKEYLESS_CSI_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider/bin}"
say() { printf '[verify] %s\n' "$*" >&2; }
usage() {
  sed -n '2,15p' "$0" >&2
  exit 2
}
# promtool, once per version (pinned in this directory's go.mod).
build_promtool() {
  PROMTOOL_VERSION="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
  PROMTOOL="$BIN_DIR/promtool-$PROMTOOL_VERSION"
  if [[ ! -x $PROMTOOL ]]; then
    say "building promtool $PROMTOOL_VERSION from Go modules (no service discovery plugins)"
    mkdir -p "$BIN_DIR"
    (cd "$HERE" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" go build -trimpath -tags remove_all_sd -ldflags "-s -w" \
      -o "$PROMTOOL.tmp.$$" github.com/prometheus/prometheus/cmd/promtool)
    mv -f "$PROMTOOL.tmp.$$" "$PROMTOOL"
  fi
}

# `run.sh tools`: only build promtool (hack/prebuild-tools.sh).
if [[ ${1:-} == tools ]]; then
  build_promtool
  exit 0
fi
[[ $# -ge 2 ]] || usage
mode="$1"
export PROVIDER_BIN
PROVIDER_BIN="$(realpath "$2")"
export PROVIDER_RUNNER="${3:-}"
command -v go >/dev/null 2>&1 || { echo "go is required" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"

if [[ -z "${EMULATOR_BIN:-}" ]]; then
  say "building the emulator (cargo build --release)"
  (cd "$ROOT" && cargo build --locked --release --quiet)
  EMULATOR_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/akeyless-emulator"
fi
export EMULATOR_BIN

gotest() { (cd "$HERE" && go test -count=1 -v "$@" .); }

case "$mode" in
  socket)
    gotest -run 'TestShippedBinaryMountsOverItsSocket'
    ;;
  observability)
    build_promtool
    rules="$ROOT/deploy/helm/akeyless-csi-provider/files/prometheus-rules.yaml"
    say "promtool check rules"
    "$PROMTOOL" check rules "$rules"
    say "promtool test rules (hack/verify/testdata/rules-test.yaml)"
    (cd "$HERE/testdata" && "$PROMTOOL" test rules rules-test.yaml)
    export HELM
    HELM="$("$ROOT/hack/helm/build.sh")"
    # The sync controller's metrics need a real kube-apiserver (tests/e2e/control-plane.sh).
    cp_dir="$(mktemp -d "${TMPDIR:-/tmp}/verify-control-plane.XXXXXX")"
    # shellcheck disable=SC2064
    trap "'$ROOT/tests/e2e/control-plane.sh' down '$cp_dir' >/dev/null 2>&1; rm -rf '$cp_dir'" EXIT
    "$ROOT/tests/e2e/control-plane.sh" up "$cp_dir"
    set -a
    # shellcheck disable=SC1091
    source "$cp_dir/env"
    set +a
    gotest -run 'TestMetricsContract|TestRunbooks|TestChart'
    ;;
  *) usage ;;
esac
