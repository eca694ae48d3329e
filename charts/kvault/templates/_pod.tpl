{{/* The operator Pod (kopf handlers and the data plane in one process), for the Deployment
(SQLite) and the StatefulSet (PostgreSQL). */}}
{{- define "kvault.podTemplate" -}}
template:
  metadata:
    labels:
      {{- include "kvault.selectorLabels" . | nindent 6 }}
      {{- with .Values.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    annotations:
      # Any change of values rolls the pod on `helm upgrade`.
      checksum/values: {{ toJson .Values | sha256sum }}
      {{- with .Values.podAnnotations }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  spec:
    serviceAccountName: {{ include "kvault.serviceAccountName" . }}
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.priorityClassName }}
    priorityClassName: {{ . }}
    {{- end }}
    securityContext:
      {{- toYaml .Values.podSecurityContext | nindent 6 }}
    containers:
      - name: operator
        image: {{ include "kvault.image" . | quote }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        command:
          {{- toYaml .Values.operator.command | nindent 10 }}
        args:
          - --data-dir={{ .Values.persistence.mountPath }}
          {{- if include "kvault.postgresql" . }}
          # The DSN (password included) from the mounted Secret: never in argv or env.
          - --storage=postgresql
          - --storage-option=dsn_file={{ include "kvault.dsnFile" . }}
          {{- with .Values.storage.postgresql.poolSize }}
          - --storage-option=pool_size={{ int . }}
          {{- end }}
          {{- with .Values.storage.postgresql.timeout }}
          - --storage-option=timeout={{ . }}
          {{- end }}
          {{- if not (kindIs "invalid" .Values.storage.postgresql.cacheMB) }}
          - --storage-option=cache_mb={{ int .Values.storage.postgresql.cacheMB }}
          {{- end }}
          {{- end }}
          - --host=0.0.0.0
          - --port={{ .Values.dataPlane.containerPort }}
          {{- with (include "kvault.dataPlaneArgs" . | trim) }}
          {{- . | nindent 10 }}
          {{- end }}
          - --metrics-port={{ if .Values.metrics.enabled }}{{ .Values.metrics.port }}{{ else }}-1{{ end }}
          - --hsm={{ .Values.operator.hsm.plugin }}
          {{- range $key, $value := .Values.operator.hsm.options }}
          - --hsm-option={{ $key }}={{ $value }}
          {{- end }}
          {{- range .Values.operator.audiences }}
          - --audience={{ . }}
          {{- end }}
          {{- range .Values.operator.watchNamespaces }}
          - --namespace={{ . }}
          {{- end }}
          - --workers={{ .Values.operator.workers }}
          {{- with (.Values.operator.dev).certificateValidityFloorSeconds }}
          - --dev-certificate-validity-floor={{ . }}
          {{- end }}
          - --lease-namespace=$(KVAULT_NAMESPACE)
          - --lease-name={{ .Values.operator.leaseName }}
          # Per-Vault Services select the operator's pods by these labels.
          - --service-selector={{ include "kvault.selectorString" . }}
          # kvault-ca in this namespace: the `helm test` pod verifies TLS with it.
          - --publish-ca
          {{- if .Values.webhook.enabled }}
          - --webhook-port={{ .Values.webhook.port }}
          - --webhook-service={{ include "kvault.webhookService" . }}
          - --webhook-configuration={{ include "kvault.clusterName" . }}
          - --webhook-cert-validity={{ .Values.webhook.certValiditySeconds }}
          {{- end }}
          {{- with .Values.operator.extraArgs }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        env:
          - name: KVAULT_NAMESPACE
            valueFrom:
              fieldRef:
                fieldPath: metadata.namespace
          - name: KVAULT_POD_NAME
            valueFrom:
              fieldRef:
                fieldPath: metadata.name
          # The data plane's Service (in KVAULT_NAMESPACE).
          - name: KVAULT_SERVICE_NAME
            value: {{ include "kvault.fullname" . }}
          {{- with .Values.operator.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        ports:
          - name: https
            containerPort: {{ .Values.dataPlane.containerPort }}
            protocol: TCP
          {{- if .Values.metrics.enabled }}
          - name: metrics
            containerPort: {{ .Values.metrics.port }}
            protocol: TCP
          {{- end }}
          {{- if .Values.webhook.enabled }}
          - name: webhook
            containerPort: {{ .Values.webhook.port }}
            protocol: TCP
          {{- end }}
        {{- with .Values.readinessProbe }}
        readinessProbe:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- with .Values.livenessProbe }}
        livenessProbe:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        securityContext:
          {{- toYaml .Values.securityContext | nindent 10 }}
        resources:
          {{- toYaml .Values.resources | nindent 10 }}
        volumeMounts:
          - name: data
            mountPath: {{ .Values.persistence.mountPath }}
          # Read-only root filesystem: a small in-memory /tmp for libraries that want one
          # (kvault itself writes no temp files).
          - name: tmp
            mountPath: /tmp
          {{- if include "kvault.postgresql" . }}
          - name: postgresql
            mountPath: {{ include "kvault.dsnDir" . }}
            readOnly: true
          {{- end }}
          {{- with .Values.operator.extraVolumeMounts }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
    volumes:
      {{- if not (and .Values.persistence.enabled (include "kvault.postgresql" .)) }}
      - name: data
        {{- if .Values.persistence.enabled }}
        persistentVolumeClaim:
          claimName: {{ include "kvault.claimName" . }}
        {{- else if include "kvault.postgresql" . }}
        # No persistence: a replica's audit log is lost when its pod goes (tests, demos).
        emptyDir: {}
        {{- else }}
        # No persistence: every vault is lost when the pod goes (tests, demos).
        emptyDir: {}
        {{- end }}
      {{- end }}
      - name: tmp
        emptyDir:
          medium: Memory
          sizeLimit: 16Mi
      {{- if include "kvault.postgresql" . }}
      - name: postgresql
        secret:
          secretName: {{ .Values.storage.postgresql.existingSecret }}
          defaultMode: 0440  # the pod's fsGroup reads it
          items:
            - key: {{ .Values.storage.postgresql.secretKey }}
              path: {{ .Values.storage.postgresql.secretKey }}
      {{- end }}
      {{- with .Values.operator.extraVolumes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .Values.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- if .Values.affinity }}
    affinity:
      {{- toYaml .Values.affinity | nindent 6 }}
    {{- else if gt (int (include "kvault.replicas" .)) 1 }}
    # Replicas on different nodes where the cluster has them (preferred, not required).
    affinity:
      podAntiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  {{- include "kvault.selectorLabels" . | nindent 18 }}
    {{- end }}
{{- end }}

{{/* Where the DSN Secret is mounted, and its file (the Secret's key). */}}
{{- define "kvault.dsnDir" -}}
/etc/kvault/postgresql
{{- end }}

{{- define "kvault.dsnFile" -}}
{{- printf "%s/%s" (include "kvault.dsnDir" .) .Values.storage.postgresql.secretKey }}
{{- end }}

{{/* The data plane's connection caps, deadlines and throttling: a flag only for a value
that is set (null: kvault's default, values.yaml lists them). */}}
{{- define "kvault.dataPlaneArgs" -}}
{{- $dp := .Values.dataPlane }}
{{- range $key, $flag := dict "headerTimeout" "header-timeout" "bodyTimeout" "body-timeout" "idleTimeout" "idle-timeout" }}
{{- $value := index $dp $key }}
{{- if not (kindIs "invalid" $value) }}
- --{{ $flag }}={{ $value }}
{{- end }}
{{- end }}
{{- range $key, $flag := dict "maxConnections" "max-connections" "maxConnectionsPerClient" "max-connections-per-client" }}
{{- $value := index $dp $key }}
{{- if not (kindIs "invalid" $value) }}
- --{{ $flag }}={{ int $value }}
{{- end }}
{{- end }}
{{- range $key, $flag := dict "vaultRateLimit" "vault-rate-limit" "principalRateLimit" "principal-rate-limit" }}
{{- $value := index $dp $key }}
{{- if not (kindIs "invalid" $value) }}
- --{{ $flag }}={{ $value }}
{{- end }}
{{- end }}
{{- end }}
