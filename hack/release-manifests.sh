#!/usr/bin/env bash
# Renders the release files from the kustomize bases in manifests/, with every
# image pinned to VERSION:
#   _output/release/<VERSION>/manifest.yaml    core (CRDs, controller, RBAC)
#   _output/release/<VERSION>/extensions.yaml  applied after it: --extensions
#   _output/release/<VERSION>/sandbox-router.yaml  the data-plane router
# and the kubectl-sandbox plugin's archives and krew manifest
# (hack/release-plugin.sh; plugins/sandbox.yaml).
# Usage: VERSION=v0.1.0 [IMAGE_PREFIX=ghcr.io/agentsandbox/] hack/release-manifests.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

VERSION=${VERSION:-}
IMAGE_PREFIX=${IMAGE_PREFIX:-ghcr.io/agentsandbox/}
if [[ ! ${VERSION} =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release-manifests: VERSION must be a semantic version such as v0.1.0 (got '${VERSION}')" >&2
  exit 2
fi

# kubectl carries kustomize; it is built from source with the control plane.
hack/local-cluster/build.sh >&2
eval "$(hack/local-cluster/env.sh)"

out="_output/release/${VERSION}"
render="_output/release/.render"
rm -rf "${out}" "${render}"
mkdir -p "${out}"

# render <release base> <output file>: a throwaway kustomization on top of the
# base pins the images and labels everything with the version.
render() {
  local base=$1 file=$2
  local dir="${render}/${file%.yaml}"
  mkdir -p "${dir}"
  cat >"${dir}/kustomization.yaml" <<KUST
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../../../manifests/${base}
labels:
- pairs:
    app.kubernetes.io/version: ${VERSION}
  includeSelectors: false
  includeTemplates: true
images:
- name: ghcr.io/agentsandbox/agent-sandbox-controller
  newName: ${IMAGE_PREFIX}agent-sandbox-controller
  newTag: ${VERSION}
- name: ghcr.io/agentsandbox/sandbox-router
  newName: ${IMAGE_PREFIX}sandbox-router
  newTag: ${VERSION}
KUST
  "${KUBECTL_BIN}" kustomize "${dir}" >"${out}/${file}"
  if grep -n 'image: .*:latest' "${out}/${file}"; then
    echo "release-manifests: ${file} still names a :latest image" >&2
    exit 1
  fi
}
render release/core manifest.yaml
render release/extensions extensions.yaml
render router sandbox-router.yaml
rm -rf "${render}"
VERSION=${VERSION} OUT="${out}" hack/release-plugin.sh
echo "${out}/manifest.yaml"
echo "${out}/extensions.yaml"
echo "${out}/sandbox-router.yaml"
