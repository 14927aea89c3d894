# Shared settings for the end-to-end scripts. Sourced, not executed.
# shellcheck shell=bash

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"

# Versions of the real components. Each is built from Go modules by build-tools.sh, in its own
# wrapper module under tests/e2e/tools/, and cached by version.
ETCD_VERSION="v3.6.16"
KUBE_VERSION="v1.35.4"
CSI_DRIVER_VERSION="v1.6.0"

E2E_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider"
E2E_BIN="$E2E_CACHE/bin"

etcd_bin() { echo "$E2E_BIN/etcd-$ETCD_VERSION"; }
kube_apiserver_bin() { echo "$E2E_BIN/kube-apiserver-$KUBE_VERSION"; }
kube_controller_manager_bin() { echo "$E2E_BIN/kube-controller-manager-$KUBE_VERSION"; }
csi_driver_bin() { echo "$E2E_BIN/secrets-store-csi-driver-$CSI_DRIVER_VERSION"; }

log() { printf '[e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
