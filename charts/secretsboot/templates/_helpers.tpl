{{/* The release-scoped name of every object: RELEASE-secretsboot-audit, cut to 63. */}}
{{- define "secretsboot.fullname" -}}
{{- printf "%s-secretsboot-audit" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "secretsboot.labels" -}}
app.kubernetes.io/name: secretsboot-audit
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: audit
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "secretsboot.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "secretsboot.claim" -}}
{{- .Values.reports.persistence.existingClaim | default (printf "%s-reports" (include "secretsboot.fullname" .)) -}}
{{- end -}}

{{/* The arguments of one `secretsboot audit --cluster` run writing FORMAT to /reports. */}}
{{- define "secretsboot.auditArgs" -}}
{{- $root := .root -}}
- audit
- --cluster
{{- with $root.Values.namespace }}
- --namespace
- {{ . | quote }}
{{- end }}
- --output
- {{ .format }}
- --out
- /reports/audit.{{ .ext }}
- --severity-threshold
- {{ $root.Values.severityThreshold | quote }}
{{- if $root.Values.policy }}
- --policy
- /etc/secretsboot-audit/policy.yaml
{{- end }}
{{- if $root.Values.suppressions }}
- --suppressions
- /etc/secretsboot-audit/suppressions.yaml
{{- end }}
{{- range $root.Values.trustedRegistries }}
- --trusted-registry
- {{ . | quote }}
{{- end }}
{{- if .reportOnly }}
- --report-only
{{- end }}
{{- end -}}
