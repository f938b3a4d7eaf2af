{{- /*
  Helpers of the metallb chart. The chart is self-contained (no library chart); the helpers that
  do exactly what a Deckhouse lib-helm helper does keep its name and calling convention, so the
  platform's linter (dmt) recognises them and the library chart could replace them one by one:
  helm_lib_module_labels, helm_lib_module_image, helm_lib_module_common_image,
  helm_lib_prometheus_rules, helm_lib_grafana_dashboard_definitions. The rest are named
  metallb_*.

  Only these template functions are used here and in the templates (the Rust test renderer in
  crates/helmrender implements exactly this set): include, toYaml, fail, default, quote, indent,
  nindent, has, hasKey, dict, list, toString, hasPrefix, hasSuffix, trimPrefix, trimSuffix,
  replace, plus the Go template built-ins. `.Files` is used as the map (path -> content) that
  Helm's `.Files` is, through `range` and `index`, not through its methods.
*/ -}}

{{- /* Usage: {{ include "helm_lib_module_labels" (list . (dict "app" "x")) }}
  The labels every object of the module carries, plus the given extra labels. */ -}}
{{- define "helm_lib_module_labels" -}}
{{- $context := index . 0 -}}
labels:
  heritage: deckhouse
  module: {{ $context.Chart.Name }}
{{- if eq (len .) 2 }}
{{- range $key, $value := index . 1 }}
  {{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Usage: {{ include "helm_lib_module_image" (list . "speaker") }}
  The reference of one of the module's images: the platform's registry and the digest the
  platform recorded for `images/<name>`, so a template can never run an unpinned image. The
  values key of the module's digests is the module name in camelCase; `metallb` has no dash, so
  it is the chart name as it is. */ -}}
{{- define "helm_lib_module_image" -}}
{{- $context := index . 0 -}}
{{- $image := index . 1 -}}
{{- $digests := index $context.Values.global.modulesImages.digests $context.Chart.Name -}}
{{- if not (hasKey $digests $image) -}}
{{- fail (printf "no digest for the image %s of the module %s in .Values.global.modulesImages.digests" $image $context.Chart.Name) -}}
{{- end -}}
{{- printf "%s@%s" $context.Values.global.modulesImages.registry.base (index $digests $image) -}}
{{- end }}

{{- /* Usage: {{ include "helm_lib_module_common_image" (list . "kubeRbacProxy") }}
  The reference of an image the platform ships for every module (`common`), such as the
  kube-rbac-proxy the platform puts in front of its components' metrics: the platform's
  registry and the digest recorded under `common` in the module digests. A missing digest
  fails the render, as for the module's own images. */ -}}
{{- define "helm_lib_module_common_image" -}}
{{- $context := index . 0 -}}
{{- $image := index . 1 -}}
{{- $all := $context.Values.global.modulesImages.digests -}}
{{- if not (hasKey $all "common") -}}
{{- fail "no common images in .Values.global.modulesImages.digests" -}}
{{- end -}}
{{- if not (hasKey $all.common $image) -}}
{{- fail (printf "no digest for the common image %s in .Values.global.modulesImages.digests" $image) -}}
{{- end -}}
{{- printf "%s@%s" $context.Values.global.modulesImages.registry.base (index $all.common $image) -}}
{{- end }}

{{- /* Usage: {{ if include "metallb_module_enabled" (list . "vertical-pod-autoscaler") }}
  "true" when the named platform module is enabled, "" otherwise; objects of kinds another
  module brings (VPA, PodMonitor, PrometheusRule, GrafanaDashboardDefinition) render only while
  that module, and so the kind's CRD, is there. Deckhouse >= 1.65 names the modules without the
  deprecated `-crd` suffix; module.yaml requires >= 1.68. */ -}}
{{- define "metallb_module_enabled" -}}
{{- $context := index . 0 -}}
{{- if has (index . 1) $context.Values.global.enabledModules -}}
true
{{- end -}}
{{- end }}

{{- /* Usage: {{ if include "metallb_speakers_enabled" . }}
  "true" when some MetalLoadBalancerClass exists. The speaker DaemonSet, its RBAC, its VPA and
  its PodMonitor render only then: without a class there is no member node and no address to
  announce, so nothing of the data plane should exist. */ -}}
{{- define "metallb_speakers_enabled" -}}
{{- if .Values.metallb.internal.l2loadbalancers -}}
true
{{- end -}}
{{- end }}

{{- /* Usage: {{ if include "metallb_bgp_speakers_enabled" . }}
  "true" when some MetalLoadBalancerConfiguration exists (the bgp-configurations hook writes
  metallb.internal.bgpConfigurationsExist). The BGP speaker DaemonSet, its RBAC, its VPA and its
  PodMonitor render only then: without a configuration no node is a BGP member and nothing is
  announced over BGP. */ -}}
{{- define "metallb_bgp_speakers_enabled" -}}
{{- if .Values.metallb.internal.bgpConfigurationsExist -}}
true
{{- end -}}
{{- end }}

{{- /* Usage: {{ include "helm_lib_prometheus_rules" (list . "d8-metallb") }}
  One PrometheusRule per file of monitoring/prometheus-rules/ (a YAML list of rule groups), in
  the given namespace, while the Prometheus operator module is enabled. */ -}}
{{- define "helm_lib_prometheus_rules" -}}
{{- $context := index . 0 -}}
{{- $namespace := index . 1 -}}
{{- $dir := "monitoring/prometheus-rules/" -}}
{{- if include "metallb_module_enabled" (list $context "operator-prometheus") -}}
{{- range $path, $content := $context.Files -}}
{{- if and (hasPrefix $dir $path) (hasSuffix ".yaml" $path) }}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ $context.Chart.Name }}-{{ $path | trimPrefix $dir | trimSuffix ".yaml" | replace "/" "-" }}
  namespace: {{ $namespace }}
  {{- include "helm_lib_module_labels" (list $context (dict "app" "prometheus" "prometheus" "main" "component" "rules")) | nindent 2 }}
spec:
  groups:
    {{- $content | toString | nindent 4 }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- /* Usage: {{ include "helm_lib_grafana_dashboard_definitions" . }}
  One GrafanaDashboardDefinition per JSON file of monitoring/grafana-dashboards/, while the
  prometheus module (which owns Grafana and the kind) is enabled. The dashboards go to the
  "Kubernetes Cluster" folder, where the Go module put its MetalLB dashboard. */ -}}
{{- define "helm_lib_grafana_dashboard_definitions" -}}
{{- $context := . -}}
{{- $dir := "monitoring/grafana-dashboards/" -}}
{{- if include "metallb_module_enabled" (list $context "prometheus") -}}
{{- range $path, $content := $context.Files -}}
{{- if and (hasPrefix $dir $path) (hasSuffix ".json" $path) }}
---
apiVersion: deckhouse.io/v1
kind: GrafanaDashboardDefinition
metadata:
  name: d8-{{ $context.Chart.Name }}-{{ $path | trimPrefix $dir | trimSuffix ".json" | replace "/" "-" }}
  {{- include "helm_lib_module_labels" (list $context (dict "prometheus.deckhouse.io/grafana-dashboard" "")) | nindent 2 }}
spec:
  folder: Kubernetes Cluster
  definition: |
    {{- $content | toString | nindent 4 }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}
