{{- define "zonekeeper.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "zonekeeper.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "zonekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zonekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zonekeeper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs, shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "zonekeeper.rules" -}}
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["dnszones"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["dnszones/status", "zonesyncs/status"]
  verbs: ["patch"]
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["zonesyncs"]
  # delete: completed and failed syncs beyond the zone's history limits.
  verbs: ["list", "watch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["configmaps"]
  # Ownership records and sync snapshots are written by server-side apply (patch).
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
