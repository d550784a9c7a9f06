#!/usr/bin/env bash
# Copies into the Helm chart (manifests/helm/agent-sandbox) what it shares
# with the kustomize bases, byte for byte, so the two cannot drift:
#   crds/                       the CRDs of manifests/crd (Helm installs
#                               crds/ untemplated, on first install only)
#   files/prometheus_rule.yaml  the alerts of manifests/components/monitoring
#   files/router_wake_idle/     the RBAC and admission policy of
#                               manifests/components/router-wake-idle
#                               (router.wakeIdle.enabled)
# Run by make generate after update-crds.sh; never edit the copies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="${ROOT}/manifests/helm/agent-sandbox"

mkdir -p "${chart}/crds" "${chart}/files/router_wake_idle"
rm -f "${chart}"/crds/*.yaml
cp "${ROOT}"/manifests/crd/*_*.yaml "${chart}/crds/"
cp "${ROOT}/manifests/components/monitoring/prometheus_rule.yaml" "${chart}/files/prometheus_rule.yaml"
cp "${ROOT}/manifests/components/router-wake-idle/rbac.yaml" "${ROOT}/manifests/components/router-wake-idle/policy.yaml" \
  "${chart}/files/router_wake_idle/"
