#!/usr/bin/env bash
# Runs Helm (helm.sh/helm/v4, cmd/helm) at a pinned version, built from
# source through the Go module proxy into the tools cache, like
# controller-gen (update-crds.sh) and golangci-lint (lint.sh): never a
# downloaded binary, and never a dependency of this module. The first
# build takes a few CPU minutes.
#   hack/helm.sh ARGS...     helm ARGS...
#   hack/helm.sh --path      build if needed, print the binary's path
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

HELM_VERSION=v4.3.2
TOOLS_CACHE=${TOOLS_CACHE:-${ROOT}/_output/tools}
TOOLS_BIN="${TOOLS_CACHE}/helm-${HELM_VERSION}"
if [ ! -x "${TOOLS_BIN}/helm" ]; then
  echo "Building helm ${HELM_VERSION}" >&2
  GOBIN="${TOOLS_BIN}" GOFLAGS=-mod=mod go install "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"
fi

if [[ ${1:-} == --path ]]; then
  echo "${TOOLS_BIN}/helm"
  exit 0
fi
exec "${TOOLS_BIN}/helm" "$@"
