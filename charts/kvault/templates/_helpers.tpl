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

{{/* The StatefulSet's governing (headless) Service, on PostgreSQL. */}}
{{- define "kvault.headlessService" -}}
{{- printf "%s-headless" (include "kvault.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kvault.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* "true" when the storage is PostgreSQL (empty otherwise), after checking the values that
PostgreSQL needs or cannot work with: a failure names the value and says why. */}}
{{- define "kvault.postgresql" -}}
{{- $backend := (.Values.storage).backend | default "sqlite" }}
{{- if eq $backend "postgresql" }}
{{- if not .Values.storage.postgresql.existingSecret }}
{{- fail "storage.postgresql.existingSecret: with storage.backend postgresql, name the Secret (in the release namespace) that holds the postgresql:// DSN under storage.postgresql.secretKey (default dsn); it is mounted as a file, never put in argv or the environment" }}
{{- end }}
{{- if eq .Values.operator.hsm.plugin "software" }}
{{- $opts := .Values.operator.hsm.options | default dict }}
{{- if not (or $opts.key_env $opts.key_file) }}
{{- fail "operator.hsm.options: with storage.backend postgresql every replica must open the rows with the same root key, but the software HSM without options creates its own key in each replica's data directory; set operator.hsm.options.key_env (e.g. KVAULT_ROOT_KEY, from a Secret through operator.extraEnv; docs/helm.md) or key_file (one file outside the data directory that every replica mounts, mode 0600), or use operator.hsm.plugin pkcs11" }}
{{- end }}
{{- if and $opts.key_file (hasPrefix (printf "%s/" (trimSuffix "/" .Values.persistence.mountPath)) (toString $opts.key_file)) }}
{{- fail (printf "operator.hsm.options.key_file: %s is in the data directory (persistence.mountPath), which is each replica's own volume on storage.backend postgresql, so the replicas would create different root keys; use key_env from a Secret (operator.extraEnv), or a key_file that every replica mounts (operator.extraVolumes/extraVolumeMounts)" (toString $opts.key_file)) }}
{{- end }}
{{- end }}
{{- if and .Values.persistence.enabled .Values.persistence.existingClaim }}
{{- fail "persistence.existingClaim: with storage.backend postgresql each replica gets a claim of its own from the StatefulSet's volumeClaimTemplates (its audit log and checkpoint; the rows are in PostgreSQL), so one existing claim cannot serve them; unset persistence.existingClaim" }}
{{- end }}
{{- print "true" }}
{{- else if ne $backend "sqlite" }}
{{- fail (printf "storage.backend: %q is not sqlite or postgresql" $backend) }}
{{- end }}
{{- end }}

{{/* Replicas: replicaCount, else 1 on SQLite and 2 on PostgreSQL. */}}
{{- define "kvault.replicas" -}}
{{- if include "kvault.postgresql" . }}
{{- if kindIs "invalid" .Values.replicaCount }}2{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- else }}
{{- if kindIs "invalid" .Values.replicaCount }}1{{ else if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount: %d is refused on storage.backend sqlite: SQLite has a single writer, one pod on a ReadWriteOnce volume; use 0 or 1 (null: 1), or storage.backend postgresql for several replicas" (int .Values.replicaCount)) }}
{{- else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}
{{- end }}
