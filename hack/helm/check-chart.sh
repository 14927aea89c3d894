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
WEBHOOK_MANIFEST="$ROOT/deploy/manifests/akeyless-csi-provider-webhook.yaml"
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
"$HELM" lint --strict "$CHART" -f "$CHART/ci/webhook-cert-manager-values.yaml"

say "helm template (defaults, all options)"
"$HELM" template akeyless-csi-provider "$CHART" -n kube-system >"$work/default.yaml"
"$HELM" template akeyless-csi-provider "$CHART" -n kube-system \
  -f "$CHART/ci/all-options-values.yaml" >"$work/all-options.yaml"
grep -q 'kind: DaemonSet' "$work/default.yaml"
if grep -q 'kind: Deployment' "$work/default.yaml"; then
  echo "the sync Deployment must be off by default" >&2
  exit 1
fi
for kind in DaemonSet Deployment ClusterRole ServiceMonitor Service PrometheusRule ConfigMap ValidatingWebhookConfiguration NetworkPolicy; do
  grep -q "^kind: $kind\$" "$work/all-options.yaml" || { echo "all options: no $kind rendered" >&2; exit 1; }
done

say "admission webhook: off by default; generated certificate or cert-manager"
"$HELM" template akeyless-csi-provider "$CHART" -n kube-system \
  -f "$CHART/ci/webhook-cert-manager-values.yaml" >"$work/webhook-cert-manager.yaml"
if grep -q 'ValidatingWebhookConfiguration' "$work/default.yaml"; then
  echo "the admission webhook must be off by default" >&2
  exit 1
fi
# Generated certificate: RBAC on the one configuration, by name; cert-manager: none, the
# cainjector annotation, the Certificate and its Issuer.
grep -q 'resourceNames: \[akeyless-provider-webhook\]' "$work/all-options.yaml" \
  || { echo "all options: the webhook's RBAC is not limited to its configuration" >&2; exit 1; }
grep -q 'failurePolicy: Fail' "$work/all-options.yaml" || { echo "webhook.failurePolicy ignored" >&2; exit 1; }
for kind in Certificate Issuer ValidatingWebhookConfiguration; do
  grep -q "^kind: $kind\$" "$work/webhook-cert-manager.yaml" \
    || { echo "cert-manager: no $kind rendered" >&2; exit 1; }
done
grep -q 'cert-manager.io/inject-ca-from: kube-system/akeyless-csi-provider-webhook' "$work/webhook-cert-manager.yaml" \
  || { echo "cert-manager: no cainjector annotation" >&2; exit 1; }
if grep -q 'validatingwebhookconfigurations' "$work/webhook-cert-manager.yaml"; then
  echo "cert-manager: the webhook needs no RBAC then" >&2
  exit 1
fi
"$HELM" template x "$CHART" -f "$CHART/ci/webhook-cert-manager-values.yaml" \
  --set webhook.certManager.issuerRef.kind=ClusterIssuer,webhook.certManager.issuerRef.name=internal-ca \
  >"$work/webhook-issuer.yaml"
grep -q 'name: internal-ca' "$work/webhook-issuer.yaml" && ! grep -q '^kind: Issuer$' "$work/webhook-issuer.yaml" \
  || { echo "cert-manager: webhook.certManager.issuerRef not used" >&2; exit 1; }

say "a bad value is refused by values.schema.json"
if "$HELM" template x "$CHART" --set image.tag=latest >/dev/null 2>&1; then
  echo "image.tag=latest was accepted" >&2
  exit 1
fi
if "$HELM" template x "$CHART" --set webhook.failurePolicy=Deny >/dev/null 2>&1; then
  echo "webhook.failurePolicy=Deny was accepted" >&2
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
# The admission webhook alone (generated certificate); the e2e suite runs it with exactly this
# RBAC and this configuration's rules and matchConditions.
render_webhook() {
  {
    cat <<'HEADER'
# akeyless-csi-provider admission webhook, rendered from deploy/helm/akeyless-csi-provider with
# webhook.enabled=true (hack/helm/check-chart.sh --update). Apply after akeyless-csi-provider.yaml:
#   kubectl apply -f deploy/manifests/akeyless-csi-provider-webhook.yaml
HEADER
    "$HELM" template akeyless-csi-provider "$CHART" -n kube-system \
      --set webhook.enabled=true --show-only templates/webhook.yaml \
      | sed -e '/^# Source: /d'
  }
}
render_plain >"$work/plain.yaml"
render_sync >"$work/sync.yaml"
render_webhook >"$work/webhook.yaml"
if [[ "${1:-}" == "--update" ]]; then
  mkdir -p "$(dirname "$MANIFEST")"
  cp "$work/plain.yaml" "$MANIFEST"
  cp "$work/sync.yaml" "$SYNC_MANIFEST"
  cp "$work/webhook.yaml" "$WEBHOOK_MANIFEST"
  say "wrote $MANIFEST, $SYNC_MANIFEST and $WEBHOOK_MANIFEST"
elif ! diff -u "$MANIFEST" "$work/plain.yaml" || ! diff -u "$SYNC_MANIFEST" "$work/sync.yaml" \
  || ! diff -u "$WEBHOOK_MANIFEST" "$work/webhook.yaml"; then
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
kubectl apply -f "$ROOT/hack/helm/testdata/cert-manager-crds.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/servicemonitors.monitoring.coreos.com \
  crd/prometheusrules.monitoring.coreos.com crd/issuers.cert-manager.io crd/certificates.cert-manager.io >/dev/null
# The all-options dashboard ConfigMap goes to Grafana's namespace.
kubectl create namespace monitoring >/dev/null
for f in default all-options plain sync webhook webhook-cert-manager; do
  file="$work/$f.yaml"
  [[ $f == plain ]] && file="$MANIFEST"
  [[ $f == sync ]] && file="$SYNC_MANIFEST"
  [[ $f == webhook ]] && file="$WEBHOOK_MANIFEST"
  say "dry run: $f"
  kubectl apply --dry-run=server -f "$file"
done
# helm's own server-side dry run: renders NOTES (which must tell the admin about tokenRequests)
# and exercises `lookup` of the version-key Secret against the API.
say "helm install --dry-run=server"
"$HELM" install akeyless-csi-provider "$CHART" -n kube-system --dry-run=server \
  -f "$CHART/ci/all-options-values.yaml" >"$work/install.out"
grep -q 'tokenRequests:' "$work/install.out" || { echo "NOTES lack the CSIDriver tokenRequests" >&2; exit 1; }
grep -q 'provider identity is on for aws_iam gcp azure_ad' "$work/install.out" \
  || { echo "NOTES lack the providerIdentity warning" >&2; exit 1; }
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
