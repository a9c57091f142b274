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
# Why each verb is here (and nothing more): the operator's tests run it as this chart's
# ServiceAccount under RBAC enforcement, so a missing verb fails a test.
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["dnszones"]
  # get/list/watch: the controller's cache; patch: its finalizer (JSON patch).
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["dnszones/status", "zonesyncs/status"]
  # patch: status is written by server-side apply / merge patch.
  verbs: ["patch"]
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["dnszones/finalizers", "zonesyncs/finalizers"]
  # update: the ConfigMaps the operator owns carry ownerReferences with
  # blockOwnerDeletion: true, which a cluster only lets those who may update the owner's
  # finalizers set (OwnerReferencesPermissionEnforcement).
  verbs: ["update"]
- apiGroups: ["dns.zonekeeper.io"]
  resources: ["zonesyncs"]
  # list/watch: the ZoneSync controller; get: a sync's phase read fresh before it runs (the
  # cache may lag the controller's own writes; a sync runs once); create: the scheduled drift
  # check starts syncs; delete: completed and failed syncs beyond the zone's history limits.
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  # get: TSIG keys, read by name; list/watch: a key's change triggers its zones (the watch
  # may carry metadata only, but it is still a list/watch of Secrets).
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["configmaps"]
  # get/list/watch: recordsFrom sources and their changes; patch: ownership records and sync
  # snapshots are written by server-side apply; delete: snapshots of pruned syncs.
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  # create/patch: the events kube's Recorder publishes (and counts on repeat).
  verbs: ["create", "patch"]
{{- end -}}
