#!/usr/bin/env bash
# Renders the release files from the kustomize bases in manifests/, with every
# image pinned to VERSION:
#   _output/release/<VERSION>/manifest.yaml    core (CRDs, controller, RBAC)
#   _output/release/<VERSION>/extensions.yaml  applied after it: --extensions
#   _output/release/<VERSION>/sandbox-router.yaml  the data-plane router
#   _output/release/<VERSION>/agent-sandbox-<X.Y.Z>.tgz  the Helm chart
#   _output/release/<VERSION>/index.yaml       its Helm repository index
# and the kubectl-sandbox plugin's archives and krew manifest
# (hack/release-plugin.sh; plugins/sandbox.yaml).
# Usage: VERSION=v0.1.0 [IMAGE_PREFIX=ghcr.io/agentsandbox/] [CHART_URL=...]
#        [CHART_INDEX_MERGE=previous/index.yaml] hack/release-manifests.sh
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

# The Helm chart, versioned like the release (chart version without the
# "v", appVersion with it, so its images are the release's tags; their
# repositories take IMAGE_PREFIX like the files above), and the index of a
# Helm repository serving it from the release's downloads (CHART_URL);
# CHART_INDEX_MERGE adds the versions of a previous index.
chart_src="_output/release/.chart/agent-sandbox"
rm -rf "${chart_src%/*}"
mkdir -p "${chart_src%/*}"
cp -r manifests/helm/agent-sandbox "${chart_src}"
sed -i "s|repository: ghcr.io/agentsandbox/|repository: ${IMAGE_PREFIX}|" "${chart_src}/values.yaml"
hack/helm.sh package "${chart_src}" --destination "${out}" \
  --version "${VERSION#v}" --app-version "${VERSION}" >&2
rm -rf "${chart_src%/*}"
index_args=(--url "${CHART_URL:-https://github.com/agentsandbox/agent-sandbox/releases/download/${VERSION}}")
if [[ -n ${CHART_INDEX_MERGE:-} ]]; then
  index_args+=(--merge "${CHART_INDEX_MERGE}")
fi
hack/helm.sh repo index "${out}" "${index_args[@]}"
VERSION=${VERSION} OUT="${out}" hack/release-plugin.sh
echo "${out}/manifest.yaml"
echo "${out}/extensions.yaml"
echo "${out}/sandbox-router.yaml"
echo "${out}/agent-sandbox-${VERSION#v}.tgz"
echo "${out}/index.yaml"
