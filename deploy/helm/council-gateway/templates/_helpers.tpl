{{/* The release's name for its objects. */}}
{{- define "gw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gw.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gw.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gw.secretName" -}}
{{- default (printf "%s-secrets" (include "gw.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The gateway's config: the values' config, with what the container
     decides (addresses, paths, secret files) set over it. */}}
{{- define "gw.config" -}}
{{- $fixed := dict
  "server" (dict
    "http" (printf "0.0.0.0:%v" .Values.ports.http)
    "flight" (printf "0.0.0.0:%v" .Values.ports.flight)
    "postgres" (ternary (printf "0.0.0.0:%v" .Values.ports.postgres) "off" .Values.service.postgres.enabled)
    "admin" (printf "0.0.0.0:%v" .Values.ports.admin)
    "flight_ticket_key_file" "/etc/gateway/secrets/flight_ticket_key")
  "policy" (ternary (dict "hash_salt_file" "/etc/gateway/secrets/hash_salt") (dict "dir" "/etc/gateway/policies" "hash_salt_file" "/etc/gateway/secrets/hash_salt") (hasKey (default (dict) .Values.config.policy) "bundle"))
  "audit" (dict
    "file" "/var/lib/gateway/audit/audit.jsonl"
    "hmac_key_file" "/etc/gateway/secrets/audit_hmac_key"
    "signing_key_file" "/etc/gateway/secrets/audit_signing_key.pem")
  "query" (dict "temp_dir" "/var/lib/gateway/tmp") -}}
{{- mustMergeOverwrite (deepCopy .Values.config) $fixed | toYaml -}}
{{- end -}}
