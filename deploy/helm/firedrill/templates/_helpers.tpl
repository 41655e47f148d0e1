{{/* Names: nothing here hard-codes a release name or a namespace, so the chart works as a subchart. */}}
{{- define "firedrill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "firedrill.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "firedrill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "firedrill.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
app.kubernetes.io/name is always "firedrill" (not nameOverride): each throwaway's NetworkPolicy
admits ingress from pods with exactly this label.
*/}}
{{- define "firedrill.selectorLabels" -}}
app.kubernetes.io/name: firedrill
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "firedrill.labels" -}}
{{ include "firedrill.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "firedrill.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "firedrill.configPath" -}}/etc/firedrill/firedrill.yaml{{- end -}}

{{- define "firedrill.historyClaim" -}}
{{- default (printf "%s-history" (include "firedrill.fullname" .)) .Values.history.persistence.existingClaim -}}
{{- end -}}

{{/* Pod-level security: the same for every pod of the chart. */}}
{{- define "firedrill.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
fsGroup: {{ .Values.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "firedrill.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Environment of every firedrill container: the downward API (POD_IP lets the throwaway's pg_hba
admit exactly this pod; namespace and name go into evidence records) and the Secrets of
secretEnv, by reference only.
*/}}
{{- define "firedrill.env" -}}
- name: FIREDRILL_CONFIG
  value: {{ include "firedrill.configPath" . }}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- range $env, $ref := .Values.secretEnv }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName }}
      key: {{ $ref.key }}
      {{- if hasKey $ref "optional" }}
      optional: {{ $ref.optional }}
      {{- end }}
{{- end }}
{{- end -}}

{{- define "firedrill.volumeMounts" -}}
- name: config
  mountPath: /etc/firedrill
  readOnly: true
- name: history
  mountPath: /var/lib/firedrill
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "firedrill.volumes" -}}
- name: config
  configMap:
    name: {{ include "firedrill.fullname" . }}
- name: history
  {{- if .Values.history.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "firedrill.historyClaim" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* Scheduling and pull secrets shared by every pod spec. */}}
{{- define "firedrill.podPlacement" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Checks across config and values, so that a mismatch fails at install rather than at 3 a.m.:
every scheduled drill names a configured target (not also scheduled by serve), every
kubernetes target restores into the scratch namespace, every database namespace has its
source Role, and every *Env variable the config names comes from secretEnv.
*/}}
{{- define "firedrill.validate" -}}
{{- $names := dict -}}
{{- $scratch := .Values.scratchNamespace.name -}}
{{- $dbns := .Values.rbac.databaseNamespaces -}}
{{- range $i, $t := (.Values.config.targets | default list) -}}
{{- $_ := set $names (toString $t.name) $t -}}
{{- $restore := $t.restore | default dict -}}
{{- $snap := $t.snapshot | default dict -}}
{{- if eq (toString ($restore.runtime | default "")) "kubernetes" -}}
{{- $k := $restore.kubernetes | default dict -}}
{{- $ns := $k.namespace | default "firedrill-scratch" -}}
{{- if ne $ns $scratch -}}
{{- fail (printf "config.targets[%d] (%s): restore.kubernetes.namespace %q is not scratchNamespace.name %q: the drill RBAC is granted in %q only" $i $t.name $ns $scratch $scratch) -}}
{{- end -}}
{{- $src := $k.snapshotNamespace | default ((($snap.csi | default dict).namespace) | default "") -}}
{{- if and $src $.Values.rbac.create (not (has $src $dbns)) -}}
{{- fail (printf "config.targets[%d] (%s): its snapshots are in namespace %q, which is not in rbac.databaseNamespaces" $i $t.name $src) -}}
{{- end -}}
{{- end -}}
{{- $conn := $t.connection | default dict -}}
{{- if and $conn.dsnEnv (not (hasKey $.Values.secretEnv $conn.dsnEnv)) -}}
{{- fail (printf "config.targets[%d] (%s): connection.dsnEnv %s is not in secretEnv (connection secrets come from Secrets by reference)" $i $t.name $conn.dsnEnv) -}}
{{- end -}}
{{- end -}}
{{- $serveCfg := .Values.config.serve | default dict -}}
{{- if and $serveCfg.tokenEnv (not (hasKey .Values.secretEnv $serveCfg.tokenEnv)) -}}
{{- fail (printf "config.serve.tokenEnv %s is not in secretEnv" $serveCfg.tokenEnv) -}}
{{- end -}}
{{- range $name, $d := .Values.drills -}}
{{- if not (hasKey $names $name) -}}
{{- fail (printf "drills.%s: no target named %q in config.targets" $name $name) -}}
{{- end -}}
{{- if and $.Values.serve.enabled (get $names $name).schedule -}}
{{- fail (printf "drills.%s: the target also has a schedule in config and serve is enabled: it would be drilled twice; drop one" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
