{{/* Names and labels shared by every template. */}}
{{- define "hybrid.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hybrid.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hybrid.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "hybrid.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "hybrid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hybrid.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: supernode
{{- end -}}

{{- define "hybrid.redisName" -}}
{{- printf "%s-redis" (include "hybrid.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret and key holding the Redis connection string. */}}
{{- define "hybrid.redisSecret" -}}
{{- if .Values.redis.bundled -}}{{ include "hybrid.redisName" . }}{{- else -}}{{ required "redis.external.existingSecret is required when redis.bundled is false" .Values.redis.external.existingSecret }}{{- end -}}
{{- end -}}

{{- define "hybrid.redisSecretKey" -}}
{{- if .Values.redis.bundled -}}connectionString{{- else -}}{{ .Values.redis.external.secretKey }}{{- end -}}
{{- end -}}
