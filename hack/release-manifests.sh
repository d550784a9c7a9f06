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
rm -rf "${out}"
mkdir -p "${out}"

# render <release base> <output file>: the base with the images pinned and
# everything labelled with the version (hack/render-release-manifest.sh).
render() {
  local base=$1 file=$2
  hack/render-release-manifest.sh "${VERSION}" "${IMAGE_PREFIX}" "${base}" >"${out}/${file}"
  if grep -n 'image: .*:latest' "${out}/${file}"; then
    echo "release-manifests: ${file} still names a :latest image" >&2
    exit 1
  fi
}
render release/core manifest.yaml
render release/extensions extensions.yaml
render router sandbox-router.yaml

VERSION=${VERSION} OUT="${out}" hack/release-plugin.sh
echo "${out}/manifest.yaml"
echo "${out}/extensions.yaml"
echo "${out}/sandbox-router.yaml"
