#!/usr/bin/env bash
# Checks the Helm chart: `helm lint --strict` and `helm template` with the default values and
# with every option set (ci/all-options-values.yaml), that deploy/manifests is the chart's
# current rendering, and `kubectl apply --dry-run=server` of both renderings against a real
# kube-apiserver (tests/e2e/control-plane.sh; skipped only with CHART_DRY_RUN=0).
#
# usage: hack/helm/check-chart.sh [--update]   (--update rewrites deploy/manifests)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHART="$ROOT/deploy/helm/akeyless-csi-provider"
MANIFEST="$ROOT/deploy/manifests/akeyless-csi-provider.yaml"
SYNC_MANIFEST="$ROOT/deploy/manifests/akeyless-csi-provider-sync.yaml"
HELM="$("$ROOT/hack/helm/build.sh")"
work="$(mktemp -d)"
cleanup() {
  if [[ -f "$work/control-plane/env" || -d "$work/control-plane" ]]; then
    "$ROOT/tests/e2e/control-plane.sh" down "$work/control-plane" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '[chart] %s\n' "$*" >&2; }

say "helm lint --strict (defaults, all options)"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/all-options-values.yaml"

say "helm template (defaults, all options)"
"$HELM" template akeyless-csi-provider "$CHART" -n kube-system >"$work/default.yaml"
"$HELM" template akeyless-csi-provider "$CHART" -n kube-system \
  -f "$CHART/ci/all-options-values.yaml" >"$work/all-options.yaml"
grep -q 'kind: DaemonSet' "$work/default.yaml"
if grep -q 'kind: Deployment' "$work/default.yaml"; then
  echo "the sync Deployment must be off by default" >&2
  exit 1
fi
for kind in DaemonSet Deployment ClusterRole ServiceMonitor Service PrometheusRule ConfigMap; do
  grep -q "^kind: $kind\$" "$work/all-options.yaml" || { echo "all options: no $kind rendered" >&2; exit 1; }
done

say "a bad value is refused by values.schema.json"
if "$HELM" template x "$CHART" --set image.tag=latest >/dev/null 2>&1; then
  echo "image.tag=latest was accepted" >&2
  exit 1
fi

# The plain manifests: the default rendering, without the random version-key Secret (a committed
# file must not carry a key); the DaemonSet reads the Secret the header tells admins to create.
render_plain() {
  {
    cat <<'HEADER'
# akeyless-csi-provider, rendered from deploy/helm/akeyless-csi-provider with default values
# (hack/helm/check-chart.sh --update). Prefer the chart; to use this file:
#   kubectl -n kube-system create secret generic akeyless-csi-provider-version-key \
#     --from-literal=key="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
#   kubectl apply -f deploy/manifests/akeyless-csi-provider.yaml
# Set the image to the one you built from the Dockerfile (by tag and digest).
HEADER
    "$HELM" template akeyless-csi-provider "$CHART" -n kube-system \
      --set objectVersionKey.existingSecret=akeyless-csi-provider-version-key \
      | sed -e '/^# Source: /d'
  }
}
# The sync controller alone (its ServiceAccount, RBAC and Deployment), for clusters that add it
# to the plain manifests; the e2e suite runs the controller with exactly this RBAC.
render_sync() {
  {
    cat <<'HEADER'
# akeyless-csi-provider sync controller, rendered from deploy/helm/akeyless-csi-provider with
# sync.enabled=true (hack/helm/check-chart.sh --update). Apply after akeyless-csi-provider.yaml:
#   kubectl apply -f deploy/manifests/akeyless-csi-provider-sync.yaml
HEADER
    "$HELM" template akeyless-csi-provider "$CHART" -n kube-system \
      --set objectVersionKey.existingSecret=akeyless-csi-provider-version-key \
      --set sync.enabled=true --show-only templates/sync.yaml \
      | sed -e '/^# Source: /d'
  }
}
render_plain >"$work/plain.yaml"
render_sync >"$work/sync.yaml"
if [[ "${1:-}" == "--update" ]]; then
  mkdir -p "$(dirname "$MANIFEST")"
  cp "$work/plain.yaml" "$MANIFEST"
  cp "$work/sync.yaml" "$SYNC_MANIFEST"
  say "wrote $MANIFEST and $SYNC_MANIFEST"
elif ! diff -u "$MANIFEST" "$work/plain.yaml" || ! diff -u "$SYNC_MANIFEST" "$work/sync.yaml"; then
  echo "deploy/manifests is stale: run hack/helm/check-chart.sh --update" >&2
  exit 1
fi

if [[ "${CHART_DRY_RUN:-1}" == "0" ]]; then
  say "CHART_DRY_RUN=0: skipping the server-side dry run"
  exit 0
fi
say "kubectl apply --dry-run=server against a real kube-apiserver"
"$ROOT/tests/e2e/control-plane.sh" up "$work/control-plane"
# shellcheck disable=SC1091
source "$work/control-plane/env"
export KUBECONFIG
kubectl apply -f "$ROOT/hack/helm/testdata/servicemonitor-crd.yaml" >/dev/null
kubectl apply -f "$ROOT/hack/helm/testdata/prometheusrule-crd.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/servicemonitors.monitoring.coreos.com \
  crd/prometheusrules.monitoring.coreos.com >/dev/null
# The all-options dashboard ConfigMap goes to Grafana's namespace.
kubectl create namespace monitoring >/dev/null
for f in default all-options plain sync; do
  file="$work/$f.yaml"
  [[ $f == plain ]] && file="$MANIFEST"
  [[ $f == sync ]] && file="$SYNC_MANIFEST"
  say "dry run: $f"
  kubectl apply --dry-run=server -f "$file"
done
# helm's own server-side dry run: renders NOTES (which must tell the admin about tokenRequests)
# and exercises `lookup` of the version-key Secret against the API.
say "helm install --dry-run=server"
"$HELM" install akeyless-csi-provider "$CHART" -n kube-system --dry-run=server \
  -f "$CHART/ci/all-options-values.yaml" >"$work/install.out"
grep -q 'tokenRequests:' "$work/install.out" || { echo "NOTES lack the CSIDriver tokenRequests" >&2; exit 1; }
sed -n '/^NOTES:/,$p' "$work/install.out"
"$HELM" install akeyless-csi-provider "$CHART" -n kube-system --dry-run=server >/dev/null
# The dry run can fail: a field the API doesn't know is refused (strict field validation).
sed -e 's/^  updateStrategy:$/  updateStrategyy:/' "$work/default.yaml" >"$work/typo.yaml"
if kubectl apply --dry-run=server -f "$work/typo.yaml" >"$work/typo.out" 2>&1; then
  echo "the apiserver accepted a DaemonSet with an unknown field; the dry run proves nothing" >&2
  exit 1
fi
grep -q 'unknown field' "$work/typo.out" || { cat "$work/typo.out" >&2; exit 1; }
say "chart OK"
