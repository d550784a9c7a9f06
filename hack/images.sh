#!/usr/bin/env bash
# Builds the container image of every binary under cmd/ (each has its own
# Dockerfile; the build context is the repository root), or loads them into
# a kind cluster.
#   hack/images.sh build   IMAGE_PREFIX=ghcr.io/agentsandbox/ IMAGE_TAG=<git describe>
#   hack/images.sh kind-load [KIND_CLUSTER=agent-sandbox-e2e]
# Needs docker (or DOCKER=podman); kind for kind-load.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

IMAGE_PREFIX=${IMAGE_PREFIX:-ghcr.io/agentsandbox/}
IMAGE_TAG=${IMAGE_TAG:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DOCKER=${DOCKER:-docker}
KIND=${KIND:-kind}
KIND_CLUSTER=${KIND_CLUSTER:-agent-sandbox-e2e}
IMAGES=(agent-sandbox-controller sandbox-router sandbox-runtime sandbox-bench)

need() {
  command -v "$1" >/dev/null || { echo "images: '$1' is not installed; $2" >&2; exit 1; }
}

case ${1:-build} in
build)
  need "${DOCKER}" "install Docker (or set DOCKER=podman) to build images"
  for image in "${IMAGES[@]}"; do
    echo "=== ${IMAGE_PREFIX}${image}:${IMAGE_TAG}"
    "${DOCKER}" build -f "cmd/${image}/Dockerfile" \
      --build-arg VERSION="${IMAGE_TAG}" \
      --build-arg GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
      --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      -t "${IMAGE_PREFIX}${image}:${IMAGE_TAG}" .
  done
  ;;
kind-load)
  need "${KIND}" "install kind (https://kind.sigs.k8s.io) for make kind-load and make e2e"
  for image in "${IMAGES[@]}"; do
    "${KIND}" load docker-image --name "${KIND_CLUSTER}" "${IMAGE_PREFIX}${image}:${IMAGE_TAG}"
  done
  ;;
*)
  echo "usage: hack/images.sh build|kind-load" >&2
  exit 2
  ;;
esac
