#!/usr/bin/env bash
# Builds the real upstream components the end-to-end suite runs, from Go modules:
#   etcd, kube-apiserver + kube-controller-manager, secrets-store-csi-driver.
# Each comes from its own wrapper module in tests/e2e/tools/<name> (pinned go.mod/go.sum), so their
# dependency graphs never mix. Binaries are cached by version in $E2E_BIN; a cached binary is
# never rebuilt. Go's module and build caches stay at their defaults, so CI on one machine is warm.
#
# usage: build-tools.sh [etcd|kube|csi-driver|all]...   (default: all)
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
      grep -E 'Elapsed|Maximum resident' "$report"
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

build_csi_driver() {
  build secrets-store-csi-driver csidriver "$(csi_driver_bin)" \
    sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver \
    "-X sigs.k8s.io/secrets-store-csi-driver/pkg/version.BuildVersion=$CSI_DRIVER_VERSION"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(all)
for t in "${targets[@]}"; do
  case "$t" in
    etcd) build_etcd ;;
    kube) build_kube ;;
    csi-driver) build_csi_driver ;;
    all) build_etcd; build_kube; build_csi_driver ;;
    *) die "unknown target $t" ;;
  esac
done
