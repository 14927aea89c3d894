#!/usr/bin/env bash
# End-to-end suite against the real components (see README "End-to-end tests"):
#   1. builds (or reuses, cached by version) etcd, kube-apiserver, kube-controller-manager and the
#      Secrets Store CSI Driver v1.6.0 from Go modules, and the provider (cargo, release);
#   2. starts a single-node control plane on 127.0.0.1;
#   3. runs the Go suite (tests/e2e/suite): `conformance` (the driver's provider client and
#      atomic writer against our provider), `driver` (the full driver binary, playing kubelet)
#      and `sync` (the sync controller, with its manifest's RBAC and the garbage collector);
#   4. stops every process it started, whatever happens.
#
# usage: tests/e2e/run.sh [go test flags, e.g. -run TestRotation]
# env:   E2E_KEEP=1          keep the work dir (logs) after a successful run
#        E2E_TEST_TIMEOUT    go test -timeout (default 20m)
# Needs root (the driver mounts tmpfs), Go >= 1.26 (etcd v3.6.16), cargo, kubectl, openssl, python3.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) -eq 0 ]] || die "the CSI driver mounts tmpfs: run as root"
for tool in go cargo kubectl openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/akeyless-csi-e2e.XXXXXX")"
status=1
cleanup() {
  set +e
  "$E2E_DIR/control-plane.sh" down "$WORK/control-plane" || true
  # tmpfs mounts a failed test may have left behind (the suite unmounts its own on exit)
  local m
  for m in $(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  if [[ $status -eq 0 && -z "${E2E_KEEP:-}" ]]; then
    rm -rf "$WORK"
  else
    log "logs kept in $WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
log "building the real components (cached by version in $E2E_BIN)"
"$E2E_DIR/build-tools.sh" all

log "building the provider (cargo build --release)"
(cd "$REPO_ROOT" && cargo build --locked --release --quiet)
target_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
provider_bin="$target_dir/release/akeyless-csi-provider"
[[ -x "$provider_bin" ]] || die "no provider binary at $provider_bin"

"$E2E_DIR/control-plane.sh" up "$WORK/control-plane"
set -a
# shellcheck disable=SC1091
source "$WORK/control-plane/env"
set +a

driver_module_dir="$(cd "$E2E_DIR/suite" && go list -m -f '{{.Dir}}' sigs.k8s.io/secrets-store-csi-driver)"
export E2E_PROVIDER_BIN="$provider_bin"
export E2E_DRIVER_BIN
E2E_DRIVER_BIN="$(csi_driver_bin)"
export E2E_DRIVER_MODULE_DIR="$driver_module_dir"
export E2E_WORK_DIR="$WORK"
log "setup took $((SECONDS - start))s; running the Go suite"

suite_start=$SECONDS
set +e
(cd "$E2E_DIR/suite" && go test -count=1 -timeout "${E2E_TEST_TIMEOUT:-20m}" -v "$@" ./conformance/ ./driver/ ./sync/ ./webhook/)
status=$?
set -e
log "Go suite finished in $((SECONDS - suite_start))s (total $((SECONDS - start))s), exit $status"
exit $status
