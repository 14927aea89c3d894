{{/* Name of the admission webhook's objects: Deployment, Service, RBAC and the
ValidatingWebhookConfiguration (cluster-scoped, so it carries the release's full name). */}}
{{- define "akeyless-csi-provider.webhookName" -}}
{{- printf "%s-webhook" (include "akeyless-csi-provider.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the webhook Deployment. */}}
{{- define "akeyless-csi-provider.webhookSelectorLabels" -}}
app.kubernetes.io/name: {{ include "akeyless-csi-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "akeyless-csi-provider.webhookServiceAccountName" -}}
{{- default (include "akeyless-csi-provider.webhookName" .) .Values.webhook.serviceAccount.name }}
{{- end }}
