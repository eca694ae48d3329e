{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "kvault.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "kvault.fullname" -}}
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

{{- define "kvault.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kvault.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvault.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kvault.labels" -}}
helm.sh/chart: {{ include "kvault.chart" . }}
{{ include "kvault.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kvault.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvault.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kvault.claimName" -}}
{{- default (printf "%s-data" (include "kvault.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* The selector labels as k=v,k=v (for --service-selector). */}}
{{- define "kvault.selectorString" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "kvault.name" .) .Release.Name }}
{{- end }}

{{/* Name of cluster-scoped objects: two releases (other name or namespace) never collide. */}}
{{- define "kvault.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "kvault.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kvault.webhookService" -}}
{{- printf "%s-webhook" (include "kvault.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kvault.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
