#!/usr/bin/env bash
# Builds the real upstream components the end-to-end suite runs, from Go modules:
#   etcd, kube-apiserver + kube-controller-manager, and secrets-store-csi-driver at every version
#   of CSI_DRIVER_VERSIONS (lib.sh).
# Each comes from its own wrapper module in tests/e2e/tools/<name> (pinned go.mod/go.sum; one per
# driver version, tools/csidriver-<version>), so their dependency graphs never mix. Binaries are
# cached by version in $E2E_BIN; a cached binary is never rebuilt. Go's module and build caches
# stay at their defaults, so CI on one machine is warm.
#
# usage: build-tools.sh [etcd|kube|csi-driver|pin|all]...   (default: all)
#          pin: only write the missing pinned modules of the driver versions (no build)
# env:   E2E_BUILD_TIMING=FILE  append `/usr/bin/time -v` reports of each build to FILE
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$E2E_BIN"
export CGO_ENABLED=0
# Don't let a user's GOFLAGS (e.g. -mod=vendor) change what gets built.
export GOFLAGS="-buildvcs=false -mod=readonly"

timed() {
  local name="$1"
  shift
  local start=$SECONDS
  if [[ -n "${E2E_BUILD_TIMING:-}" && -x /usr/bin/time ]]; then
    local report
    report="$(mktemp)"
    /usr/bin/time -v -o "$report" "$@"
    {
      echo "== $name"
      grep -E 'Elapsed|User time|System time|Maximum resident' "$report"
    } >>"$E2E_BUILD_TIMING"
    rm -f "$report"
  else
    "$@"
  fi
  log "built $name in $((SECONDS - start))s"
}

# build NAME MODULE_DIR OUT PKG [LDFLAGS]: go build PKG in MODULE_DIR into OUT (atomically).
build() {
  local name="$1" dir="$2" out="$3" pkg="$4" ldflags="${5:-}"
  if [[ -x "$out" ]]; then
    log "$name: cached at $out"
    return 0
  fi
  log "$name: building $pkg (cold builds take minutes)"
  local tmp="$out.tmp.$$"
  (cd "$E2E_DIR/tools/$dir" && timed "$name" go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg")
  mv -f "$tmp" "$out"
}

build_etcd() {
  build etcd etcd "$(etcd_bin)" go.etcd.io/etcd/server/v3 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
}

build_kube() {
  local ld="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ld+=" -X k8s.io/component-base/version.gitMajor=$(echo "$KUBE_VERSION" | cut -d. -f1 | tr -d v)"
  ld+=" -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  build kube-apiserver kube "$(kube_apiserver_bin)" k8s.io/kubernetes/cmd/kube-apiserver "$ld"
  build kube-controller-manager kube "$(kube_controller_manager_bin)" k8s.io/kubernetes/cmd/kube-controller-manager "$ld"
}

# pin_csi_driver VERSION: writes what a driver version needs, if missing, from the module graph
# the driver's own go.mod selects (minimal version selection, so the result does not depend on
# when it is run): the wrapper module that builds its binary, and the suite's modfile that
# compiles the suite against its packages. Commit both (their go.sum pins every hash).
pin_csi_driver() {
  local v="$1"
  [[ "$v" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "driver version $v is not vMAJOR.MINOR.PATCH"
  local dir="$E2E_DIR/tools/csidriver-$v"
  if [[ ! -f "$dir/go.mod" ]]; then
    log "pinning tools/csidriver-$v (commit it)"
    mkdir -p "$dir"
    printf '%s\n' \
      "module github.com/akeyless-csi-provider/tests/e2e/tools/csidriver-$v" "" "go 1.25.9" "" \
      "replace monis.app/mlog => ../mlogshim" "" \
      "tool sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver" "" \
      "require sigs.k8s.io/secrets-store-csi-driver $v" >"$dir/go.mod"
    if ! (cd "$dir" && GOFLAGS=-mod=mod go mod tidy); then
      rm -f "$dir/go.mod" "$dir/go.sum"
      rmdir "$dir" 2>/dev/null || true
      die "cannot resolve driver $v"
    fi
  fi
  [[ "$v" == "$(suite_default_driver)" ]] && return 0
  local modfile
  modfile="$(suite_modfile "$v")"
  if [[ ! -f "$modfile" ]]; then
    log "pinning suite/modfiles/driver-$v.mod (commit it with its .sum)"
    mkdir -p "$(dirname "$modfile")"
    # Only the driver is required: every other dependency comes at the version the driver's
    # graph selects (gRPC, client-go, ...), so the conformance suite runs that version's provider
    # client as that version ships it.
    printf '%s\n' \
      "module github.com/akeyless-csi-provider/tests/e2e/suite" "" "go 1.25.9" "" \
      "replace monis.app/mlog => ../tools/mlogshim" "" \
      "require sigs.k8s.io/secrets-store-csi-driver $v" >"$modfile"
    if ! (cd "$E2E_DIR/suite" && GOFLAGS=-mod=mod go mod tidy -modfile="$modfile"); then
      rm -f "$modfile" "${modfile%.mod}.sum"
      die "cannot resolve the suite against driver $v"
    fi
  fi
}

build_csi_driver() {
  local v
  for v in "${CSI_DRIVER_VERSIONS[@]}"; do
    pin_csi_driver "$v"
    build "secrets-store-csi-driver $v" "csidriver-$v" "$(csi_driver_bin "$v")" \
      sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver \
      "-X sigs.k8s.io/secrets-store-csi-driver/pkg/version.BuildVersion=$v"
  done
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(all)
for t in "${targets[@]}"; do
  case "$t" in
    etcd) build_etcd ;;
    kube) build_kube ;;
    csi-driver) build_csi_driver ;;
    pin) for v in "${CSI_DRIVER_VERSIONS[@]}"; do pin_csi_driver "$v"; done ;;
    all) build_etcd; build_kube; build_csi_driver ;;
    *) die "unknown target $t" ;;
  esac
done
