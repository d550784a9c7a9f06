{{/*
Object names are fixed, those of the kustomize release: the CRDs (which
Helm cannot template) name the webhook Service, the controller's flags
default to it and to the certificate Secret, and one install per cluster
is all the cluster-scoped CRDs allow anyway.
*/}}

{{/* Labels Helm adds to every object, on top of the kustomize ones. */}}
{{- define "agent-sandbox.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Labels of the controller's objects; the argument is the component. */}}
{{- define "agent-sandbox.labels" -}}
app.kubernetes.io/name: agent-sandbox
app.kubernetes.io/component: {{ .component }}
{{ include "agent-sandbox.helmLabels" .root }}
{{- end }}

{{- define "agent-sandbox.routerLabels" -}}
app.kubernetes.io/name: sandbox-router
app.kubernetes.io/component: sandbox-router
{{ include "agent-sandbox.helmLabels" . }}
{{- end }}

{{- define "agent-sandbox.serviceAccountName" -}}
{{- default "agent-sandbox-controller" .Values.serviceAccount.name }}
{{- end }}

{{- define "agent-sandbox.routerServiceAccountName" -}}
{{- default "sandbox-router" .Values.router.serviceAccount.name }}
{{- end }}

{{/* image: repository:tag, or repository@digest when a digest is set. */}}
{{- define "agent-sandbox.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ default .root.Chart.AppVersion .image.tag }}
{{- end }}
{{- end }}

{{/*
The controller's arguments, as a YAML list: those of the kustomize release
first, then each flag whose value is set (not null), so an unset one keeps
the binary's default. "int" flags are printed as integers: YAML numbers
arrive as floats, which would print large values in exponent form.
*/}}
{{- define "agent-sandbox.controllerArgs" -}}
{{- $c := .Values.controller -}}
{{- $w := .Values.webhook -}}
{{- $args := list (printf "--leader-elect=%t" $c.leaderElection.enabled) -}}
{{- if .Values.extensions.enabled }}{{ $args = append $args "--extensions" }}{{ end -}}
{{- if .Values.tracing.enabled }}{{ $args = append $args "--enable-tracing" }}{{ end -}}
{{- $flags := list
  (list "leader-election-namespace" ($c.leaderElection.namespace | default nil) "")
  (list "sandbox-concurrent-workers" $c.workers.sandbox "int")
  (list "sandbox-claim-concurrent-workers" $c.workers.sandboxClaim "int")
  (list "sandbox-warm-pool-concurrent-workers" $c.workers.sandboxWarmPool "int")
  (list "sandbox-template-concurrent-workers" $c.workers.sandboxTemplate "int")
  (list "kube-api-qps" $c.kubeAPI.qps "")
  (list "kube-api-burst" $c.kubeAPI.burst "int")
  (list "api-connections" $c.kubeAPI.connections "int")
  (list "separate-watch-connection" $c.kubeAPI.separateWatchConnection "")
  (list "sandbox-warm-pool-max-batch-size" $c.warmPool.maxBatchSize "int")
  (list "sandbox-warm-pool-readiness-grace-period" $c.warmPool.readinessGracePeriod "")
  (list "sandbox-warm-pool-unschedulable-recheck-interval" $c.warmPool.unschedulableRecheckInterval "")
  (list "sandbox-warm-pool-replenish-delay" $c.warmPool.replenishDelay "")
  (list "sandbox-warm-pool-max-refill-rate" $c.warmPool.maxRefillRate "")
  (list "enable-warm-pool-eviction" $c.warmPool.eviction "")
  (list "sandbox-first-status-delay" $c.sandbox.firstStatusDelay "")
  (list "sandbox-write-behind-window" $c.sandbox.writeBehindWindow "")
  (list "cache-label-selectors" $c.sandbox.cacheLabelSelectors "")
  (list "cluster-domain" $c.sandbox.clusterDomain "")
  (list "secure-default-nameservers" $c.sandbox.secureDefaultNameservers "")
  (list "disable-claim-events" $c.claims.disableEvents "")
  (list "disable-claim-observability-annotations" $c.claims.disableObservabilityAnnotations "")
  (list "idle-suspend-grace" $c.idleSuspendGrace "")
  (list "v" $c.logLevel "int")
-}}
{{- if $w.enabled }}
{{- $flags = concat $flags (list
  (list "webhook-max-request-bytes" $w.maxRequestBytes "int")
  (list "webhook-max-in-flight" $w.maxInFlight "int")
  (list "webhook-max-in-flight-bytes" $w.maxInFlightBytes "int")
  (list "webhook-read-timeout" $w.readTimeout "")) }}
{{- end }}
{{- range $f := $flags }}
{{- $v := index $f 1 }}
{{- if not (kindIs "invalid" $v) }}
{{- if eq (index $f 2) "int" }}{{ $v = int64 $v }}{{ end }}
{{- $args = append $args (printf "--%s=%v" (index $f 0) $v) }}
{{- end }}
{{- end }}
{{- if not $w.enabled }}
{{- $args = append $args "--enable-webhook=false" }}
{{- else }}
{{- if ne (int $w.port) 9443 }}{{ $args = append $args (printf "--webhook-port=%d" (int $w.port)) }}{{ end }}
{{- /* The webhook Service and the certificate Secret are in the release's namespace. */}}
{{- if ne .Release.Namespace "agent-sandbox-system" }}{{ $args = append $args (printf "--webhook-namespace=%s" .Release.Namespace) }}{{ end }}
{{- if include "agent-sandbox.certManager" . }}
{{- $args = concat $args (list "--manage-webhook-certs=false" "--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs") }}
{{- end }}
{{- end }}
{{- toYaml (concat $args $c.extraArgs) }}
{{- end }}

{{/* Whether the webhook certificate comes from cert-manager. */}}
{{- define "agent-sandbox.certManager" -}}
{{- if and .Values.webhook.enabled .Values.webhook.certManager.enabled }}true{{ end }}
{{- end }}

{{/*
The OTEL_* environment of a traced container (tracing.enabled): the
endpoint and sampler when set, then tracing.extraEnv.
*/}}
{{- define "agent-sandbox.tracingEnv" -}}
{{- $t := .Values.tracing -}}
{{- if $t.enabled }}
{{- with $t.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $t.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with $t.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- with $t.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}
