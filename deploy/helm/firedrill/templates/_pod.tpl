{{/*
The pod template of a firedrill Job: dict "root" $ "component" C "args" LIST.
*/}}
{{- define "firedrill.jobPodTemplate" -}}
{{- $ := .root -}}
metadata:
  labels:
    {{- include "firedrill.selectorLabels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with $.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
    {{- with $.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "firedrill.serviceAccountName" $ }}
  restartPolicy: Never
  enableServiceLinks: false
  securityContext:
    {{- include "firedrill.podSecurityContext" $ | nindent 4 }}
  {{- include "firedrill.podPlacement" $ | nindent 2 }}
  containers:
    - name: firedrill
      image: {{ include "firedrill.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        {{- include "firedrill.env" $ | nindent 8 }}
      securityContext:
        {{- include "firedrill.containerSecurityContext" $ | nindent 8 }}
      resources:
        {{- toYaml $.Values.resources | nindent 8 }}
      volumeMounts:
        {{- include "firedrill.volumeMounts" $ | nindent 8 }}
  volumes:
    {{- include "firedrill.volumes" $ | nindent 4 }}
{{- end -}}
