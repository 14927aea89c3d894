{{/* Chart name, truncated to 63 characters. */}}
{{- define "akeyless-csi-provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: the release name, plus the chart name unless the release name contains it. */}}
{{- define "akeyless-csi-provider.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "akeyless-csi-provider.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "akeyless-csi-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: akeyless-csi-provider
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the provider DaemonSet. */}}
{{- define "akeyless-csi-provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "akeyless-csi-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: provider
{{- end }}

{{/* Selector labels of the sync Deployment. */}}
{{- define "akeyless-csi-provider.syncSelectorLabels" -}}
app.kubernetes.io/name: {{ include "akeyless-csi-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: sync
{{- end }}

{{- define "akeyless-csi-provider.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "akeyless-csi-provider.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "akeyless-csi-provider.syncServiceAccountName" -}}
{{- default (printf "%s-sync" (include "akeyless-csi-provider.fullname" .)) .Values.sync.serviceAccount.name }}
{{- end }}

{{/* The image, pinned by tag and, when given, by digest. */}}
{{- define "akeyless-csi-provider.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: refusing \"latest\"; pin a version (and optionally image.digest)" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the object-version key, or empty when there is none. */}}
{{- define "akeyless-csi-provider.versionKeySecret" -}}
{{- if .Values.objectVersionKey.existingSecret }}
{{- .Values.objectVersionKey.existingSecret }}
{{- else if .Values.objectVersionKey.create }}
{{- printf "%s-version-key" (include "akeyless-csi-provider.fullname" .) }}
{{- end }}
{{- end }}

{{/* Flags shared by the provider and the sync controller. */}}
{{- define "akeyless-csi-provider.commonArgs" -}}
- --akeyless-url={{ .Values.akeylessURL }}
- --log-format={{ .Values.logFormat }}
- --log-level={{ .Values.logLevel }}
- --connect-timeout={{ .Values.connectTimeout }}
- --max-objects={{ .Values.maxObjects }}
{{- with .Values.allowedGateways }}
- --allowed-gateways={{ join "," . }}
{{- end }}
{{- if .Values.caBundle.configMapName }}
- --ca-bundle=/etc/akeyless-csi-provider/ca/{{ .Values.caBundle.key }}
{{- end }}
{{- if include "akeyless-csi-provider.versionKeySecret" . }}
- --object-version-key-file=/etc/akeyless-csi-provider/version-key/key
{{- end }}
{{- end }}

{{/* Volumes shared by the provider and the sync controller. */}}
{{- define "akeyless-csi-provider.commonVolumes" -}}
{{- with include "akeyless-csi-provider.versionKeySecret" . }}
- name: version-key
  secret:
    secretName: {{ . }}
    defaultMode: 0400
    items:
      - key: key
        path: key
{{- end }}
{{- if .Values.caBundle.configMapName }}
- name: ca-bundle
  configMap:
    name: {{ .Values.caBundle.configMapName }}
{{- end }}
{{- end }}

{{- define "akeyless-csi-provider.commonVolumeMounts" -}}
{{- if include "akeyless-csi-provider.versionKeySecret" . }}
- name: version-key
  mountPath: /etc/akeyless-csi-provider/version-key
  readOnly: true
{{- end }}
{{- if .Values.caBundle.configMapName }}
- name: ca-bundle
  mountPath: /etc/akeyless-csi-provider/ca
  readOnly: true
{{- end }}
{{- end }}
