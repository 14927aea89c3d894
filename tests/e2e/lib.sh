# Shared settings for the end-to-end scripts. Sourced, not executed.
# shellcheck shell=bash

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"

# Versions of the real components. Each is built from Go modules by build-tools.sh, in its own
# wrapper module under tests/e2e/tools/, and cached by version.
ETCD_VERSION="v3.6.16"
KUBE_VERSION="v1.35.4"
# The Secrets Store CSI Driver versions the provider is proven against, oldest first: run.sh (and
# so .ci/run) runs the `driver` and `conformance` suites against each. Adding one is a one-line
# change here: build-tools.sh pins its wrapper module (tools/csidriver-<version>) and the suite's
# modfile (suite/modfiles/driver-<version>.mod) when they are missing; commit what it writes.
CSI_DRIVER_VERSIONS=(v1.4.8 v1.5.4 v1.6.0)
# E2E_DRIVER_VERSIONS="v1.6.0" (space-separated) runs these versions instead.
if [[ -n "${E2E_DRIVER_VERSIONS:-}" ]]; then
  read -r -a CSI_DRIVER_VERSIONS <<<"$E2E_DRIVER_VERSIONS"
fi

E2E_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/akeyless-csi-provider"
E2E_BIN="$E2E_CACHE/bin"

etcd_bin() { echo "$E2E_BIN/etcd-$ETCD_VERSION"; }
kube_apiserver_bin() { echo "$E2E_BIN/kube-apiserver-$KUBE_VERSION"; }
kube_controller_manager_bin() { echo "$E2E_BIN/kube-controller-manager-$KUBE_VERSION"; }
csi_driver_bin() { echo "$E2E_BIN/secrets-store-csi-driver-$1"; }
# The suite's go.mod requires the newest driver; every other version has its own modfile, so the
# suite compiles against that version's packages and their own dependency graph.
suite_modfile() { echo "$E2E_DIR/suite/modfiles/driver-$1.mod"; }
suite_default_driver() { sed -n 's#^\s*sigs.k8s.io/secrets-store-csi-driver \(v[^ ]*\).*#\1#p' "$E2E_DIR/suite/go.mod"; }

log() { printf '[e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
