#!/usr/bin/env bash
# End-to-end suite against the real components (see README "End-to-end tests"):
#   1. builds (or reuses, cached by version) etcd, kube-apiserver, kube-controller-manager and the
#      Secrets Store CSI Driver at each version of CSI_DRIVER_VERSIONS (lib.sh) from Go modules,
#      and the provider (cargo, release);
#   2. starts a single-node control plane on 127.0.0.1;
#   3. runs the Go suite (tests/e2e/suite), for each driver version: `conformance` (that
#      version's provider client and atomic writer against our provider) and `driver` (that
#      version's driver binary, the test playing kubelet), each compiled against that version's
#      Go packages; then once `sync` (the sync controller, with its manifest's RBAC and the
#      garbage collector), which does not involve the driver;
#   4. prints a table per driver version (tests, passed, failed, seconds) and stops every
#      process it started, whatever happens.
#
# usage: tests/e2e/run.sh [go test flags, e.g. -run TestRotation]
# env:   E2E_DRIVER_VERSIONS="v1.6.0"  run a subset of the driver versions (space-separated)
#        E2E_KEEP=1          keep the work dir (logs) after a successful run
#        E2E_TEST_TIMEOUT    go test -timeout per run (default 20m)
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
log "building the real components (cached by version in $E2E_BIN); driver versions: ${CSI_DRIVER_VERSIONS[*]}"
"$E2E_DIR/build-tools.sh" all

log "building the provider and the emulator (cargo build --release)"
(cd "$REPO_ROOT" && cargo build --locked --release --quiet)
target_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
provider_bin="$target_dir/release/akeyless-csi-provider"
emulator_bin="$target_dir/release/akeyless-emulator"
[[ -x "$provider_bin" ]] || die "no provider binary at $provider_bin"
[[ -x "$emulator_bin" ]] || die "no emulator binary at $emulator_bin"

"$E2E_DIR/control-plane.sh" up "$WORK/control-plane"
set -a
# shellcheck disable=SC1091
source "$WORK/control-plane/env"
set +a
export E2E_PROVIDER_BIN="$provider_bin"
export E2E_EMULATOR_BIN="$emulator_bin"
export E2E_WORK_DIR="$WORK"
log "setup took $((SECONDS - start))s"

summary=()
failed=0
# run_suite LABEL VERSION MODFILE PACKAGES...: one `go test` run, compiled with MODFILE (none:
# the suite's go.mod) against driver VERSION; its output is also kept in $WORK/LABEL-VERSION.log.
run_suite() {
  local label="$1" version="$2" modfile="$3"
  shift 3
  local mod=()
  [[ -n "$modfile" ]] && mod=(-modfile="$modfile")
  # The module the suite compiles against must be the version this run reports.
  local module_dir compiled
  read -r compiled module_dir < <(cd "$E2E_DIR/suite" &&
    go list "${mod[@]}" -m -f '{{.Version}} {{.Dir}}' sigs.k8s.io/secrets-store-csi-driver) ||
    die "cannot resolve driver $version's module (tests/e2e/build-tools.sh pin)"
  [[ "$compiled" == "$version" && -d "$module_dir" ]] ||
    die "the suite resolves driver ${compiled:-?} for $version (${modfile:-go.mod})"
  local out="$WORK/$label-$version.log" t0=$SECONDS rc=0
  log "$label: go test ${*#./} (driver $version)"
  (
    cd "$E2E_DIR/suite"
    E2E_DRIVER_VERSION="$version" E2E_DRIVER_BIN="$(csi_driver_bin "$version")" \
      E2E_DRIVER_MODULE_DIR="$module_dir" \
      go test "${mod[@]}" -count=1 -timeout "${E2E_TEST_TIMEOUT:-20m}" -v "${GO_TEST_ARGS[@]}" "$@"
  ) 2>&1 | tee "$out" || rc=$?
  # Top-level tests only (subtests are indented); a skipped test counts as a failure.
  local passed failed_n skipped
  passed=$(grep -c '^--- PASS: ' "$out" || true)
  failed_n=$(grep -c '^--- FAIL: ' "$out" || true)
  skipped=$(grep -c '^--- SKIP: ' "$out" || true)
  if [[ $rc -ne 0 || $failed_n -ne 0 || $skipped -ne 0 ]]; then
    failed=1
    [[ $rc -ne 0 ]] || rc=1
  fi
  summary+=("$(printf '%-12s %-8s %5d %6d %6d %7d %4d' "$label" "$version" \
    $((passed + failed_n + skipped)) "$passed" "$((failed_n + skipped))" $((SECONDS - t0)) "$rc")")
}

GO_TEST_ARGS=("$@")
default_driver="$(suite_default_driver)"
for v in "${CSI_DRIVER_VERSIONS[@]}"; do
  modfile=""
  [[ "$v" == "$default_driver" ]] || modfile="$(suite_modfile "$v")"
  run_suite "conformance" "$v" "$modfile" ./conformance/
  run_suite "driver" "$v" "$modfile" ./driver/
done
run_suite "sync" "$default_driver" "" ./sync/
run_suite "webhook" "$default_driver" "" ./webhook/

log "results (top-level tests; seconds include compiling the suite):"
printf '%-12s %-8s %5s %6s %6s %7s %4s\n' "run" "driver" "tests" "passed" "failed" "seconds" "exit" >&2
printf '%s\n' "${summary[@]}" >&2
status=$failed
log "Go suites finished in $((SECONDS - start))s total, exit $status"
exit $status
