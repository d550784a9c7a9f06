#!/usr/bin/env bash
# Renders one release file to stdout: a kustomize base of manifests/ with
# every image pinned to VERSION and every object labelled with it, plus
# optional components. Used by release-manifests.sh for the release files
# and by test/helm to compare the Helm chart with exactly what a release
# ships.
#   KUBECTL_BIN=... hack/render-release-manifest.sh VERSION IMAGE_PREFIX BASE [COMPONENT...]
# BASE and COMPONENTs are paths under manifests/, e.g. release/core,
# components/monitoring.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ $# -lt 3 ]]; then
  echo "usage: $0 VERSION IMAGE_PREFIX BASE [COMPONENT...]" >&2
  exit 2
fi
version=$1 prefix=$2 base=$3
shift 3

# A throwaway kustomization on top of the base, inside the repository:
# kustomize refuses absolute paths to bases and components.
mkdir -p "${ROOT}/_output"
dir=$(mktemp -d "${ROOT}/_output/render.XXXXXX")
trap 'rm -rf "${dir}"' EXIT
{
  cat <<KUST
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../manifests/${base}
KUST
  if [[ $# -gt 0 ]]; then
    echo "components:"
    for c in "$@"; do echo "- ../../manifests/${c}"; done
  fi
  cat <<KUST
labels:
- pairs:
    app.kubernetes.io/version: ${version}
  includeSelectors: false
  includeTemplates: true
images:
- name: ghcr.io/agentsandbox/agent-sandbox-controller
  newName: ${prefix}agent-sandbox-controller
  newTag: ${version}
- name: ghcr.io/agentsandbox/sandbox-router
  newName: ${prefix}sandbox-router
  newTag: ${version}
KUST
} >"${dir}/kustomization.yaml"
"${KUBECTL_BIN}" kustomize "${dir}"
